#include "tracecast/print/printer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "tracecast/print/mold.h"

namespace tracecast::print {

const std::vector<PrinterProfile>& printer_profiles() {
  static const std::vector<PrinterProfile> p = {
      {"resin", Technology::Resin, Vec3(218, 123, 250), 0.05, 0.1, 1.0},
      {"resin-small", Technology::Resin, Vec3(145, 145, 185), 0.05, 0.1, 1.0},
      {"resin-large", Technology::Resin, Vec3(335, 200, 300), 0.05, 0.1, 1.0},
      {"fdm", Technology::Fdm, Vec3(250, 210, 220), 0.2, 0.2, 1.2},
      {"fdm-256", Technology::Fdm, Vec3(256, 256, 256), 0.2, 0.2, 1.2},
      {"fdm-360", Technology::Fdm, Vec3(360, 360, 360), 0.2, 0.2, 1.2},
  };
  return p;
}

std::optional<PrinterProfile> find_printer(const std::string& name) {
  for (const PrinterProfile& p : printer_profiles())
    if (p.name == name) return p;
  return std::nullopt;
}

BuildFit best_fit(const Vec3& size, const PrinterProfile& printer) {
  std::array<int, 3> axes{0, 1, 2};
  BuildFit best;
  best.margin_mm = -std::numeric_limits<double>::infinity();
  // All 6 permutations, in a fixed order: ties keep the first (deterministic).
  do {
    const Vec3 s(size[axes[0]], size[axes[1]], size[axes[2]]);
    const double margin = (printer.build_volume_mm - s).minCoeff();
    if (margin > best.margin_mm) {
      best.margin_mm = margin;
      best.size_mm = s;
      best.axes = axes;
    }
  } while (std::next_permutation(axes.begin(), axes.end()));
  best.fits = best.margin_mm >= 0;
  return best;
}

BuildFit fit_in_build_volume(const Mesh& part, const PrinterProfile& printer) { return best_fit(bounding_box(part).extent(), printer); }

BuildFit fit_as_placed(const Mesh& part, const PrinterProfile& printer) {
  BuildFit f;
  f.size_mm = bounding_box(part).extent();
  f.margin_mm = (printer.build_volume_mm - f.size_mm).minCoeff();
  f.fits = f.margin_mm >= 0;
  return f;
}

std::array<double, 2> flat_area(const Mesh& part, int axis) {
  const Aabb box = bounding_box(part);
  std::array<double, 2> area{0, 0};
  for (const Tri& t : part.triangles) {
    const Vec3 &a = part.vertices[t[0]], &b = part.vertices[t[1]], &c = part.vertices[t[2]];
    auto on = [&](double plane) {
      return std::abs(a[axis] - plane) < 0.01 && std::abs(b[axis] - plane) < 0.01 && std::abs(c[axis] - plane) < 0.01;
    };
    const double f = 0.5 * (b - a).cross(c - a).norm();
    if (on(box.min[axis])) area[0] += f;
    if (on(box.max[axis])) area[1] += f;
  }
  return area;
}

Vec3 open_side(const Mesh& part) {
  int axis = 0;
  bounding_box(part).extent().minCoeff(&axis);
  const std::array<double, 2> area = flat_area(part, axis);
  Vec3 d = Vec3::Zero();
  d[axis] = area[0] >= area[1] ? 1.0 : -1.0;
  return d;
}

Eigen::Matrix3d orientation_matrix(const BuildFit& fit) {
  Eigen::Matrix3d R = Eigen::Matrix3d::Zero();
  for (int k = 0; k < 3; ++k) R(k, fit.axes[static_cast<std::size_t>(k)]) = 1;
  if (R.determinant() < 0) R.row(2) *= -1;
  return R;
}

bool is_valid_solid(const PartCheck& c) { return c.closed && c.manifold && c.oriented && c.self_intersections == 0; }

std::string solid_problem(const PartCheck& c) {
  if (is_valid_solid(c)) return "";
  return fmt::format("the {} is not a valid solid (closed {}, manifold {}, outward {}, {} crossing face pairs)", c.name, c.closed,
                     c.manifold, c.oriented, c.self_intersections);
}

bool walls_ok(const PartCheck& c) { return c.thin_samples == 0 && c.min_wall_mm >= c.required_wall_mm; }

bool is_printable(const PartCheck& c) { return is_valid_solid(c) && walls_ok(c) && c.fit.fits; }

std::vector<std::string> part_problems(const PartCheck& c, const PrinterProfile& printer) {
  std::vector<std::string> w;
  if (!is_valid_solid(c)) w.push_back(solid_problem(c));
  if (!walls_ok(c) && c.thin_spots.empty()) {
    w.push_back(fmt::format("the {} has no wall that could be measured (no ray from its surface inwards met an opposite face)", c.name));
  } else if (!walls_ok(c)) {
    const ThinSpot& s = c.thin_spots.front();
    w.push_back(fmt::format("the {} has walls thinner than the {} printer's {:.1f} mm minimum: {} of {} samples in {}{} spot(s){}, "
                            "thinnest {:.2f} mm at ({:.1f}, {:.1f}, {:.1f}) in its file",
                            c.name, printer.name, c.required_wall_mm, c.thin_samples, c.wall_samples,
                            c.thin_spots.size() >= kMaxThinSpots ? "at least " : "", c.thin_spots.size(),
                            c.edge_zone_mm > 0 ? fmt::format(" ({} of them at the cutting edge, within {:g} mm of the appliance's rim; {})",
                                                             c.edge_samples, c.edge_zone_mm,
                                                             std::isnan(c.min_wall_off_edge_mm)
                                                                 ? std::string("no wall beyond it")
                                                                 : fmt::format("thinnest beyond it {:.2f} mm", c.min_wall_off_edge_mm))
                                               : std::string(),
                            c.min_wall_mm, s.at.x(), s.at.y(), s.at.z()));
  }
  if (!c.fit.fits && c.turned.fits)
    w.push_back(fmt::format("the {} ({:.0f} × {:.0f} × {:.0f} mm as placed) does not fit the {} printer's build volume as placed; "
                            "turned to {:.0f} × {:.0f} × {:.0f} mm it does",
                            c.name, c.fit.size_mm.x(), c.fit.size_mm.y(), c.fit.size_mm.z(), printer.name, c.turned.size_mm.x(),
                            c.turned.size_mm.y(), c.turned.size_mm.z()));
  else if (!c.fit.fits)
    w.push_back(fmt::format("the {} ({:.0f} × {:.0f} × {:.0f} mm) does not fit the {} printer's build volume in any orientation", c.name,
                            c.fit.size_mm.x(), c.fit.size_mm.y(), c.fit.size_mm.z(), printer.name));
  return w;
}

std::string technology_warning(const PrinterProfile& printer) {
  return printer.technology == Technology::Resin
             ? "platinum-cure silicone does not cure against uncured resin: post-cure the printed parts fully (or seal them) before casting"
             : "FDM layer lines print into the silicone: expect visible steps on the skin detail; a resin print keeps it";
}

}  // namespace tracecast::print
