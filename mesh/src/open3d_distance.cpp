#include <open3d/core/Tensor.h>
#include <open3d/t/geometry/RaycastingScene.h>

#include <algorithm>
#include <mutex>
#include <cmath>

#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "ray_cast.h"

namespace tracecast {

namespace o3c = open3d::core;

struct SurfaceQuery::Impl {
  Vec3 origin;
  open3d::t::geometry::RaycastingScene scene;
  Mesh mesh;  // kept for the ray caster, built on first use
  mutable std::once_flag rays_once;
  mutable std::unique_ptr<detail::RayCaster> rays;

  o3c::Tensor points_tensor(const std::vector<Vec3>& pts) const {
    std::vector<float> f(3 * pts.size());
    for (std::size_t i = 0; i < pts.size(); ++i)
      for (int k = 0; k < 3; ++k) f[3 * i + k] = static_cast<float>(pts[i][k] - origin[k]);
    return o3c::Tensor(f, {static_cast<std::int64_t>(pts.size()), 3}, o3c::Float32);
  }
};

SurfaceQuery::SurfaceQuery(const Mesh& mesh) : impl_(std::make_unique<Impl>()) {
  if (mesh.triangles.empty()) throw InputError("distance query: the mesh has no triangles");
  const Aabb box = bounding_box(mesh);
  impl_->origin = 0.5 * (box.min + box.max);
  // Degenerate triangles (repeated corners, or no area once in single precision) are left out:
  // Debian's Open3D is built with assertions, and its closest-point code aborts on them.
  const o3c::Tensor v = impl_->points_tensor(mesh.vertices);
  const float* vp = v.GetDataPtr<float>();
  std::vector<std::uint32_t> idx;
  idx.reserve(3 * mesh.triangles.size());
  for (const Tri& t : mesh.triangles) {
    if (t[0] == t[1] || t[1] == t[2] || t[0] == t[2]) continue;
    const Eigen::Vector3f a(vp + 3 * t[0]), b(vp + 3 * t[1]), c(vp + 3 * t[2]);
    if ((b - a).cross(c - a).squaredNorm() == 0.0f) continue;
    for (std::int32_t k : t) idx.push_back(static_cast<std::uint32_t>(k));
  }
  if (idx.empty()) throw InputError("distance query: the mesh has no triangle with an area");
  const o3c::Tensor f(idx, {static_cast<std::int64_t>(idx.size() / 3), 3}, o3c::UInt32);
  impl_->scene.AddTriangles(v, f);
  impl_->mesh = mesh;
}

SurfaceQuery::~SurfaceQuery() = default;
SurfaceQuery::SurfaceQuery(SurfaceQuery&&) noexcept = default;
SurfaceQuery& SurfaceQuery::operator=(SurfaceQuery&&) noexcept = default;

std::vector<double> SurfaceQuery::distances(const std::vector<Vec3>& points) const {
  if (points.empty()) return {};
  const o3c::Tensor d = impl_->scene.ComputeDistance(impl_->points_tensor(points)).Contiguous();
  const float* p = d.GetDataPtr<float>();
  return std::vector<double>(p, p + points.size());
}

std::vector<Vec3> SurfaceQuery::closest_points(const std::vector<Vec3>& points) const {
  if (points.empty()) return {};
  auto r = impl_->scene.ComputeClosestPoints(impl_->points_tensor(points));
  const o3c::Tensor c = r["points"].Contiguous();
  const float* p = c.GetDataPtr<float>();
  std::vector<Vec3> out(points.size());
  for (std::size_t i = 0; i < points.size(); ++i)
    out[i] = Vec3(p[3 * i], p[3 * i + 1], p[3 * i + 2]) + impl_->origin;
  return out;
}

std::vector<double> SurfaceQuery::signed_distances(const std::vector<Vec3>& points) const {
  if (points.empty()) return {};
  auto r = impl_->scene.ComputeClosestPoints(impl_->points_tensor(points));
  const o3c::Tensor c = r["points"].Contiguous(), n = r["primitive_normals"].Contiguous();
  const float* p = c.GetDataPtr<float>();
  const float* q = n.GetDataPtr<float>();
  std::vector<double> out(points.size());
  for (std::size_t i = 0; i < points.size(); ++i) {
    const Vec3 d = points[i] - (Vec3(p[3 * i], p[3 * i + 1], p[3 * i + 2]) + impl_->origin);
    const double len = d.norm();
    out[i] = d.dot(Vec3(q[3 * i], q[3 * i + 1], q[3 * i + 2])) < 0 ? -len : len;
  }
  return out;
}

std::vector<RayHit> SurfaceQuery::cast(const std::vector<Vec3>& origins, const std::vector<Vec3>& directions) const {
  if (origins.size() != directions.size()) throw InputError("ray query: origins and directions differ in number");
  if (origins.empty()) return {};
  // Rays go through CGAL (see ray_cast.h for why not Embree).
  std::call_once(impl_->rays_once, [&] { impl_->rays = std::make_unique<detail::RayCaster>(impl_->mesh); });
  return impl_->rays->cast(origins, directions);
}

DistanceStats summarize(std::vector<double> d) {
  DistanceStats s;
  s.count = d.size();
  if (d.empty()) return s;
  double sum = 0, sq = 0;
  for (double x : d) {
    sum += x;
    sq += x * x;
  }
  s.mean = sum / d.size();
  s.rms = std::sqrt(sq / d.size());
  auto at = [&](double q) {
    const std::size_t k = std::min(d.size() - 1, static_cast<std::size_t>(q * (d.size() - 1) + 0.5));
    std::nth_element(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(k), d.end());
    return d[k];
  };
  s.median = at(0.5);
  s.p95 = at(0.95);
  s.max = *std::max_element(d.begin(), d.end());
  return s;
}

}  // namespace tracecast
