// Keys, sprue, vents, pry slots, hollows and the conformal parts' supports (mold_stages.h).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <tuple>

#include "boolean.h"
#include "primitives.h"
#include "tracecast/print/mold_stages.h"

namespace tracecast::print::stages {

namespace {

using namespace detail;
using Vec2 = Eigen::Vector2d;

//! The sprue: a channel of radius r that leaves the cavity's roof at c square to it (along the
//! roof's normal n, so the shell's lip round it is a right angle, not a knife edge), then bends
//! to rise straight up to z1 (so it leaves the flat top square too). The two cylinders meet in a
//! mitre at the bend, which lies far enough along n for the channel to have cleared the roof by
//! its wall. Its end lies below the roof everywhere across it, so no wedge is left under it.
Mesh sprue_channel(const Grid& roof, const Vec3& c, const Vec3& n, double r, double wall, double z1, Vec3* bend_at = nullptr,
                   int segments = 48) {
  double below = 0;  // how far the roof dips below the end's plane through c
  for (int k = 0; k < 48; ++k)
    for (double f : {0.5, 1.0, 1.25}) {
      const double a = 2 * kPi * k / 48;
      const Vec3 d(f * r * std::cos(a), f * r * std::sin(a), 0);
      const double z = sample(roof, c.x() + d.x(), c.y() + d.y());
      if (!std::isnan(z)) below = std::max(below, -Vec3(d.x(), d.y(), z - c.z()).dot(n));
    }
  const double tan_tilt = std::sqrt(std::max(0.0, 1 - n.z() * n.z())) / n.z();
  const Vec3 bend = c + (r * tan_tilt + wall + r) * n, start = c - (below + 0.3) * n;
  const Vec3 e1 = (std::abs(n.x()) < 0.9 ? Vec3::UnitX() : Vec3::UnitY()).cross(n).normalized(), e2 = n.cross(e1);
  const Vec3 mitre = (n + Vec3::UnitZ()).normalized();  // the bend's plane: the mitre of the two axes
  std::vector<std::vector<Vec3>> rings(3);
  for (int k = 0; k < segments; ++k) {
    const double a = 2 * kPi * k / segments;
    const Vec3 u = r * (std::cos(a) * e1 + std::sin(a) * e2);
    const Vec3 at_bend = bend + u - (u.dot(mitre) / n.dot(mitre)) * n;  // along the lower cylinder to the mitre
    rings[0].push_back(start + u);
    rings[1].push_back(at_bend);
    rings[2].push_back(Vec3(at_bend.x(), at_bend.y(), z1));  // straight up the upper cylinder
  }
  if (bend_at) *bend_at = bend;
  return tube(rings, start, Vec3(bend.x(), bend.y(), z1));
}


//! Keys near the envelope's corners (more: midpoints of the long sides), on the parting surface.
void add_keys(Features& f, const Parting& p, const Envelope& e, const MoldOptions& o) {
  if (o.keys <= 0) return;
  const Grid& g = p.shell_h;
  const double inset = o.wall_mm + o.key_radius_mm, parting = o.flash_land_mm + o.gutter_width_mm;
  std::vector<Vec2> spots = {{e.box_min.x() + inset, e.box_min.y() + inset}, {e.box_max.x() - inset, e.box_min.y() + inset},
                             {e.box_max.x() - inset, e.box_max.y() - inset}, {e.box_min.x() + inset, e.box_max.y() - inset}};
  for (int k = 4; k < o.keys; ++k)
    spots.emplace_back(0.5 * (e.box_min.x() + e.box_max.x()) + (k % 2 ? -1 : 1) * 0.25 * (e.box_max.x() - e.box_min.x()),
                       k % 2 ? e.box_min.y() + inset : e.box_max.y() - inset);
  for (int k = 0; k < o.keys; ++k) {
    const Vec2 s = spots[static_cast<std::size_t>(k)];
    const std::size_t n = g.nearest(s.x(), s.y());
    const int i = static_cast<int>(n % g.nx), j = static_cast<int>(n / g.nx);
    if (p.dist[n] < parting + o.key_radius_mm + 1) f.warnings.push_back(fmt::format("key {} is only {:.1f} mm from the appliance", k + 1, p.dist[n]));
    // Off the grid's nodes and planes, so that no sphere vertex or edge meets the parting
    // surface's exactly (exact predicates cope, but rounded constructions make slivers).
    const Vec3 c(g.X(i) + 0.371 * g.h, g.Y(j) + 0.293 * g.h, g.v[n] + 0.0137);
    f.key_centres.push_back(c);
    append(f.male, uv_sphere(c, o.key_radius_mm));
    append(f.female, uv_sphere(c, o.key_radius_mm + o.printer.key_clearance_mm));
  }
}

//! Air is trapped under the cavity's ceiling's local high points (within 6 mm in its footprint).
bool local_high_point(const Grid& out, std::size_t n) {
  const int R = static_cast<int>(std::ceil(6.0 / out.h)), i = static_cast<int>(n % out.nx), j = static_cast<int>(n / out.nx);
  for (int dj = -R; dj <= R; ++dj)
    for (int di = -R; di <= R; ++di) {
      const int a = i + di, b = j + dj;
      if (a < 0 || b < 0 || a >= out.nx || b >= out.ny || di * di + dj * dj > R * R) continue;
      const double q = out.at(a, b);
      if (!std::isnan(q) && q > out.v[n]) return false;
    }
  return true;
}

//! The plane fitted (least squares) to the cavity's roof over a disk about (x, y, z) on it.
struct RoofPlane {
  Vec3 normal = Vec3::UnitZ();  //!< upwards
  double slope_tan = std::numeric_limits<double>::infinity();  //!< tangent of its slope from level
  double residual_mm = std::numeric_limits<double>::infinity();  //!< the roof's largest distance from it
  bool inside = false;  //!< the whole disk lies over the cavity
};

RoofPlane roof_plane(const Parting& p, const Vec3& c, double radius) {
  std::vector<Vec3> q;  // offsets from c
  RoofPlane out;
  for (int k = 0; k < 24; ++k)
    for (double f : {0.35, 0.7, 1.0}) {
      const double a = 2 * kPi * (k + 0.5 * f) / 24, x = f * radius * std::cos(a), y = f * radius * std::sin(a);
      const double z = sample(p.out, c.x() + x, c.y() + y);
      if (std::isnan(z) || std::isnan(sample(p.in, c.x() + x, c.y() + y))) return out;
      q.emplace_back(x, y, z - c.z());
    }
  Eigen::Matrix3d A = Eigen::Matrix3d::Zero();
  Vec3 b = Vec3::Zero();
  for (const Vec3& d : q) {
    const Vec3 row(d.x(), d.y(), 1);
    A += row * row.transpose();
    b += row * d.z();
  }
  const Vec3 g = A.ldlt().solve(b);  // z ≈ g.x·x + g.y·y + g.z
  out.inside = true;
  out.normal = Vec3(-g.x(), -g.y(), 1).normalized();
  out.slope_tan = g.head<2>().norm();
  out.residual_mm = 0;
  for (const Vec3& d : q) out.residual_mm = std::max(out.residual_mm, std::abs(d.z() - g.x() * d.x() - g.y() * d.y() - g.z()) * out.normal.z());
  return out;
}

//! The node the sprue enters the cavity at. Top pour: the cavity's highest point. Bottom fill:
//! its lowest point where it has most of its thickness (3/4 of the typical, not in the feathered
//! band), so the silicone rises and pushes the air up to the vents; there, a roof that is nearly
//! a plane across the sprue and its lip (within 0.3 mm, no crease or ridge), no steeper than 28°
//! and wholly over the cavity. Where there is none, the node that comes closest.
std::size_t sprue_site(const Parting& p, const std::vector<std::pair<double, std::size_t>>& tops, const MoldOptions& o) {
  auto thickness = [&](std::size_t n) { return std::isnan(p.in.v[n]) ? 0.05 : p.out.v[n] - p.in.v[n]; };
  auto node = [&](std::size_t n) { return Vec3(p.out.X(static_cast<int>(n % p.out.nx)), p.out.Y(static_cast<int>(n / p.out.nx)), p.out.v[n]); };
  std::size_t best = tops.front().second;
  if (o.top_pour) return best;
  // Thickness along the pull is the true thickness over the cosine of the roof's slope: the
  // typical one (the median inside the footprint) is the measure, not the most.
  std::vector<double> inside;
  for (const auto& [z, n] : tops)
    if (p.dist[n] == 0) inside.push_back(thickness(n));
  if (inside.empty()) return best;
  std::nth_element(inside.begin(), inside.begin() + static_cast<std::ptrdiff_t>(inside.size() / 2), inside.end());
  const double typical = inside[inside.size() / 2];
  const double radius = 0.75 * o.sprue_diameter_mm, level = std::tan(28.0 * kPi / 180.0);
  double zlow = 1e300, least = std::numeric_limits<double>::infinity();
  std::size_t lowest = best, closest = best;
  for (const auto& [z, n] : tops) {
    if (thickness(n) < 0.75 * typical || p.dist[n] != 0) continue;
    const RoofPlane rp = roof_plane(p, node(n), radius);
    if (!rp.inside) continue;
    if (rp.slope_tan <= level && rp.residual_mm <= 0.3 && z < zlow) zlow = z, lowest = n;
    const double miss = std::max(0.0, rp.slope_tan - level) + std::max(0.0, rp.residual_mm - 0.3);
    if (miss < least) least = miss, closest = n;
  }
  return zlow < 1e300 ? lowest : std::isfinite(least) ? closest : best;
}

//! The sprue (at sprue_site()) and vents at the cavity's ceiling's local high points, cylinders
//! up through the shell.
void add_channels(Features& f, const Parting& p, const Envelope& e, const MoldOptions& o) {
  const Grid &out = p.out, &in = p.in;
  std::vector<std::pair<double, std::size_t>> tops;
  for (std::size_t n = 0; n < out.v.size(); ++n)
    if (!std::isnan(out.v[n])) tops.emplace_back(out.v[n], n);
  std::sort(tops.begin(), tops.end(), std::greater<>());
  auto node = [&](std::size_t n) { return Vec3(out.X(static_cast<int>(n % out.nx)), out.Y(static_cast<int>(n / out.nx)), out.v[n]); };
  auto thickness = [&](std::size_t n) { return std::isnan(in.v[n]) ? 0.05 : out.v[n] - in.v[n]; };
  if (!tops.empty() && o.sprue_diameter_mm > 0) {
    const std::size_t best = sprue_site(p, tops, o);
    const Vec3 c = node(best);
    f.sprue_bottom = c - Vec3(0, 0, std::min(0.3, 0.5 * thickness(best)));
    // Tilted from the pull halfway towards the roof's normal: a vertical channel meets a roof
    // sloping by θ at 90° − θ on its uphill side; tilted by θ/2 it meets the roof at 90° − θ/2 all
    // round and leaves the flat top at 90° − θ/2 too.
    const RoofPlane rp = roof_plane(p, c, 0.75 * o.sprue_diameter_mm);
    f.sprue_axis = rp.inside ? rp.normal : Vec3::UnitZ();
    const Mesh sprue = sprue_channel(out, c, f.sprue_axis, 0.5 * o.sprue_diameter_mm, o.wall_mm, e.z_top + 1, &f.sprue_bend);
    f.sprue_top = sprue.vertices.back();
    append(f.channels, sprue);
  }
  if (o.vent_diameter_mm <= 0) return;
  for (const auto& [z, n] : tops) {
    if (static_cast<int>(f.vent_bottoms.size()) >= o.max_vents) break;
    if (!local_high_point(out, n)) continue;
    const Vec3 c = node(n);
    if (o.sprue_diameter_mm > 0 && (c - f.sprue_bottom).head<2>().norm() < 0.5 * o.sprue_diameter_mm + 10) continue;
    bool near = false;
    for (const Vec3& v : f.vent_bottoms) near = near || (v - c).head<2>().norm() < 15;
    if (near || p.dist[n] > 0 || thickness(n) < 0.2) continue;
    const Vec3 bottom = c - Vec3(0, 0, std::min(0.2, 0.5 * thickness(n)));
    f.vent_bottoms.push_back(bottom);
    append(f.channels, cylinder(c.x(), c.y(), bottom.z(), e.z_top + 1, 0.5 * o.vent_diameter_mm, 16));
  }
}

//! Pry slots: notches across the parting line in the middle of the two long walls.
void add_pry_slots(Features& f, const Parting& p, const Envelope& e, const MoldOptions& o) {
  if (o.pry_slot_mm <= 0) return;
  const Grid& g = p.shell_h;
  const bool along_x = (e.box_max.x() - e.box_min.x()) >= (e.box_max.y() - e.box_min.y());
  const double w = o.pry_slot_mm, depth = 3.0;
  for (int side : {0, 1}) {
    const int i = along_x ? g.nx / 2 : (side ? g.nx - 1 : 0), j = along_x ? (side ? g.ny - 1 : 0) : g.ny / 2;
    const Vec3 c(g.X(i), g.Y(j), g.at(i, j));
    Vec3 lo, hi;
    if (along_x) {
      lo = Vec3(c.x() - 0.5 * w, side ? c.y() - depth : c.y() - 1, c.z() - 2);
      hi = Vec3(c.x() + 0.5 * w, side ? c.y() + 1 : c.y() + depth, c.z() + 2);
    } else {
      lo = Vec3(side ? c.x() - depth : c.x() - 1, c.y() - 0.5 * w, c.z() - 2);
      hi = Vec3(side ? c.x() + 1 : c.x() + depth, c.y() + 0.5 * w, c.z() + 2);
    }
    append(f.slots, box(lo, hi));
  }
}

//! The heights a hollow must stay `t` inside of, on a coarse grid (every k-th node, inset from
//! the border): under the lowest of the core's top nearby, over the highest of the shell's.
void hollow_bounds(const Parting& p, const Features& f, const MoldOptions& o, int k, int i0, Grid& top, Grid& floor) {
  const Grid& g = p.shell_h;
  const double t = o.hollow_mm;
  const int reach = static_cast<int>(std::ceil((t + k * g.h) / g.h));
  for (int b = 0; b < top.ny; ++b)
    for (int a = 0; a < top.nx; ++a) {
      const int fi = i0 + a * k, fj = i0 + b * k;
      double lo = 1e300, hi = -1e300;
      for (int dj = -reach; dj <= reach; ++dj)
        for (int di = -reach; di <= reach; ++di) {
          const std::size_t n = g.index(std::clamp(fi + di, 0, g.nx - 1), std::clamp(fj + dj, 0, g.ny - 1));
          const double in = p.in.v[n], out = p.out.v[n];
          lo = std::min({lo, p.core_h.v[n], std::isnan(in) ? 1e300 : in});
          hi = std::max({hi, p.shell_h.v[n], std::isnan(out) ? -1e300 : out});
        }
      for (const Vec3& c : f.key_centres)  // the shell's key hollows rise to the key's top
        if ((Vec2(top.X(a), top.Y(b)) - c.head<2>()).norm() < o.key_radius_mm + t + k * g.h)
          hi = std::max(hi, c.z() + o.key_radius_mm + o.printer.key_clearance_mm);
      top.at(a, b) = lo - t;
      floor.at(a, b) = hi + t;
    }
}

//! Hollowing (block molds): a closed void in each part, `hollow_mm` inside every surface (on a
//! 2 mm grid), clear of the keys, sprue and vents, with two drain holes through the face each
//! part is printed on.
void add_hollows(Features& f, const Parting& p, const Envelope& e, const MoldOptions& o) {
  if (o.hollow_mm <= 0) return;
  const Grid& g = p.shell_h;
  const double t = o.hollow_mm, inset = t + 4.0;  // pry slots reach 3 mm into the walls
  const int k = std::max(1, static_cast<int>(std::lround(2.0 / g.h))), i0 = static_cast<int>(std::ceil(inset / g.h));
  const int ci = (g.nx - 1 - 2 * i0) / k + 1, cj = (g.ny - 1 - 2 * i0) / k + 1;
  if (ci < 4 || cj < 4) {
    f.warnings.push_back("the mold is too small to hollow");
    return;
  }
  Grid top(g.x0 + i0 * g.h, g.y0 + i0 * g.h, k * g.h, ci, cj), floor = top;
  hollow_bounds(p, f, o, k, i0, top, floor);
  f.core_void = heightfield_solid(top, e.z_bottom + t);
  f.shell_void = heightfield_solid(floor, e.z_top - t);
  Mesh keep_out;  // the sprue and vents cross the shell: the hollow keeps clear of them by the wall
  if (o.sprue_diameter_mm > 0)
    append(keep_out, sprue_channel(p.out, f.sprue_bottom, f.sprue_axis, 0.5 * o.sprue_diameter_mm + t, o.wall_mm, e.z_top + 5));
  for (const Vec3& v : f.vent_bottoms) append(keep_out, cylinder(v.x(), v.y(), e.z_bottom - 5, e.z_top + 5, 0.5 * o.vent_diameter_mm + t, 24));
  if (!keep_out.triangles.empty())
    f.shell_void = detail::boolean(f.shell_void, keep_out, detail::BooleanOp::Difference, "the shell's hollow around sprue and vents");
  const double dx = 0.5 * inset + 6, r_drain = 1.75;  // 3.5 mm drains at two opposite corners
  Mesh core_drains, shell_drains;
  for (const Vec2& at : {Vec2(e.box_min.x() + inset + dx, e.box_min.y() + inset + dx), Vec2(e.box_max.x() - inset - dx, e.box_max.y() - inset - dx)}) {
    append(core_drains, cylinder(at.x() + 0.013, at.y() + 0.017, e.z_bottom - 1, e.z_bottom + t + 0.5, r_drain, 24));
    append(shell_drains, cylinder(at.x() + 0.013, at.y() + 0.017, e.z_top - t - 0.5, e.z_top + 1, r_drain, 24));
  }
  f.core_void = detail::boolean(f.core_void, core_drains, detail::BooleanOp::Union, "the core's drain holes");
  f.shell_void = detail::boolean(f.shell_void, shell_drains, detail::BooleanOp::Union, "the shell's drain holes");
}

}  // namespace

Features mold_features(const Parting& p, Envelope& e, const MoldOptions& o) {
  Features f;
  add_keys(f, p, e, o);
  // A key where the part is shallow (near the parting surface's lowest or highest stretch) must
  // not break through the flat face the part stands on: a wall under the key's sphere (core) and
  // over its socket (shell).
  for (const Vec3& c : f.key_centres) {
    e.z_bottom = std::min(e.z_bottom, c.z() - o.key_radius_mm - o.wall_mm);
    e.z_top = std::max(e.z_top, c.z() + o.key_radius_mm + o.printer.key_clearance_mm + o.wall_mm);
  }
  e.box_min.z() = e.z_bottom;
  e.box_max.z() = e.z_top;
  add_channels(f, p, e, o);
  add_pry_slots(f, p, e, o);
  add_hollows(f, p, e, o);
  return f;
}

std::vector<double> rib_lines(double lo, double hi, const MoldOptions& o) {
  std::vector<double> lines;
  if (o.rib_spacing_mm <= 0) return lines;
  const double c = 0.5 * (lo + hi), room = o.frame_mm + 3 * o.wall_mm;
  for (double line = c - std::floor((c - lo) / o.rib_spacing_mm) * o.rib_spacing_mm; line <= hi; line += o.rib_spacing_mm)
    if (std::min(line - lo, hi - line) > room) lines.push_back(line);
  return lines;
}

namespace {

//! The section a point lies in, along one axis: the interval between the cuts (or the border)
//! round v.
std::pair<double, double> section_span(double v, double lo, double hi, const std::vector<double>& cuts) {
  for (double c : cuts) {
    if (c <= v) lo = std::max(lo, c);
    else hi = std::min(hi, c);
  }
  return {lo, hi};
}

//! Posts round the keys and dowels: how low the core's underside must reach at q (and how high
//! the shell's top) to hold each with a wall round it; ±infinity where there is none.
std::pair<double, double> post_reach(const Vec2& q, const Features& f, const Sections& s, const MoldOptions& o) {
  const double wall = o.wall_mm, inf = std::numeric_limits<double>::infinity();
  double floor = inf, roof = -inf;
  for (const Vec3& c : f.key_centres) {
    if ((q - c.head<2>()).norm() >= o.key_radius_mm + o.printer.key_clearance_mm + wall) continue;
    floor = std::min(floor, c.z() - o.key_radius_mm - wall);
    roof = std::max(roof, c.z() + o.key_radius_mm + o.printer.key_clearance_mm + wall);
  }
  for (const Dowel& d : s.dowels) {
    if (std::abs(q[d.axis] - d.centre[d.axis]) > s.hole_depth_mm + wall || std::abs(q[1 - d.axis] - d.centre[1 - d.axis]) > s.hole_radius_mm + wall)
      continue;
    if (d.core) floor = std::min(floor, d.centre.z() - s.hole_radius_mm - wall);
    else roof = std::max(roof, d.centre.z() + s.hole_radius_mm + wall);
  }
  return {floor, roof};
}

//! How far a conformal part reaches at a node: its wall only, a skirt `frame_depth_mm` deep (the
//! frame along the border and the faces along each cut), or the flat face it stands on (ribs and
//! legs at each section's corners). Posts round keys and dowels reach as far as they need.
enum class Reach { Wall, Skirt, Flat };

struct SupportPlan {
  const Parting& p;
  const Features& f;
  const Sections& s;
  const MoldOptions& o;
  double xa, xb, ya, yb;

