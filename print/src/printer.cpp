#include "tracecast/print/printer.h"

#include <algorithm>

namespace tracecast::print {

const std::vector<PrinterProfile>& printer_profiles() {
  static const std::vector<PrinterProfile> p = {
      {"resin", Technology::Resin, Vec3(218, 123, 250), 0.05, 0.1, 1.0},
      {"resin-small", Technology::Resin, Vec3(130, 80, 160), 0.05, 0.1, 1.0},
      {"fdm", Technology::Fdm, Vec3(220, 220, 250), 0.2, 0.2, 1.2},
  };
  return p;
}

std::optional<PrinterProfile> find_printer(const std::string& name) {
  for (const PrinterProfile& p : printer_profiles())
    if (p.name == name) return p;
  return std::nullopt;
}

BuildFit fit_in_build_volume(const Mesh& part, const PrinterProfile& printer) {
  const Vec3 size = bounding_box(part).extent();
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

}  // namespace tracecast::print
