#include "tracecast/scan/reconstruct.h"

#include <fmt/format.h>
#include <open3d/geometry/KDTreeFlann.h>
#include <open3d/geometry/PointCloud.h>
#include <open3d/geometry/TriangleMesh.h>
#include <open3d/utility/Logging.h>

#include <Eigen/Eigenvalues>

#include <chrono>
#include <cmath>
#include <numeric>
#include <sstream>
#include <unordered_map>

#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/step_timer.h"
#include "tracecast/mesh/open3d.h"
#include "tracecast/mesh/units.h"
#include "normals.h"

namespace tracecast::scan {

namespace {

using O3Cloud = open3d::geometry::PointCloud;


double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

struct UnionFind {
  std::vector<std::uint32_t> p;
  explicit UnionFind(std::size_t n) : p(n) { std::iota(p.begin(), p.end(), 0u); }
  std::uint32_t find(std::uint32_t x) {
    while (p[x] != x) x = p[x] = p[p[x]];
    return x;
  }
  void unite(std::uint32_t a, std::uint32_t b) {
    a = find(a);
    b = find(b);
    if (a != b) p[std::max(a, b)] = std::min(a, b);
  }
};

//! Indices of the points in the largest cluster connected at `link_mm` (voxel connectivity:
//! points in the same or a neighbouring voxel of that size are connected).
std::vector<std::size_t> largest_cluster(const std::vector<Vec3>& pts, double link_mm) {
  struct KeyHash {
    std::size_t operator()(const std::array<std::int64_t, 3>& k) const {
      return static_cast<std::size_t>((k[0] * 73856093) ^ (k[1] * 19349663) ^ (k[2] * 83492791));
    }
  };
  std::unordered_map<std::array<std::int64_t, 3>, std::uint32_t, KeyHash> voxel;
  std::vector<std::uint32_t> of(pts.size());
  voxel.reserve(pts.size() / 4 + 16);
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const std::array<std::int64_t, 3> k{static_cast<std::int64_t>(std::floor(pts[i].x() / link_mm)),
                                        static_cast<std::int64_t>(std::floor(pts[i].y() / link_mm)),
                                        static_cast<std::int64_t>(std::floor(pts[i].z() / link_mm))};
    of[i] = voxel.emplace(k, static_cast<std::uint32_t>(voxel.size())).first->second;
  }
  UnionFind uf(voxel.size());
  for (const auto& [k, id] : voxel)
    for (int dx = -1; dx <= 1; ++dx)
      for (int dy = -1; dy <= 1; ++dy)
        for (int dz = -1; dz <= 1; ++dz) {
          const auto it = voxel.find({k[0] + dx, k[1] + dy, k[2] + dz});
          if (it != voxel.end()) uf.unite(id, it->second);
        }
  std::vector<std::size_t> count(voxel.size(), 0);
  for (std::uint32_t v : of) ++count[uf.find(v)];
  const auto best = static_cast<std::uint32_t>(std::max_element(count.begin(), count.end()) - count.begin());
  std::vector<std::size_t> keep;
  for (std::size_t i = 0; i < pts.size(); ++i)
    if (uf.find(of[i]) == best) keep.push_back(i);
  return keep;
}

bool inside(const Crop& c, const Vec3& p) {
  switch (c.kind) {
    case CropKind::Box: return (p.array() >= c.a.array()).all() && (p.array() <= c.b.array()).all();
    case CropKind::Sphere: return (p - c.a).norm() <= c.radius_mm;
    case CropKind::Plane: return (p - c.a).dot(c.b) >= 0;
    default: return true;
  }
}

}  // namespace

