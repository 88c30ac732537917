// The parting line along the appliance's rim (mold_rim.h).
#include "mold_rim.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "tracecast/mesh/distance.h"

namespace tracecast::print::stages {

namespace {

using Edge = std::pair<std::uint64_t, std::int32_t>;  // (lower vertex << 32 | higher vertex, face)

std::uint64_t edge_key(std::int32_t u, std::int32_t v) {
  const auto [lo, hi] = std::minmax(u, v);
  return static_cast<std::uint64_t>(lo) << 32 | static_cast<std::uint32_t>(hi);
}

//! Every face's edges, sorted: an edge's two faces side by side.
std::vector<Edge> sorted_edges(const Mesh& m) {
  std::vector<Edge> edges;
  edges.reserve(3 * m.triangles.size());
  for (std::size_t f = 0; f < m.triangles.size(); ++f)
    for (int k = 0; k < 3; ++k) edges.emplace_back(edge_key(m.triangles[f][k], m.triangles[f][(k + 1) % 3]), static_cast<std::int32_t>(f));
  std::sort(edges.begin(), edges.end());
  return edges;
}

//! Calls `visit(key, f, g)` for each edge shared by exactly two faces.
template <typename Visit>
void for_each_manifold_edge(const std::vector<Edge>& edges, Visit visit) {
  for (std::size_t k = 0; k + 1 < edges.size(); ++k) {
    if (edges[k].first != edges[k + 1].first || (k > 0 && edges[k - 1].first == edges[k].first) ||
        (k + 2 < edges.size() && edges[k + 2].first == edges[k].first))
      continue;
    visit(edges[k].first, static_cast<std::size_t>(edges[k].second), static_cast<std::size_t>(edges[k + 1].second));
  }
}

Vec3 face_normal(const Mesh& m, std::size_t f) {
  const Tri& t = m.triangles[f];
  return (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).normalized();
}

//! Of the faces the inspection found on the skin, those that face it: a step of 0.02 mm along the
//! normal goes at least 0.01 mm deeper into the skin. The rim's wall and the outer surface's last
//! tenths of a millimetre lie within the inspection's reach of the skin too; their edges with the
//! true skin side would be a second rim beside the first (0.04 mm apart on the generated face's
//! nose), and the parting surface zigzagging between the two left needles on the core. Only the
//! faces along the border of the skin side are tested, and the faces that fail open the test to
//! their neighbours on the skin.
std::vector<char> facing_skin(const Cavity& c, const std::vector<Edge>& edges) {
  const Mesh& m = c.appliance;
  std::vector<char> skin = c.inner, tested(m.triangles.size(), 0);
  std::vector<std::vector<std::size_t>> across(m.triangles.size());
  for_each_manifold_edge(edges, [&](std::uint64_t, std::size_t f, std::size_t g) { across[f].push_back(g), across[g].push_back(f); });
  std::vector<std::size_t> todo;
  for (std::size_t f = 0; f < skin.size(); ++f)
    if (skin[f] && std::any_of(across[f].begin(), across[f].end(), [&](std::size_t g) { return !c.inner[g]; })) todo.push_back(f);
  const SurfaceQuery query(c.face);
  while (!todo.empty()) {
    std::vector<Vec3> probe;
    for (const std::size_t f : todo) {
      const Tri& t = m.triangles[f];
      const Vec3 centre = (m.vertices[t[0]] + m.vertices[t[1]] + m.vertices[t[2]]) / 3;
      probe.push_back(centre);
      probe.push_back(centre + 0.02 * face_normal(m, f));
      tested[f] = 1;
    }
    const std::vector<double> sd = query.signed_distances(probe);
    std::vector<std::size_t> next;
    for (std::size_t q = 0; q < todo.size(); ++q) {
      if (sd[2 * q + 1] - sd[2 * q] < -0.01) continue;
      skin[todo[q]] = 0;
      for (const std::size_t g : across[todo[q]])
        if (skin[g] && !tested[g]) next.push_back(g), tested[g] = 1;
    }
    todo.swap(next);
  }
  return skin;
}

}  // namespace

std::vector<RimSegment> appliance_rim(const Cavity& c, double lift) {
  const Mesh& m = c.appliance;
  const std::vector<Edge> edges = sorted_edges(m);
  const std::vector<char> skin = facing_skin(c, edges);
  std::vector<RimSegment> rim;
  for_each_manifold_edge(edges, [&](std::uint64_t key, std::size_t f, std::size_t g) {
    if (skin[f] == skin[g]) return;
    if (!skin[f]) std::swap(f, g);  // f on the skin
    const Vec3 a = m.vertices[key >> 32], b = m.vertices[key & 0xffffffffu];
    const Tri& t = m.triangles[f];
    Vec3 third = m.vertices[t[0]];
    for (int q = 0; q < 3; ++q)
      if (m.vertices[t[q]] != a && m.vertices[t[q]] != b) third = m.vertices[t[q]];
    const Vec3 e = (b - a).normalized();
    Vec3 in = (third - a) - (third - a).dot(e) * e;  // along the face, away from the edge
    if (in.norm() < 1e-12) return;
    const Vec3 n = face_normal(m, f);
    double wall = 0;  // the rim's wall here: how far the face across the edge reaches off the skin
    for (const std::int32_t v : m.triangles[g]) wall = std::max(wall, (m.vertices[v] - a).dot(-n));
    const Vec3 shift = -std::clamp(0.5 * wall, 0.5 * lift, lift) * n + 0.01 * in.normalized();
    rim.push_back({a + shift, b + shift});
  });
  return rim;
}

CellPoints rim_points(const std::vector<RimSegment>& rim, const Grid& g) {
  constexpr double kApart = 0.01;
  CellPoints cp;
  auto inner = [&](int i, int j) { return i >= 1 && j >= 1 && i + 2 < g.nx && j + 2 < g.ny; };
  auto crowded = [&](std::size_t cell, const Vec3& q) {
    const auto it = cp.cells.find(cell);
    return it != cp.cells.end() && std::any_of(it->second.begin(), it->second.end(), [&](std::int32_t k) {
             return (cp.points[static_cast<std::size_t>(k)] - q).head<2>().norm() < kApart;
           });
  };
  auto add = [&](const Vec3& q, std::initializer_list<std::pair<int, int>> cells) {
    for (const auto& [i, j] : cells)
      if (!inner(i, j) || crowded(g.index(i, j), q)) return;
    const auto id = static_cast<std::int32_t>(cp.points.size());
    cp.points.push_back(q);
    for (const auto& [i, j] : cells) cp.cells[g.index(i, j)].push_back(id);
  };
  auto off_line = [&](double u, double u0) {  // distance to the nearest grid line, mm
    const double f = (u - u0) / g.h;
    return std::abs(f - std::round(f)) * g.h;
  };
  for (const auto& [a, b] : rim)  // where the rim crosses the grid's lines: in the cells on both sides
    for (int axis = 0; axis < 2; ++axis) {
      const int other = 1 - axis;
      const double u0 = axis == 0 ? g.x0 : g.y0, w0 = other == 0 ? g.x0 : g.y0;
      for (int l = static_cast<int>(std::ceil((std::min(a[axis], b[axis]) - u0) / g.h)); u0 + l * g.h < std::max(a[axis], b[axis]); ++l) {
        Vec3 q = a + (u0 + l * g.h - a[axis]) / (b[axis] - a[axis]) * (b - a);
        q[axis] = u0 + l * g.h;
        if (off_line(q[other], w0) < kApart) continue;  // at a node
        const int m = static_cast<int>(std::floor((q[other] - w0) / g.h));
        if (axis == 0) add(q, {{l - 1, m}, {l, m}});
        else add(q, {{m, l - 1}, {m, l}});
      }
    }
  for (const auto& s : rim)  // its corners inside cells
    for (const Vec3& q : {s.a, s.b})
      if (off_line(q.x(), g.x0) >= 0.5 * kApart && off_line(q.y(), g.y0) >= 0.5 * kApart)
        add(q, {{static_cast<int>(std::floor((q.x() - g.x0) / g.h)), static_cast<int>(std::floor((q.y() - g.y0) / g.h))}});
  return cp;
}

namespace {

//! The rim's height at its point nearest to node (i, j) and how far that is, if within `width`.
bool rim_height_near(const std::vector<RimSegment>& rim, const std::unordered_map<std::size_t, std::vector<std::size_t>>& by_cell,
                     const Grid& g, int i, int j, double width, double& z, double& dist) {
  const int r = static_cast<int>(std::ceil(width / g.h)) + 1;
  const Eigen::Vector2d x(g.X(i), g.Y(j));
  double best = width * width;
  for (int b = std::max(0, j - r); b <= std::min(g.ny - 2, j + r); ++b)
    for (int a = std::max(0, i - r); a <= std::min(g.nx - 2, i + r); ++a) {
      const auto it = by_cell.find(g.index(a, b));
      if (it == by_cell.end()) continue;
      for (const std::size_t s : it->second) {
        const Vec3 &u = rim[s].a, &v = rim[s].b;
        const Eigen::Vector2d d = (v - u).head<2>();
        const double t = std::clamp((x - u.head<2>()).dot(d) / std::max(d.squaredNorm(), 1e-18), 0.0, 1.0);
        const double d2 = (u.head<2>() + t * d - x).squaredNorm();
        if (d2 < best) best = d2, z = u.z() + t * (v.z() - u.z());
      }
    }
  dist = std::sqrt(best);
  return best < width * width;
}

}  // namespace

void level_land(Parting& p, const std::vector<RimSegment>& rim, double width, const std::vector<char>& cavity, std::vector<char>& held) {
  // Level everywhere, the land made the core's top jagged round the generated nose's nostrils
  // on the 0.5 mm grid (the nearest rim point changing from node to node: 13 samples at 0.89 mm);
  // only where the skin beyond falls away steeper than 2 in 1, none.
  constexpr double kSteep = 2.0;
  const Grid& g = p.shell_h;
  std::unordered_map<std::size_t, std::vector<std::size_t>> by_cell;  // the segments by the cells of their ends
  for (std::size_t s = 0; s < rim.size(); ++s)
    for (const Vec3& q : {rim[s].a, rim[s].b}) {
      auto& v = by_cell[cell_of(g, q.x(), q.y())];
      if (v.empty() || v.back() != s) v.push_back(s);
    }
  for (int j = 0; j < g.ny; ++j)
    for (int i = 0; i < g.nx; ++i) {
      const std::size_t k = g.index(i, j);
      double z = 0, d = 0;
      if (cavity[k] || p.dist[k] > width + g.h || !rim_height_near(rim, by_cell, g, i, j, width, z, d)) continue;
      if (!p.foot[k] && z - p.shell_h.v[k] < kSteep * d) continue;  // the skin beyond falls gently: followed
      p.shell_h.v[k] = p.foot[k] && !std::isnan(p.low.v[k]) ? std::min(z, p.low.v[k] - 0.02) : z;
      held[k] = 1;
    }
}

bool on_rim_cell(const Parting& p, CellTriangles& tins, std::size_t cell, double x, double y, GridCorners& at, double& fixed) {
  const Grid& g = p.shell_h;
  std::array<std::int32_t, 3> v{};
  std::array<double, 3> w{};
  if (!locate(g, p.rim, x, y, v, w, &tins)) return false;
  const auto layer = static_cast<std::int32_t>(g.v.size());
  double moving = 0;
  fixed = 0;
  for (int k = 0; k < 3; ++k) {
    if (v[k] < layer) {
      at.node[k] = static_cast<std::size_t>(v[k]), at.weight[k] = w[k], moving += w[k];
    } else {  // a rim point: its share of the height is fixed, and a corner of the cell stands in, unweighted
      at.node[k] = cell, at.weight[k] = 0;
      fixed += w[k] * p.rim.points[static_cast<std::size_t>(v[k] - layer)].z();
    }
  }
  return moving > 0.3;
}

}  // namespace tracecast::print::stages
