// A part of a multi-part mold that no orientation fits on the printer, cut into sections that do:
// in the part's print pose (its pull straight down), by planes x = c, y = c and, when those are not
// enough, z = c (across the pull: the sections, pinned together, are the part, and release as it
// does); the cuts moved clear of the keys; across each cut, dowel holes where a pin and a wall
// round it lie inside the part on both sides.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include "boolean.h"
#include "primitives.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/step_timer.h"
#include "tracecast/mesh/submesh.h"
#include "tracecast/print/multipart.h"
#include "tracecast/print/printer.h"

namespace tracecast::print::stages {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

//! Whether each of the points passes a test (a boss's room, or the part's surface far enough).
using PointTest = BossRoom;

bool holds(const Aabb& outer, const Aabb& inner) {
  return (outer.min.array() <= inner.min.array()).all() && (inner.max.array() <= outer.max.array()).all();
}

//! The half-space below `at` along `axis` as a box reaching well past `box`.
Mesh half_space(const Aabb& box, int axis, double at) {
  Vec3 lo = box.min - Vec3::Constant(10), hi = box.max + Vec3::Constant(10);
  hi[axis] = at;
  return detail::box(lo, hi);
}

//! n − 1 cuts along `axis`, each within a fifth of a step of the equal step where no key lies
//! within `clear` of it and two dowels fit (`dowels` says how many, up to three): the equal step
//! when they do there, else the nearest position (2 mm apart) where they do, else the one with
//! room for the most. (At the equal steps the generated ear's mold had room for one dowel in
//! all; in a conformal part the room is where a flange crosses the cut.)
std::vector<double> cut_positions(const Aabb& box, int axis, int n, const std::vector<Vec3>& keys, double clear,
                                  const std::function<std::size_t(double)>& dowels) {
  const double step = (box.max[axis] - box.min[axis]) / n;
  const auto clear_of_keys = [&](double c) {
    return std::none_of(keys.begin(), keys.end(), [&](const Vec3& q) { return std::abs(q[axis] - c) < clear; });
  };
  std::vector<double> cuts;
  for (int k = 1; k < n; ++k) {
    const double at = box.min[axis] + k * step;
    double best = at;
    std::size_t most = 0;
    bool found = false;
    for (double d = 0; d <= 0.2 * step && most < 2; d += 2.0)
      for (const double c : {at + d, at - d}) {
        if ((d == 0 && c != at) || !clear_of_keys(c) || most >= 2) continue;
        const std::size_t room = dowels(c);
        if (!found || room > most) best = c, most = room, found = true;
      }
    cuts.push_back(best);
  }
  return cuts;
}

//! The fewest sections along x, y and z (at most max_sections in all) whose boxes fit the printer
//! in some orientation, fewer cuts across the pull (z) first, then the most room; {0, 0, 0} when
//! there are none.
std::array<int, 3> section_grid(const Vec3& size, const MoldOptions& o) {
  for (int n = 1; n <= o.max_sections; ++n) {
    std::array<int, 3> best{0, 0, 0};
    double margin = -kInf;
    for (int a = 1; a <= n; ++a)
      for (int b = 1; a * b <= n; ++b) {
        if (n % (a * b)) continue;
        const int c = n / (a * b);
        const BuildFit fit = best_fit(Vec3(size.x() / a, size.y() / b, size.z() / c), o.printer);
        if (!fit.fits) continue;
        if (best[0] == 0 || c < best[2] || (c == best[2] && fit.margin_mm > margin)) best = {a, b, c}, margin = fit.margin_mm;
      }
    if (best[0] > 0) return best;
  }
  return {0, 0, 0};
}

//! The candidates every point of which (each candidate plus each offset of every pass) `ok`
//! accepts, tested pass by pass: a first pass of few points rules out most candidates, so the
//! fuller passes after it measure few (on nefertiti's mask's 2 M-face core, the sections' search
//! took 154 s measuring every point of every candidate).
std::vector<Vec3> passing(std::vector<Vec3> candidates, const std::vector<std::vector<Vec3>>& passes, const PointTest& ok) {
  for (const std::vector<Vec3>& offsets : passes) {
    std::vector<Vec3> pts;
    for (const Vec3& c : candidates)
      for (const Vec3& d : offsets) pts.push_back(c + d);
    if (pts.empty()) return {};
    const std::vector<char> good = ok(pts);
    std::vector<Vec3> kept;
    for (std::size_t k = 0; k < candidates.size(); ++k)
      if (std::all_of(good.begin() + static_cast<long>(k * offsets.size()), good.begin() + static_cast<long>((k + 1) * offsets.size()),
                      [](char x) { return x; }))
        kept.push_back(candidates[k]);
    candidates = std::move(kept);
  }
  return candidates;
}

//! Points of the cut plane at `at` along `axis`, on a grid of `step` within `inset` of the box's
//! sides across the cut.
std::vector<Vec3> plane_grid(const Aabb& box, int axis, double at, double inset, double step) {
  const int u = (axis + 1) % 3, v = (axis + 2) % 3;
  std::vector<Vec3> grid;
  for (double a = box.min[u] + inset; a <= box.max[u] - inset; a += step)
    for (double b = box.min[v] + inset; b <= box.max[v] - inset; b += step) {
      Vec3 c = Vec3::Zero();
      c[axis] = at, c[u] = a, c[v] = b;
      grid.push_back(c);
    }
  return grid;
}

//! Where on the cut plane a dowel fits: a pin `depth` into each side with `need` of material round
//! its axis (hole and wall: the part's surface at least `need` from five points along it), on a
//! 2 mm grid over the plane; up to three sites, the first the deepest inside, the next each as far
//! as can be from those taken.
std::vector<Vec3> dowel_sites(const SurfaceQuery& q, const Aabb& box, int axis, double at, double need, double depth) {
  const Vec3 a = Vec3::Unit(axis);
  const PointTest deep = [&](const std::vector<Vec3>& pts) {
    const std::vector<double> sd = q.signed_distances(pts);
    std::vector<char> ok(pts.size());
    for (std::size_t i = 0; i < pts.size(); ++i) ok[i] = -sd[i] >= need;
    return ok;
  };
  const std::vector<Vec3> along{-depth * a, -0.5 * depth * a, 0.5 * depth * a, depth * a};
  const std::vector<Vec3> good = passing(plane_grid(box, axis, at, need, 2.0), {{Vec3::Zero()}, along}, deep);
  if (good.empty()) return {};
  std::vector<Vec3> probes;
  for (const Vec3& c : good)
    for (double t : {-depth, -0.5 * depth, 0.0, 0.5 * depth, depth}) probes.push_back(c + t * a);
  const std::vector<double> sd = q.signed_distances(probes);
  std::size_t deepest = 0;
  double most = -kInf;
  for (std::size_t k = 0; k < good.size(); ++k) {
    const double inside = -*std::max_element(sd.begin() + static_cast<long>(5 * k), sd.begin() + static_cast<long>(5 * k + 5));
    if (inside > most) most = inside, deepest = k;
  }
  std::vector<Vec3> sites{good[deepest]};
  for (const Vec3& c : detail::farthest_first(good, sites, 2, 4 * need + 10)) sites.push_back(c);
  return sites;
}

//! Points of the cut plane (a 1 mm grid) where a boss of radius r round an axis through them would
//! cross the part's wall: the wall reaching 0.8 mm into it at the cut and `reach` / 2 each side.
//! Within `inset` of the box's sides across the cut. (Where a boss must keep to one side of a thin
//! wall, the band it may stand in is under 2 mm wide: a coarser grid misses it.)
std::vector<Vec3> boss_candidates(const SurfaceQuery& q, const Aabb& box, int axis, double at, double r, double reach, double inset) {
  const PointTest on_wall = [&](const std::vector<Vec3>& pts) {
    const std::vector<double> sd = q.signed_distances(pts);
    std::vector<char> ok(pts.size());
    for (std::size_t i = 0; i < pts.size(); ++i) ok[i] = sd[i] < r - 0.8;
    return ok;
  };
  const Vec3 half = 0.5 * reach * Vec3::Unit(axis);
  return passing(plane_grid(box, axis, at, inset, 1.0), {{Vec3::Zero()}, {-half, half}}, on_wall);
}

//! Up to `want` more dowel sites on the cut plane, each on a boss (Sections::boss_radius_mm and
//! boss_reach_mm) that crosses the part's wall (boss_candidates), the whole of it in `room` (32
//! points round it at five stations along it, and its ends); its axis inside the part's box across
//! the cut where a section as large as `section` and the boss's radius more each way still fits
//! the printer, else the whole boss inside it. The first the farthest from the sites `taken`, each
//! next the farthest from all, none within four radii of another.
std::vector<Vec3> boss_sites(const SurfaceQuery& q, const Aabb& box, int axis, double at, const Sections& s, const Vec3& section,
                             const PrinterProfile& printer, std::size_t want, const std::vector<Vec3>& taken, const BossRoom& room) {
  const int u = (axis + 1) % 3, v = (axis + 2) % 3;
  const double r = s.boss_radius_mm, reach = s.boss_reach_mm;
  const double inset = best_fit(section + 2 * r * (Vec3::Unit(u) + Vec3::Unit(v)), printer).fits ? 0.0 : r;
  const std::vector<Vec3> on_wall = boss_candidates(q, box, axis, at, r, reach, inset);
  std::vector<Vec3> first{reach * Vec3::Unit(axis), -reach * Vec3::Unit(axis)}, rest;  // its ends and 8 points round each end first
  for (int i = 0; i < 32; ++i) {
    const double phi = 2 * detail::kPi * i / 32;
    for (double t : {-1.0, -0.5, 0.0, 0.5, 1.0})
      (i % 4 == 0 && std::abs(t) == 1.0 ? first : rest)
          .push_back(t * reach * Vec3::Unit(axis) + r * (std::cos(phi) * Vec3::Unit(u) + std::sin(phi) * Vec3::Unit(v)));
  }
  const std::vector<Vec3> free = passing(on_wall, {first, rest}, room);
  return detail::farthest_first(free, taken, want, 4 * r);
}

//! The dowels across the cut at `at` (dowel_sites), on bosses (boss_sites, their rods added to
//! `bosses`) where the wall holds fewer than two, and a warning when fewer than two fit even so.
void pin_cut(const std::string& part, const SurfaceQuery& q, const Aabb& box, int axis, double at, const Vec3& section, const MoldOptions& o,
             const BossRoom& room, Sections& s, std::vector<Mesh>& bosses) {
  const bool core = part.rfind("core", 0) == 0;
  const std::vector<Vec3> sites = dowel_sites(q, box, axis, at, s.hole_radius_mm + o.printer.min_wall_mm, s.hole_depth_mm);
  for (const Vec3& c : sites) s.dowels.push_back({axis, c, core});
  std::vector<Vec3> bossed;
  if (sites.size() < 2 && room) bossed = boss_sites(q, box, axis, at, s, section, o.printer, 2 - sites.size(), sites, room);
  for (const Vec3& c : bossed) {
    s.dowels.push_back({axis, c, core, true});
    const Vec3 along = s.boss_reach_mm * Vec3::Unit(axis);
    bosses.push_back(detail::rod(c - along, c + along, s.boss_radius_mm, 32));
  }
  if (sites.size() + bossed.size() < 2)
    s.warnings.push_back(
        fmt::format("the {}'s cut at {} = {:.1f} mm has room for {} dowel(s) only", part, "xyz"[axis], at, sites.size() + bossed.size()));
}


//! Every piece cut at every plane along `axis`.
std::vector<Mesh> cut_all(std::vector<Mesh> pieces, const Aabb& box, int axis, const std::vector<double>& cuts, const std::string& name,
                          double& sliver_ml) {
  for (double at : cuts) {
    std::vector<Mesh> next;
    for (const Mesh& p : pieces) {
      Mesh below, above;
      detail::split(p, half_space(box, axis, at), below, above, "a section of a multi-part mold's part");
      for (Mesh* half : {&below, &above})
        if (!half->triangles.empty())
          for (Mesh& q : pieces_of(*half, kLeastPieceMl, sliver_ml)) next.push_back(std::move(q));
    }
    pieces = std::move(next);
  }
  if (pieces.empty()) throw ProcessingError(fmt::format("mold: cutting the {} into sections left nothing", name));
  return pieces;
}

//! Each dowel's hole, `hole_depth_mm` into each section it joins (drilled after the cut, so that
//! each hole opens on the cut face): a section's holes in as few booleans as do not touch (the
//! mask's mold: 12 holes of 1.2–2.2 s each in sections of 0.7–1.7 M faces).
void drill_dowels(std::vector<Mesh>& pieces, const Sections& s) {
  std::vector<Mesh> rods;
  for (const Dowel& d : s.dowels) {
    const Vec3 along = s.hole_depth_mm * Vec3::Unit(d.axis);
    rods.push_back(detail::rod(d.centre - along, d.centre + along, s.hole_radius_mm, 32));
  }
  for (Mesh& p : pieces) {
    const Aabb b = bounding_box(p);
    std::vector<Mesh> reaching;
    for (const Mesh& rod : rods) {
      const Aabb reach = bounding_box(rod);
      if (!(b.max.array() < reach.min.array()).any() && !(reach.max.array() < b.min.array()).any()) reaching.push_back(rod);
    }
    for (const Mesh& group : detail::apart(reaching)) {
      const double before = log_enabled(LogLevel::Debug) ? signed_volume(p) : 0.0;
      p = detail::boolean(p, group, detail::BooleanOp::Difference, "dowel holes in a multi-part mold's section");
      if (log_enabled(LogLevel::Debug)) log_debug("sections: dowel holes took {:.1f} mm³", before - signed_volume(p));
    }
  }
}

}  // namespace

