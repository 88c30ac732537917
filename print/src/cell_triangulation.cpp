// The triangles of a height field's cell through its extra points (heightfield.h: CellPoints),
// by CGAL's 2D Delaunay triangulation: a small translation unit of its own, apart from the booleans.
#include <CGAL/Delaunay_triangulation_2.h>
#include <CGAL/Exact_predicates_inexact_constructions_kernel.h>
#include <CGAL/Triangulation_vertex_base_with_info_2.h>

#include "tracecast/print/heightfield.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tracecast::print {

namespace {
using K = CGAL::Exact_predicates_inexact_constructions_kernel;
using Vb = CGAL::Triangulation_vertex_base_with_info_2<std::int32_t, K>;
using Tds = CGAL::Triangulation_data_structure_2<Vb>;
using Delaunay = CGAL::Delaunay_triangulation_2<K, Tds>;
}  // namespace

std::vector<Tri> cell_triangles(const Grid& g, int i, int j, const CellPoints& cp) {
  std::vector<std::pair<K::Point_2, std::int32_t>> pts;
  for (const auto& [di, dj] : {std::pair{0, 0}, {1, 0}, {1, 1}, {0, 1}})
    pts.emplace_back(K::Point_2(g.X(i + di), g.Y(j + dj)), static_cast<std::int32_t>(g.index(i + di, j + dj)));
  const auto layer = static_cast<std::int32_t>(g.v.size());
  for (const std::int32_t k : cp.cells.at(g.index(i, j))) {
    const Vec3& p = cp.points[static_cast<std::size_t>(k)];
    pts.emplace_back(K::Point_2(p.x(), p.y()), layer + k);
  }
  Delaunay dt(pts.begin(), pts.end());
  std::vector<Tri> out;
  for (auto f = dt.finite_faces_begin(); f != dt.finite_faces_end(); ++f)
    out.push_back({f->vertex(0)->info(), f->vertex(1)->info(), f->vertex(2)->info()});
  return out;
}

bool locate(const Grid& g, const CellPoints& cp, double x, double y, std::array<std::int32_t, 3>& v, std::array<double, 3>& w,
            CellTriangles* cache) {
  GridCorners at;
  if (!corners(g, x, y, at)) return false;
  const std::size_t cell = cell_of(g, x, y);
  if (!cp.cells.count(cell)) {
    for (int k = 0; k < 3; ++k) v[k] = static_cast<std::int32_t>(at.node[k]), w[k] = at.weight[k];
    return true;
  }
  std::vector<Tri> local;
  const std::vector<Tri>* tris = &local;
  const int i = static_cast<int>(cell % g.nx), j = static_cast<int>(cell / g.nx);
  if (cache) {
    auto it = cache->find(cell);
    if (it == cache->end()) it = cache->emplace(cell, cell_triangles(g, i, j, cp)).first;
    tris = &it->second;
  } else {
    local = cell_triangles(g, i, j, cp);
  }
  const auto layer = static_cast<std::int32_t>(g.v.size());
  auto xy = [&](std::int32_t n) {
    return n < layer ? Eigen::Vector2d(g.X(n % g.nx), g.Y(n / g.nx)) : Eigen::Vector2d(cp.points[static_cast<std::size_t>(n - layer)].head<2>());
  };
  auto cross = [](const Eigen::Vector2d& a, const Eigen::Vector2d& b) { return a.x() * b.y() - a.y() * b.x(); };
  const Eigen::Vector2d q(x, y);
  double best = -std::numeric_limits<double>::infinity();  // the triangle q is least outside of (rounding at shared edges)
  for (const Tri& t : *tris) {
    const Eigen::Vector2d a = xy(t[0]), b = xy(t[1]), c = xy(t[2]);
    const double area = cross(b - a, c - a);
    if (std::abs(area) < 1e-14) continue;
    const std::array<double, 3> u = {cross(b - q, c - q) / area, cross(c - q, a - q) / area, cross(a - q, b - q) / area};
    const double worst = std::min({u[0], u[1], u[2]});
    if (worst > best) best = worst, v = t, w = u;
    if (worst >= 0) break;
  }
  return best > -1e-6;
}

double sample(const Grid& g, const CellPoints& cp, double x, double y, CellTriangles* cache) {
  std::array<std::int32_t, 3> v{};
  std::array<double, 3> w{};
  if (!locate(g, cp, x, y, v, w, cache)) return std::numeric_limits<double>::quiet_NaN();
  const auto layer = static_cast<std::int32_t>(g.v.size());
  double z = 0;
  for (int k = 0; k < 3; ++k) z += w[k] * (v[k] < layer ? g.v[static_cast<std::size_t>(v[k])] : cp.points[static_cast<std::size_t>(v[k] - layer)].z());
  return z;
}

}  // namespace tracecast::print
