// The ear prosthesis (see ear.h): the missing ear found where the head's mirror image stands out
// of it, then the solid as the zero level of a field over the grid around it.
#include "tracecast/sculpt/ear.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/level_set.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/report_json.h"
#include "tracecast/mesh/submesh.h"

namespace tracecast::sculpt {

namespace {

double smoothstep(double e0, double e1, double x) {
  const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
  return t * t * (3 - 2 * t);
}

//! What a missing ear looks like in the head's mirror image: a piece standing well out of the
//! head (an ear stands 15–25 mm off it), the size of an ear's two faces, beside the head.
constexpr double kMinEarArea = 500, kMaxEarArea = 7000;  //!< mm²
constexpr double kMinEarHeight = 10;                     //!< mm out of the head, at the most
constexpr double kMinEarReach = 35;                      //!< mm from the symmetry plane, its centre

//! The healthy ear, mirrored onto the side that lacks it: a piece of the head's mirror image
//! standing more than `protrusion_mm` out of the head there, the largest that looks like an ear.
struct MissingEar {
  Mesh surface;       //!< mirrored, facing outwards
  double area_mm2 = 0, height_mm = 0, off_plane_mm = 0;
  Vec3 centre = Vec3::Zero();
  int side = 0;       //!< of the symmetry plane: +1 on its normal's side
  bool plausible() const {
    return area_mm2 >= kMinEarArea && area_mm2 <= kMaxEarArea && height_mm >= kMinEarHeight && off_plane_mm >= kMinEarReach;
  }
};

//! The head's mirror image, its faces turned outwards again.
Mesh mirror_image(const Mesh& head, const SymmetryPlane& plane) {
  Mesh mirror = head;
  for (Vec3& v : mirror.vertices) v = plane.reflect(v);
  for (Tri& t : mirror.triangles) std::swap(t[1], t[2]);  // a reflection turns faces inside out
  return mirror;
}

//! The pieces of `m` made of the faces flagged in `keep`, each measured (`out`: how far each
//! vertex of `m` stands out of the head).
std::vector<MissingEar> pieces(const Mesh& m, const std::vector<char>& keep, const std::vector<double>& out, const SymmetryPlane& plane) {
  const Mesh candidates = submesh(m, keep);
  std::vector<std::size_t> source;  // the candidates' faces in m (submesh keeps the order)
  for (std::size_t f = 0; f < keep.size(); ++f)
    if (keep[f]) source.push_back(f);
  const std::vector<std::size_t> label = face_components(candidates);
  std::vector<MissingEar> found;
  std::vector<std::size_t> slot;
  std::vector<std::vector<char>> faces;
  for (std::size_t f = 0; f < label.size(); ++f) {
    if (label[f] >= slot.size()) slot.resize(label[f] + 1, SIZE_MAX);
    if (slot[label[f]] == SIZE_MAX) {
      slot[label[f]] = found.size();
      found.emplace_back();
      faces.emplace_back(candidates.triangles.size(), 0);
    }
    MissingEar& e = found[slot[label[f]]];
    faces[slot[label[f]]][f] = 1;
    const Tri& t = candidates.triangles[f];
    const Vec3 &a = candidates.vertices[t[0]], &b = candidates.vertices[t[1]], &c = candidates.vertices[t[2]];
    const double area = 0.5 * (b - a).cross(c - a).norm();
    e.area_mm2 += area;
    e.centre += area * (a + b + c) / 3.0;
    for (std::int32_t v : m.triangles[source[f]]) e.height_mm = std::max(e.height_mm, out[static_cast<std::size_t>(v)]);
  }
  for (std::size_t k = 0; k < found.size(); ++k) {
    found[k].centre /= found[k].area_mm2;
    const double off = plane.normal.dot(found[k].centre) - plane.offset;
    found[k].off_plane_mm = std::abs(off);
    found[k].side = off > 0 ? 1 : -1;
    found[k].surface = submesh(candidates, faces[k]);
  }
  return found;
}

MissingEar find_missing_ear(const Mesh& head, const SurfaceQuery& q, const SymmetryPlane& plane, const EarOptions& o, int want) {
  const Mesh mirror = mirror_image(head, plane);
  const std::vector<double> out = q.signed_distances(mirror.vertices);
  std::vector<char> keep(mirror.triangles.size(), 0);
  for (std::size_t f = 0; f < keep.size(); ++f) {
    const Tri& t = mirror.triangles[f];
    const Vec3 c = (mirror.vertices[t[0]] + mirror.vertices[t[1]] + mirror.vertices[t[2]]) / 3.0;
    const int side = plane.normal.dot(c) > plane.offset ? 1 : -1;
    keep[f] = (want == 0 || side == want) && out[t[0]] > o.protrusion_mm && out[t[1]] > o.protrusion_mm && out[t[2]] > o.protrusion_mm;
  }
  std::vector<MissingEar> found = pieces(mirror, keep, out, plane);
  MissingEar best, largest;
  for (MissingEar& e : found) {
    log_debug("ear: a piece of the mirror image standing out on the {} side: {:.0f} mm², up to {:.1f} mm, {:.0f} mm from the plane",
              e.side > 0 ? "+" : "-", e.area_mm2, e.height_mm, e.off_plane_mm);
    if (e.area_mm2 > largest.area_mm2) largest = e;
    if (e.plausible() && e.area_mm2 > best.area_mm2) best = std::move(e);
  }
  if (best.area_mm2 == 0)
    throw ProcessingError(fmt::format(
        "no ear is missing: where the head's mirror image stands out of it most ({:.0f} mm², up to {:.1f} mm out, {:.0f} mm from the "
        "midline) is not an ear's size and place ({:.0f}–{:.0f} mm², over {:.0f} mm out, over {:.0f} mm from the midline)",
        largest.area_mm2, largest.height_mm, largest.off_plane_mm, kMinEarArea, kMaxEarArea, kMinEarHeight, kMinEarReach));
  // Two ears that do not mirror each other (a head turned on its neck, ears set differently) stand
  // out of each other's image on both sides; a missing ear only on its own.
  for (const MissingEar& e : found)
    if (e.side != best.side && e.off_plane_mm >= kMinEarReach && e.height_mm >= 0.5 * kMinEarHeight && e.area_mm2 > 0.5 * best.area_mm2)
      throw ProcessingError(fmt::format("no ear is missing: the head's mirror image stands out of it beside both ears ({:.0f} and {:.0f} mm²): "
                                        "the ears do not mirror each other",
                                        best.area_mm2, e.area_mm2));
  return best;
}

//! The wearer's side a point of the mirrored ear lies on, if the head's face can be found;
//! otherwise the side of the symmetry plane's normal it lies on (+ or −).
std::string side_name(const Mesh& head, const SymmetryPlane& plane, const Vec3& at) {
  try {
    const FaceAnalysis f = analyze_face(head, {});
    return (at - f.frame.origin).dot(f.frame.axes.col(0)) > 0 ? "left" : "right";
  } catch (const Error&) {
    return plane.normal.dot(at) > plane.offset ? "+" : "-";
  }
}

//! The side (+1 / −1 of the plane's normal) the wearer's `side` lies on; 0 for auto.
int wanted_sign(const Mesh& head, const SymmetryPlane& plane, const std::string& side) {
  if (side == "auto") return 0;
  FaceAnalysis f;
  try {
    f = analyze_face(head, {});
  } catch (const Error& e) {
    throw ProcessingError(fmt::format("--side {} needs the face to tell left from right, and none was found ({}); use --side auto", side,
                                      e.what()));
  }
  const double along = plane.normal.dot(f.frame.axes.col(0));
  return (side == "left") == (along > 0) ? 1 : -1;
}

//! The solid's field at `x`: inside the mirrored head, within `reach` of the mirrored ear, and
//! outside the head. Within a few grid steps of the skin the mirror image is drawn in by
//! `edge_mm`, so that the margin ends where it is that thick instead of tapering into a sliver the
//! grid would break up. Points beyond the reach are outside without a look at the head.
std::vector<double> ear_field(const std::vector<Vec3>& x, const SurfaceQuery& head, const SurfaceQuery& ear, const SymmetryPlane& plane,
                              const EarOptions& o) {
  const std::vector<double> d = ear.distances(x);
  std::vector<std::size_t> near;
  std::vector<Vec3> p, pm;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (d[i] < o.reach_mm + 2 * o.resolution_mm) {
      near.push_back(i);
      p.push_back(x[i]);
      pm.push_back(plane.reflect(x[i]));
    }
  const std::vector<double> fh = head.signed_distances(p), fm = head.signed_distances(pm);
  std::vector<double> f(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) f[i] = std::max(d[i] - o.reach_mm, o.resolution_mm);
  for (std::size_t k = 0; k < near.size(); ++k) {
    const double skin = 1.0 - smoothstep(0.0, 3 * o.resolution_mm + o.edge_mm, fh[k]);
    f[near[k]] = smooth_max(smooth_max(fm[k] + o.edge_mm * skin, d[near[k]] - o.reach_mm, o.resolution_mm), -fh[k], o.resolution_mm);
  }
  return f;
}

//! The largest piece of `m` (by faces); the number of others dropped.
std::size_t keep_largest(Mesh& m) {
  const std::vector<std::size_t> label = face_components(m);
  if (label.empty()) return 0;
  std::vector<std::size_t> count(*std::max_element(label.begin(), label.end()) + 1, 0);
  for (std::size_t l : label) ++count[l];
  const auto best = static_cast<std::size_t>(std::max_element(count.begin(), count.end()) - count.begin());
  std::vector<char> keep(label.size());
  for (std::size_t f = 0; f < label.size(); ++f) keep[f] = label[f] == best;
  m = submesh(m, keep);
  return static_cast<std::size_t>(std::count_if(count.begin(), count.end(), [](std::size_t c) { return c > 0; })) - 1;
}

}  // namespace

Mesh make_ear(const Mesh& head, const EarOptions& o, EarReport* report) {
  throw_problems("ear", ear_option_table().check(o));
  EarReport r;
  StepTimer timer(r.timings);
  require_closed(head, "head");
  r.plane = estimate_symmetry_plane(head, o.symmetry);
  const int want = wanted_sign(head, r.plane, o.side);
  timer.lap("symmetry");
  const SurfaceQuery hq(head);
  const MissingEar ear = find_missing_ear(head, hq, r.plane, o, want);
  r.ear_area_mm2 = ear.area_mm2;
  r.ear_height_mm = ear.height_mm;
  r.side = o.side == "auto" ? side_name(head, r.plane, ear.centre) : o.side;
  log_debug("ear: {:.0f} mm² of mirrored ear on the {} side, up to {:.1f} mm out of the head", ear.area_mm2, r.side, ear.height_mm);
  timer.lap("missing ear");
  Aabb box = bounding_box(ear.surface);
  box.min.array() -= o.reach_mm + 2 * o.resolution_mm;
  box.max.array() += o.reach_mm + 2 * o.resolution_mm;
  const SurfaceQuery eq(ear.surface);
  // The field is made of distances, but the margin's draw-in adds to its slope: up to 1.6 per mm.
  Mesh solid = level_set_surface([&](const std::vector<Vec3>& x) { return ear_field(x, hq, eq, r.plane, o); }, box, o.resolution_mm, 2.0);
  r.dropped_pieces = keep_largest(solid);
  timer.lap("solid");
  r.solid = check_solid(solid, "ear's solid");
  timer.lap("checks");
  if (report) *report = r;
  return solid;
}

void to_json(nlohmann::json& j, const EarReport& r) {
  j = {{"symmetry_plane", r.plane},
       {"side", r.side},
       {"ear_area_mm2", r.ear_area_mm2},
       {"ear_height_mm", r.ear_height_mm},
       {"solid", r.solid},
       {"dropped_pieces", r.dropped_pieces},
       {"timings_s", timings_json(r.timings)}};
}

}  // namespace tracecast::sculpt
