// Internal: ray casting on a triangle mesh with Embree, called directly (embree_rays.cpp).
//
// Open3D 0.16's Embree ray queries (CastRays, TestOcclusions, CountIntersections) return no hit at
// all with Debian 12's Embree 3.13.5, while its point-distance queries are correct; so rays use
// Embree's own API and distances go through Open3D. The caster keeps a pointer to the mesh, which
// must outlive it.
#pragma once

#include <memory>
#include <vector>

#include "tracecast/mesh/distance.h"

namespace tracecast::detail {

class RayCaster {
 public:
  explicit RayCaster(const Mesh& mesh);
  ~RayCaster();
  std::vector<RayHit> cast(const std::vector<Vec3>& origins, const std::vector<Vec3>& directions) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracecast::detail
