#include "tracecast/print/casting.h"

#include <fmt/format.h>

#include <cmath>

#include "tracecast/mesh/errors.h"

namespace tracecast::print {

SiliconeMix silicone_to_mix(double cavity_mm3, const SiliconeOptions& o, double ratio) {
  if (!(cavity_mm3 >= 0) || !std::isfinite(cavity_mm3))
    throw InputError(fmt::format("cavity volume must be a non-negative number of mm3, got {}", cavity_mm3));
  throw_problems("silicone options", silicone_option_table().check(o));
  const double density = o.density_g_ml, waste = o.waste_fraction;
  if (!(ratio > 0) || !std::isfinite(ratio)) throw InputError(fmt::format("mix ratio {} must be positive", ratio));
  SiliconeMix m;
  m.cavity_ml = cavity_mm3 / 1000.0;
  m.density_g_ml = density;
  m.waste_fraction = waste;
  m.total_g = m.cavity_ml * density * (1.0 + waste);
  m.part_a_g = m.total_g * ratio / (1.0 + ratio);
  m.part_b_g = m.total_g - m.part_a_g;
  return m;
}

}  // namespace tracecast::print
