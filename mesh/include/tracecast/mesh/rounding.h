// Exact rounding without a call into the maths library, for loops that round the coordinates of
// every sample many times over (the detector's folds and charts).
#pragma once

#include <cstdint>

namespace tracecast {

//! ⌊x⌋ and x rounded half away from zero, for |x| < 2⁶³: the same integers as std::floor and
//! std::llround (the truncation toward zero, then x − trunc(x), which is exact, decides the step).
inline std::int64_t floor_int(double x) {
  const auto t = static_cast<std::int64_t>(x);
  return t - static_cast<std::int64_t>(static_cast<double>(t) > x);
}
inline std::int64_t round_half_away(double x) {
  auto t = static_cast<std::int64_t>(x);
  const double frac = x - static_cast<double>(t);
  if (frac >= 0.5)
    ++t;
  else if (frac <= -0.5)
    --t;
  return t;
}

}  // namespace tracecast
