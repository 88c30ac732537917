#include "tracecast/mesh/mesh.h"

#include <cmath>
#include <cstring>
#include <unordered_map>

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
struct PositionKey {
  std::uint64_t x, y, z;
  bool operator==(const PositionKey& o) const { return x == o.x && y == o.y && z == o.z; }
};
struct PositionHash {
  std::size_t operator()(const PositionKey& k) const {
    std::uint64_t h = k.x * 0x9E3779B97F4A7C15ull;
    h ^= k.y + 0x632BE59BD9B4E019ull + (h << 6) + (h >> 2);
    h ^= k.z + 0x85157AF5ull + (h << 6) + (h >> 2);
    return static_cast<std::size_t>(h);
  }
};
PositionKey key_of(const Vec3& p) {
  PositionKey k;
  // +0.0 and -0.0 are the same point: normalise before taking the bit pattern.
  const double x = p.x() == 0.0 ? 0.0 : p.x(), y = p.y() == 0.0 ? 0.0 : p.y(), z = p.z() == 0.0 ? 0.0 : p.z();
  std::memcpy(&k.x, &x, 8);
  std::memcpy(&k.y, &y, 8);
  std::memcpy(&k.z, &z, 8);
  return k;
}
}  // namespace

std::size_t weld_identical_vertices(Mesh& mesh) {
  const std::size_t n = mesh.vertices.size();
  std::vector<std::int32_t> remap(n, -1);
  std::vector<char> used(n, 0);
  for (const Tri& t : mesh.triangles)
    for (std::int32_t i : t) used[static_cast<std::size_t>(i)] = 1;

  std::unordered_map<PositionKey, std::int32_t, PositionHash> first;
  first.reserve(n);
  std::int32_t next = 0;
  std::vector<std::size_t> keep;
  keep.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!used[i]) continue;
    auto [it, inserted] = first.emplace(key_of(mesh.vertices[i]), next);
    if (inserted) {
      keep.push_back(i);
      ++next;
    }
    remap[i] = it->second;
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
