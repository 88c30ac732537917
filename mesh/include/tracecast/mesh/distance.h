// Distance and ray queries against a triangle mesh (Embree, through Open3D's RaycastingScene).
//
// Coordinates are re-centred on the mesh's bounding box before they are handed to Embree's
// single-precision arithmetic, so that queries keep about 10⁻⁵ mm of precision at head sizes.
#pragma once

#include <memory>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tracecast/mesh/mesh.h"

namespace tracecast {

struct RayHit {
  bool hit = false;
  double t = 0;           //!< distance along the (unit) direction, mm
  std::int64_t triangle = -1;
  Vec3 normal = Vec3::Zero();  //!< geometric normal of the triangle hit
};

class SurfaceQuery {
 public:
  //! Precondition: mesh has triangles (InputError otherwise).
  explicit SurfaceQuery(const Mesh& mesh);
  ~SurfaceQuery();
  SurfaceQuery(SurfaceQuery&&) noexcept;
  SurfaceQuery& operator=(SurfaceQuery&&) noexcept;

  //! Unsigned distance (mm) from each point to the surface.
  std::vector<double> distances(const std::vector<Vec3>& points) const;
  //! Distance signed by the side of the surface (positive in front of it): negative inside a
  //! closed, outward-facing surface. The side is that of the closest feature — face, edge or
  //! corner — by its angle-weighted pseudonormal, so it is right beside sharp edges and thin
  //! rims too, where the closest face's own normal may point away from the point.
  std::vector<double> signed_distances(const std::vector<Vec3>& points) const;
  //! Closest point on the surface to each point.
  std::vector<Vec3> closest_points(const std::vector<Vec3>& points) const;
  //! First hit of each ray (origin, unit direction).
  std::vector<RayHit> cast(const std::vector<Vec3>& origins, const std::vector<Vec3>& directions) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

//! For each query, the distance (mm) to the nearest of `points` (a k-d tree); infinity when there
//! are no points.
std::vector<double> nearest_point_distances(const std::vector<Vec3>& points, const std::vector<Vec3>& queries);

//! Summary of a set of distances (mm).
struct DistanceStats {
  std::size_t count = 0;
  double mean = 0, rms = 0, median = 0, p95 = 0, max = 0;
};
DistanceStats summarize(std::vector<double> distances);
//! {count, mean, rms, median, p95, max} (mm).
void to_json(nlohmann::json& j, const DistanceStats& s);

}  // namespace tracecast
