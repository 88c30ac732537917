// The attack suite (see attacks.h).
#include "tracecast/watermark/attacks.h"

#include <open3d/geometry/KDTreeFlann.h>
#include <open3d/geometry/PointCloud.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/face.h"
#include "tracecast/mesh/random.h"
#include "tracecast/mesh/submesh.h"

namespace tracecast::watermark {

namespace {

constexpr double kPi = 3.14159265358979323846;

Vec3 centroid(const Mesh& m, const Tri& t) { return (m.vertices[t[0]] + m.vertices[t[1]] + m.vertices[t[2]]) / 3.0; }
double area(const Mesh& m, const Tri& t) {
  return 0.5 * (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).norm();
}

}  // namespace

Similarity random_similarity(std::uint64_t seed, double max_shift, double min_scale, double max_scale) {
  SplitMix64 r{seed};
  Eigen::Quaterniond q(r.normal(), r.normal(), r.normal(), r.normal());
  q.normalize();
  Similarity s;
  s.rotation = q.toRotationMatrix();
  s.translation = Vec3(max_shift * (2 * r.uniform_open() - 1), max_shift * (2 * r.uniform_open() - 1), max_shift * (2 * r.uniform_open() - 1));
  s.scale = std::exp(std::log(min_scale) + r.uniform_open() * (std::log(max_scale) - std::log(min_scale)));
  return s;
}

Mesh transformed(const Mesh& mesh, const Similarity& s) {
  Mesh out = mesh;
  for (Vec3& v : out.vertices) v = s(v);
  for (Vec3& n : out.normals) n = s.rotation * n;
  return out;
}

PointCloud transformed(const PointCloud& cloud, const Similarity& s) {
  PointCloud out = cloud;
  for (Vec3& p : out.points) p = s(p);
  for (Vec3& n : out.normals) n = s.rotation * n;
  return out;
}

Mesh normal_noise(const Mesh& mesh, double sigma, std::uint64_t seed) {
  Mesh out = mesh;
  const std::vector<Vec3> n = vertex_normals(mesh);
  SplitMix64 r{seed};
  for (std::size_t i = 0; i < out.vertices.size(); ++i) out.vertices[i] += sigma * r.normal() * n[i];
  out.normals.clear();
  return out;
}

Mesh gaussian_smooth(const Mesh& mesh, double sigma) {
  if (!(sigma > 0)) return mesh;
  const std::vector<Vec3> n = vertex_normals(mesh);
  std::vector<double> a(mesh.vertices.size(), 0);
  for (const Tri& t : mesh.triangles)
    for (std::int32_t v : t) a[static_cast<std::size_t>(v)] += area(mesh, t) / 3.0;
  open3d::geometry::PointCloud pc;
  pc.points_ = mesh.vertices;
  const open3d::geometry::KDTreeFlann tree(pc);
  Mesh out = mesh;
  out.normals.clear();
  std::vector<int> idx;
  std::vector<double> d2;
  for (std::size_t i = 0; i < mesh.vertices.size(); ++i) {
    tree.SearchRadius(mesh.vertices[i], 3 * sigma, idx, d2);
    Vec3 sum = Vec3::Zero();
    double w = 0;
    for (std::size_t k = 0; k < idx.size(); ++k) {
      const double wk = a[static_cast<std::size_t>(idx[k])] * std::exp(-0.5 * d2[k] / (sigma * sigma));
      sum += wk * mesh.vertices[static_cast<std::size_t>(idx[k])];
      w += wk;
    }
    if (w > 0) out.vertices[i] += (sum / w - mesh.vertices[i]).dot(n[i]) * n[i];
  }
  return out;
}

Mesh planar_crop(const Mesh& mesh, const Vec3& direction, double keep) {
  if (!(keep > 0 && keep <= 1)) throw InputError("planar crop: keep a share in (0, 1]");
  const Vec3 d = direction.normalized();
  std::vector<std::pair<double, std::size_t>> order;
  double total = 0;
  for (std::size_t f = 0; f < mesh.triangles.size(); ++f) {
    order.emplace_back(centroid(mesh, mesh.triangles[f]).dot(d), f);
    total += area(mesh, mesh.triangles[f]);
  }
  std::sort(order.begin(), order.end());
  std::vector<char> k(mesh.triangles.size(), 0);
  double acc = 0;
  for (const auto& [h, f] : order) {
    if (acc >= keep * total) break;
    acc += area(mesh, mesh.triangles[f]);
    k[f] = 1;
  }
  return submesh(mesh, k);
}

Mesh visibility_crop(const Mesh& mesh, const Vec3& toward_viewer) {
  const Vec3 d = toward_viewer.normalized();
  std::vector<Vec3> origins, dirs;
  std::vector<std::size_t> faces;
  std::vector<char> k(mesh.triangles.size(), 0);
  for (std::size_t f = 0; f < mesh.triangles.size(); ++f) {
    const Tri& t = mesh.triangles[f];
    const Vec3 nrm = (mesh.vertices[t[1]] - mesh.vertices[t[0]]).cross(mesh.vertices[t[2]] - mesh.vertices[t[0]]);
    if (nrm.dot(d) <= 0) continue;
    origins.push_back(centroid(mesh, t) + 1e-4 * d);
    dirs.push_back(d);
    faces.push_back(f);
  }
  const auto hits = SurfaceQuery(mesh).cast(origins, dirs);
  for (std::size_t i = 0; i < faces.size(); ++i) k[faces[i]] = !hits[i].hit;
  return submesh(mesh, k);
}

Mesh print_simulation(const Mesh& mesh, const Vec3& build_direction, double layer, double pixel) {
  if (!(layer > 0 && pixel > 0)) throw InputError("print simulation: layer and pixel must be positive");
  const Vec3 z = build_direction.normalized();
  const Vec3 x = (std::abs(z.x()) < 0.9 ? Vec3::UnitX() : Vec3::UnitY()).cross(z).normalized(), y = z.cross(x);
  Mesh out = mesh;
  out.normals.clear();
  for (Vec3& v : out.vertices) {
    const double a = pixel * std::round(v.dot(x) / pixel), b = pixel * std::round(v.dot(y) / pixel),
                 c = layer * std::round(v.dot(z) / layer);
    v = a * x + b * y + c * z;
  }
  return out;
}

PointCloud resample_points(const Mesh& mesh, double spacing, double unevenness, std::uint64_t seed) {
  if (!(spacing > 0)) throw InputError("resampling: spacing must be positive");
  SplitMix64 r{seed};
  // A smooth density field: a few random plane waves of about 40 mm.
  std::vector<std::pair<Vec3, double>> waves;
  for (int k = 0; k < 3; ++k) {
    const Vec3 dir = Vec3(r.normal(), r.normal(), r.normal()).normalized();
    waves.emplace_back(dir * (2 * kPi / (30 + 20 * r.uniform_open())), 2 * kPi * r.uniform_open());
  }
  auto density = [&](const Vec3& p) {
    double s = 0;
    for (const auto& [w, ph] : waves) s += std::sin(w.dot(p) + ph);
    return 1.0 + unevenness * 0.5 * (1.0 + s / 3.0);
  };
  std::vector<double> cdf;
  double total = 0, plain = 0;
  for (const Tri& t : mesh.triangles) {
    const double a = area(mesh, t);
    plain += a;
    total += a * density(centroid(mesh, t));
    cdf.push_back(total);
  }
  PointCloud out;
  if (!(total > 0)) return out;
  // The mean spacing over the surface is `spacing`: plain area / spacing² points.
  const auto count = static_cast<std::size_t>(plain / (spacing * spacing));
  out.points.reserve(count);
  for (std::size_t k = 0; k < count; ++k) {
    const double u = r.uniform_open() * total;
    const std::size_t f = std::min<std::size_t>(static_cast<std::size_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin()),
                                                cdf.size() - 1);
    const Tri& t = mesh.triangles[f];
    double a = r.uniform_open(), b = r.uniform_open();
    if (a + b > 1) a = 1 - a, b = 1 - b;
    const Vec3 &p0 = mesh.vertices[t[0]], &p1 = mesh.vertices[t[1]], &p2 = mesh.vertices[t[2]];
    out.points.push_back(p0 + a * (p1 - p0) + b * (p2 - p0));
  }
  return out;
}

}  // namespace tracecast::watermark
