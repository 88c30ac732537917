// A small deterministic generator (splitmix64): the same numbers for a seed on every platform
// and standard library, for synthetic data, sampling and the attack suite.
#pragma once

#include <cmath>
#include <cstdint>

namespace tracecast {

struct SplitMix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  //! In [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  //! In (0, 1): safe under a logarithm.
  double uniform_open() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
  //! Standard normal (Box–Muller).
  double normal() { return std::sqrt(-2.0 * std::log(uniform_open())) * std::cos(6.283185307179586 * uniform_open()); }
};

}  // namespace tracecast
