// The full-head mask (see mask.h): the wearer's face analysed, the likeness aligned to it by a
// similarity fitted to their landmarks, then the solid as the zero level of a field.
#include "tracecast/sculpt/mask.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <Eigen/Geometry>
#include <algorithm>
#include <cmath>

#include "tracecast/mesh/appliance.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/geodesic.h"
#include "tracecast/mesh/level_set.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/report_json.h"
#include "tracecast/mesh/submesh.h"

namespace tracecast::sculpt {

namespace {

//! The landmarks both faces share, in input coordinates.
Eigen::Matrix3Xd landmark_points(const FaceAnalysis& f) {
  const Landmarks& l = f.landmarks;
  const std::vector<Vec3> local = {l.nose_tip, l.eye_left, l.eye_right, l.inner_eye_left, l.inner_eye_right, l.mouth_center, l.chin};
  Eigen::Matrix3Xd m(3, static_cast<Eigen::Index>(local.size()));
  for (std::size_t i = 0; i < local.size(); ++i) m.col(static_cast<Eigen::Index>(i)) = f.frame.to_world(local[i]);
  return m;
}

//! The likeness moved, turned and scaled onto the wearer by their landmarks (least squares).
struct Alignment {
  Eigen::Matrix4d to_wearer = Eigen::Matrix4d::Identity();
  double scale = 1, rms_mm = 0;
  Vec3 apply(const Vec3& p) const { return (to_wearer * p.homogeneous()).head<3>(); }
};

Alignment align_likeness(const Mesh& likeness, const FaceAnalysis& wearer) {
  FaceAnalysis lf;
  try {
    lf = analyze_face(likeness, {});
  } catch (const Error& e) {
    throw ProcessingError(fmt::format("the likeness: {}", e.what()));
  }
  const Eigen::Matrix3Xd src = landmark_points(lf), dst = landmark_points(wearer);
  Alignment a;
  a.to_wearer = Eigen::umeyama(src, dst, true);
  a.scale = a.to_wearer.block<3, 3>(0, 0).col(0).norm();
  double sum = 0;
  for (Eigen::Index i = 0; i < src.cols(); ++i) sum += (a.apply(src.col(i)) - dst.col(i)).squaredNorm();
  a.rms_mm = std::sqrt(sum / static_cast<double>(src.cols()));
  return a;
}

//! The openings and the neck edge, as one field in the wearer's face frame: positive where the
//! mask is cut away. The eyes and the mouth: where the point's closest point on the skin lies inside
//! the outline seen from the front (and on the face, not behind it), so that the cut's walls follow
//! the skin's normals and meet the shell square (a prism along the face's axis meets the sloping
//! floor of an eye socket at a slant, leaving a knife edge). The nostrils open downwards on a
//! surface that runs along the face's axis: they are cut by balls centred on the skin at each.
struct Cuts {
  struct Prism {
    std::vector<std::vector<Vec2>> outline;
    double back_z;       //!< skin further back than this (face-frame z) is not the face's front
    Aabb box;            //!< the outline's box, 3 mm wider: beyond it the exact distance is not needed
  };
  std::vector<Prism> prisms;
  std::vector<std::pair<Vec3, double>> balls;  //!< centre (face frame), radius
  double neck_y = 0;

