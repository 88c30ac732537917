// The two-part mold (see mold.h for the construction).
#include "tracecast/print/mold.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include <tbb/parallel_for.h>
#include <tbb/parallel_invoke.h>
#include <tbb/task_group.h>

#include "boolean.h"
#include "primitives.h"
#include "tracecast/mesh/box_grid.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/geodesic.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/step_timer.h"
#include "tracecast/mesh/submesh.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/point_hash.h"
#include "tracecast/print/mold_stages.h"
#include "tracecast/print/multipart.h"

namespace tracecast::print {

namespace {

double triangle_area(const Mesh& m, const Tri& t) {
  return 0.5 * (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).norm();
}

}  // namespace

namespace {

//! Rounds the vertices to floats, as the files will hold them. An STL has no vertex indices:
//! distinct vertices on one float point (two fans touching, which a cleaning step keeps apart)
//! would be read back as one, a pinch that is not manifold; all but the first move a float step
//! along x. Returns the faces flattened to zero area.
std::size_t round_to_floats(Mesh& m) {
  for (Vec3& v : m.vertices) v = single_precision(v);
  std::unordered_map<Vec3, std::size_t, PointHash> at;
  at.reserve(m.vertices.size());
  for (std::size_t i = 0; i < m.vertices.size(); ++i)
    while (!at.emplace(m.vertices[i], i).second)
      m.vertices[i].x() = std::nextafter(static_cast<float>(m.vertices[i].x()), std::numeric_limits<float>::infinity());
  std::size_t flat = 0;
  for (const Tri& t : m.triangles)
    flat += (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).squaredNorm() == 0.0;
  return flat;
}

//! The sorted neighbours of each vertex marked in `of` (the others' left empty).
std::vector<std::vector<std::int32_t>> rings(const Mesh& m, const std::vector<char>& of) {
  std::vector<std::vector<std::int32_t>> ring(m.vertices.size());
  for (const Tri& t : m.triangles)
    for (int k = 0; k < 3; ++k)
      if (of[static_cast<std::size_t>(t[k])]) {
        ring[static_cast<std::size_t>(t[k])].push_back(t[(k + 1) % 3]);
        ring[static_cast<std::size_t>(t[k])].push_back(t[(k + 2) % 3]);
      }
  for (auto& r : ring) {
    std::sort(r.begin(), r.end());
    r.erase(std::unique(r.begin(), r.end()), r.end());
  }
  return ring;
}

//! Per crossing pair, the shortest edge of the two triangles whose collapse keeps the surface
//! manifold (its end points share no neighbour but the two opposite corners: the link condition)
//! collapses to its midpoint: the two faces on it go, the second end's faces move to the first;
//! one collapse per vertex per round. Returns, per face of the mesh as it is then, whether it
//! changed or crossed (what the next round tests against all).
std::vector<char> collapse_crossings(Mesh& m, const std::vector<std::pair<std::size_t, std::size_t>>& pairs) {
  std::vector<char> at_crossing(m.vertices.size(), 0);
  for (const auto& [a, b] : pairs)
    for (std::size_t f : {a, b})
      for (std::int32_t v : m.triangles[f]) at_crossing[static_cast<std::size_t>(v)] = 1;
  const std::vector<std::vector<std::int32_t>> ring = rings(m, at_crossing);
  auto collapsible = [&](std::size_t u, std::size_t v) {
    std::vector<std::int32_t> common;
    std::set_intersection(ring[u].begin(), ring[u].end(), ring[v].begin(), ring[v].end(), std::back_inserter(common));
    return common.size() == 2;
  };
  std::vector<char> used(m.vertices.size(), 0), shifted(m.vertices.size(), 0);
  std::vector<std::int32_t> into(m.vertices.size(), -1);  // a collapsed edge's second end: its first
  for (const auto& [a, b] : pairs) {
    std::vector<std::pair<double, std::pair<std::size_t, std::size_t>>> edges;
    for (std::size_t f : {a, b}) {
      const Tri& t = m.triangles[f];
      for (int e = 0; e < 3; ++e) {
        const auto u = static_cast<std::size_t>(t[e]), v = static_cast<std::size_t>(t[(e + 1) % 3]);
        edges.push_back({(m.vertices[u] - m.vertices[v]).squaredNorm(), {u, v}});
      }
    }
    std::sort(edges.begin(), edges.end());
    for (const auto& [len, uv] : edges) {
      const auto [u, v] = uv;
      if (used[u] || used[v] || !collapsible(u, v)) continue;
      for (const std::size_t w : {u, v}) {  // the rings this collapse changes stay as they are this round
        used[w] = 1;
        for (std::int32_t x : ring[w]) used[static_cast<std::size_t>(x)] = 1;
      }
      m.vertices[u] = single_precision(0.5 * (m.vertices[u] + m.vertices[v]));
      into[v] = static_cast<std::int32_t>(u);
      shifted[u] = 1;
      break;
    }
  }
  std::vector<char> keep(m.triangles.size(), 1), changed(m.triangles.size(), 0);
  for (const auto& [a, b] : pairs) changed[a] = changed[b] = 1;
  for (std::size_t f = 0; f < m.triangles.size(); ++f) {
    Tri& t = m.triangles[f];
    for (std::int32_t& v : t) {
      if (into[static_cast<std::size_t>(v)] >= 0) v = into[static_cast<std::size_t>(v)];
      if (shifted[static_cast<std::size_t>(v)]) changed[f] = 1;
    }
    if (t[0] == t[1] || t[1] == t[2] || t[0] == t[2]) keep[f] = 0;  // a face on a collapsed edge
  }
  m = submesh(m, keep);
  std::vector<char> out;
  for (std::size_t f = 0; f < keep.size(); ++f)
    if (keep[f]) out.push_back(changed[f]);
  return out;
}

//! Settles a part in single precision, as the files will hold it: vertices rounded to floats,
//! then what rounding did undone — vertices that now coincide are welded, triangles flattened to
//! zero area are removed (edge flips and collapses, exact predicates), and tiny triangles folded
//! over a neighbour on a nearly flat patch have their shortest edge collapsed to its midpoint —
//! until nothing is left to mend or `rounds` is spent. Returns the crossing pairs left (tested on
//! the part as returned: the count its check would find).
std::size_t settle_in_single_precision(Mesh& m, int rounds) {
  // A later round tests against all only the faces the collapses changed and those that crossed:
  // no two of the others cross while they stay where they are. Flat faces left by rounding are
  // removed by the whole part's sliver repair, after which every face is tested again.
  std::vector<char> moved(m.triangles.size(), 1);
  std::size_t flat = 0;
  for (int round = 0;; ++round) {
    Timings steps;
    StepTimer timer(steps);
    if (round > 0 && flat > 0) m = detail::remove_slivers(m, 1e-9), moved.assign(m.triangles.size(), 1);
    timer.lap("slivers");
    flat = round_to_floats(m);
    timer.lap("floats");
    const auto pairs = self_intersecting_pairs(m, round > 0 ? &moved : nullptr);
    timer.lap("crossings");
    log_debug("settle: round {}, {} faces ({} tested against all), {} crossing pairs, {} flat; {:.2f} s slivers, {:.2f} floats, {:.2f} crossings",
              round, m.triangles.size(), round > 0 ? std::count(moved.begin(), moved.end(), 1) : m.triangles.size(), pairs.size(), flat,
              steps[0].second, steps[1].second, steps[2].second);
    if ((pairs.empty() && flat == 0) || round == rounds) return pairs.size();
    moved = collapse_crossings(m, pairs);
  }
}

//! Walls under two layers are slivers the printer does not form (PartCheck::sliver_samples).
double sliver_mm(const PrinterProfile& printer) { return 2 * printer.layer_height_mm; }

//! Each point's distance to the part's surface where it is under `within`, else at least that:
//! measured on the faces whose boxes come within `within` of a point (a few, where the points are
//! a part's thin samples), not on the whole part.
std::vector<double> distances_within(const Mesh& part, const std::vector<Vec3>& points, double within) {
  const FaceBoxes faces = face_boxes(part, within);
  const BoxGrid grid(faces);
  std::vector<char> keep(part.triangles.size(), 0);
  for (const Vec3& p : points) grid.overlapping(p, p, [&](std::size_t f) { keep[f] = 1; });
  if (std::find(keep.begin(), keep.end(), 1) == keep.end()) return std::vector<double>(points.size(), within);
  return SurfaceQuery(submesh(part, keep)).distances(points);
}

//! The thin samples (between `sliver` and `need`) whose ray ran along a shelf under `sliver` high:
//! each takes the diameter of the ball about its ray's midpoint that the surface leaves clear (see
//! WallSample). `o`, `d`: each sample's ray.
void sliver_shelves(const Mesh& part, double need, double sliver, const std::vector<Vec3>& o, const std::vector<Vec3>& d,
                    std::vector<WallSample>& samples) {
  std::vector<Vec3> mid;
  std::vector<std::size_t> which;
  for (std::size_t k = 0; k < samples.size(); ++k)
    if (samples[k].mm >= sliver && samples[k].mm < need) mid.push_back(o[k] + 0.5 * samples[k].mm * d[k]), which.push_back(k);
  if (mid.empty()) return;
  const std::vector<double> clear = distances_within(part, mid, 0.5 * sliver);
  std::size_t shelves = 0;
  for (std::size_t n = 0; n < which.size(); ++n)
    if (2 * clear[n] < sliver) {
      WallSample& s = samples[which[n]];
      if (shelves++ < 20)
        log_debug("walls: a {:.2f} mm ray from ({:.2f}, {:.2f}, {:.2f}) ran along a shelf {:.3f} mm across", s.mm, s.at.x(), s.at.y(), s.at.z(),
                  2 * clear[n]);
      s.mm = 2 * clear[n];
    }
  if (shelves) log_debug("walls: {} of {} thin samples ran along shelves under {:.2f} mm high", shelves, which.size(), sliver);
}

//! The thinnest printed wall sample (two layers or more) farther than the zone from the rim:
//! samples taken thinnest first, a batch at a time, until one lies outside it. NaN if none does.
double least_wall_off_edge(const std::vector<WallSample>& samples, double sliver, const CuttingEdge& edge) {
  std::vector<std::pair<double, std::size_t>> order;
  for (std::size_t k = 0; k < samples.size(); ++k)
    if (samples[k].mm >= sliver) order.emplace_back(samples[k].mm, k);  // NaN compares false: left out
  std::sort(order.begin(), order.end());
  for (std::size_t from = 0; from < order.size(); from += 4096) {
    const std::size_t to = std::min(order.size(), from + 4096);
    std::vector<Vec3> at;
    for (std::size_t i = from; i < to; ++i) at.push_back(samples[order[i].second].at);
    const std::vector<double> d = nearest_point_distances(edge.rim, at);
    for (std::size_t i = from; i < to; ++i)
      if (d[i - from] > edge.zone_mm) return order[i].first;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

//! The part's walls, measured from every face centre inwards (against the face normal) to the
//! next surface, and the thin samples gathered into spots (see PartCheck).
void measure_walls(const Mesh& part, const PrinterProfile& printer, const CuttingEdge* edge, PartCheck& c) {
  c.required_wall_mm = printer.min_wall_mm;
  const std::vector<WallSample> samples = wall_samples(part, &printer);
  std::vector<std::pair<double, std::size_t>> thin;  // thickness, sample
  double least = std::numeric_limits<double>::infinity();
  for (std::size_t k = 0; k < samples.size(); ++k) {
    const double w = samples[k].mm;
    if (std::isnan(w)) continue;
    ++c.wall_samples;
    if (w < sliver_mm(printer)) {
      ++c.sliver_samples;
      continue;
    }
    least = std::min(least, w);
    if (w < printer.min_wall_mm) thin.emplace_back(w, k);
  }
  c.min_wall_mm = std::isfinite(least) ? least : 0.0;
  c.min_wall_off_edge_mm = c.min_wall_mm;
  c.thin_samples = thin.size();
  if (edge && !edge->rim.empty()) {
    c.edge_zone_mm = edge->zone_mm;
    c.min_wall_off_edge_mm = least_wall_off_edge(samples, sliver_mm(printer), *edge);
    std::vector<Vec3> at;
    for (const auto& tk : thin) at.push_back(samples[tk.second].at);
    for (double x : nearest_point_distances(edge->rim, at)) c.edge_samples += x <= edge->zone_mm;
  }
  // Thinnest first: each sample joins the first spot within 5 mm, or starts one.
  std::sort(thin.begin(), thin.end());
  for (const auto& [w, k] : thin) {
    const Vec3& at = samples[k].at;
    auto near = std::find_if(c.thin_spots.begin(), c.thin_spots.end(), [&](const ThinSpot& s) { return (s.at - at).norm() < 5.0; });
    if (near != c.thin_spots.end()) ++near->samples;
    else if (c.thin_spots.size() < kMaxThinSpots) c.thin_spots.push_back({at, w, 1});
  }
}

}  // namespace

std::vector<WallSample> wall_samples(const Mesh& part, const PrinterProfile* printer) {
  std::vector<WallSample> out;
  std::vector<Vec3> o, d;
  const std::size_t step = std::max<std::size_t>(1, part.triangles.size() / 4000000);
  for (std::size_t f = 0; f < part.triangles.size(); f += step) {
    const Tri& t = part.triangles[f];
    const Vec3 n = (part.vertices[t[1]] - part.vertices[t[0]]).cross(part.vertices[t[2]] - part.vertices[t[0]]);
    if (!(n.norm() > 1e-12)) continue;
    const Vec3 g = (part.vertices[t[0]] + part.vertices[t[1]] + part.vertices[t[2]]) / 3.0;
    o.push_back(g - 1e-4 * n.normalized());
    d.push_back(-n.normalized());
    out.push_back({f, o.back(), std::numeric_limits<double>::quiet_NaN()});
  }
  const auto hits = SurfaceQuery(part).cast(o, d);
  // A wall is where the ray leaves through a face turned against the one it started from; a ray
  // that leaves through a side met at an angle (a corner, a knife edge) measures no wall.
  for (std::size_t k = 0; k < hits.size(); ++k)
    if (hits[k].hit && hits[k].normal.dot(-d[k]) < -0.5) out[k].mm = hits[k].t + 1e-4;
  if (printer) sliver_shelves(part, printer->min_wall_mm, sliver_mm(*printer), o, d, out);
  return out;
}

Mesh wall_map(const Mesh& part, const PrinterProfile& printer) {
  std::vector<double> least(part.vertices.size(), std::numeric_limits<double>::infinity());
  for (const WallSample& s : wall_samples(part, &printer))
    if (!std::isnan(s.mm))
      for (std::int32_t i : part.triangles[s.face]) least[static_cast<std::size_t>(i)] = std::min(least[static_cast<std::size_t>(i)], s.mm);
  Mesh m = part;
  m.colors.assign(m.vertices.size(), Vec3(0.78, 0.78, 0.78));
  const double sliver = sliver_mm(printer), need = printer.min_wall_mm;
  for (std::size_t v = 0; v < least.size(); ++v) {
    const double w = least[v];
    if (w < sliver) m.colors[v] = Vec3(0.8, 0.1, 0.8);
    else if (w < need) m.colors[v] = Vec3(0.9, 0.1, 0.1);
    else if (w < 2 * need) m.colors[v] = Vec3(0.95, 0.75, 0.1);
  }
  return m;
}

PartCheck check_part(const std::string& name, const Mesh& part, const PrinterProfile& printer, std::optional<std::size_t> crossings,
                     const CuttingEdge* edge) {
  PartCheck c;
  c.name = name;
  c.faces = part.triangles.size();
  MeasureOptions mo;
  mo.self_intersections = false;
  const MeshInfo info = measure(part, mo);
  c.closed = info.watertight;
  c.manifold = info.edge_manifold && info.vertex_manifold;
  c.oriented = info.oriented && info.volume_mm3 && *info.volume_mm3 > 0;
  c.volume_ml = info.volume_mm3 ? *info.volume_mm3 / 1000.0 : 0.0;
  c.self_intersections = crossings ? *crossings : count_self_intersections(part);
  measure_walls(part, printer, edge, c);
  c.fit = fit_as_placed(part, printer);
  c.turned = fit_in_build_volume(part, printer);
  return c;
}

namespace {

constexpr double kOnSkin = 0.03;  //!< an appliance face this close to the skin (centre) lies on it
constexpr double kLift = 1.5;     //!< how far off the skin an inner face may stand (mm)

//! The appliance's faces that stand off the skin (kOnSkin to kLift) but face it: the outward
//! normal within 45° of the way to the nearest point of the skin. The appliance's inner surface
//! is the skin remeshed and, across folds and creases, smoothed, so parts of it stand off the scan
//! (nefertiti's full face: 613 faces); they were taken for outer surface, and the rim, the outer
//! surface's height field and the undercuts were drawn with them (decimated-max's full-face core:
//! 64 → 16 thin samples once they count as inner; docs/methods/mold.md).
std::vector<char> lifted_inner_faces(const Mesh& appliance, const SurfaceQuery& skin, const std::vector<Vec3>& centres,
                                     const std::vector<double>& on_skin) {
  std::vector<std::size_t> which;
  std::vector<Vec3> at;
  for (std::size_t f = 0; f < centres.size(); ++f)
    if (on_skin[f] >= kOnSkin && on_skin[f] <= kLift) which.push_back(f), at.push_back(centres[f]);
  const std::vector<Vec3> nearest = skin.closest_points(at);
  std::vector<char> lifted(centres.size(), 0);
  for (std::size_t k = 0; k < which.size(); ++k) {
    const Tri& t = appliance.triangles[which[k]];
    const Vec3 n = (appliance.vertices[t[1]] - appliance.vertices[t[0]]).cross(appliance.vertices[t[2]] - appliance.vertices[t[0]]);
    const Vec3 to_skin = nearest[k] - at[k];
    lifted[which[k]] = n.norm() > 0 && to_skin.norm() > 0 && n.normalized().dot(to_skin.normalized()) > std::sqrt(0.5);
  }
  log_debug("mold: {} of the appliance's faces stand off the skin by {}–{} mm facing it: inner surface", std::count(lifted.begin(), lifted.end(), 1),
            kOnSkin, kLift);
  return lifted;
}

}  // namespace

namespace stages {

Inspection inspect_inputs(const Mesh& appliance, const Mesh& face, const MoldOptions& o) {
  validate(appliance, "appliance");
  validate(face, "face");
  throw_problems("mold options", mold_option_table().check(o));
  Inspection in;
  MeasureOptions mo;
  mo.self_intersections = false;
  const MeshInfo info = measure(appliance, mo);
  if (!info.watertight || !info.volume_mm3 || *info.volume_mm3 <= 0)
    throw InputError(fmt::format("the appliance is not a closed, outward solid ({} boundary edges, {} non-manifold edges): "
                                 "make it with tracecast appliance, or close it with tracecast repair",
                                 info.boundary_edges, info.non_manifold_edges));
  in.appliance_ml = *info.volume_mm3 / 1000.0;
  if (o.parts >= 3 && !measure(face, mo).watertight)
    throw InputError(fmt::format("a mold in {} parts needs the face to be a closed surface (a head: its inside parts core from shell); this "
                                 "one is not: close it with tracecast repair, or make the two-part mold (--parts 2)",
                                 o.parts));
  // Which faces of the appliance lie on the skin (its inner surface); outer: faces on the far side
  // from the skin (the rim is neither).
  for (const Tri& t : appliance.triangles)
    in.centres.push_back((appliance.vertices[t[0]] + appliance.vertices[t[1]] + appliance.vertices[t[2]]) / 3.0);
  const SurfaceQuery skin(face);
  const std::vector<double> on_skin = skin.distances(in.centres);
  const std::vector<char> lifted = lifted_inner_faces(appliance, skin, in.centres, on_skin);
  in.inner.assign(appliance.triangles.size(), 0);
  in.outer.assign(appliance.triangles.size(), 0);
  double inner_area = 0, total_area = 0;
  for (std::size_t f = 0; f < appliance.triangles.size(); ++f) {
    const double a = triangle_area(appliance, appliance.triangles[f]);
    total_area += a;
    in.inner[f] = on_skin[f] < kOnSkin || lifted[f];
    in.outer[f] = !in.inner[f] && on_skin[f] > 1.5 * kOnSkin;
    if (in.inner[f]) inner_area += a;
  }
  // An appliance or a mask lies on the skin with about half its surface, an ear with a tenth.
  if (inner_area < 0.05 * total_area)
    throw InputError(fmt::format("the appliance does not sit on this face: only {:.0f} % of its surface lies on the skin "
                                 "(expected about half for an appliance or a mask, a tenth for an ear); was it made from another scan, or moved?",
                                 100 * inner_area / total_area));
  return in;
}

Inspection carry_inspection(const Inspection& before, const Mesh& refined, const std::vector<std::uint32_t>& origin) {
  if (origin.size() != refined.triangles.size())
    throw ProcessingError("mold: the stamped appliance's faces do not match their origins");
  Inspection in;
  in.appliance_ml = signed_volume(refined) / 1000.0;
  in.inner.resize(origin.size());
  in.outer.resize(origin.size());
  in.centres.reserve(origin.size());
  for (std::size_t f = 0; f < origin.size(); ++f) {
    if (origin[f] >= before.inner.size()) throw ProcessingError("mold: the stamped appliance's faces do not match their origins");
    in.inner[f] = before.inner[origin[f]];
    in.outer[f] = before.outer[origin[f]];
    const Tri& t = refined.triangles[f];
    in.centres.push_back((refined.vertices[t[0]] + refined.vertices[t[1]] + refined.vertices[t[2]]) / 3.0);
  }
  return in;
}

Assembly assemble_parts(const Parting& p, const Envelope& e, const Features& f, const Sections& s, const Bolts& b, const Cavity& c,
                        const MoldOptions& o) {
  using detail::BooleanOp;
  Assembly a;
  if (o.style != "block") {
    a.core = heightfield_slab(p.core_h, e.core_floor, &p.rim);
    a.shell = heightfield_slab(e.shell_roof, p.shell_h, nullptr, &p.rim);
    a.envelope_ml = signed_volume(heightfield_slab(e.shell_roof, e.core_floor)) / 1000.0;
  } else {
    a.core = heightfield_solid(p.core_h, e.z_bottom, &p.rim);
    a.shell = heightfield_solid(p.shell_h, e.z_top, &p.rim);
    a.envelope_ml = (e.box_max - e.box_min).prod() / 1000.0;
  }
  // The core's and the shell's booleans are independent: in parallel. The small cutters go first,
  // while the part is still the slab: each boolean corefines the whole part, and after the
  // appliance's difference the part carries the appliance's faces (a million on a real scan).
  tbb::parallel_invoke(
      [&] {
        if (!f.male.triangles.empty()) a.core = detail::boolean(a.core, f.male, BooleanOp::Union, "the core's keys");
        Mesh cutters = f.slots;
        append(cutters, dowel_holes(s, true));
        append(cutters, bolt_holes(b));
        if (!cutters.triangles.empty()) a.core = detail::boolean(a.core, cutters, BooleanOp::Difference, "the core's pry slots, dowel and bolt holes");
        if (!f.core_void.triangles.empty()) a.core = detail::boolean(a.core, f.core_void, BooleanOp::Difference, "the core's hollow");
        a.core = detail::boolean(a.core, c.appliance, BooleanOp::Difference, "the core minus the appliance");
      },
      [&] {
        Mesh cutters = f.channels;
        append(cutters, f.female);
        append(cutters, f.slots);
        append(cutters, dowel_holes(s, false));
        append(cutters, bolt_holes(b));
        if (!cutters.triangles.empty())
          a.shell = detail::boolean(a.shell, cutters, BooleanOp::Difference, "the shell's keys, sprue, vents, dowel and bolt holes");
        if (!f.shell_void.triangles.empty()) a.shell = detail::boolean(a.shell, f.shell_void, BooleanOp::Difference, "the shell's hollow");
        a.shell = detail::boolean(a.shell, c.appliance, BooleanOp::Difference, "the shell minus the appliance");
      });
  // What the booleans cut off a part: given to the other part where it lies against it (the shell's
  // share between the skin and a chord of the parting surface that passes under it, on steep skin
  // or through a flap narrower than the grid), else dropped.
  Mesh core_off = split_off_pieces(a.core, s), shell_off = split_off_pieces(a.shell, s);
  a.given_ml = (give_pieces(a.core, shell_off) + give_pieces(a.shell, core_off)) / 1000.0;
  a.sliver_ml = (pieces_volume(core_off) + pieces_volume(shell_off)) / 1000.0;
  log_debug("mold: pieces cut off a part: {:.4f} ml given to the other part, {:.4f} ml dropped", a.given_ml, a.sliver_ml);
  return a;
}

namespace {

//! `m` cut at (axis, at) into what lies below the cut and what lies above it.
std::pair<Mesh, Mesh> cut_at(const Mesh& m, const Parting& p, bool core, int axis, double at, double land) {
  const std::string what = fmt::format("the {} at {} = {:.1f} mm", core ? "core" : "shell", axis == 0 ? "x" : "y", at);
  std::pair<Mesh, Mesh> out;
  detail::split(m, section_cutter(p, core, axis, at, bounding_box(m.vertices), land), out.first, out.second, what.c_str());
  return out;
}

//! One part cut at every plane, in order: x strips, each cut into y cells.
std::vector<Mesh> cut_part(const Mesh& part, const Sections& s, const Parting& p, bool core, double land) {
  std::vector<Mesh> strips = {part}, cells;
  for (double c : s.cuts[0]) {
    auto [below, above] = cut_at(strips.back(), p, core, 0, c, land);
    strips.back() = std::move(below);
    strips.push_back(std::move(above));
  }
  for (Mesh& strip : strips) {
    cells.push_back(std::move(strip));
    for (double c : s.cuts[1]) {
      auto [below, above] = cut_at(cells.back(), p, core, 1, c, land);
      cells.back() = std::move(below);
      cells.push_back(std::move(above));
    }
  }
  return cells;
}

}  // namespace

std::vector<NamedMesh> section_parts(const Assembly& a, const Sections& s, const Parting& p, const PrinterProfile& printer, double& sliver_ml) {
  if (s.count() == 1) return {{"core", a.core}, {"shell", a.shell}};
  std::vector<NamedMesh> out;
  std::vector<Mesh> pieces[2];
  const double land = cut_land_mm(printer);
  tbb::parallel_invoke([&] { pieces[0] = cut_part(a.core, s, p, true, land); }, [&] { pieces[1] = cut_part(a.shell, s, p, false, land); });
  for (int k : {0, 1})
    for (std::size_t i = 0; i < pieces[k].size(); ++i) {
      sliver_ml += keep_largest_piece(pieces[k][i]) / 1000.0;
      out.push_back({fmt::format("{}-{}", k == 0 ? "core" : "shell", i + 1), std::move(pieces[k][i])});
    }
  return out;
}

namespace {

//! The mesh without its closed pieces under 1 mm³ either way: specks of a few faces that a weld
//! pinches off (nefertiti's mask mold: pieces of 4 to 18 faces, 0.1 mm³ at most, made a part
//! two or three parts for admesh).
Mesh without_specks(Mesh m) {
  const std::vector<std::size_t> piece = face_components(m);
  std::map<std::size_t, double> volume = piece_volumes(m, piece);
  if (volume.size() <= 1) return m;
  std::vector<char> keep(m.triangles.size());
  for (std::size_t f = 0; f < keep.size(); ++f) keep[f] = std::abs(volume[piece[f]]) >= 1.0;
  return submesh(m, keep);
}

//! Slivers under a micrometre welded away (unless the weld opens the surface: it drops pairs of
//! faces it makes back to back); caps and needles that rounding would turn over removed.
Mesh cleaned(const Mesh& m) {
  std::optional<Mesh> welded = detail::remove_slivers_if_closed(m, 1e-3);
  const Mesh& q = welded && measure(*welded, MeasureOptions{false}).watertight ? *welded : m;
  return without_specks(detail::remove_near_degenerate(q, 179.5, 1e4, 1e-3));
}

//! A piece that stands on less than 25 mm² of flat face (a multi-part mold's part or section,
//! turned with its pull down: nefertiti's mask gave a section that touched the bed at a few points,
//! and PrusaSlicer found nothing to print in its first layer) is turned onto the largest flat face
//! on its box's six sides (a cut face: in that frame the cuts are axis planes). Returns the turn.
Eigen::Matrix3d onto_flat_face(Mesh& q) {
  if (flat_area(q, 2)[0] >= 25.0) return Eigen::Matrix3d::Identity();
  double best = 0;
  Vec3 down = -Vec3::UnitZ();
  for (int axis : {0, 1, 2}) {
    const std::array<double, 2> area = flat_area(q, axis);
    for (int side : {0, 1})
      if (area[static_cast<std::size_t>(side)] > best) best = area[static_cast<std::size_t>(side)], down = (side ? 1.0 : -1.0) * Vec3::Unit(axis);
  }
  if (best < 25.0) return Eigen::Matrix3d::Identity();
  const Eigen::Matrix3d R = Eigen::Quaterniond::FromTwoVectors(down, -Vec3::UnitZ()).toRotationMatrix();
  for (Vec3& v : q.vertices) v = R * v;
  return R;
}

//! Flat on its base when that fits the printer; else turned to the orientation that fits best,
//! and written so: the file's pose is the one the report's size is for.
//! Returns the rotation applied.
Eigen::Matrix3d fit_pose(Mesh& q, const std::string& name, const PrinterProfile& printer, std::vector<std::string>& warnings) {
  if (fit_as_placed(q, printer).fits) return Eigen::Matrix3d::Identity();
  const BuildFit best = fit_in_build_volume(q, printer);
  if (!best.fits) return Eigen::Matrix3d::Identity();
  Eigen::Matrix3d R = orientation_matrix(best);
  for (Vec3& v : q.vertices) v = R * v;
  // On whichever of its two sides has more flat area (a frame's outer wall rather than a cut face
  // whose lands stand proud of it): turned over about x when that is the upper one.
  if (const std::array<double, 2> flat = flat_area(q, 2); flat[1] > flat[0]) {
    const Eigen::Matrix3d over = Vec3(1, -1, -1).asDiagonal();
    for (Vec3& v : q.vertices) v = over * v;
    R = over * R;
  }
  warnings.push_back(fmt::format("the {} is laid on its side to fit the {} printer ({:.0f} × {:.0f} × {:.0f} mm)", name, printer.name,
                                 best.size_mm.x(), best.size_mm.y(), best.size_mm.z()));
  return R;
}

}  // namespace

std::vector<NamedMesh> print_pose(const std::vector<NamedMesh>& pieces, const PrinterProfile& printer, std::vector<std::string>& warnings,
                                  std::vector<Eigen::Affine3d>& from_mold, std::vector<std::size_t>& crossings, bool turn_shells) {
  std::vector<NamedMesh> out = pieces;
  from_mold.assign(out.size(), Eigen::Affine3d::Identity());
  crossings.assign(out.size(), 0);
  // Each part in turn: cleaned, turned over (the shell, onto its top), fitted, then placed in the
  // middle of the printer's bed, on z = 0, where a slicer opening its file prints it (PrusaSlicer's
  // arrange refused a mask's section that fitted the bed when its file held it 0.9 m along a row
  // of the parts side by side). Its settling then starts at once, beside the next part's cleaning
  // (which took longer run in parallel with another cleaning: its own steps already use both cores).
  // Nefertiti's four sections: the pose 6.3 s → 4.4–4.8 s when no round of settling follows the first.
  const auto t0 = std::chrono::steady_clock::now();
  tbb::task_group settling;
  const Vec3 bed_middle = 0.5 * printer.build_volume_mm;
  for (std::size_t k = 0; k < out.size(); ++k) {
    Mesh& q = out[k].mesh;
    const auto tk = std::chrono::steady_clock::now();
    q = cleaned(q);
    log_debug("pose: cleaned {} in {:.2f} s", out[k].name, std::chrono::duration<double>(std::chrono::steady_clock::now() - tk).count());
    Eigen::Matrix3d turn = Eigen::Matrix3d::Identity();
    if (turn_shells && out[k].name.rfind("shell", 0) == 0) turn.diagonal() = Vec3(1, -1, -1);
    for (Vec3& v : q.vertices) v = turn * v;
    if (!turn_shells) turn = onto_flat_face(q) * turn;
    from_mold[k].linear() = fit_pose(q, out[k].name, printer, warnings) * turn;
    const Aabb b = bounding_box(q.vertices);
    // On z = 0 exactly (the slicer's bed).
    const Vec3 middle = 0.5 * (b.min + b.max);
    const Vec3 shift(bed_middle.x() - middle.x(), bed_middle.y() - middle.y(), -b.min.z());
    for (Vec3& v : q.vertices) v = single_precision(Vec3(v + shift));
    from_mold[k].translation() = shift;
    settling.run([&out, &crossings, k] { crossings[k] = settle_in_single_precision(out[k].mesh, 8); });
  }
  settling.wait();
  log_debug("pose: cleaned, placed and settled in {:.2f} s", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return out;
}

std::vector<CuttingEdge> cutting_edges(const Inspection& in, const Eigen::Matrix3d& R, const std::vector<Eigen::Affine3d>& print_from_mold,
                                       double zone_mm) {
  std::vector<Vec3> rim;
  for (std::size_t f = 0; f < in.centres.size(); ++f)
    if (!in.inner[f] && !in.outer[f]) rim.push_back(R * in.centres[f]);
  std::vector<CuttingEdge> edges;
  for (const Eigen::Affine3d& T : print_from_mold) {
    CuttingEdge e{{}, zone_mm};
    for (const Vec3& p : rim) e.rim.push_back(T * p);
    edges.push_back(std::move(e));
  }
  return edges;
}

std::vector<PartCheck> check_parts(const std::vector<NamedMesh>& parts, const std::vector<std::size_t>& crossings, const PrinterProfile& printer,
                                   std::vector<std::string>& warnings, const std::vector<CuttingEdge>* edges) {
  std::vector<PartCheck> checks(parts.size());
  tbb::parallel_for(std::size_t(0), parts.size(), [&](std::size_t k) {
    checks[k] = check_part(parts[k].name, parts[k].mesh, printer, crossings.at(k), edges ? &edges->at(k) : nullptr);
  });
  for (const PartCheck& c : checks) {
    if (!is_valid_solid(c)) throw ProcessingError("mold: " + solid_problem(c));
    for (std::string& w : part_problems(c, printer)) warnings.push_back(std::move(w));
  }
  return checks;
}

}  // namespace stages

void check_mold_inputs(const Mesh& appliance, const Mesh& face, const MoldOptions& o) { stages::inspect_inputs(appliance, face, o); }

namespace {

//! The appliance and face turned into the mold frame.
stages::Cavity to_frame(const Mesh& appliance, const Mesh& face, const stages::Inspection& in, const Eigen::Matrix3d& R) {
  stages::Cavity c{appliance, face, in.inner, in.outer};
  for (Vec3& v : c.appliance.vertices) v = R * v;
  for (Vec3& v : c.face.vertices) v = R * v;
  return c;
}

}  // namespace

namespace {

//! The core and the shell as the parts' list gives them: the shell along the pull, the core
//! against it, each with the area it forms and its undercut regions.
std::vector<PartPull> two_part_pulls(const stages::PullChoice& pc, const stages::Inspection& in, const Mesh& appliance) {
  PartPull core{"core", Vec3(-pc.pull), 0, 0, 0}, shell{"shell", pc.pull, 0, 0, 0};
  const stages::FaceNormals n = stages::face_normals(appliance);
  for (std::size_t f = 0; f < in.inner.size(); ++f) (in.inner[f] ? core : shell).cavity_area_mm2 += n.area[f];
  for (const Undercut& u : pc.undercuts) {
    PartPull& p = u.surface == "inner" ? core : shell;
    p.undercut_area_mm2 += u.area_mm2;
    p.undercut_depth_mm = std::max(p.undercut_depth_mm, u.depth_mm);
  }
  return {core, shell};
}

//! The parting surface fitted to the cavity, the gutter and the parts' walls.
void plan_parting(stages::MoldPlan& plan, const stages::Cavity& cavity, const MoldOptions& o, StepTimer& timer) {
  using namespace stages;
  MoldReport& r = plan.report;
  const double key_zone = o.keys > 0 ? 2 * o.key_radius_mm + 4 : 4;
  const double margin = o.flash_land_mm + o.gutter_width_mm + key_zone + (o.style != "block" ? std::max(o.wall_mm, o.frame_mm) : o.wall_mm);
  plan.parting = parting_surface(cavity, o, margin);
  Parting& parting = plan.parting;
  if (!parting.skin_around)
    r.warnings.push_back("the face scan ends at the appliance's edge: the parting surface continues as a plane through the appliance");
  timer.lap("parting");
  const FitReport fit = fit_to_cavity(parting, cavity, std::min(0.004, 0.1 * parting.lift + 1e-4));
  log_debug("mold: parting surface fitted to the cavity: {} points, {} moved (up to {:.3f} mm), {} missed", fit.constraints, fit.moved,
            fit.max_move_mm, fit.missed);
  timer.lap("fit");
  cut_gutter(parting, o);
  r.gutter_ml = parting.gutter_ml;
  plan.envelope = part_envelope(parting, cavity, o);
  r.box_min = plan.envelope.box_min;
  r.box_max = plan.envelope.box_max;
  timer.lap("walls");
}

//! Keys, sprue and vents, the sections (which refuse a printer too small), the bolts and the
//! supports, on the fitted parting surface.
void plan_features(stages::MoldPlan& plan, const stages::Cavity& cavity, const MoldOptions& o) {
  using namespace stages;
  MoldReport& r = plan.report;
  Parting& parting = plan.parting;
  Envelope& env = plan.envelope;
  plan.features = mold_features(parting, env, o);
  std::vector<Vec3> detail;  // eyes and mouth, in the mold frame
  for (const Vec3& q : plan.pull.detail) detail.push_back(r.frame * q);
  plan.sections = plan_sections(parting, env, plan.features, o, detail);
  const Sections& sections = plan.sections;
  r.bolts = place_bolts(parting, env, plan.features, sections, o);
  if (!r.bolts.bolts.empty()) {  // the bosses seated level, and the walls and features laid on the surface as it is now
    seat_bolts(parting, r.bolts, o);
    env = part_envelope(parting, cavity, o);
    r.box_min = env.box_min;
    r.box_max = env.box_max;
    plan.features = mold_features(parting, env, o);
    r.bolts = place_bolts(parting, env, plan.features, sections, o);
  }
  const Features& features = plan.features;
  add_supports(env, parting, features, sections, r.bolts, o);
  bolt_reach(r.bolts, env);
  r.sections = sections;
  r.key_centres = features.key_centres;
  r.key_radii_mm.assign(r.key_centres.size(), o.key_radius_mm);
  r.sprue_bottom = features.sprue_bottom;
  r.sprue_bend = features.sprue_bend;
  r.vent_bottoms = features.vent_bottoms;
  for (const std::string& w : features.warnings) r.warnings.push_back(w);
  for (const std::string& w : sections.warnings) r.warnings.push_back(w);
  for (const std::string& w : r.bolts.warnings) r.warnings.push_back(w);
}

//! Every piece checked as written (`crossings`: what the settling's last test found on each),
//! the thin spots logged in the mold frame.
void check_pieces(Mold& mold, const std::vector<std::size_t>& crossings, const stages::Inspection& in, const MoldOptions& o) {
  using namespace stages;
  MoldReport& r = mold.report;
  const std::vector<CuttingEdge> edges = cutting_edges(in, r.frame, r.print_from_mold, o.flash_land_mm);
  r.parts = check_parts(mold.print_parts, crossings, o.printer, r.warnings, &edges);
  for (std::size_t k = 0; k < r.parts.size(); ++k)
    for (const ThinSpot& t : r.parts[k].thin_spots) {
      const Vec3 at = r.print_from_mold[k].inverse() * t.at;
      log_debug("check: {} thin spot {:.2f} mm, {} samples, at ({:.1f}, {:.1f}, {:.1f}) in the mold frame", r.parts[k].name, t.thinnest_mm,
                t.samples, at.x(), at.y(), at.z());
    }
  r.warnings.push_back(technology_warning(o.printer));
}

}  // namespace

namespace stages {

MoldPlan plan_mold(const Mesh& appliance, const Mesh& face, const MoldOptions& o, const FaceAnalysis* face_analysis,
                   const Inspection* inspection) {
  MoldPlan plan;
  MoldReport& r = plan.report;
  StepTimer timer(r.timings);
  const Inspection in = inspection ? *inspection : inspect_inputs(appliance, face, o);
  r.appliance_ml = in.appliance_ml;
  timer.lap("inspect");

  plan.pull = choose_pull(appliance, face, in, o, face_analysis);
  plan.multipart = needs_multipart(appliance, face, in, plan.pull, o);
  if (plan.multipart) {
    plan.multipart_design = std::make_shared<MultipartDesign>(plan_multipart_design(appliance, face, in, o, timer));
    return plan;
  }
  const PullChoice& pc = plan.pull;
  r.pull = pc.pull;
  r.pull_searched = pc.searched;
  r.undercut_area_mm2 = pc.undercut_area_mm2;
  r.undercut_area_frontal_mm2 = pc.undercut_area_frontal_mm2;
  r.undercuts = pc.undercuts;
  for (const Undercut& u : r.undercuts)
    if (u.rigid)
      r.warnings.push_back(fmt::format("undercut of {:.0f} mm² on the {} surface is {:.1f} mm deep: the cast must flex that far to release",
                                       u.area_mm2, u.surface, u.depth_mm));
  r.frame = mold_frame(pc.pull);
  timer.lap("pull");

  const Cavity cavity = to_frame(appliance, face, in, r.frame);
  plan_parting(plan, cavity, o, timer);
  plan_features(plan, cavity, o);
  timer.lap("features");
  return plan;
}

bool Openings::contain(const Vec3& v) const {
  if (beyond && beyond->first.dot(v) > beyond->second) return true;
  return std::any_of(balls.begin(), balls.end(), [&](const auto& o) { return (v - o.first).norm() < o.second; });
}

std::pair<double, double> open_cavity(const Mesh& appliance, const std::vector<const Mesh*>& parts, const Openings& openings, double tolerance) {
  // The booleans keep the appliance's vertices exactly where the parts' faces lie on it: only the
  // vertices no part has are measured (nefertiti's full face: 1.6 s, against 3.5 s for all 597,000).
  std::unordered_set<Vec3, PointHash> on_parts;
  for (const Mesh* part : parts) on_parts.insert(part->vertices.begin(), part->vertices.end());
  std::vector<std::size_t> which;
  std::vector<Vec3> loose;
  for (std::size_t i = 0; i < appliance.vertices.size(); ++i) {
    const Vec3& v = appliance.vertices[i];
    if (on_parts.count(v) || openings.contain(v)) continue;
    which.push_back(i);
    loose.push_back(v);
  }
  constexpr double kReach = 5.0;  // farther off than this: counted at this
  std::vector<double> off(loose.size(), kReach);
  for (const Mesh* part : parts) {
    const std::vector<double> d = distances_within(*part, loose, kReach);
    for (std::size_t k = 0; k < d.size(); ++k) off[k] = std::min(off[k], d[k]);
  }
  const std::vector<double> area = vertex_areas(appliance);
  double open = 0, worst = 0;
  Aabb where;
  Vec3 worst_at = Vec3::Zero();
  for (std::size_t k = 0; k < loose.size(); ++k)
    if (off[k] > tolerance) {
      open += area[which[k]], where.add(loose[k]);
      if (off[k] > worst) worst = off[k], worst_at = loose[k];
    }
  if (open > 0)
    log_debug("closure: {:.1f} mm² open within ({:.1f}, {:.1f}, {:.1f})–({:.1f}, {:.1f}, {:.1f}), the most, {:.2f} mm, at ({:.1f}, {:.1f}, {:.1f})", open,
              where.min.x(), where.min.y(), where.min.z(), where.max.x(), where.max.y(), where.max.z(), worst, worst_at.x(), worst_at.y(),
              worst_at.z());
  return {open, worst};
}

void check_closure(const Mesh& appliance, const std::vector<const Mesh*>& parts, const Openings& openings, const std::string& likely,
                   MoldReport& r) {
  std::tie(r.open_cavity_mm2, r.open_cavity_max_mm) = open_cavity(appliance, parts, openings);
  if (r.open_cavity_mm2 > 0)
    r.warnings.push_back(fmt::format("{:.1f} mm² of the piece's surface lie off the parts, by up to {:.2f} mm: voids against the "
                                     "cavity, which the cast fills (fins){}{}",
                                     r.open_cavity_mm2, r.open_cavity_max_mm, likely.empty() ? "" : "; likely ", likely));
}

namespace {

//! The two-part mold's closure, by the sprue's and the vents' feet left out: stface-smile's
//! full-face mold, printable by every other check, left 26 mm² of the appliance's surface more
//! than 0.1 mm off the parts before the pieces cut off a part were given to the other.
void check_two_part_closure(const Cavity& cavity, const Assembly& parts, const MoldOptions& o, MoldReport& r) {
  Openings openings{{{r.sprue_bottom, 0.5 * o.sprue_diameter_mm + 1.0}}, std::nullopt};
  for (const Vec3& v : r.vent_bottoms) openings.balls.emplace_back(v, 0.5 * o.vent_diameter_mm + 1.0);
  check_closure(cavity.appliance, {&parts.core, &parts.shell}, openings,
                fmt::format("where the parting surface cuts under skin finer than its grid ({:.2f} mm)", o.resolution_mm), r);
}

}  // namespace

Mold build_mold(MoldPlan plan, const Mesh& appliance, const Mesh& face, const MoldOptions& o, const Inspection* inspection) {
  const Inspection in = inspection ? *inspection : inspect_inputs(appliance, face, o);
  if (plan.multipart) {
    Mold multi = design_multipart_mold(appliance, face, in, o, std::move(*plan.multipart_design));
    multi.report.timings.insert(multi.report.timings.begin(), plan.report.timings.begin(), plan.report.timings.end());
    return multi;
  }
  Mold mold;
  mold.report = std::move(plan.report);
  MoldReport& r = mold.report;
  StepTimer timer(r.timings);
  r.appliance_ml = in.appliance_ml;
  r.pulls = two_part_pulls(plan.pull, in, appliance);
  const Cavity cavity = to_frame(appliance, face, in, r.frame);
  Assembly parts = assemble_parts(plan.parting, plan.envelope, plan.features, plan.sections, r.bolts, cavity, o);
  r.sliver_ml = parts.sliver_ml;
  r.void_ml = parts.envelope_ml - (signed_volume(parts.core) + signed_volume(parts.shell)) / 1000.0;
  timer.lap("booleans");

  // The closure's check beside the sectioning (which only reads the parts).
  std::vector<NamedMesh> pieces;
  tbb::parallel_invoke([&] { pieces = section_parts(parts, plan.sections, plan.parting, o.printer, r.sliver_ml); },
                       [&] { check_two_part_closure(cavity, parts, o, r); });
  timer.lap(plan.sections.count() > 1 ? "sections and closure" : "closure");

  std::vector<std::size_t> crossings;  // found by the settling's last test, on the parts as they are
  mold.print_parts = print_pose(pieces, o.printer, r.warnings, r.print_from_mold, crossings);
  timer.lap("pose");
  check_pieces(mold, crossings, in, o);
  timer.lap("check");
  mold.parts.push_back({"core", std::move(parts.core)});
  mold.parts.push_back({"shell", std::move(parts.shell)});
  return mold;
}

}  // namespace stages

Mold design_mold(const Mesh& appliance, const Mesh& face, const MoldOptions& o, const FaceAnalysis* face_analysis,
                 const stages::Inspection* inspection) {
  const stages::Inspection in = inspection ? *inspection : stages::inspect_inputs(appliance, face, o);
  return stages::build_mold(stages::plan_mold(appliance, face, o, face_analysis, &in), appliance, face, o, &in);
}

}  // namespace tracecast::print
