// Marching tetrahedra (see level_set.h).
#include "tracecast/mesh/level_set.h"

#include <cmath>

#include "tracecast/mesh/errors.h"

namespace tracecast {

void level_set_cell(const LevelSetCell& c, EdgeVertices& shared, Mesh& out) {
  static constexpr int kTets[6][4] = {{0, 1, 3, 7}, {0, 3, 2, 7}, {0, 2, 6, 7}, {0, 6, 4, 7}, {0, 4, 5, 7}, {0, 5, 1, 7}};
  int neg = 0;
  for (double v : c.value) neg += v < 0;
  if (neg == 0 || neg == 8) return;
  auto vertex = [&](int a, int b) {
    const auto ua = static_cast<std::size_t>(a), ub = static_cast<std::size_t>(b);
    auto [it, isnew] = shared.emplace(std::minmax(c.key[ua], c.key[ub]), static_cast<std::int32_t>(out.vertices.size()));
    if (isnew) {
      const double t = c.value[ua] / (c.value[ua] - c.value[ub]);
      out.vertices.push_back(c.point[ua] + t * (c.point[ub] - c.point[ua]));
    }
    return it->second;
  };
  for (const auto& tet : kTets) {
    std::vector<int> in, outside;
    for (int v : tet) (c.value[static_cast<std::size_t>(v)] < 0 ? in : outside).push_back(v);
    if (in.empty() || outside.empty()) continue;
    Vec3 cin = Vec3::Zero(), cout = Vec3::Zero();
    for (int v : in) cin += c.point[static_cast<std::size_t>(v)] / static_cast<double>(in.size());
    for (int v : outside) cout += c.point[static_cast<std::size_t>(v)] / static_cast<double>(outside.size());
    auto emit = [&](std::int32_t a, std::int32_t b, std::int32_t d) {
      const Vec3 n = (out.vertices[static_cast<std::size_t>(b)] - out.vertices[static_cast<std::size_t>(a)])
                         .cross(out.vertices[static_cast<std::size_t>(d)] - out.vertices[static_cast<std::size_t>(a)]);
      if (n.dot(cout - cin) < 0) std::swap(b, d);
      if (a != b && b != d && a != d) out.triangles.push_back({a, b, d});
    };
    if (in.size() == 1 || outside.size() == 1) {
      const int lone = in.size() == 1 ? in[0] : outside[0];
      const std::vector<int>& rest = in.size() == 1 ? outside : in;
      emit(vertex(lone, rest[0]), vertex(lone, rest[1]), vertex(lone, rest[2]));
    } else {
      const std::int32_t a = vertex(in[0], outside[0]), b = vertex(in[0], outside[1]), d = vertex(in[1], outside[1]),
                         e = vertex(in[1], outside[0]);
      emit(a, b, d);
      emit(a, d, e);
    }
  }
}

Mesh level_set_surface(const FieldFn& field, const Aabb& box, double h) {
  if (!(h > 0) || box.empty()) throw InputError("level set: the grid step must be positive and the box not empty");
  const Vec3 o = box.min - h * Vec3(0.8765432, 0.7654321, 0.6543219);
  const Vec3 n = ((box.max - o) / h).array().ceil() + 1;
  const auto nx = static_cast<std::int64_t>(n.x()), ny = static_cast<std::int64_t>(n.y()), nz = static_cast<std::int64_t>(n.z());
  if (static_cast<double>(nx) * ny * nz > 6e7) throw InputError("level set: over 60 M grid points; use a coarser step");
  auto key = [&](std::int64_t i, std::int64_t j, std::int64_t k) { return static_cast<std::uint64_t>((k * ny + j) * nx + i); };
  auto point = [&](std::int64_t i, std::int64_t j, std::int64_t k) { return Vec3(o + h * Vec3(i, j, k)); };
  std::vector<double> value(static_cast<std::size_t>(nx * ny * nz));
  // One slab of z at a time keeps the batch of points small.
  for (std::int64_t k = 0; k < nz; ++k) {
    std::vector<Vec3> pts(static_cast<std::size_t>(nx * ny));
    for (std::int64_t j = 0; j < ny; ++j)
      for (std::int64_t i = 0; i < nx; ++i) pts[static_cast<std::size_t>(j * nx + i)] = point(i, j, k);
    std::vector<double> v = field(pts);
    // A value at or next to zero puts the vertices of every edge from that grid point on the
    // point itself, once written in single precision (triangles of no area): keep it 10⁻⁴ h off.
    for (double& x : v)
      if (std::abs(x) < 1e-4 * h) x = x < 0 ? -1e-4 * h : 1e-4 * h;
    std::copy(v.begin(), v.end(), value.begin() + static_cast<long>(k * nx * ny));
  }
  Mesh out;
  EdgeVertices shared;
  LevelSetCell c;
  for (std::int64_t k = 0; k + 1 < nz; ++k)
    for (std::int64_t j = 0; j + 1 < ny; ++j)
      for (std::int64_t i = 0; i + 1 < nx; ++i) {
        int neg = 0;
        for (int corner = 0; corner < 8; ++corner) {
          const std::int64_t a = i + (corner & 1), b = j + ((corner >> 1) & 1), d = k + ((corner >> 2) & 1);
          const auto u = static_cast<std::size_t>(corner);
          c.key[u] = key(a, b, d);
          c.value[u] = value[c.key[u]];
          neg += c.value[u] < 0;
        }
        if (neg == 0 || neg == 8) continue;
        for (int corner = 0; corner < 8; ++corner)
          c.point[static_cast<std::size_t>(corner)] = point(i + (corner & 1), j + ((corner >> 1) & 1), k + ((corner >> 2) & 1));
        level_set_cell(c, shared, out);
      }
  return out;
}

}  // namespace tracecast
