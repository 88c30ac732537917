// Hashing points by their exact coordinates, for unordered maps keyed by Vec3.
#pragma once

#include <cstddef>
#include <functional>

#include "tracecast/mesh/mesh.h"

namespace tracecast {

//! A hash of a point's exact coordinates (-0 and +0 hash alike, as they compare equal).
struct PointHash {
  std::size_t operator()(const Vec3& p) const {
    std::size_t h = 0;
    for (int k = 0; k < 3; ++k) h = h * 0x9E3779B97F4A7C15ULL ^ std::hash<double>()(p[k] + 0.0);
    return h;
  }
};

}  // namespace tracecast