std::vector<Mesh> pieces_of(const Mesh& m, double min_ml, double& sliver_ml) {
  const std::vector<std::size_t> label = face_components(m);
  const std::map<std::size_t, double> volume = piece_volumes(m, label);
  std::map<std::size_t, std::size_t> owner;  // component → the piece it belongs to
  std::vector<std::size_t> solids;
  for (const auto& [l, vol] : volume)
    if (vol >= 1000 * min_ml) owner[l] = l, solids.push_back(l);
    else if (vol > -1.0) sliver_ml += std::abs(vol) / 1000;  // a loose sliver, or a speck of a few faces
  std::map<std::size_t, Aabb> boxes;
  for (std::size_t f = 0; f < m.triangles.size(); ++f)
    for (int c = 0; c < 3; ++c) boxes[label[f]].add(m.vertices[static_cast<std::size_t>(m.triangles[f][c])]);
  for (const auto& [l, vol] : volume)
    if (vol <= -1.0)
      for (std::size_t s : solids)
        if (holds(boxes[s], boxes[l])) {
          owner[l] = s;
          break;
        }
  std::vector<Mesh> out;
  for (std::size_t s : solids) {
    std::vector<char> keep(m.triangles.size(), 0);
    for (std::size_t f = 0; f < keep.size(); ++f) keep[f] = owner.count(label[f]) && owner[label[f]] == s;
    out.push_back(submesh(m, keep));
  }
  return out;
}