  Cuts(const FaceAnalysis& f, const SurfaceQuery& wearer, const MaskOptions& o) {
    const Landmarks& l = f.landmarks;
    const double eye_z = 0.5 * (l.eye_left.z() + l.eye_right.z());
    add(opening_outline("eyes", f, o.eye_margin_mm), eye_z - 25);
    add(opening_outline("mouth", f, o.mouth_margin_mm), l.mouth_center.z() - 20);
    for (const auto& poly : opening_outline("nostrils", f, 0)) {
      Aabb b;
      for (const Vec2& p : poly) b.add(Vec3(p.x(), p.y(), 0));
      const Vec3 c = 0.5 * (b.min + b.max);
      balls.emplace_back(nostril_on_skin(f, wearer, c), 0.5 * (b.max.x() - b.min.x()) + o.nostril_margin_mm);
    }
    neck_y = l.chin.y() - o.neck_mm;
  }
  //! The nostril at (x, y) of the face frame: the one found, or the first skin met from in front.
  static Vec3 nostril_on_skin(const FaceAnalysis& f, const SurfaceQuery& wearer, const Vec3& c) {
    const Landmarks& l = f.landmarks;
    if (l.nostrils_found) return (c.x() > 0) == (l.nostril_left.x() > 0) ? l.nostril_left : l.nostril_right;
    const RayHit hit = wearer.cast({f.frame.to_world(Vec3(c.x(), c.y(), l.nose_tip.z() + 50))}, {-f.frame.axes.col(2)}).front();
    return Vec3(c.x(), c.y(), hit.hit ? l.nose_tip.z() + 50 - hit.t : l.nose_tip.z() - 10);
  }
  void add(std::vector<std::vector<Vec2>> outline, double back_z) {
    Aabb box;
    for (const auto& poly : outline)
      for (const Vec2& p : poly) box.add(Vec3(p.x(), p.y(), 0));
    box.min.array() -= 3;
    box.max.array() += 3;
    prisms.push_back({std::move(outline), back_z, box});
  }
  //! Whether the skin's closest point is needed at q: near an outline.
  bool near_outline(const Vec3& q, double reach) const {
    for (const Prism& p : prisms)
      if (q.x() > p.box.min.x() - reach && q.x() < p.box.max.x() + reach && q.y() > p.box.min.y() - reach && q.y() < p.box.max.y() + reach)
        return true;
    return false;
  }
  //! At q (face frame), whose closest point on the skin is s (face frame; q itself far from every outline).
  double at(const Vec3& q, const Vec3& s) const {
    double cut = neck_y - q.y();
    for (const Prism& p : prisms) {
      const double beside = std::max({p.box.min.x() - s.x(), s.x() - p.box.max.x(), p.box.min.y() - s.y(), s.y() - p.box.max.y()});
      const double across = beside > 0 ? -3 - beside : outline_distance(p.outline, s.head<2>());
      cut = std::max(cut, std::min(across, s.z() - p.back_z));
    }
    for (const auto& [c, r] : balls) cut = std::max(cut, r - (q - c).norm());
    return cut;
  }
};

//! What the field needs: the wearer's surface, the likeness's (moved onto the wearer), the cuts.
struct MaskField {
  const SurfaceQuery& wearer;
  const SurfaceQuery* likeness;
  const Alignment& align;
  const Cuts& cuts;
  const FaceFrame& frame;
  const MaskOptions& o;

  //! How far from the skin the cuts need the skin's closest point: through the mask and the grid's reach.
  double reach = 0;

  //! Rolled neck edge: the distance from a round lip along the edge, its inside on the fit surface
  //! (the wearer's skin `fw` away) and its bottom on the edge. The neck runs along the face frame's
  //! y, so height and distance from the skin are the lip's section's two axes.
  double lip(double y, double fw) const {
    const double r = 0.5 * o.neck_lip_mm;
    return std::hypot(y - (cuts.neck_y + r), fw - (o.fit_mm + r)) - r;
  }

  std::vector<double> operator()(const std::vector<Vec3>& x) const {
    const std::vector<double> fw = wearer.signed_distances(x);
    std::vector<double> fl;
    if (likeness) {
      const Eigen::Matrix4d back = align.to_wearer.inverse();
      std::vector<Vec3> y(x.size());
      for (std::size_t i = 0; i < x.size(); ++i) y[i] = (back * x[i].homogeneous()).head<3>();
      fl = likeness->signed_distances(y);
    }
    std::vector<Vec3> q(x.size()), s;
    std::vector<std::size_t> near;
    for (std::size_t i = 0; i < x.size(); ++i) {
      q[i] = frame.to_local(x[i]);
      if (std::abs(fw[i]) < reach && cuts.near_outline(q[i], reach)) near.push_back(i);
    }
    std::vector<Vec3> pts;
    for (std::size_t i : near) pts.push_back(x[i]);
    const std::vector<Vec3> on_skin = wearer.closest_points(pts);
    s = q;
    for (std::size_t n = 0; n < near.size(); ++n) s[near[n]] = frame.to_local(on_skin[n]);
    std::vector<double> f(x.size());
    const double k = 0.5 * o.resolution_mm;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double inner = o.fit_mm - fw[i];  // negative outside the wearer's head and its allowance
      // The likeness or the minimum, whichever is further out; their crease rounded outwards, and
      // the minimum held a quarter of a grid step out: where the likeness runs just inside the
      // minimum, nearly along it, the grid cuts across the crease a few tenths inside.
      const double least = o.fit_mm + o.min_thickness_mm + 0.25 * o.resolution_mm;
      const double outer = likeness ? smooth_min(align.scale * fl[i], fw[i] - least, k) : fw[i] - o.fit_mm - o.thickness_mm;
      f[i] = smooth_max(smooth_max(outer, inner, k), cuts.at(q[i], s[i]), k);
      if (o.neck_edge == "rolled") f[i] = smooth_min(f[i], lip(q[i].y(), fw[i]), k);
    }
    return f;
  }
};

//! Where the likeness comes closer to the wearer than the minimum thickness (pushed out there,
//! away from the openings and below the neck edge); returns how far out of the wearer's head it
//! stands at most.
double measure_push(const Mesh& likeness, const Alignment& align, const SurfaceQuery& wearer, const Cuts& cuts, const FaceFrame& frame,
                    const MaskOptions& o, MaskReport& r) {
  std::vector<Vec3> moved(likeness.vertices.size());
  for (std::size_t i = 0; i < moved.size(); ++i) moved[i] = align.apply(likeness.vertices[i]);
  const std::vector<double> fw = wearer.signed_distances(moved);
  std::vector<std::size_t> short_at;
  std::vector<Vec3> pts;
  double out = 0;
  for (std::size_t i = 0; i < moved.size(); ++i) {
    out = std::max(out, fw[i]);
    if (o.fit_mm + o.min_thickness_mm - fw[i] > 0) short_at.push_back(i), pts.push_back(moved[i]);
  }
  const std::vector<Vec3> on_skin = wearer.closest_points(pts);
  const std::vector<double> va = vertex_areas(likeness);
  for (std::size_t n = 0; n < short_at.size(); ++n) {
    const std::size_t i = short_at[n];
    const double short_by = o.fit_mm + o.min_thickness_mm - fw[i];
    if (cuts.at(frame.to_local(moved[i]), frame.to_local(on_skin[n])) > 0) continue;
    r.pushed_area_mm2 += va[i] * align.scale * align.scale;
    if (short_by > r.pushed_max_mm) r.pushed_max_mm = short_by, r.pushed_most_at = frame.to_local(moved[i]);
  }
  return out;
}

nlohmann::json matrix_rows(const Eigen::Matrix4d& m) {
  nlohmann::json rows = nlohmann::json::array();
  for (int i = 0; i < 4; ++i) rows.push_back({m(i, 0), m(i, 1), m(i, 2), m(i, 3)});
  return rows;
}

}  // namespace

