// A valid solid, by the library's own measurements rather than the maker's report.
#pragma once

#include <catch2/catch.hpp>

#include "tracecast/mesh/measure.h"

namespace tracecast::test {

//! Closed, manifold, one piece, no zero-area face and no crossing; the measurements, for more.
inline MeshInfo check_solid(const Mesh& m) {
  const MeshInfo info = measure(m);
  CHECK(info.watertight);
  CHECK(info.edge_manifold);
  CHECK(info.vertex_manifold);
  CHECK(info.components == 1);
  CHECK(info.degenerate_triangles == 0);
  CHECK(info.self_intersecting_pairs == 0);
  return info;
}

}  // namespace tracecast::test
