// Marching tetrahedra (see level_set.h).
#include "tracecast/mesh/level_set.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>

#include <tbb/parallel_for.h>

#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/log.h"

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
    struct Corners {  // a tetrahedron's corners on one side, in its order
      std::array<int, 4> v{};
      std::size_t n = 0;
      bool empty() const { return n == 0; }
      std::size_t size() const { return n; }
      int operator[](std::size_t i) const { return v[i]; }
      const int* begin() const { return v.data(); }
      const int* end() const { return v.data() + n; }
    } in, outside;
    for (int v : tet) {
      Corners& side = c.value[static_cast<std::size_t>(v)] < 0 ? in : outside;
      side.v[side.n++] = v;
    }
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
      const Corners& rest = in.size() == 1 ? outside : in;
      emit(vertex(lone, rest[0]), vertex(lone, rest[1]), vertex(lone, rest[2]));
    } else {
      const std::int32_t a = vertex(in[0], outside[0]), b = vertex(in[0], outside[1]), d = vertex(in[1], outside[1]),
                         e = vertex(in[1], outside[0]);
      emit(a, b, d);
      emit(a, d, e);
    }
  }
}

namespace {

//! A regular grid of field values, NaN where not sampled.
struct Grid {
  Vec3 o;
  double h;
  std::int64_t nx, ny, nz;
  std::size_t count = 1;      //!< fields sampled at each point
  std::vector<double> value;  //!< point-major: value[key * count + field]
  std::uint64_t key(std::int64_t i, std::int64_t j, std::int64_t k) const { return static_cast<std::uint64_t>((k * ny + j) * nx + i); }
  Vec3 point(std::int64_t i, std::int64_t j, std::int64_t k) const { return o + h * Vec3(i, j, k); }
};

//! Samples the field at the listed grid points, a batch at a time. A value at or next to zero puts
//! the vertices of every edge from that grid point on the point itself, once written in single
//! precision (triangles of no area): it is kept 10⁻⁴ h off.
void sample(const FieldFn& field, const std::vector<std::uint64_t>& keys, Grid& g) {
  constexpr std::size_t kBatch = 1 << 18;
  for (std::size_t b = 0; b < keys.size(); b += kBatch) {
    const std::size_t e = std::min(keys.size(), b + kBatch);
    std::vector<Vec3> pts;
    pts.reserve(e - b);
    for (std::size_t n = b; n < e; ++n) {
      const auto k = static_cast<std::int64_t>(keys[n]);
      pts.push_back(g.point(k % g.nx, (k / g.nx) % g.ny, k / (g.nx * g.ny)));
    }
    const std::vector<double> v = field(pts);
    if (v.size() != pts.size() * g.count) throw ProcessingError("level set: the field gave the wrong number of values");
    for (std::size_t n = b; n < e; ++n)
      for (std::size_t f = 0; f < g.count; ++f) {
        double x = v[(n - b) * g.count + f];
        if (std::abs(x) < 1e-4 * g.h) x = x < 0 ? -1e-4 * g.h : 1e-4 * g.h;
        g.value[keys[n] * g.count + f] = x;
      }
  }
}

//! Samples the fine grid where the surface may pass: every point, or (with a slope bound) the
//! corners of cells 4 steps wide, then of the halves of those the surface may cross (judged from
//! their corners' values and the bound), down to single steps.
void sample_band(const FieldFn& field, Grid& g, double lipschitz) {
  if (!(lipschitz > 0)) {
    std::vector<std::uint64_t> keys(g.value.size() / g.count);
    for (std::size_t n = 0; n < keys.size(); ++n) keys[n] = n;
    sample(field, keys, g);
    return;
  }
  using Cell = std::array<std::int64_t, 3>;  // lowest corner
  std::vector<Cell> cells;
  std::int64_t size = 4;
  for (std::int64_t k = 0; k + 1 < g.nz; k += size)
    for (std::int64_t j = 0; j + 1 < g.ny; j += size)
      for (std::int64_t i = 0; i + 1 < g.nx; i += size) cells.push_back({i, j, k});
  auto corner_keys = [&](const std::vector<Cell>& cs, std::int64_t sz) {
    std::vector<std::uint64_t> keys;
    for (const Cell& c : cs)
      for (int corner = 0; corner < 8; ++corner) {
        const std::int64_t a = std::min(c[0] + sz * (corner & 1), g.nx - 1), b = std::min(c[1] + sz * ((corner >> 1) & 1), g.ny - 1),
                           d = std::min(c[2] + sz * ((corner >> 2) & 1), g.nz - 1);
        const std::uint64_t key = g.key(a, b, d);
        if (std::isnan(g.value[key * g.count])) {
          g.value[key * g.count] = 0;  // claimed: sampled below
          keys.push_back(key);
        }
      }
    return keys;
  };
  std::size_t sampled = 0;
  while (true) {
    const std::vector<std::uint64_t> keys = corner_keys(cells, size);
    sampled += keys.size();
    sample(field, keys, g);
    if (size == 1) break;
    // Every point of a cell lies within half its diagonal of one of its corners, so a cell the
    // surface passes through has a corner whose value is at most the slope bound times that.
    const double reach = 1.01 * lipschitz * size * g.h * std::sqrt(3.0) / 2;
    std::vector<Cell> next;
    for (const Cell& c : cells) {
      double least = std::numeric_limits<double>::infinity();
      for (int corner = 0; corner < 8; ++corner) {
        const std::uint64_t key = g.key(std::min(c[0] + size * (corner & 1), g.nx - 1), std::min(c[1] + size * ((corner >> 1) & 1), g.ny - 1),
                                        std::min(c[2] + size * ((corner >> 2) & 1), g.nz - 1));
        for (std::size_t f = 0; f < g.count; ++f) least = std::min(least, std::abs(g.value[key * g.count + f]));
      }
      if (least > reach) continue;
      const std::int64_t half = size / 2;
      for (int child = 0; child < 8; ++child) {
        const Cell q{c[0] + half * (child & 1), c[1] + half * ((child >> 1) & 1), c[2] + half * ((child >> 2) & 1)};
        if (q[0] + 1 < g.nx && q[1] + 1 < g.ny && q[2] + 1 < g.nz) next.push_back(q);
      }
    }
    cells.swap(next);
    size /= 2;
  }
  log_debug("level set: {} of {} grid points sampled", sampled, g.value.size() / g.count);
}

}  // namespace

