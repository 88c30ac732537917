// The attack suite (see attacks.h).
#include "tracecast/watermark/attacks.h"

#include <open3d/geometry/KDTreeFlann.h>
#include <open3d/geometry/PointCloud.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <stdexcept>
#include <unordered_map>

#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/face.h"
#include "tracecast/mesh/level_set.h"
#include "tracecast/mesh/random.h"
#include "tracecast/mesh/submesh.h"
#include "tile.h"

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

Mesh planar_crop(const Mesh& mesh, const Vec3& direction, double keep) { return submesh(mesh, planar_crop_faces(mesh, direction, keep)); }

std::vector<char> planar_crop_faces(const Mesh& mesh, const Vec3& direction, double keep) {
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
  return k;
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

namespace {

using SdfCell = std::array<std::int64_t, 3>;

//! A sparse grid of signed distances: the cells the zero level passes through, and their corners'
//! values. The grid is offset by odd fractions of a voxel so that its points do not fall exactly
//! on the surface's own vertices (a zero value would pinch the extracted surface there).
struct SdfGrid {
  double h;
  Vec3 o;
  std::unordered_map<std::uint64_t, double> value;  // grid point -> signed distance
  std::unordered_map<std::uint64_t, SdfCell> cells;  // cells kept
  Vec3 point(std::int64_t i, std::int64_t j, std::int64_t k) const { return o + Vec3(i * h, j * h, k * h); }
};

//! Corner `corner` (0–7, bits x, y, z) of cell c.
std::array<std::int64_t, 3> corner_of(const SdfCell& c, int corner) {
  return {c[0] + (corner & 1), c[1] + ((corner >> 1) & 1), c[2] + ((corner >> 2) & 1)};
}

//! The cells that surface samples (every h/2) fall in.
std::vector<SdfCell> seed_cells(const Mesh& mesh, SdfGrid& g) {
  std::vector<SdfCell> fresh;
  double total = 0;
  for (const Tri& t : mesh.triangles) total += area(mesh, t);
  for (const Vec3& p : sample_surface(mesh, static_cast<std::size_t>(4 * total / (g.h * g.h)) + 100, 11).points) {
    const SdfCell c{static_cast<std::int64_t>(std::floor((p.x() - g.o.x()) / g.h)), static_cast<std::int64_t>(std::floor((p.y() - g.o.y()) / g.h)),
                    static_cast<std::int64_t>(std::floor((p.z() - g.o.z()) / g.h))};
    if (g.cells.emplace(detail::voxel_key(c[0], c[1], c[2]), c).second) fresh.push_back(c);
  }
  return fresh;
}

//! The neighbours of `fresh` cells across faces whose corners change sign, not kept yet.
std::vector<SdfCell> crossed_neighbours(const std::vector<SdfCell>& fresh, SdfGrid& g) {
  std::vector<SdfCell> next;
  for (const SdfCell& c : fresh)
    for (int axis = 0; axis < 3; ++axis)
      for (int side = 0; side < 2; ++side) {
        int neg = 0;
        for (int a = 0; a < 2; ++a)
          for (int b = 0; b < 2; ++b) {
            SdfCell q = c;
            q[static_cast<std::size_t>(axis)] += side;
            q[static_cast<std::size_t>((axis + 1) % 3)] += a;
            q[static_cast<std::size_t>((axis + 2) % 3)] += b;
            neg += g.value[detail::voxel_key(q[0], q[1], q[2])] < 0;
          }
        if (neg == 0 || neg == 4) continue;
        SdfCell nb = c;
        nb[static_cast<std::size_t>(axis)] += side ? 1 : -1;
        if (g.cells.emplace(detail::voxel_key(nb[0], nb[1], nb[2]), nb).second) next.push_back(nb);
      }
  return next;
}

//! Evaluates new corners, then follows the zero level into the cells it crosses, until closed.
void grow_zero_level(const SurfaceQuery& query, std::vector<SdfCell> fresh, SdfGrid& g) {
  // A closed zero level stays within a cell or two of the seeds; one that keeps growing means the
  // distance's sign is inconsistent somewhere (it once was, beside thin rims) and would fill memory.
  const std::size_t cell_budget = 8 * g.cells.size() + 100000;
  while (!fresh.empty()) {
    std::vector<std::uint64_t> keys;
    std::vector<Vec3> pts;
    for (const SdfCell& c : fresh)
      for (int corner = 0; corner < 8; ++corner) {
        const auto [i, j, k] = corner_of(c, corner);
        if (g.value.emplace(detail::voxel_key(i, j, k), 0.0).second) {
          keys.push_back(detail::voxel_key(i, j, k));
          pts.push_back(g.point(i, j, k));
        }
      }
    const std::vector<double> d = query.signed_distances(pts);
    for (std::size_t n = 0; n < keys.size(); ++n) g.value[keys[n]] = d[n];
    std::vector<SdfCell> next = crossed_neighbours(fresh, g);
    if (g.cells.size() > cell_budget)
      throw std::runtime_error("SDF resampling: the zero level runs away from the surface (inconsistent inside/outside)");
    fresh.swap(next);
  }
}

//! The cell's corners as the level-set mesher reads them.
LevelSetCell level_set_cell_of(const SdfGrid& g, const SdfCell& c) {
  LevelSetCell cell;
  for (int corner = 0; corner < 8; ++corner) {
    const auto [i, j, k] = corner_of(c, corner);
    const auto u = static_cast<std::size_t>(corner);
    cell.key[u] = detail::voxel_key(i, j, k);
    cell.value[u] = g.value.at(cell.key[u]);
    cell.point[u] = g.point(i, j, k);
  }
  return cell;
}

}  // namespace

Mesh sdf_resample(const Mesh& mesh, double h) {
  if (!(h > 0)) throw InputError("SDF resampling: the voxel size must be positive");
  const SurfaceQuery query(mesh);
  SdfGrid g{h, h * Vec3(0.1234567, 0.2345678, 0.3456789), {}, {}};
  grow_zero_level(query, seed_cells(mesh, g), g);
  // Marching tetrahedra over the kept cells.
  Mesh out;
  EdgeVertices shared;
  for (const auto& [ck, c] : g.cells) level_set_cell(level_set_cell_of(g, c), shared, out);
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