  bool on_rib(double v, double lo, double hi) const {
    const std::vector<double> lines = rib_lines(lo, hi, o);
    return std::any_of(lines.begin(), lines.end(), [&](double line) { return std::abs(v - line) <= 0.5 * o.wall_mm; });
  }
  //! For both parts alike: the frame, the cuts' faces, ribs, key posts and the legs. For a skirt,
  //! `edge` names the border or cut it runs along (axis 0: x = const) and the node across it.
  Reach common(const Vec2& q, std::tuple<int, long, long>* edge = nullptr) const {
    if (on_rib(q.x(), xa, xb) || on_rib(q.y(), ya, yb)) return Reach::Flat;
    const auto [x0, x1] = section_span(q.x(), xa, xb, s.cuts[0]);
    const auto [y0, y1] = section_span(q.y(), ya, yb, s.cuts[1]);
    const double band_x = std::min(q.x() - x0, x1 - q.x()), band_y = std::min(q.y() - y0, y1 - q.y());
    // The frame on the border, a wall either side of a cut.
    const bool frame_x = band_x < ((q.x() - x0 < x1 - q.x() ? x0 == xa : x1 == xb) ? o.frame_mm : o.wall_mm);
    const bool frame_y = band_y < ((q.y() - y0 < y1 - q.y() ? y0 == ya : y1 == yb) ? o.frame_mm : o.wall_mm);
    if (!frame_x && !frame_y) return Reach::Wall;
    const double leg = 3 * std::max(o.frame_mm, o.wall_mm);
    if (o.frame_depth_mm <= 0 || (band_x < leg && band_y < leg)) return Reach::Flat;
    if (edge) {
      const double h = p.core_h.h;
      if (frame_x) *edge = {0, std::lround((q.x() - x0 < x1 - q.x() ? x0 : x1) * 1000), std::lround(q.y() / h)};
      else *edge = {1, std::lround((q.y() - y0 < y1 - q.y() ? y0 : y1) * 1000), std::lround(q.x() / h)};
    }
    return Reach::Skirt;
  }
};

}  // namespace

namespace {

//! A skirt's free edge is level across it: `frame_depth_mm` past the lowest point of the core's
//! top (the highest of the shell's underside) across the band at each place along the border or
//! cut. Parallel to a sloping parting surface, the edge met the skirt's side at the slope's
//! complement (30° where the parting surface falls at 60°): a knife edge along the frame.
struct SkirtEdges {
  std::map<std::tuple<int, long, long>, std::pair<double, double>> level;  //!< core's floor, shell's roof
  SkirtEdges(const SupportPlan& plan, const Parting& p, double depth) {
    const Grid& g = p.core_h;
    for (int j = 0; j < g.ny; ++j)
      for (int i = 0; i < g.nx; ++i) {
        std::tuple<int, long, long> edge;
        if (plan.common(Vec2(g.X(i), g.Y(j)), &edge) != Reach::Skirt) continue;
        const std::size_t n = g.index(i, j);
        auto [it, added] = level.try_emplace(edge, p.core_h.v[n] - depth, p.shell_h.v[n] + depth);
        it->second.first = std::min(it->second.first, p.core_h.v[n] - depth);
        it->second.second = std::max(it->second.second, p.shell_h.v[n] + depth);
      }
  }
};

}  // namespace

void add_supports(Envelope& e, const Parting& p, const Features& f, const Sections& s, const Bolts& b, const MoldOptions& o) {
  if (o.style == "block") return;
  const Grid& g = p.core_h;
  const SupportPlan plan{p, f, s, o, g.X(0), g.X(g.nx - 1), g.Y(0), g.Y(g.ny - 1)};
  const SkirtEdges skirts(plan, p, o.frame_depth_mm);
  const double wall = o.wall_mm;
  for (int j = 0; j < g.ny; ++j)
    for (int i = 0; i < g.nx; ++i) {
      const Vec2 q(g.X(i), g.Y(j));
      std::tuple<int, long, long> edge;
      const Reach both = plan.common(q, &edge);
      Reach core = both, shell = both;
      // The posts round the sprue's path (as wide as its slanted part's footprint) and round the
      // vents are boxes along the grid's lines, like the bosses: where a round post's staircase
      // crossed a cell diagonally, the roof falling across it left a fin in the shell (0.66 mm).
      if (o.sprue_diameter_mm > 0 && on_segment_box(q, f.sprue_bottom.head<2>(), f.sprue_top.head<2>(),
                                                    0.5 * o.sprue_diameter_mm / f.sprue_axis.z() + wall, g.h))
        shell = Reach::Flat;
      for (const Vec3& v : f.vent_bottoms)
        if (on_boss(q - v.head<2>(), 0.5 * o.vent_diameter_mm + wall, g.h)) shell = Reach::Flat;
      const std::size_t n = g.index(i, j);
      double& floor = e.core_floor.v[n];
      double& roof = e.shell_roof.v[n];
      if (core == Reach::Flat) floor = e.z_bottom;
      const auto level = both == Reach::Skirt ? skirts.level.at(edge) : std::pair<double, double>();
      if (core == Reach::Skirt) floor = std::max(e.z_bottom, std::min(floor, level.first));
      if (shell == Reach::Flat) roof = e.z_top;
      if (shell == Reach::Skirt) roof = std::min(e.z_top, std::max(roof, level.second));
      const auto [post_floor, post_roof] = post_reach(q, f, s, o);
      floor = std::max(e.z_bottom, std::min(floor, post_floor));
      roof = std::min(e.z_top, std::max(roof, post_roof));
      for (const Bolt& t : b.bolts) {  // the bosses: the frame widened, as deep as it is at each place along the border
        if (!on_boss(q - t.centre.head<2>(), b.boss_radius_mm, g.h)) continue;
        const auto frame = skirts.level.find({t.border_axis, std::lround(t.border_at * 1000), std::lround(q[1 - t.border_axis] / g.h)});
        const std::pair<double, double> reach = frame != skirts.level.end() ? frame->second : std::make_pair(t.floor_z, t.roof_z);
        floor = std::max(e.z_bottom, std::min(floor, reach.first));
        roof = std::min(e.z_top, std::max(roof, reach.second));
      }
    }
}

}  // namespace tracecast::print::stages
