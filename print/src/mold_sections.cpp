// Sectioning (mold_stages.h): where a part larger than the printer is cut, the dowels that align
// its sections across each cut, and the bolts that clamp the parts through the frame.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "primitives.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/print/mold_stages.h"

namespace tracecast::print::stages {

double cut_land_mm(const PrinterProfile& printer) { return 2 * printer.min_wall_mm; }

namespace {

constexpr double kPastSurface = 0.5;  //!< how far a cut's land runs on past the cavity's side (mm)

//! How far a section can reach across its cut (section_cutter): the land's run to a curved
//! surface (up to twice the land) and on past it.
double cut_reach_mm(const PrinterProfile& printer) { return 2 * cut_land_mm(printer) + kPastSurface; }

using detail::Vec2;
constexpr double kInf = std::numeric_limits<double>::infinity();
const double kSteep = std::tan(30.0 * detail::kPi / 180.0);  //!< a cut meets a surface steeper than this at under 60°
constexpr double kFeatureRoom = 12.0;  //!< how far a cut should stay from the eyes and the mouth (mm)

//! A place a cut must not cross: a feature (key, sprue, vent, pry slot) and the room round it.
struct KeepOut {
  Vec2 a, b;  //!< a segment (a point when a == b)
  double r = 0;
  double distance(const Vec2& q) const { return detail::distance_to_segment(q, a, b); }
};

std::vector<KeepOut> keep_outs(const Features& f, const MoldOptions& o) {
  const double room = o.wall_mm + 1;
  std::vector<KeepOut> k;
  for (const Vec3& c : f.key_centres) k.push_back({c.head<2>(), c.head<2>(), o.key_radius_mm + o.printer.key_clearance_mm + room});
  if (o.sprue_diameter_mm > 0)
    k.push_back({f.sprue_bottom.head<2>(), f.sprue_top.head<2>(), 0.5 * o.sprue_diameter_mm / std::max(0.2, f.sprue_axis.z()) + room});
  for (const Vec3& v : f.vent_bottoms) k.push_back({v.head<2>(), v.head<2>(), 0.5 * o.vent_diameter_mm + room});
  for (std::size_t b = 0; b + 8 <= f.slots.vertices.size(); b += 8) {  // the pry slots' boxes (detail::box): corner 0 is lo, 7 is hi
    const Vec3 lo = f.slots.vertices[b], hi = f.slots.vertices[b + 7];
    k.push_back({0.5 * (lo + hi).head<2>(), 0.5 * (lo + hi).head<2>(), 0.5 * (hi - lo).head<2>().norm() + room});
  }
  return k;
}

//! The grid node at index u along `axis` and v across it.
std::size_t node_at(const Grid& g, int axis, int u, int v) { return axis == 0 ? g.index(u, v) : g.index(v, u); }
int count_along(const Grid& g, int axis) { return axis == 0 ? g.nx : g.ny; }
double coord(const Grid& g, int axis, int u) { return axis == 0 ? g.X(u) : g.Y(u); }

//! The steepest of the surfaces a part presents at the node (the parting surface, the cavity's
//! outer and inner surfaces) along `axis`: a plane cut square to the axis meets such a surface
//! at 90° minus its slope on one side, and leaves a wedge that thin in that section.
double slope_along(const Parting& p, int axis, int u, int v) {
  const Grid& g = p.shell_h;
  if (u == 0 || u + 1 >= count_along(g, axis)) return 0;
  double s = 0;
  for (const Grid* f : {&p.shell_h, &p.core_h, &p.out, &p.in}) {
    const double a = f->v[node_at(g, axis, u - 1, v)], b = f->v[node_at(g, axis, u + 1, v)];
    if (!std::isnan(a) && !std::isnan(b)) s = std::max(s, std::abs(b - a) / (2 * g.h));
  }
  return s;
}

//! How much a cut on grid line u (along `axis`) spoils: steep surfaces it crosses (a wedge under
//! 60° in one of the sections), the cavity it crosses, each node weighted by its detail (the
//! height's departure from its neighbours' mean: the mark's relief, eyes, lips) over a band 2 mm
//! either side; infinite where it meets a keep-out.
double cut_cost(const Parting& p, const std::vector<double>& detail, const std::vector<KeepOut>& avoid, const std::vector<Vec3>& features,
                int axis, int u) {
  const Grid& g = p.out;
  const int across = count_along(g, 1 - axis), band = static_cast<int>(std::ceil(2.0 / g.h));
  double cost = 0;
  for (int v = 0; v < across; ++v) {
    const std::size_t n = node_at(g, axis, u, v);
    const Vec2 q(g.X(static_cast<int>(n % g.nx)), g.Y(static_cast<int>(n / g.nx)));
    for (const KeepOut& k : avoid)
      if (k.distance(q) < k.r) return kInf;
    if (const double slope = slope_along(p, axis, u, v); slope > kSteep) cost += 100 * (1 + slope);
    for (const Vec3& e : features)
      if ((q - e.head<2>()).norm() < kFeatureRoom) cost += 1000;
    for (int du = -band; du <= band; ++du) {
      const int w = u + du;
      if (w < 0 || w >= count_along(g, axis)) continue;
      const std::size_t m = node_at(g, axis, w, v);
      if (p.foot[m]) cost += 1 + detail[m] / 0.05;
    }
  }
  return cost;
}

std::vector<double> surface_detail(const Grid& out) {
  std::vector<double> d(out.v.size(), 0.0);
  for (int j = 1; j + 1 < out.ny; ++j)
    for (int i = 1; i + 1 < out.nx; ++i) {
      const double c = out.at(i, j), s = out.at(i - 1, j) + out.at(i + 1, j) + out.at(i, j - 1) + out.at(i, j + 1);
      if (!std::isnan(c) && !std::isnan(s)) d[out.index(i, j)] = std::abs(c - 0.25 * s);
    }
  return d;
}

//! The longest a section may be along `axis` (the other sizes as given) and still fit.
double longest_fitting(Vec3 size, int axis, const PrinterProfile& printer) {
  double lo = 0, hi = printer.build_volume_mm.maxCoeff();
  for (int it = 0; it < 40; ++it) {
    size[axis] = 0.5 * (lo + hi);
    (best_fit(size, printer).fits ? lo : hi) = size[axis];
  }
  return lo;
}

//! How deep each part is along the pull: the core from its base to its top (keys included), the
//! shell from its underside to its top.
Vec2 part_depths(const Parting& p, const Envelope& e, const Features& f, const MoldOptions& o) {
  double core_top = *std::max_element(p.core_h.v.begin(), p.core_h.v.end());
  for (const Vec3& k : f.key_centres) core_top = std::max(core_top, k.z() + o.key_radius_mm);
  const double shell_bottom = *std::min_element(p.shell_h.v.begin(), p.shell_h.v.end());
  return {core_top - e.z_bottom, e.z_top - shell_bottom};
}

//! The fewest sections along x and y whose boxes fit; {0, 0} when none within max_sections.
std::array<int, 2> section_counts(const Vec3& size, const MoldOptions& o) {
  for (int n = 1; n <= o.max_sections; ++n) {
    std::array<int, 2> best{0, 0};
    double margin = -kInf;
    for (int a = 1; a <= n; ++a) {
      if (n % a) continue;
      // A section reaches across each cut by up to the cut's land (section_cutter).
      const double lx = a > 1 ? 2 * cut_reach_mm(o.printer) : 0, ly = n / a > 1 ? 2 * cut_reach_mm(o.printer) : 0;
      const BuildFit fit = best_fit(Vec3(size.x() / a + lx, size.y() / (n / a) + ly, size.z()), o.printer);
      if (fit.fits && fit.margin_mm > margin) margin = fit.margin_mm, best = {a, n / a};
    }
    if (best[0] > 0) return best;
  }
  return {0, 0};
}

//! The cuts along one axis: n − 1 grid lines near the equal division, each moved within the room
//! the printer leaves to the cheapest line, then a quarter cell off it (off the grid's nodes).
std::vector<double> place_cuts(const Parting& p, const std::vector<double>& detail, const std::vector<KeepOut>& avoid,
                               const std::vector<Vec3>& features, int axis, int n, const Vec3& section, const PrinterProfile& printer,
                               std::vector<std::string>& warnings) {
  const Grid& g = p.out;
  const int count = count_along(g, axis);
  const double lo = coord(g, axis, 0), length = coord(g, axis, count - 1) - lo, step = length / n;
  // A lone cut may take all the room the printer leaves (the border bounds its sections' other
  // side); between two cuts a section may grow by both's moves, so each takes half.
  const double slack = longest_fitting(section, axis, printer) - step - 2 * cut_reach_mm(printer);
  const double room = std::clamp((n == 2 ? slack : 0.5 * slack) - g.h, 0.0, 0.45 * step);
  std::vector<double> cuts;
  for (int k = 1; k < n; ++k) {
    const double at = lo + k * step;
    int best = -1;
    double least = kInf;
    for (int u = 1; u + 1 < count; ++u) {
      const double x = coord(g, axis, u);
      if (std::abs(x - at) > room) continue;
      const double c = cut_cost(p, detail, avoid, features, axis, u) + 1e-6 * std::abs(x - at);
      if (best < 0 || c < least) least = c, best = u;
    }
    if (best < 0) best = static_cast<int>(std::lround((at - lo) / g.h));
    if (!std::isfinite(least))
      warnings.push_back(fmt::format("the cut at {} = {:.1f} mm passes through a key, the sprue, a vent or a pry slot's room", axis == 0 ? "x" : "y",
                                     coord(g, axis, best)));
    cuts.push_back(coord(g, axis, best) + 0.25 * g.h);
  }
  return cuts;
}

//! Whether a dowel at v (the grid line across the cut) has the room it needs in the core (or the
//! shell): over its whole post, the part is deep enough for the hole and a wall round it.
//! Returns the dowel's height (NaN when it does not fit): as close to the parting surface as its
//! wall allows, so that its post reaches no further than it must.
double dowel_height(const Parting& p, const Envelope& e, const std::vector<KeepOut>& avoid, int axis, double cut, double v, double half_post_along,
                    double half_post_across, double need, bool core) {
  const double none = std::numeric_limits<double>::quiet_NaN();
  const Grid& g = p.core_h;
  const double a0 = cut - half_post_along, a1 = cut + half_post_along, b0 = v - half_post_across, b1 = v + half_post_across;
  const double x0 = axis == 0 ? a0 : b0, x1 = axis == 0 ? a1 : b1, y0 = axis == 0 ? b0 : a0, y1 = axis == 0 ? b1 : a1;
  if (x0 < g.X(0) || y0 < g.Y(0) || x1 > g.X(g.nx - 1) || y1 > g.Y(g.ny - 1)) return none;
  double reach = core ? kInf : -kInf;  // the core's lowest top (the shell's highest underside) over the post
  for (int j = static_cast<int>(std::floor((y0 - g.y0) / g.h)); j <= static_cast<int>(std::ceil((y1 - g.y0) / g.h)); ++j)
    for (int i = static_cast<int>(std::floor((x0 - g.x0) / g.h)); i <= static_cast<int>(std::ceil((x1 - g.x0) / g.h)); ++i) {
      if (i < 0 || j < 0 || i >= g.nx || j >= g.ny) continue;
      const std::size_t n = g.index(i, j);
      for (const KeepOut& k : avoid)
        if (k.distance(Vec2(g.X(i), g.Y(j))) < k.r) return none;
      reach = core ? std::min({reach, p.core_h.v[n], std::isnan(p.in.v[n]) ? kInf : p.in.v[n]})
                   : std::max({reach, p.shell_h.v[n], std::isnan(p.out.v[n]) ? -kInf : p.out.v[n]});
    }
  const double room = core ? reach - e.z_bottom : e.z_top - reach;
  if (room < need) return none;
  return core ? reach - 0.5 * need : reach + 0.5 * need;
}

//! Two dowels per cut (three on a cut over 150 mm) in each part, near fixed fractions of the
//! cut's length where the part is deep enough.
void place_dowels(Sections& s, const Parting& p, const Envelope& e, const std::vector<KeepOut>& avoid, const MoldOptions& o) {
  const Grid& g = p.core_h;
  const double rh = s.hole_radius_mm, wall = o.wall_mm, need = 2 * (rh + wall);
  for (int axis : {0, 1})
    for (double cut : s.cuts[static_cast<std::size_t>(axis)])
      for (bool core : {true, false}) {
        const int across = count_along(g, 1 - axis);
        const double lo = coord(g, 1 - axis, 0), hi = coord(g, 1 - axis, across - 1);
        std::vector<double> fractions = hi - lo > 150 ? std::vector<double>{0.15, 0.5, 0.85} : std::vector<double>{0.2, 0.8};
        std::vector<Vec2> placed;  // (position along the cut, height)
        for (double fr : fractions) {
          const double target = lo + fr * (hi - lo);
          Vec2 best(kInf, 0);
          for (int v = 0; v < across; ++v) {
            const double at = coord(g, 1 - axis, v) + 0.19 * g.h;
            bool apart = true;
            for (const Vec2& q : placed) apart = apart && std::abs(q.x() - at) > 2 * need;
            if (!apart || std::abs(at - target) >= std::abs(best.x() - target)) continue;
            const double z = dowel_height(p, e, avoid, axis, cut, at, s.hole_depth_mm + wall, rh + wall, need, core);
            if (!std::isnan(z)) best = Vec2(at, z);
          }
          if (std::isfinite(best.x())) placed.push_back(best);
        }
        for (const Vec2& at : placed) {
          Vec3 c(cut, at.x(), at.y());
          if (axis == 1) std::swap(c.x(), c.y());
          s.dowels.push_back({axis, c, core});
        }
        if (placed.size() < 2)
          s.warnings.push_back(fmt::format("the {}'s cut at {} = {:.1f} mm has room for {} dowel(s) only (a dowel needs the part {:.1f} mm deep)",
                                           core ? "core" : "shell", axis == 0 ? "x" : "y", cut, placed.size(), need));
      }
}

}  // namespace

Sections plan_sections(const Parting& p, const Envelope& e, const Features& f, const MoldOptions& o, const std::vector<Vec3>& features) {
  Sections s;
  const Grid& g = p.core_h;
  const Vec2 depth = part_depths(p, e, f, o);
  s.part_size_mm = Vec3(g.X(g.nx - 1) - g.X(0), g.Y(g.ny - 1) - g.Y(0), depth.maxCoeff());
  s.hole_radius_mm = 0.5 * o.dowel_diameter_mm + o.printer.key_clearance_mm;
  s.hole_depth_mm = 0.5 * o.dowel_length_mm + 0.5;
  const std::array<int, 2> n = section_counts(s.part_size_mm, o);
  if (n[0] == 0) {
    const Vec3& v = o.printer.build_volume_mm;
    const char* part = depth.x() >= depth.y() ? "core" : "shell";
    const std::string why = s.part_size_mm.z() > v.maxCoeff()
                                ? fmt::format("it is {:.0f} mm deep along the pull, more than the printer's longest side, and cuts across the pull cannot make it shallower",
                                              s.part_size_mm.z())
                                : fmt::format("it would need more sections than max_sections = {} allows", o.max_sections);
    throw ProcessingError(fmt::format("mold: the {} ({:.0f} × {:.0f} × {:.0f} mm) cannot be cut into sections that fit the {} printer ({:.0f} × {:.0f} × {:.0f} mm): {}",
                                      part, s.part_size_mm.x(), s.part_size_mm.y(), s.part_size_mm.z(), o.printer.name, v.x(), v.y(), v.z(), why));
  }
  if (n[0] * n[1] == 1) return s;
  const std::vector<KeepOut> avoid = keep_outs(f, o);
  const std::vector<double> detail = surface_detail(p.out);
  const Vec3 section(s.part_size_mm.x() / n[0], s.part_size_mm.y() / n[1], s.part_size_mm.z());
  for (int axis : {0, 1})
    s.cuts[static_cast<std::size_t>(axis)] =
        place_cuts(p, detail, avoid, features, axis, n[static_cast<std::size_t>(axis)], section, o.printer, s.warnings);
  place_dowels(s, p, e, avoid, o);
  return s;
}

namespace {

//! The surface a part presents to the cavity at (x, y): the core's top (the skin where the
//! appliance is, else the parting surface), the shell's underside.
double cavity_side(const Parting& p, bool core, double x, double y) {
  const Grid& g = p.core_h;
  x = std::clamp(x, g.X(0), g.X(g.nx - 1));
  y = std::clamp(y, g.Y(0), g.Y(g.ny - 1));
  const double part = sample(core ? p.core_h : p.shell_h, x, y), appliance = sample(core ? p.in : p.out, x, y);
  if (std::isnan(appliance)) return part;
  return core ? std::min(part, appliance) : std::max(part, appliance);
}

}  // namespace

namespace {

//! The lean (−dx/dz) of the segment from the bend (at, bend) to the point of the surface
//! `side(x, u)` nearest it in the row's section, searched within `reach` of the cut (steps of
//! 0.05 mm, then a parabola through the best three); NaN where the surface is not known there.
template <class Side>
double nearest_in_section(const Side& side, double at, double u, double bend, double reach) {
  const double step = 0.05;
  const int n = static_cast<int>(std::ceil(reach / step));
  std::vector<double> d2(static_cast<std::size_t>(2 * n + 1));
  int best = -1;
  for (int i = -n; i <= n; ++i) {
    const double x = at + i * step, z = side(x, u);
    if (std::isnan(z)) return std::numeric_limits<double>::quiet_NaN();
    double& d = d2[static_cast<std::size_t>(i + n)];
    d = (x - at) * (x - at) + (z - bend) * (z - bend);
    if (best < 0 || d < d2[static_cast<std::size_t>(best)]) best = i + n;
  }
  double x = at + (best - n) * step;
  if (best > 0 && best < 2 * n) {  // the parabola's vertex through the best sample and its neighbours
    const double a = d2[static_cast<std::size_t>(best - 1)], b = d2[static_cast<std::size_t>(best)], c = d2[static_cast<std::size_t>(best + 1)];
    if (a - 2 * b + c > 0) x += 0.5 * step * (a - c) / (a - 2 * b + c);
  }
  const double z = side(x, u);
  return std::abs(z - bend) > 1e-9 ? -(x - at) / (z - bend) : std::numeric_limits<double>::quiet_NaN();
}

//! Where the cut's leaning land, x = at − k (z − bend) from the bend on, meets the cavity's side
//! `side(x, u)`: the first crossing marching from the bend towards it (up for the core, down for
//! the shell) in steps of 0.05 mm, refined by bisection. On a curved surface the crossing lies
//! off the tangent plane's `estimate`, and a land ended there stops short of the surface, or
//! runs into it, leaving a wedge. The land's run across the cut is kept within twice `land`; where the
//! surface is not met within that (or is not known), the estimate stands.
template <class Side>
double land_meets_surface(const Side& side, double at, double u, double bend, double k, bool core, double estimate, double land) {
  const double dir = core ? 1.0 : -1.0, step = 0.05;
  const double reach = std::abs(k) > 1e-9 ? std::min(4 * land, 2 * land / std::abs(k)) : 4 * land;  // along z
  const auto gap = [&](double z) { return dir * (z - side(at - k * (z - bend), u)); };  // ≥ 0 once past the surface
  double lo = bend;
  if (!(gap(lo) < 0)) return estimate;
  for (double t = step; t <= reach + 1e-9; t += step) {
    double hi = bend + dir * t;
    const double g = gap(hi);
    if (std::isnan(g)) return estimate;
    if (g >= 0) {
      for (int it = 0; it < 20; ++it) {
        const double mid = 0.5 * (lo + hi);
        if (gap(mid) >= 0) hi = mid;
        else lo = mid;
      }
      return hi;
    }
    lo = hi;
  }
  return estimate;
}

}  // namespace

Mesh section_cutter(const Parting& p, bool core, int axis, double at, const Aabb& bounds, double land) {
  const Grid& g = p.core_h;
  const double zlo = bounds.min.z() - 5, zhi = bounds.max.z() + 5, span = std::max(g.h, 1.0);
  auto point = [&](double a, double u) { return axis == 0 ? Vec2(a, u) : Vec2(u, a); };
  auto side = [&](double a, double u) { const Vec2 q = point(a, u); return cavity_side(p, core, q.x(), q.y()); };
  std::vector<double> us = {bounds.min[1 - axis] - 5};
  for (int j = 0; j < count_along(g, 1 - axis); j += 2) {  // every other grid line, off the nodes
    const double u = coord(g, 1 - axis, j) + 0.37 * g.h;
    if (u > us.back() && u < bounds.max[1 - axis] + 5) us.push_back(u);
  }
  us.push_back(bounds.max[1 - axis] + 5);
  // The surface's slopes across the cut and along it, averaged over 2 mm either side along the
  // cut (the rows are two grid steps apart): the scan's roughness would otherwise fold the face.
  std::vector<Vec2> slope(us.size(), Vec2::Zero());
  for (std::size_t j = 0; j < us.size(); ++j) {
    const double da = side(at + span, us[j]) - side(at - span, us[j]), du = side(at, us[j] + span) - side(at, us[j] - span);
    if (!std::isnan(da) && !std::isnan(du)) slope[j] = Vec2(da, du) / (2 * span);
  }
  const int window = static_cast<int>(std::ceil(1.0 / g.h));
  auto smoothed = [&](const auto& v, std::size_t j) {  // the mean over the window of rows round j
    using T = std::decay_t<decltype(v[0])>;
    T sum = v[0] * 0.0;
    int n = 0;
    for (int k = -window; k <= window; ++k)
      if (const long i = static_cast<long>(j) + k; i >= 0 && i < static_cast<long>(us.size())) sum += v[static_cast<std::size_t>(i)], ++n;
    return T(sum / n);
  };
  // The land: square to the axis up to `land` from the surface (along its normal: N × land deep),
  // then leaning across the axis by k per unit height towards the point of the surface nearest
  // the bend in the row's section (so that it meets the surface square there, wherever the
  // surface curves), with the row's slope along the cut taken into account — the land's normal
  // (1, −∂a/∂u, −∂a/∂z) against the surface's (−sx, −su, 1) — and on 0.5 mm along itself past it.
  std::vector<double> bends(us.size()), leans(us.size());
  std::vector<Vec2> slopes(us.size());
  for (std::size_t j = 0; j < us.size(); ++j) {
    const Vec2 s = smoothed(slope, j);
    const double z0 = side(at, us[j]), N = std::sqrt(1 + s.squaredNorm());
    bends[j] = core ? z0 - land * N : z0 + land * N;
    const double nearest = nearest_in_section(side, at, us[j], bends[j], land * N);
    leans[j] = (std::isnan(nearest) ? s.x() : nearest) / (1 + s.y() * s.y());
    slopes[j] = s;
  }
  std::vector<std::vector<Vec3>> rows;
  for (std::size_t j = 0; j < us.size(); ++j) {
    const double u = us[j], z0 = side(at, u), bend = bends[j], k = smoothed(leans, j);
    const Vec2 s = slopes[j];
    const double end = land_meets_surface(side, at, u, bend, k, core, bend + (z0 - bend) / (1 + k * s.x()), land) +
                       (core ? kPastSurface : -kPastSurface) / std::sqrt(1 + k * k);
    const double z1 = std::clamp(std::min(bend, end), zlo + 0.5, zhi - 1.0), z2 = std::clamp(std::max(bend, end), z1 + 0.01, zhi - 0.5);
    std::vector<Vec3> row;
    for (double z : {zlo, z1, z2, zhi}) row.emplace_back(at - k * (std::clamp(z, z1, z2) - bend), u, z);
    rows.push_back(std::move(row));
  }
  return detail::front_block(rows, bounds.min[axis] - 5, axis);
}

Mesh dowel_holes(const Sections& s, bool core) {
  Mesh m;
  for (const Dowel& d : s.dowels) {
    if (d.core != core) continue;
    Vec3 along = Vec3::Zero();
    along[d.axis] = s.hole_depth_mm;
    append(m, detail::rod(d.centre - along, d.centre + along, s.hole_radius_mm, 32));
  }
  return m;
}

namespace {

//! The first place along a side, from `at` outwards by grid steps up to `reach`, whose boss stays
//! clear of every keep-out; nothing when there is none.
std::optional<Vec2> free_spot(const Vec2& at, const Vec2& along, double reach, double step, double boss, const std::vector<KeepOut>& avoid) {
  for (double d = 0; d <= reach; d += step)
    for (double sign : {1.0, -1.0}) {
      const Vec2 q = at + sign * d * along;
      if (std::all_of(avoid.begin(), avoid.end(), [&](const KeepOut& k) { return k.distance(q) > k.r + std::sqrt(2.0) * boss; })) return q;
      if (d == 0) break;
    }
  return std::nullopt;
}

//! The grid nodes a boss of half-width r round q covers (those add_supports raises).
std::vector<std::size_t> boss_nodes(const Grid& g, const Vec2& q, double r) {
  std::vector<std::size_t> nodes;
  const int reach = static_cast<int>(std::ceil(r / g.h)) + 1;
  const std::size_t c = g.nearest(q.x(), q.y());
  const int ci = static_cast<int>(c % g.nx), cj = static_cast<int>(c / g.nx);
  for (int j = std::max(0, cj - reach); j <= std::min(g.ny - 1, cj + reach); ++j)
    for (int i = std::max(0, ci - reach); i <= std::min(g.nx - 1, ci + reach); ++i)
      if (on_boss(Vec2(g.X(i), g.Y(j)) - q, r, g.h)) nodes.push_back(g.index(i, j));
  return nodes;
}

//! The boss's ends before the frame is built: `frame_depth_mm` past the lowest core top and the
//! highest shell underside over it (or the part's flat face, where that is nearer).
Bolt bolt_at(const Parting& p, const Envelope& e, const Vec2& q, double boss, const MoldOptions& o) {
  Bolt b;
  double low = kInf, high = -kInf;
  for (std::size_t k : boss_nodes(p.shell_h, q, boss)) low = std::min(low, p.core_h.v[k]), high = std::max(high, p.shell_h.v[k]);
  b.centre = Vec3(q.x(), q.y(), sample(p.shell_h, q.x(), q.y()));
  b.floor_z = std::max(e.z_bottom, low - o.frame_depth_mm);
  b.roof_z = std::min(e.z_top, high + o.frame_depth_mm);
  return b;
}

}  // namespace

Bolts place_bolts(const Parting& p, const Envelope& e, const Features& f, const Sections& s, const MoldOptions& o) {
  Bolts b;
  if (o.bolt_diameter_mm <= 0 || o.style == "block" || o.frame_depth_mm <= 0) return b;
  b.diameter_mm = o.bolt_diameter_mm;
  b.hole_radius_mm = 0.5 * o.bolt_diameter_mm + o.printer.key_clearance_mm;
  b.boss_radius_mm = b.hole_radius_mm + o.wall_mm;
  const double boss = b.boss_radius_mm, leg = 3 * std::max(o.frame_mm, o.wall_mm);
  std::vector<KeepOut> avoid = keep_outs(f, o);
  for (const Dowel& d : s.dowels) avoid.push_back({d.centre.head<2>(), d.centre.head<2>(), s.hole_depth_mm + s.hole_radius_mm + o.wall_mm});
  const Grid& g = p.shell_h;
  const double lo[2] = {g.X(0), g.Y(0)}, hi[2] = {g.X(g.nx - 1), g.Y(g.ny - 1)};
  for (int axis = 0; axis < 2; ++axis) {  // the ribs reach the flat face: a bolt there would be as long as the mold
    for (double line : rib_lines(lo[axis], hi[axis], o)) {
      Vec2 a, z;
      a[axis] = z[axis] = line, a[1 - axis] = lo[1 - axis], z[1 - axis] = hi[1 - axis];
      avoid.push_back({a, z, 0.5 * o.wall_mm + 1});
    }
  }
  for (int axis = 0; axis < 2; ++axis)  // sides along x (axis 0) and along y
    for (double across : {lo[1 - axis] + boss, hi[1 - axis] - boss}) {
      std::vector<double> ends{lo[axis]};
      for (double c : s.cuts[axis]) ends.push_back(c);
      ends.push_back(hi[axis]);
      for (std::size_t k = 0; k + 1 < ends.size(); ++k) {  // each section along the side, clear of its legs
        const double a = ends[k] + leg + boss, z = ends[k + 1] - leg - boss;
        if (z < a) continue;
        const int n = std::max(1, static_cast<int>(std::ceil((z - a) / o.bolt_spacing_mm)));
        for (int m = 0; m < n; ++m) {
          const double t = a + (z - a) * (m + 0.5) / n;
          Vec2 at, along = Vec2::Zero();
          at[axis] = t, at[1 - axis] = across, along[axis] = 1;
          if (const auto q = free_spot(at, along, 0.5 * (z - a) / n, g.h, boss, avoid)) {
            b.bolts.push_back(bolt_at(p, e, *q, boss, o));
            b.bolts.back().border_axis = 1 - axis;
            b.bolts.back().border_at = across < 0.5 * (lo[1 - axis] + hi[1 - axis]) ? lo[1 - axis] : hi[1 - axis];
            avoid.push_back({*q, *q, std::sqrt(2.0) * boss});  // the square's corners
          } else {
            b.warnings.push_back(fmt::format("no room for a bolt near ({:.0f}, {:.0f}) in the mold frame: keys, slots, dowels or ribs take the frame there", at.x(), at.y()));
          }
        }
      }
    }
  return b;
}

void seat_bolts(Parting& p, const Bolts& b, const MoldOptions& o) {
  const Grid& g = p.shell_h;
  const double blend = std::max(2 * o.wall_mm, 2 * g.h);  // the ring over which the seat eases back into the surface
  for (const Bolt& t : b.bolts)
    for (std::size_t k : boss_nodes(g, t.centre.head<2>(), b.boss_radius_mm + blend)) {
      const double d = (Vec2(g.X(static_cast<int>(k % g.nx)), g.Y(static_cast<int>(k / g.nx))) - t.centre.head<2>()).cwiseAbs().maxCoeff();
      const double s = std::clamp((d - b.boss_radius_mm - 0.5 * g.h) / blend, 0.0, 1.0), keep = s * s * (3 - 2 * s);  // no crease at either edge
      const double rise = (1 - keep) * (t.centre.z() - p.shell_h.v[k]);
      p.shell_h.v[k] += rise;
      p.core_h.v[k] += rise;  // the gutter's depth, if any, kept
    }
  level_border(p.shell_h, frame_band(o));  // where a boss overlaps the frame, the frame takes its level
  level_border(p.core_h, frame_band(o));
}

void bolt_reach(Bolts& b, const Envelope& e) {
  for (Bolt& t : b.bolts) {
    t.floor_z = kInf, t.roof_z = -kInf;
    for (std::size_t k : boss_nodes(e.core_floor, t.centre.head<2>(), b.boss_radius_mm))
      t.floor_z = std::min(t.floor_z, e.core_floor.v[k]), t.roof_z = std::max(t.roof_z, e.shell_roof.v[k]);
  }
}

Mesh bolt_holes(const Bolts& b) {
  Mesh m;
  for (const Bolt& t : b.bolts)
    append(m, detail::rod(Vec3(t.centre.x(), t.centre.y(), t.floor_z - 1), Vec3(t.centre.x(), t.centre.y(), t.roof_z + 1), b.hole_radius_mm, 32));
  return m;
}

}  // namespace tracecast::print::stages