std::vector<Mesh> level_set_surfaces(const FieldFn& fields, std::size_t count, const Aabb& box, double h, double lipschitz) {
  if (!(h > 0) || box.empty() || count == 0) throw InputError("level set: the grid step must be positive, the box not empty, a field given");
  Grid g;
  g.h = h;
  g.count = count;
  g.o = box.min - h * Vec3(0.8765432, 0.7654321, 0.6543219);
  const Vec3 n = ((box.max - g.o) / h).array().ceil() + 1;
  g.nx = static_cast<std::int64_t>(n.x()), g.ny = static_cast<std::int64_t>(n.y()), g.nz = static_cast<std::int64_t>(n.z());
  if (static_cast<double>(g.nx) * g.ny * g.nz * count > 1.5e8) throw InputError("level set: over 150 M grid values; use a coarser step");
  g.value.assign(static_cast<std::size_t>(g.nx * g.ny * g.nz) * count, std::numeric_limits<double>::quiet_NaN());
  const auto t0 = std::chrono::steady_clock::now();
  sample_band(fields, g, lipschitz);
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<Mesh> out(count);
  tbb::parallel_for(std::size_t(0), count, [&](std::size_t f) {
    EdgeVertices shared;
    LevelSetCell c;
    for (std::int64_t k = 0; k + 1 < g.nz; ++k)
      for (std::int64_t j = 0; j + 1 < g.ny; ++j)
        for (std::int64_t i = 0; i + 1 < g.nx; ++i) {
          int neg = 0;
          bool sampled = true;
          for (int corner = 0; corner < 8; ++corner) {
            const auto u = static_cast<std::size_t>(corner);
            c.key[u] = g.key(i + (corner & 1), j + ((corner >> 1) & 1), k + ((corner >> 2) & 1));
            c.value[u] = g.value[c.key[u] * count + f];
            sampled = sampled && !std::isnan(c.value[u]);
            neg += c.value[u] < 0;
          }
          if (!sampled || neg == 0 || neg == 8) continue;
          for (int corner = 0; corner < 8; ++corner)
            c.point[static_cast<std::size_t>(corner)] = g.point(i + (corner & 1), j + ((corner >> 1) & 1), k + ((corner >> 2) & 1));
          level_set_cell(c, shared, out[f]);
        }
  });
  log_debug("level set: sampled in {:.1f} s, {} surfaces extracted in {:.1f} s", std::chrono::duration<double>(t1 - t0).count(), count,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count());
  return out;
}

Mesh level_set_surface(const FieldFn& field, const Aabb& box, double h, double lipschitz) {
  return std::move(level_set_surfaces(field, 1, box, h, lipschitz).front());
}

}  // namespace tracecast