namespace detail {
//! Orients estimated normals outward. A scan taken from one side (most scans of a face) is a
//! height field seen along its thinnest principal axis: every normal faces that way, concave walls
//! included (the inner wall of an eye socket faces the midline, and "away from the centroid" would
//! flip it). Other clouds (all-round scans) get Open3D's tangent-plane propagation, whose overall
//! sign is then chosen to point away from the centroid.
void orient_normals(open3d::geometry::PointCloud& cloud) {
  const std::size_t n = cloud.points_.size();
  Vec3 c = Vec3::Zero();
  for (const Vec3& p : cloud.points_) c += p;
  c /= static_cast<double>(n);
  Eigen::Matrix3d cov = Eigen::Matrix3d::Zero();
  for (const Vec3& p : cloud.points_) cov += (p - c) * (p - c).transpose();
  const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> eig(cov);
  Vec3 axis = eig.eigenvectors().col(0);  // smallest variance: the viewing direction of a one-sided scan
  // Its sign: the side most normals face when turned away from the centroid.
  std::size_t along = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const Vec3 away = cloud.normals_[i].dot(cloud.points_[i] - c) >= 0 ? cloud.normals_[i] : Vec3(-cloud.normals_[i]);
    along += away.dot(axis) > 0;
  }
  if (along * 2 < n) axis = -axis;
  std::size_t facing = 0;
  for (std::size_t i = 0; i < n; ++i) facing += std::abs(cloud.normals_[i].dot(axis)) > 0.2;
  // One-sided: after turning towards the axis, (almost) all normals agree with the centroid rule
  // wherever it is unambiguous.
  std::size_t agree = 0, decided = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const Vec3& nn = cloud.normals_[i];
    if (std::abs(nn.dot(axis)) <= 0.2) continue;
    ++decided;
    const Vec3 by_axis = nn.dot(axis) > 0 ? nn : Vec3(-nn);
    agree += by_axis.dot(cloud.points_[i] - c) >= 0;
  }
  const bool one_sided = facing > 0.9 * n && agree > 0.8 * decided;
  if (one_sided) {
    for (std::size_t i = 0; i < n; ++i) {
      Vec3& nn = cloud.normals_[i];
      const double d = nn.dot(axis);
      if (std::abs(d) > 0.2) {
        if (d < 0) nn = -nn;
      } else if (nn.dot(cloud.points_[i] - c) < 0) {
        nn = -nn;  // near the silhouette the surface is convex: away from the centroid
      }
    }
    return;
  }
  cloud.OrientNormalsConsistentTangentPlane(10);
  std::size_t outward = 0;
  for (std::size_t i = 0; i < n; ++i) outward += cloud.normals_[i].dot(cloud.points_[i] - c) >= 0;
  if (outward * 2 < n)
    for (Vec3& nn : cloud.normals_) nn = -nn;
}

}  // namespace detail

std::optional<Crop> parse_crop(const std::string& text) {
  Crop c;
  if (text == "auto") return c;
  if (text == "none") {
    c.kind = CropKind::None;
    return c;
  }
  const auto colon = text.find(':');
  if (colon == std::string::npos) return std::nullopt;
  const std::string kind = text.substr(0, colon);
  std::vector<double> v;
  std::stringstream ss(text.substr(colon + 1));
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      std::size_t used = 0;
      v.push_back(std::stod(item, &used));
      if (used != item.size() || !std::isfinite(v.back())) return std::nullopt;
    } catch (...) {
      return std::nullopt;
    }
  }
  if (kind == "box" && v.size() == 6) {
    c.kind = CropKind::Box;
    c.a = Vec3(v[0], v[1], v[2]).cwiseMin(Vec3(v[3], v[4], v[5]));
    c.b = Vec3(v[0], v[1], v[2]).cwiseMax(Vec3(v[3], v[4], v[5]));
    return c;
  }
  if (kind == "sphere" && v.size() == 4 && v[3] > 0) {
    c.kind = CropKind::Sphere;
    c.a = Vec3(v[0], v[1], v[2]);
    c.radius_mm = v[3];
    return c;
  }
  if (kind == "plane" && v.size() == 6 && Vec3(v[3], v[4], v[5]).norm() > 0) {
    c.kind = CropKind::Plane;
    c.a = Vec3(v[0], v[1], v[2]);
    c.b = Vec3(v[3], v[4], v[5]).normalized();
    return c;
  }
  return std::nullopt;
}

std::vector<Vec3> outward_vertex_normals(const Mesh& m) {
  std::vector<Vec3> n(m.vertices.size(), Vec3::Zero());
  for (const Tri& t : m.triangles) {
    const Vec3 fn = (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]);
    for (std::int32_t v : t) n[static_cast<std::size_t>(v)] += fn;  // area-weighted
  }
  const MeshInfo info = measure(m, {false});
  const double sign = info.volume_mm3 && *info.volume_mm3 < 0 ? -1.0 : 1.0;
  for (Vec3& v : n) {
    const double l = v.norm();
    v = l > 0 ? Vec3(sign * v / l) : Vec3::Zero();
  }
  return n;
}

