// Fast marching on triangle meshes (see geodesic.h).
#include "tracecast/mesh/geodesic.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>

namespace tracecast {

Adjacency::Adjacency(const Mesh& m) {
  std::vector<std::vector<std::int32_t>> a(m.vertices.size());
  for (const Tri& t : m.triangles)
    for (int k = 0; k < 3; ++k) {
      a[static_cast<std::size_t>(t[k])].push_back(t[(k + 1) % 3]);
      a[static_cast<std::size_t>(t[k])].push_back(t[(k + 2) % 3]);
    }
  start.push_back(0);
  for (auto& v : a) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    nb.insert(nb.end(), v.begin(), v.end());
    start.push_back(nb.size());
  }
}

std::vector<char> grow(std::vector<char> mark, const Adjacency& adj, int rings) {
  for (int r = 0; r < rings; ++r) {
    std::vector<char> next = mark;
    for (std::size_t i = 0; i < mark.size(); ++i)
      if (mark[i]) adj.each(i, [&](std::size_t j) { next[j] = 1; });
    mark.swap(next);
  }
  return mark;
}

std::vector<double> vertex_areas(const Mesh& m) {
  std::vector<double> a(m.vertices.size(), 0.0);
  for (const Tri& t : m.triangles) {
    const double third = (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).norm() / 6.0;
    for (std::int32_t v : t) a[static_cast<std::size_t>(v)] += third;
  }
  return a;
}

namespace {

//! Arrival time at c through triangle (a, b, c) from a front known at a and b (da, db): the
//! front is the circle of a virtual source s unfolded into the triangle's plane, on the far side
//! of ab from c; the update holds when the ray from s to c crosses the segment ab.
double triangle_update(const Vec3& a, const Vec3& b, const Vec3& c, double da, double db) {
  const Vec3 ab = b - a;
  const double L = ab.norm();
  if (L <= 0) return std::numeric_limits<double>::infinity();
  const Vec3 ex = ab / L;
  const Vec3 ac = c - a;
  const double cx = ac.dot(ex);
  const double cy = (ac - cx * ex).norm();  // c at (cx, cy), cy ≥ 0
  // The source at (sx, sy) with |s| = da, |s − (L, 0)| = db, sy ≤ 0.
  const double sx = (da * da - db * db + L * L) / (2 * L);
  const double sy2 = da * da - sx * sx;
  if (sy2 < 0 || cy <= 0) return std::numeric_limits<double>::infinity();
  const double sy = -std::sqrt(sy2);
  // Where the segment s → c crosses the line y = 0.
  const double t = -sy / (cy - sy);
  const double x = sx + t * (cx - sx);
  if (x < 0 || x > L) return std::numeric_limits<double>::infinity();
  return std::hypot(cx - sx, cy - sy);
}

}  // namespace

std::vector<double> geodesic_distance(const Mesh& m, const std::vector<std::int32_t>& sources) {
  const std::size_t n = m.vertices.size();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> d(n, inf);
  std::vector<char> done(n, 0);
  // Triangles around each vertex (compressed rows).
  std::vector<std::size_t> start(n + 1, 0);
  for (const Tri& t : m.triangles)
    for (std::int32_t v : t) ++start[static_cast<std::size_t>(v) + 1];
  for (std::size_t i = 0; i < n; ++i) start[i + 1] += start[i];
  std::vector<std::size_t> fill(start.begin(), start.end() - 1), around(start.back());
  for (std::size_t f = 0; f < m.triangles.size(); ++f)
    for (std::int32_t v : m.triangles[f]) around[fill[static_cast<std::size_t>(v)]++] = f;

  using Item = std::pair<double, std::int32_t>;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> heap;
  for (std::int32_t s : sources) {
    d[static_cast<std::size_t>(s)] = 0;
    heap.emplace(0.0, s);
  }
  auto offer = [&](std::size_t v, double value) {
    if (value < d[v]) {
      d[v] = value;
      heap.emplace(value, static_cast<std::int32_t>(v));
    }
  };
  while (!heap.empty()) {
    const auto [dv, vi] = heap.top();
    heap.pop();
    const auto v = static_cast<std::size_t>(vi);
    if (done[v] || dv > d[v]) continue;
    done[v] = 1;
    for (std::size_t k = start[v]; k < start[v + 1]; ++k) {
      const Tri& t = m.triangles[around[k]];
      int at = 0;
      while (static_cast<std::size_t>(t[at]) != v) ++at;
      const auto b = static_cast<std::size_t>(t[(at + 1) % 3]), c = static_cast<std::size_t>(t[(at + 2) % 3]);
      const Vec3& pv = m.vertices[v];
      for (const auto& [known, open] : {std::pair{b, c}, std::pair{c, b}}) {
        if (done[open]) continue;
        double best = dv + (m.vertices[open] - pv).norm();
        if (done[known]) best = std::min(best, triangle_update(pv, m.vertices[known], m.vertices[open], dv, d[known]));
        offer(open, best);
      }
    }
  }
  return d;
}

}  // namespace tracecast