Mesh make_mask(const Mesh& wearer, const Mesh* likeness, const MaskOptions& o, MaskReport* report) {
  throw_problems("mask", mask_option_table().check(o));
  require_closed(wearer, "wearer's head");
  if (likeness) require_closed(*likeness, "likeness");
  MaskReport r;
  StepTimer timer(r.timings);
  r.wearer = analyze_face(wearer, o.face);
  const FaceFrame& frame = r.wearer.frame;
  timer.lap("landmarks");
  Alignment align;
  if (likeness) {
    align = align_likeness(*likeness, r.wearer);
    r.likeness = true;
    r.likeness_scale = align.scale;
    r.likeness_to_wearer = align.to_wearer;
    r.likeness_fit_rms_mm = align.rms_mm;
    timer.lap("likeness");
  }
  const SurfaceQuery wq(wearer);
  std::optional<SurfaceQuery> lq;
  if (likeness) lq.emplace(*likeness);
  const Cuts cuts(r.wearer, wq, o);
  const double stands_out = likeness ? measure_push(*likeness, align, wq, cuts, frame, o, r) : 0.0;
  Aabb box = bounding_box(wearer);
  const double wall = std::max({o.thickness_mm, o.min_thickness_mm, o.neck_edge == "rolled" ? o.neck_lip_mm : 0.0});
  const double grow = wall + std::max(o.fit_mm, 0.0) + 2 * o.resolution_mm;
  if (likeness) {
    for (const Vec3& v : likeness->vertices) box.add(align.apply(v));
  }
  box.min.array() -= grow;
  box.max.array() += grow;
  MaskField field{wq, lq ? &*lq : nullptr, align, cuts, frame, o};
  field.reach = std::max(grow, stands_out) + 8 * o.resolution_mm;
  Mesh mask = level_set_surface(field, box, o.resolution_mm, 1.5);  // distances, rounded where they cross
  timer.lap("solid");
  r.solid = check_solid(mask, "mask");
  timer.lap("checks");
  if (report) *report = r;
  return mask;
}

void to_json(nlohmann::json& j, const MaskReport& r) {
  j = {{"wearer", r.wearer},
       {"likeness", r.likeness ? nlohmann::json{{"scale", r.likeness_scale},
                                               {"to_wearer", matrix_rows(r.likeness_to_wearer)},
                                               {"landmark_fit_rms_mm", r.likeness_fit_rms_mm},
                                               {"pushed_out", {{"area_mm2", r.pushed_area_mm2}, {"max_mm", r.pushed_max_mm},
                                                               {"most_at_mm", vec_json(r.pushed_most_at)}}}}
                               : nlohmann::json(nullptr)},
       {"solid", r.solid},
       {"timings_s", timings_json(r.timings)}};
}

}  // namespace tracecast::sculpt
