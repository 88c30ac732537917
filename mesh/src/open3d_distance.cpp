#include <open3d/core/Tensor.h>
#include <open3d/geometry/KDTreeFlann.h>
#include <open3d/geometry/PointCloud.h>
#include <open3d/t/geometry/RaycastingScene.h>
#include <tbb/parallel_sort.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "ray_cast.h"

namespace tracecast {

namespace o3c = open3d::core;

struct SurfaceQuery::Impl {
  Vec3 origin;
  open3d::t::geometry::RaycastingScene scene;
  Mesh mesh;  // kept for the ray caster and the pseudonormals, built on first use
  std::vector<std::uint32_t> scene_triangle;  // scene primitive id -> index in mesh.triangles
  mutable std::once_flag rays_once;
  mutable std::unique_ptr<detail::RayCaster> rays;
  // Angle-weighted pseudonormals (unnormalised; only their direction's side matters).
  mutable std::once_flag normals_once;
  mutable std::vector<Vec3> face_normal, vertex_normal, edge_normal;
  mutable std::vector<std::uint32_t> edge_of;  // 3 f + k -> its edge (corner k to the next) in edge_normal

  static std::uint64_t edge_key(std::int32_t a, std::int32_t b) {
    const auto ua = static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)), ub = static_cast<std::uint64_t>(static_cast<std::uint32_t>(b));
    return ua < ub ? (ua << 32) | ub : (ub << 32) | ua;
  }
  void build_normals() const;

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
    impl_->scene_triangle.push_back(static_cast<std::uint32_t>(&t - mesh.triangles.data()));
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

void SurfaceQuery::Impl::build_normals() const {
  // Bærentzen & Aanæs: a face's normal; an edge's, the sum of its faces' normals; a vertex's, the
  // sum of its faces' normals weighted by their angle at the vertex. With these, the side of the
  // closest feature (face, edge or vertex) is the side of the surface, also at sharp edges and
  // thin rims, where the closest face's own normal can point away from the query point. The
  // edges are found by sorting the faces' sides by their corners, and each side keeps the index
  // of its edge (no hash map to search at every query).
  face_normal.assign(mesh.triangles.size(), Vec3::Zero());
  vertex_normal.assign(mesh.vertices.size(), Vec3::Zero());
  std::vector<std::pair<std::uint64_t, std::uint32_t>> sides;  // (edge key, 3 f + k)
  sides.reserve(3 * scene_triangle.size());
  for (std::uint32_t f : scene_triangle) {
    const Tri& t = mesh.triangles[f];
    const Vec3 n = (mesh.vertices[t[1]] - mesh.vertices[t[0]]).cross(mesh.vertices[t[2]] - mesh.vertices[t[0]]).normalized();
    face_normal[f] = n;
    for (std::uint32_t k = 0; k < 3; ++k) {
      const std::int32_t a = t[k], b = t[(k + 1) % 3], c = t[(k + 2) % 3];
      const Vec3 u = (mesh.vertices[b] - mesh.vertices[a]).normalized(), v = (mesh.vertices[c] - mesh.vertices[a]).normalized();
      vertex_normal[a] += std::acos(std::clamp(u.dot(v), -1.0, 1.0)) * n;
      sides.emplace_back(edge_key(a, b), 3 * f + k);
    }
  }
  tbb::parallel_sort(sides.begin(), sides.end());
  edge_normal.reserve(sides.size() / 2 + 1);
  edge_of.assign(3 * mesh.triangles.size(), std::numeric_limits<std::uint32_t>::max());
  for (std::size_t i = 0; i < sides.size(); ++i) {
    if (i == 0 || sides[i].first != sides[i - 1].first) edge_normal.push_back(Vec3::Zero());
    edge_normal.back() += face_normal[sides[i].second / 3];
    edge_of[sides[i].second] = static_cast<std::uint32_t>(edge_normal.size() - 1);
  }
}

