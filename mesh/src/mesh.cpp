#include "tracecast/mesh/mesh.h"

#include <cmath>
#include <cstring>

#include "tracecast/mesh/errors.h"

namespace tracecast {

Aabb bounding_box(const std::vector<Vec3>& points) {
  Aabb box;
  for (const Vec3& p : points) box.add(p);
  return box;
}

void scale(Mesh& mesh, double factor) {
  for (Vec3& v : mesh.vertices) v *= factor;
}

void scale(PointCloud& cloud, double factor) {
  for (Vec3& p : cloud.points) p *= factor;
}

double signed_volume(const Mesh& m) {
  if (m.triangles.empty()) return 0;
  // About the box centre: far from the origin the plain sum loses digits to cancellation.
  const Aabb box = bounding_box(m);
  const Vec3 c = 0.5 * (box.min + box.max);
  double v = 0;
  for (const Tri& t : m.triangles) v += (m.vertices[t[0]] - c).dot((m.vertices[t[1]] - c).cross(m.vertices[t[2]] - c));
  return v / 6.0;
}

double surface_area(const Mesh& m) {
  double a = 0;
  for (const Tri& t : m.triangles) a += 0.5 * (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).norm();
  return a;
}

void append(Mesh& a, const Mesh& b) {
  const auto offset = static_cast<std::int32_t>(a.vertices.size());
  const bool normals = (a.vertices.empty() || a.has_normals()) && b.has_normals();
  const bool colors = (a.vertices.empty() || a.has_colors()) && b.has_colors();
  if (!normals) a.normals.clear();
  if (!colors) a.colors.clear();
  a.vertices.insert(a.vertices.end(), b.vertices.begin(), b.vertices.end());
  if (normals) a.normals.insert(a.normals.end(), b.normals.begin(), b.normals.end());
  if (colors) a.colors.insert(a.colors.end(), b.colors.begin(), b.colors.end());
  a.triangles.reserve(a.triangles.size() + b.triangles.size());
  for (const Tri& t : b.triangles) a.triangles.push_back({t[0] + offset, t[1] + offset, t[2] + offset});
}

namespace {
std::uint64_t bits(double v) {
  v = v == 0.0 ? 0.0 : v;  // +0 and -0 are the same point
  std::uint64_t u;
  std::memcpy(&u, &v, 8);
  return u;
}
std::uint64_t mix(std::uint64_t h) {  // a 64-bit finaliser (splitmix64's)
  h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
  h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
  return h ^ (h >> 31);
}
std::uint64_t position_hash(const Vec3& p) {
  return mix(bits(p.x()) ^ mix(bits(p.y()) ^ mix(bits(p.z()))));
}
}  // namespace

std::size_t weld_identical_vertices(Mesh& mesh) {
  const std::size_t n = mesh.vertices.size();
  std::vector<char> used(n, 0);
  for (const Tri& t : mesh.triangles)
    for (std::int32_t i : t) used[static_cast<std::size_t>(i)] = 1;

  // Open addressing with linear probing: several times faster than std::unordered_map here,
  // where scans and STL files bring millions of corners.
  std::size_t cap = 16;
  while (cap < 2 * n) cap <<= 1;
  std::vector<std::int32_t> table(cap, -1);  // new vertex index, or -1
  std::vector<std::int32_t> remap(n, -1);
  std::vector<std::size_t> keep;
  keep.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!used[i]) continue;
    const Vec3& p = mesh.vertices[i];
    std::size_t h = static_cast<std::size_t>(position_hash(p)) & (cap - 1);
    for (;;) {
      const std::int32_t slot = table[h];
      if (slot < 0) {
        table[h] = static_cast<std::int32_t>(keep.size());
        keep.push_back(i);
        break;
      }
      if (mesh.vertices[keep[static_cast<std::size_t>(slot)]] == p) break;
      h = (h + 1) & (cap - 1);
    }
    remap[i] = table[h];
  }
  const std::size_t removed = n - keep.size();
  if (removed == 0) return 0;
  auto compact = [&](std::vector<Vec3>& a) {
    if (a.empty()) return;
    std::vector<Vec3> out(keep.size());
    for (std::size_t j = 0; j < keep.size(); ++j) out[j] = a[keep[j]];
    a.swap(out);
  };
  compact(mesh.vertices);
  compact(mesh.normals);
  compact(mesh.colors);
  for (Tri& t : mesh.triangles)
    for (std::int32_t& i : t) i = remap[static_cast<std::size_t>(i)];
  return removed;
}

namespace {
void check_points(const std::vector<Vec3>& pts, const std::string& what, const char* kind) {
  for (std::size_t i = 0; i < pts.size(); ++i)
    if (!pts[i].allFinite())
      throw InputError(what, std::string(kind) + " " + std::to_string(i) + " has a non-finite coordinate (NaN or Inf)");
}
void check_attr(std::size_t n, std::size_t expected, const std::string& what, const char* name) {
  if (n != 0 && n != expected)
    throw InputError(what, std::string(name) + " has " + std::to_string(n) + " entries for " +
                               std::to_string(expected) + " points");
}
}  // namespace

void validate(const Mesh& mesh, const std::string& what) {
  check_points(mesh.vertices, what, "vertex");
  check_attr(mesh.normals.size(), mesh.vertices.size(), what, "normals");
  check_attr(mesh.colors.size(), mesh.vertices.size(), what, "colours");
  const auto nv = static_cast<std::int64_t>(mesh.vertices.size());
  for (std::size_t f = 0; f < mesh.triangles.size(); ++f)
    for (std::int32_t i : mesh.triangles[f])
      if (i < 0 || i >= nv)
        throw InputError(what, "face " + std::to_string(f) + " refers to vertex " + std::to_string(i) +
                                   ", but there are only " + std::to_string(nv) + " vertices");
}

void validate(const PointCloud& cloud, const std::string& what) {
  check_points(cloud.points, what, "point");
  check_attr(cloud.normals.size(), cloud.points.size(), what, "normals");
  check_attr(cloud.colors.size(), cloud.points.size(), what, "colours");
}

PointCloud to_point_cloud(const Mesh& mesh) {
  PointCloud c;
  c.points = mesh.vertices;
  c.normals = mesh.normals;
  c.colors = mesh.colors;
  return c;
}

}  // namespace tracecast