Mesh reconstruct_surface(const PointCloud& input, const ReconstructOptions& o, ScanReport* report_out,
                         const Mesh* input_surface) {
  open3d_ready();
  ScanReport r;
  StepTimer timer(r.timings);
  r.points_in = input.size();
  if (input.size() < 100)
    throw InputError(fmt::format("too few points to reconstruct a surface ({}; a face scan has thousands)", input.size()));
  validate(input, "scan");

  auto cloud = to_open3d(input);
  r.median_spacing_mm = median(cloud->ComputeNearestNeighborDistance());
  if (!(r.median_spacing_mm > 0))
    throw InputError("the points have no spacing (all duplicates of a few positions)");
  timer.lap("spacing");

  // Outliers: far from their neighbours statistically, then isolated within a few spacings.
  {
    auto [kept, idx] = cloud->RemoveStatisticalOutliers(o.outlier_neighbors, o.outlier_std_ratio);
    r.removed_statistical = cloud->points_.size() - idx.size();
    cloud = kept;
  }
  {
    auto [kept, idx] = cloud->RemoveRadiusOutliers(o.radius_min_points, o.radius_factor * r.median_spacing_mm);
    r.removed_radius = cloud->points_.size() - idx.size();
    cloud = kept;
  }
  if (cloud->points_.size() < 100) throw InputError("fewer than 100 points are left after removing outliers");
  timer.lap("outliers");

  // Crop.
  {
    std::vector<std::size_t> keep;
    if (o.crop.kind == CropKind::Auto) {
      keep = largest_cluster(cloud->points_, 5.0 * r.median_spacing_mm);
    } else {
      for (std::size_t i = 0; i < cloud->points_.size(); ++i)
        if (inside(o.crop, cloud->points_[i])) keep.push_back(i);
    }
    r.removed_crop = cloud->points_.size() - keep.size();
    cloud = cloud->SelectByIndex(keep);
    if (cloud->points_.size() < 100) throw InputError("fewer than 100 points are left after cropping");
    const double extent = bounding_box(cloud->points_).extent().maxCoeff();
    if (extent < kHeadMinExtentMm || extent > kHeadMaxExtentMm)
      throw InputError(fmt::format("no face-sized structure: the {} cluster is {:.1f} mm across (a face or head is "
                                   "{:.0f}-{:.0f} mm; check --units)",
                                   o.crop.kind == CropKind::Auto ? "largest" : "cropped", extent, kHeadMinExtentMm,
                                   kHeadMaxExtentMm));
  }
  timer.lap("crop");

  if (o.voxel_mm > 0) {
    const std::size_t before = cloud->points_.size();
    cloud = cloud->VoxelDownSample(o.voxel_mm);
    r.removed_voxel = before - cloud->points_.size();
    timer.lap("downsample");
  }
  r.points_used = cloud->points_.size();

  // Normals: the scanner's if it gave them, else estimated and oriented (see orient_normals).
  if (!cloud->HasNormals()) {
    r.normals_estimated = true;
    cloud->EstimateNormals(open3d::geometry::KDTreeSearchParamHybrid(4.0 * r.median_spacing_mm, 30));
    detail::orient_normals(*cloud);
    timer.lap("normals");
  }

  const double extent = bounding_box(cloud->points_).extent().maxCoeff();
  r.resolution_mm = o.resolution_mm > 0 ? o.resolution_mm : std::clamp(r.median_spacing_mm, 0.5, 5.0);
  r.poisson_depth = o.poisson_depth > 0
                        ? o.poisson_depth
                        : std::clamp(static_cast<int>(std::ceil(std::log2(1.1 * extent / r.resolution_mm))), 5, 11);
  // One thread: Poisson's threads sum in an order that changes from run to run, and the same scan
  // must give the same surface, byte for byte, whatever the machine (the run's cache relies on it).
  auto [poisson, density] = open3d::geometry::TriangleMesh::CreateFromPointCloudPoisson(
      *cloud, static_cast<std::size_t>(r.poisson_depth), 0.0f, 1.1f, false, 1);
  (void)density;
  if (!poisson || poisson->triangles_.empty()) throw ProcessingError("surface reconstruction produced no surface");
  timer.lap("poisson");

  // Trim what the data does not support: distance to the input's triangles when it has them,
  // else to the nearest point used.
  // Support scales with the data's spacing; half the resolution is the floor (Poisson's vertices
  // sit up to half a cell off the data). A looser bound lets the surface run on past the data's
  // edge, curling away from where the real surface went.
  const double support = o.trim_factor * std::max(r.median_spacing_mm, 0.25 * r.resolution_mm);
  open3d::geometry::KDTreeFlann tree(*cloud);
  std::optional<SurfaceQuery> input_query;
  if (input_surface && !input_surface->triangles.empty()) input_query.emplace(*input_surface);
  auto support_distances = [&](const std::vector<Vec3>& pts) {
    if (input_query) return input_query->distances(pts);
    std::vector<double> d(pts.size());
    std::vector<int> idx(1);
    std::vector<double> d2(1);
    for (std::size_t i = 0; i < pts.size(); ++i)
      d[i] = tree.SearchKNN(pts[i], 1, idx, d2) < 1 ? std::numeric_limits<double>::infinity() : std::sqrt(d2[0]);
    return d;
  };
  {
    std::vector<bool> remove(poisson->vertices_.size(), false);
    const std::vector<double> d = support_distances(poisson->vertices_);
    for (std::size_t i = 0; i < d.size(); ++i) remove[i] = d[i] > support;
    poisson->RemoveVerticesByMask(remove);
    poisson->RemoveDegenerateTriangles();
    poisson->RemoveUnreferencedVertices();
    poisson->RemoveNonManifoldEdges();
    poisson->RemoveUnreferencedVertices();
    // Trimming by vertex can leave two fans touching at a vertex; drop such vertices (a few
    // faces at the rim) until none is left.
    for (int pass = 0; pass < 5; ++pass) {
      const std::vector<int> bad = poisson->GetNonManifoldVertices();
      if (bad.empty()) break;
      std::vector<bool> remove_v(poisson->vertices_.size(), false);
      for (int v : bad) remove_v[static_cast<std::size_t>(v)] = true;
      poisson->RemoveVerticesByMask(remove_v);
      poisson->RemoveUnreferencedVertices();
    }
  }
  {
    // Keep the pieces of at least 5 % of the largest (last: the steps above can split off bits).
    auto [cluster_of, sizes, areas] = poisson->ClusterConnectedTriangles();
    (void)areas;
    if (sizes.empty()) throw ProcessingError("no surface is left after trimming the unsupported parts");
    const std::size_t largest = *std::max_element(sizes.begin(), sizes.end());
    std::vector<bool> remove(poisson->triangles_.size(), false);
    for (std::size_t t = 0; t < remove.size(); ++t)
      remove[t] = sizes[static_cast<std::size_t>(cluster_of[t])] * 20 < largest;
    poisson->RemoveTrianglesByMask(remove);
    poisson->RemoveUnreferencedVertices();
  }
  timer.lap("trim");

  Mesh out;
  out.vertices = poisson->vertices_;
  for (const Eigen::Vector3i& t : poisson->triangles_) out.triangles.push_back({t[0], t[1], t[2]});
  if (out.triangles.empty()) throw ProcessingError("no surface is left after trimming the unsupported parts");

  // Report: accuracy against the points used, and any surface still far from the data.
  {
    const SurfaceQuery q(out);
    r.accuracy = summarize(q.distances(cloud->points_));
    const double far = 2.0 * r.median_spacing_mm;
    std::vector<Vec3> centroids;
    centroids.reserve(out.triangles.size());
    for (const Tri& t : out.triangles) centroids.push_back((out.vertices[t[0]] + out.vertices[t[1]] + out.vertices[t[2]]) / 3.0);
    const std::vector<double> d = support_distances(centroids);
    for (std::size_t f = 0; f < out.triangles.size(); ++f) {
      const Tri& t = out.triangles[f];
      const double area = 0.5 * (out.vertices[t[1]] - out.vertices[t[0]]).cross(out.vertices[t[2]] - out.vertices[t[0]]).norm();
      r.area_mm2 += area;
      if (d[f] > far) r.invented_area_mm2 += area;
    }
    std::vector<double> edges;
    edges.reserve(3 * out.triangles.size());
    for (const Tri& t : out.triangles)
      for (int k = 0; k < 3; ++k) edges.push_back((out.vertices[t[k]] - out.vertices[t[(k + 1) % 3]]).norm());
    r.median_edge_mm = median(edges);
    const MeshInfo info = measure(out, {false});
    r.boundary_loops = info.boundary_loops;
    r.vertices = out.vertices.size();
    r.faces = out.triangles.size();
  }
  timer.lap("report");
  if (report_out) *report_out = r;
  return out;
}

}  // namespace tracecast::scan