std::array<int, 3> sections_or_refuse(const std::string& part, const Vec3& size, const MoldOptions& o) {
  const std::array<int, 3> n = section_grid(size, o);
  if (n[0] == 0) {
    const Vec3& v = o.printer.build_volume_mm;
    throw ProcessingError(fmt::format("mold: the {} ({:.0f} × {:.0f} × {:.0f} mm) cannot be cut into sections that fit the {} printer "
                                      "({:.0f} × {:.0f} × {:.0f} mm) within max_sections = {}",
                                      part, size.x(), size.y(), size.z(), o.printer.name, v.x(), v.y(), v.z(), o.max_sections));
  }
  return n;
}

std::vector<NamedMesh> section_part(const NamedMesh& part, const std::vector<Vec3>& keys, const MoldOptions& o, Sections& s, double& sliver_ml,
                                    const BossRoom& room) {
  const Aabb box = bounding_box(part.mesh);
  s = Sections{};
  s.part_size_mm = box.extent();
  s.hole_radius_mm = 0.5 * o.dowel_diameter_mm + o.printer.key_clearance_mm;
  s.hole_depth_mm = 0.5 * o.dowel_length_mm + 0.5;
  s.boss_radius_mm = s.hole_radius_mm + std::max(o.printer.min_wall_mm, 0.5 * o.wall_mm);
  s.boss_reach_mm = s.hole_depth_mm + std::max(o.printer.min_wall_mm, 0.5 * o.wall_mm);
  if (fit_in_build_volume(part.mesh, o.printer).fits) {
    std::vector<Mesh> whole = pieces_of(part.mesh, kLeastPieceMl, sliver_ml);  // a part the cavity left in two prints as two pieces
    if (whole.size() <= 1) return {part};
    std::vector<NamedMesh> out;
    for (std::size_t k = 0; k < whole.size(); ++k) out.push_back({fmt::format("{}.{}", part.name, k + 1), std::move(whole[k])});
    return out;
  }
  const std::array<int, 3> n = sections_or_refuse(part.name, s.part_size_mm, o);
  const double need = s.hole_radius_mm + o.printer.min_wall_mm;
  const SurfaceQuery q(part.mesh);
  const Vec3 section = s.part_size_mm.cwiseQuotient(Vec3(n[0], n[1], n[2]));
  std::array<std::vector<double>, 3> cuts;
  std::vector<Mesh> bosses;
  Timings laps;
  StepTimer timer(laps);
  for (int axis : {0, 1, 2}) {
    const auto dowels = [&](double at) { return dowel_sites(q, box, axis, at, need, s.hole_depth_mm).size(); };
    cuts[static_cast<std::size_t>(axis)] = cut_positions(box, axis, n[static_cast<std::size_t>(axis)], keys, o.key_radius_mm + need, dowels);
    timer.lap(fmt::format("cut positions ({})", "xyz"[axis]));
    for (double at : cuts[static_cast<std::size_t>(axis)]) pin_cut(part.name, q, box, axis, at, section, o, room, s, bosses);
    timer.lap(fmt::format("dowels and bosses ({})", "xyz"[axis]));
  }
  s.cuts = {cuts[0], cuts[1]};
  s.cuts_z = cuts[2];
  std::vector<Mesh> pieces{part.mesh};
  for (const Mesh& group : detail::apart(bosses))
    pieces.front() = detail::boolean(pieces.front(), group, detail::BooleanOp::Union, "dowel bosses on a multi-part mold's part");
  timer.lap("bosses added");
  for (int axis : {0, 1, 2}) pieces = cut_all(std::move(pieces), box, axis, cuts[static_cast<std::size_t>(axis)], part.name, sliver_ml);
  timer.lap("cut");
  drill_dowels(pieces, s);
  timer.lap("drilled");
  for (const auto& [step, seconds] : laps) log_debug("sections of the {} ({} faces): {} {:.2f} s", part.name, part.mesh.triangles.size(), step, seconds);
  std::vector<NamedMesh> out;
  for (std::size_t k = 0; k < pieces.size(); ++k) out.push_back({fmt::format("{}.{}", part.name, k + 1), std::move(pieces[k])});
  return out;
}

}  // namespace tracecast::print::stages