namespace {

//! The closest point of triangle abc to p, in double precision, and the feature it lies on:
//! -1 the face's interior, 0…2 a corner, 3…5 the edge from corner k − 3 to the next corner.
std::pair<Vec3, int> closest_on_triangle(const Vec3& p, const Vec3& a, const Vec3& b, const Vec3& c) {
  const Vec3 ab = b - a, ac = c - a;
  // Projections of p relative to each corner on the two edges leaving a decide the region.
  const double a1 = ab.dot(p - a), a2 = ac.dot(p - a);
  if (a1 <= 0 && a2 <= 0) return {a, 0};
  const double b1 = ab.dot(p - b), b2 = ac.dot(p - b);
  if (b1 >= 0 && b2 <= b1) return {b, 1};
  const double c1 = ab.dot(p - c), c2 = ac.dot(p - c);
  if (c2 >= 0 && c1 <= c2) return {c, 2};
  const double near_ab = a1 * b2 - b1 * a2;  // signed area weights of the barycentric coordinates
  if (near_ab <= 0 && a1 >= 0 && b1 <= 0) return {a + (a1 / (a1 - b1)) * ab, 3};
  const double near_ca = c1 * a2 - a1 * c2;
  if (near_ca <= 0 && a2 >= 0 && c2 <= 0) return {a + (a2 / (a2 - c2)) * ac, 5};
  const double near_bc = b1 * c2 - c1 * b2;
  if (near_bc <= 0 && b2 - b1 >= 0 && c1 - c2 >= 0) {
    const double s = (b2 - b1) / ((b2 - b1) + (c1 - c2));
    return {b + s * (c - b), 4};
  }
  const double sum = near_ab + near_ca + near_bc;
  return {a + (near_ca / sum) * ab + (near_ab / sum) * ac, -1};
}

}  // namespace

std::vector<double> SurfaceQuery::signed_distances(const std::vector<Vec3>& points) const {
  if (points.empty()) return {};
  std::call_once(impl_->normals_once, [&] { impl_->build_normals(); });
  auto r = impl_->scene.ComputeClosestPoints(impl_->points_tensor(points));
  const o3c::Tensor id = r["primitive_ids"].To(o3c::Int64).Contiguous();
  const std::int64_t* ids = id.GetDataPtr<std::int64_t>();
  std::vector<double> out(points.size());
  const Mesh& m = impl_->mesh;
  for (std::size_t i = 0; i < points.size(); ++i) {
    // The closest triangle comes from the (single-precision) scene; the point and the feature it
    // lies on are computed again in double, so that the feature and the offset agree exactly
    // (single-precision barycentric coordinates cannot tell a point on an edge from one beside it).
    const std::uint32_t f = impl_->scene_triangle[static_cast<std::size_t>(ids[i])];
    const Tri& t = m.triangles[f];
    const auto [q, feature] = closest_on_triangle(points[i], m.vertices[t[0]], m.vertices[t[1]], m.vertices[t[2]]);
    Vec3 n = impl_->face_normal[f];
    if (feature >= 3) {
      n = impl_->edge_normal[impl_->edge_of[3 * f + static_cast<std::uint32_t>(feature - 3)]];
    } else if (feature >= 0) {
      n = impl_->vertex_normal[static_cast<std::size_t>(t[static_cast<std::size_t>(feature)])];
    }
    const Vec3 d = points[i] - q;
    const double len = d.norm();
    out[i] = d.dot(n) < 0 ? -len : len;
  }
  return out;
}

std::vector<RayHit> SurfaceQuery::cast(const std::vector<Vec3>& origins, const std::vector<Vec3>& directions) const {
  if (origins.size() != directions.size()) throw InputError("ray query: origins and directions differ in number");
  if (origins.empty()) return {};
  // Rays go through Embree's own API (see ray_cast.h for why not Open3D's).
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

std::vector<double> nearest_point_distances(const std::vector<Vec3>& points, const std::vector<Vec3>& queries) {
  std::vector<double> d(queries.size(), std::numeric_limits<double>::infinity());
  if (points.empty()) return d;
  open3d::geometry::PointCloud cloud;
  cloud.points_ = points;
  const open3d::geometry::KDTreeFlann tree(cloud);
  std::vector<int> idx(1);
  std::vector<double> d2(1);
  for (std::size_t i = 0; i < queries.size(); ++i)
    if (tree.SearchKNN(queries[i], 1, idx, d2) > 0) d[i] = std::sqrt(d2[0]);
  return d;
}

}  // namespace tracecast
