// The two-part mold (see mold.h for the construction).
#include "tracecast/print/mold.h"

#include <fmt/format.h>

#include <tbb/parallel_for.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <tuple>

#include "boolean.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/step_timer.h"
#include "tracecast/mesh/submesh.h"
#include "tracecast/mesh/face.h"
#include "tracecast/mesh/measure.h"

namespace tracecast::print {

namespace {

using Vec2 = Eigen::Vector2d;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kPi = 3.14159265358979323846;

double smoothstep(double e0, double e1, double x) {
  const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
  return t * t * (3 - 2 * t);
}

double triangle_area(const Mesh& m, const Tri& t) {
  return 0.5 * (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).norm();
}

//! A scalar field on a regular grid of nodes over a rectangle (x, y), NaN where undefined.
struct Grid {
  double x0 = 0, y0 = 0, h = 1;
  int nx = 0, ny = 0;
  std::vector<double> v;
  Grid() = default;
  Grid(double x0_, double y0_, double h_, int nx_, int ny_)
      : x0(x0_), y0(y0_), h(h_), nx(nx_), ny(ny_), v(static_cast<std::size_t>(nx_) * ny_, kNaN) {}
  double& at(int i, int j) { return v[static_cast<std::size_t>(j) * nx + i]; }
  double at(int i, int j) const { return v[static_cast<std::size_t>(j) * nx + i]; }
  double X(int i) const { return x0 + i * h; }
  double Y(int j) const { return y0 + j * h; }
};

//! Front-most z of the triangles over each node (largest z), for the triangles selected; with a
//! ceiling, the largest z below the ceiling's value at the node.
void rasterize_top(Grid& g, const std::vector<Vec3>& P, const std::vector<Tri>& tris, const std::vector<char>* use = nullptr,
                   const Grid* ceiling = nullptr) {
  for (std::size_t f = 0; f < tris.size(); ++f) {
    if (use && !(*use)[f]) continue;
    const Vec3 &a = P[tris[f][0]], &b = P[tris[f][1]], &c = P[tris[f][2]];
    const double area = (b.x() - a.x()) * (c.y() - a.y()) - (c.x() - a.x()) * (b.y() - a.y());
    if (area == 0) continue;
    const int i0 = std::max(0, static_cast<int>(std::ceil((std::min({a.x(), b.x(), c.x()}) - g.x0) / g.h)));
    const int i1 = std::min(g.nx - 1, static_cast<int>(std::floor((std::max({a.x(), b.x(), c.x()}) - g.x0) / g.h)));
    const int j0 = std::max(0, static_cast<int>(std::ceil((std::min({a.y(), b.y(), c.y()}) - g.y0) / g.h)));
    const int j1 = std::min(g.ny - 1, static_cast<int>(std::floor((std::max({a.y(), b.y(), c.y()}) - g.y0) / g.h)));
    for (int j = j0; j <= j1; ++j)
      for (int i = i0; i <= i1; ++i) {
        const double x = g.X(i), y = g.Y(j);
        const double wa = ((b.x() - x) * (c.y() - y) - (c.x() - x) * (b.y() - y)) / area;
        const double wb = ((c.x() - x) * (a.y() - y) - (a.x() - x) * (c.y() - y)) / area;
        const double wc = 1 - wa - wb;
        if (wa < -1e-9 || wb < -1e-9 || wc < -1e-9) continue;
        const double z = wa * a.z() + wb * b.z() + wc * c.z();
        if (ceiling && !(z < ceiling->at(i, j))) continue;  // only what lies under the ceiling
        double& cur = g.at(i, j);
        if (std::isnan(cur) || z > cur) cur = z;
      }
  }
}

//! Exact Euclidean distance (mm) from every node to the nearest node where `inside` is true
//! (Felzenszwalb–Huttenlocher, separable).
std::vector<double> distance_to(const Grid& g, const std::vector<char>& inside) {
  const double INF = 1e20;
  std::vector<double> f(g.v.size());
  for (std::size_t p = 0; p < f.size(); ++p) f[p] = inside[p] ? 0.0 : INF;
  auto edt1 = [&](std::vector<double>& line) {
    const int n = static_cast<int>(line.size());
    std::vector<double> d(n);
    std::vector<int> v(n);
    std::vector<double> z(n + 1);
    int k = 0;
    v[0] = 0;
    z[0] = -INF;
    z[1] = INF;
    for (int q = 1; q < n; ++q) {
      double s = ((line[q] + q * q) - (line[v[k]] + v[k] * v[k])) / (2.0 * q - 2.0 * v[k]);
      while (s <= z[k]) {
        --k;
        s = ((line[q] + q * q) - (line[v[k]] + v[k] * v[k])) / (2.0 * q - 2.0 * v[k]);
      }
      ++k;
      v[k] = q;
      z[k] = s;
      z[k + 1] = INF;
    }
    k = 0;
    for (int q = 0; q < n; ++q) {
      while (z[k + 1] < q) ++k;
      d[q] = (q - v[k]) * (q - v[k]) + line[v[k]];
    }
    line = d;
  };
  std::vector<double> line;
  for (int j = 0; j < g.ny; ++j) {
    line.assign(f.begin() + static_cast<long>(j) * g.nx, f.begin() + static_cast<long>(j + 1) * g.nx);
    edt1(line);
    std::copy(line.begin(), line.end(), f.begin() + static_cast<long>(j) * g.nx);
  }
  for (int i = 0; i < g.nx; ++i) {
    line.resize(g.ny);
    for (int j = 0; j < g.ny; ++j) line[j] = f[static_cast<std::size_t>(j) * g.nx + i];
    edt1(line);
    for (int j = 0; j < g.ny; ++j) f[static_cast<std::size_t>(j) * g.nx + i] = line[j];
  }
  for (double& x : f) x = std::sqrt(x) * g.h;
  return f;
}

//! A closed solid between a height field (over the whole grid, no NaN) and the plane z = base:
//! below the field if base is under it, above it otherwise. Outward-oriented.
Mesh heightfield_solid(const Grid& g, double base) {
  const bool below = base < g.v.front();
  Mesh m;
  const int nx = g.nx, ny = g.ny;
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i) m.vertices.emplace_back(g.X(i), g.Y(j), g.at(i, j));
  auto top = [&](int i, int j) { return static_cast<std::int32_t>(j * nx + i); };
  auto add = [&](std::int32_t a, std::int32_t b, std::int32_t c) {
    if (below) m.triangles.push_back({a, b, c});
    else m.triangles.push_back({a, c, b});
  };
  for (int j = 0; j + 1 < ny; ++j)
    for (int i = 0; i + 1 < nx; ++i) {
      if ((i + j) % 2 == 0) {
        add(top(i, j), top(i + 1, j), top(i + 1, j + 1));
        add(top(i, j), top(i + 1, j + 1), top(i, j + 1));
      } else {
        add(top(i, j), top(i + 1, j), top(i, j + 1));
        add(top(i + 1, j), top(i + 1, j + 1), top(i, j + 1));
      }
    }
  // The border loop, counter-clockwise seen from +z, and its copy on the base plane.
  std::vector<std::int32_t> loop;
  for (int i = 0; i < nx - 1; ++i) loop.push_back(top(i, 0));
  for (int j = 0; j < ny - 1; ++j) loop.push_back(top(nx - 1, j));
  for (int i = nx - 1; i > 0; --i) loop.push_back(top(i, ny - 1));
  for (int j = ny - 1; j > 0; --j) loop.push_back(top(0, j));
  const auto first_base = static_cast<std::int32_t>(m.vertices.size());
  for (std::int32_t v : loop) m.vertices.emplace_back(m.vertices[v].x(), m.vertices[v].y(), base);
  const auto centre = static_cast<std::int32_t>(m.vertices.size());
  m.vertices.emplace_back(g.X(0) + 0.5 * (nx - 1) * g.h, g.Y(0) + 0.5 * (ny - 1) * g.h, base);
  const auto n = static_cast<std::int32_t>(loop.size());
  for (std::int32_t k = 0; k < n; ++k) {
    const std::int32_t a = loop[k], b = loop[(k + 1) % n], a2 = first_base + k, b2 = first_base + (k + 1) % n;
    // Side wall: for the solid below the field the wall faces outward with (a, a2, b2), (a, b2, b).
    add(a, a2, b2);
    add(a, b2, b);
    add(centre, b2, a2);  // base: a fan, facing away from the field
  }
  return m;
}

//! A closed solid between two height fields over the same grid (no NaN), `bottom` under `top`
//! at every node. Outward-oriented.
Mesh heightfield_slab(const Grid& top, const Grid& bottom) {
  Mesh m;
  const int nx = top.nx, ny = top.ny;
  const auto layer = static_cast<std::int32_t>(nx) * ny;
  for (const Grid* g : {&top, &bottom})
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < nx; ++i) m.vertices.emplace_back(g->X(i), g->Y(j), g->at(i, j));
  auto node = [&](int i, int j, bool low) { return static_cast<std::int32_t>(j * nx + i) + (low ? layer : 0); };
  auto add = [&](std::int32_t a, std::int32_t b, std::int32_t c, bool low) {
    if (low) m.triangles.push_back({a, c, b});
    else m.triangles.push_back({a, b, c});
  };
  for (bool low : {false, true})
    for (int j = 0; j + 1 < ny; ++j)
      for (int i = 0; i + 1 < nx; ++i) {
        if ((i + j) % 2 == 0) {
          add(node(i, j, low), node(i + 1, j, low), node(i + 1, j + 1, low), low);
          add(node(i, j, low), node(i + 1, j + 1, low), node(i, j + 1, low), low);
        } else {
          add(node(i, j, low), node(i + 1, j, low), node(i, j + 1, low), low);
          add(node(i + 1, j, low), node(i + 1, j + 1, low), node(i, j + 1, low), low);
        }
      }
  // The side walls along the border loop (counter-clockwise seen from +z).
  std::vector<std::pair<int, int>> loop;
  for (int i = 0; i < nx - 1; ++i) loop.emplace_back(i, 0);
  for (int j = 0; j < ny - 1; ++j) loop.emplace_back(nx - 1, j);
  for (int i = nx - 1; i > 0; --i) loop.emplace_back(i, ny - 1);
  for (int j = ny - 1; j > 0; --j) loop.emplace_back(0, j);
  for (std::size_t k = 0; k < loop.size(); ++k) {
    const auto [ia, ja] = loop[k];
    const auto [ib, jb] = loop[(k + 1) % loop.size()];
    const std::int32_t a = node(ia, ja, false), b = node(ib, jb, false), a2 = node(ia, ja, true), b2 = node(ib, jb, true);
    m.triangles.push_back({a, a2, b2});
    m.triangles.push_back({a, b2, b});
  }
  return m;
}

//! Rolling-ball offset of a height field (no NaN): `above`, the upper envelope of balls of
//! radius w centred on the field; else the lower one. Every point of the field is then at least
//! w from the offset surface in any direction, so a wall between them is w thick everywhere.
Grid ball_offset(const Grid& g, double w, bool above) {
  const int R = static_cast<int>(std::ceil(w / g.h));
  std::vector<std::tuple<int, int, double>> ball;
  for (int dj = -R; dj <= R; ++dj)
    for (int di = -R; di <= R; ++di) {
      const double r2 = (di * di + dj * dj) * g.h * g.h;
      if (r2 <= w * w) ball.emplace_back(di, dj, std::sqrt(w * w - r2));
    }
  Grid out = g;
  const double sign = above ? 1.0 : -1.0;
  tbb::parallel_for(0, g.ny, [&](int j) {
    for (int i = 0; i < g.nx; ++i) {
      double best = -std::numeric_limits<double>::infinity();
      for (const auto& [di, dj, rise] : ball) {
        const int a = i + di, b = j + dj;
        if (a < 0 || b < 0 || a >= g.nx || b >= g.ny) continue;
        best = std::max(best, sign * g.at(a, b) + rise);
      }
      out.at(i, j) = sign * best;
    }
  });
  return out;
}

//! Conformal parts: where each part reaches its flat face (the frame along the border, the ribs,
//! posts under the keys and around the sprue and vents), it is filled down (core) or up (shell)
//! to that face; elsewhere it is a wall over the cavity and the parting surface.
struct Supports {
  std::vector<char> core, shell;
};

Supports conformal_supports(const Grid& g, const MoldOptions& o, double wall, const MoldReport& r) {
  Supports s;
  s.core.assign(g.v.size(), 0);
  s.shell.assign(g.v.size(), 0);
  const double xa = g.X(0), xb = g.X(g.nx - 1), ya = g.Y(0), yb = g.Y(g.ny - 1);
  // Ribs on lines through the centre at the spacing, none so close to the frame that the gap
  // between them could not be cleaned.
  auto on_rib = [&](double v, double lo, double hi) {
    if (o.rib_spacing_mm <= 0) return false;
    const double c = 0.5 * (lo + hi), line = c + std::round((v - c) / o.rib_spacing_mm) * o.rib_spacing_mm;
    return std::abs(v - line) <= 0.5 * wall && std::min(line - lo, hi - line) > o.frame_mm + 3 * wall;
  };
  for (int j = 0; j < g.ny; ++j)
    for (int i = 0; i < g.nx; ++i) {
      const double x = g.X(i), y = g.Y(j);
      const Vec2 q(x, y);
      bool both = std::min({x - xa, xb - x, y - ya, yb - y}) < o.frame_mm || on_rib(x, xa, xb) || on_rib(y, ya, yb);
      for (const Vec3& c : r.key_centres) both = both || (q - c.head<2>()).norm() < o.key_radius_mm + o.printer.key_clearance_mm + wall;
      bool shell = both;
      if (o.sprue_diameter_mm > 0) shell = shell || (q - r.sprue_bottom.head<2>()).norm() < 0.5 * o.sprue_diameter_mm + wall;
      for (const Vec3& v : r.vent_bottoms) shell = shell || (q - v.head<2>()).norm() < 0.5 * o.vent_diameter_mm + wall;
      const std::size_t p = static_cast<std::size_t>(j) * g.nx + i;
      s.core[p] = both;
      s.shell[p] = shell;
    }
  return s;
}

Mesh uv_sphere(const Vec3& c, double r, int rings = 24, int segments = 48) {
  Mesh m;
  m.vertices.push_back(c + Vec3(0, 0, r));
  for (int i = 1; i < rings; ++i) {
    const double th = kPi * i / rings;
    for (int j = 0; j < segments; ++j) {
      const double ph = 2 * kPi * (j + 0.317) / segments;
      m.vertices.push_back(c + r * Vec3(std::sin(th) * std::cos(ph), std::sin(th) * std::sin(ph), std::cos(th)));
    }
  }
  m.vertices.push_back(c - Vec3(0, 0, r));
  const auto S = segments;
  auto ring = [&](int i, int j) { return static_cast<std::int32_t>(1 + (i - 1) * S + (j % S)); };
  const auto bottom = static_cast<std::int32_t>(m.vertices.size() - 1);
  for (int j = 0; j < S; ++j) m.triangles.push_back({0, ring(1, j), ring(1, j + 1)});
  for (int i = 1; i + 1 < rings; ++i)
    for (int j = 0; j < S; ++j) {
      m.triangles.push_back({ring(i, j), ring(i + 1, j), ring(i + 1, j + 1)});
      m.triangles.push_back({ring(i, j), ring(i + 1, j + 1), ring(i, j + 1)});
    }
  for (int j = 0; j < S; ++j) m.triangles.push_back({bottom, ring(rings - 1, j + 1), ring(rings - 1, j)});
  return m;
}

//! Vertical cylinder (axis +z) from z0 to z1 around (x, y).
Mesh cylinder(double x, double y, double z0, double z1, double r, int segments = 32) {
  Mesh m;
  for (double z : {z0, z1})
    for (int k = 0; k < segments; ++k) {
      const double a = 2 * kPi * k / segments;
      m.vertices.emplace_back(x + r * std::cos(a), y + r * std::sin(a), z);
    }
  m.vertices.emplace_back(x, y, z0);
  m.vertices.emplace_back(x, y, z1);
  const auto S = segments, c0 = 2 * S, c1 = 2 * S + 1;
  for (int k = 0; k < S; ++k) {
    const int a = k, b = (k + 1) % S;
    m.triangles.push_back({a, b, b + S});
    m.triangles.push_back({a, b + S, a + S});
    m.triangles.push_back({c0, b, a});
    m.triangles.push_back({c1, a + S, b + S});
  }
  return m;
}

Mesh box(const Vec3& lo, const Vec3& hi) {
  Mesh m;
  for (int k = 0; k < 8; ++k) m.vertices.emplace_back(k & 1 ? hi.x() : lo.x(), k & 2 ? hi.y() : lo.y(), k & 4 ? hi.z() : lo.z());
  const int f[12][3] = {{0, 2, 1}, {1, 2, 3}, {4, 5, 6}, {5, 7, 6}, {0, 1, 4}, {1, 5, 4},
                        {2, 6, 3}, {3, 6, 7}, {0, 4, 2}, {2, 4, 6}, {1, 3, 5}, {3, 7, 5}};
  for (const auto& t : f) m.triangles.push_back({t[0], t[1], t[2]});
  return m;
}

double volume(const Mesh& m) {
  double v = 0;
  for (const Tri& t : m.triangles) v += m.vertices[t[0]].dot(m.vertices[t[1]].cross(m.vertices[t[2]]));
  return v / 6.0;
}

//! Keeps the connected piece with the largest volume; returns the volume (mm³) of the others
//! (slivers a boolean leaves where the parting surface meets the appliance's thin rim).
double keep_largest_piece(Mesh& m) {
  const std::vector<std::size_t> piece = face_components(m);
  std::map<std::size_t, double> vol;
  for (std::size_t f = 0; f < m.triangles.size(); ++f) {
    const Tri& t = m.triangles[f];
    vol[piece[f]] += m.vertices[t[0]].dot(m.vertices[t[1]].cross(m.vertices[t[2]])) / 6.0;
  }
  if (vol.size() <= 1) return 0;
  std::size_t best = vol.begin()->first;
  for (const auto& [label, v] : vol)
    if (v > vol[best]) best = label;
  double dropped = 0;
  for (const auto& [label, v] : vol)
    if (label != best) dropped += std::abs(v);
  std::vector<char> keep(m.triangles.size(), 0);
  for (std::size_t f = 0; f < m.triangles.size(); ++f) keep[f] = piece[f] == best;
  m = submesh(m, keep);
  return dropped;
}

//! Settles a part in single precision, as the files will hold it: vertices rounded to floats,
//! then what rounding did undone — vertices that now coincide are welded, triangles flattened to
//! zero area are removed (edge flips and collapses, exact predicates), and tiny triangles folded
//! over a neighbour on a nearly flat patch have their shortest edge collapsed to its midpoint —
//! until nothing is left to mend or `rounds` is spent. Returns the crossing pairs left.
std::size_t settle_in_single_precision(Mesh& m, int rounds) {
  for (int round = 0;; ++round) {
    if (round > 0) m = detail::remove_slivers(m, 1e-9);
    for (Vec3& v : m.vertices) v = single_precision(v);
    // An STL has no vertex indices: distinct vertices on one float point (two fans touching, which
    // a cleaning step keeps apart) would be read back as one, a pinch that is not manifold. All but
    // the first move a float step along x.
    {
      std::map<std::array<double, 3>, std::size_t> at;
      for (std::size_t i = 0; i < m.vertices.size(); ++i)
        while (!at.emplace(std::array<double, 3>{m.vertices[i].x(), m.vertices[i].y(), m.vertices[i].z()}, i).second)
          m.vertices[i].x() = std::nextafter(static_cast<float>(m.vertices[i].x()), std::numeric_limits<float>::infinity());
    }
    std::size_t flat = 0;
    for (const Tri& t : m.triangles)
      flat += (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).squaredNorm() == 0.0;
    const auto pairs = self_intersecting_pairs(m);
    if ((pairs.empty() && flat == 0) || round == rounds) return pairs.size() + flat;
    // Per crossing pair, the shortest edge of the two triangles whose collapse keeps the surface
    // manifold (its end points share no neighbour but the two opposite corners: the link
    // condition) collapses to its midpoint; one collapse per vertex per round.
    std::vector<std::vector<std::int32_t>> ring(m.vertices.size());
    for (const Tri& t : m.triangles)
      for (int k = 0; k < 3; ++k) {
        ring[static_cast<std::size_t>(t[k])].push_back(t[(k + 1) % 3]);
        ring[static_cast<std::size_t>(t[k])].push_back(t[(k + 2) % 3]);
      }
    for (auto& r : ring) {
      std::sort(r.begin(), r.end());
      r.erase(std::unique(r.begin(), r.end()), r.end());
    }
    auto collapsible = [&](std::size_t u, std::size_t v) {
      std::vector<std::int32_t> common;
      std::set_intersection(ring[u].begin(), ring[u].end(), ring[v].begin(), ring[v].end(), std::back_inserter(common));
      return common.size() == 2;
    };
    std::vector<char> used(m.vertices.size(), 0);
    for (const auto& [a, b] : pairs) {
      std::vector<std::pair<double, std::pair<std::size_t, std::size_t>>> edges;
      for (std::size_t f : {a, b}) {
        const Tri& t = m.triangles[f];
        for (int e = 0; e < 3; ++e) {
          const auto u = static_cast<std::size_t>(t[e]), v = static_cast<std::size_t>(t[(e + 1) % 3]);
          edges.push_back({(m.vertices[u] - m.vertices[v]).squaredNorm(), {u, v}});
        }
      }
      std::sort(edges.begin(), edges.end());
      for (const auto& [len, uv] : edges) {
        const auto [u, v] = uv;
        if (used[u] || used[v] || !collapsible(u, v)) continue;
        for (const std::size_t w : {u, v}) {  // the rings this collapse changes stay as they are this round
          used[w] = 1;
          for (std::int32_t x : ring[w]) used[static_cast<std::size_t>(x)] = 1;
        }
        m.vertices[u] = m.vertices[v] = single_precision(0.5 * (m.vertices[u] + m.vertices[v]));
        break;
      }
    }
  }
}

}  // namespace

PartCheck check_part(const std::string& name, const Mesh& part, const PrinterProfile& printer) {
  PartCheck c;
  c.name = name;
  c.faces = part.triangles.size();
  MeasureOptions mo;
  mo.self_intersections = false;
  const MeshInfo info = measure(part, mo);
  c.closed = info.watertight;
  c.manifold = info.edge_manifold && info.vertex_manifold;
  c.oriented = info.oriented && info.volume_mm3 && *info.volume_mm3 > 0;
  c.volume_ml = info.volume_mm3 ? *info.volume_mm3 / 1000.0 : 0.0;
  c.self_intersections = count_self_intersections(part);
  // Wall thickness: from face centres inwards (against the face normal) to the next surface.
  if (!part.triangles.empty()) {
    std::vector<Vec3> o, d;
    const std::size_t step = std::max<std::size_t>(1, part.triangles.size() / 200000);
    for (std::size_t f = 0; f < part.triangles.size(); f += step) {
      const Tri& t = part.triangles[f];
      const Vec3 n = (part.vertices[t[1]] - part.vertices[t[0]]).cross(part.vertices[t[2]] - part.vertices[t[0]]);
      if (!(n.norm() > 1e-12)) continue;
      const Vec3 g = (part.vertices[t[0]] + part.vertices[t[1]] + part.vertices[t[2]]) / 3.0;
      o.push_back(g - 1e-4 * n.normalized());
      d.push_back(-n.normalized());
    }
    const auto hits = SurfaceQuery(part).cast(o, d);
    // A wall is where the ray leaves through a face turned against the one it started from; a
    // ray that leaves through a side met at an angle (a corner, a knife edge) measures no wall.
    std::vector<double> w;
    for (std::size_t k = 0; k < hits.size(); ++k)
      if (hits[k].hit && hits[k].normal.dot(-d[k]) < -0.5) w.push_back(hits[k].t + 1e-4);
    if (!w.empty()) {
      std::sort(w.begin(), w.end());
      c.min_wall_mm = w[static_cast<std::size_t>(0.001 * static_cast<double>(w.size() - 1))];
      // Walls under two layers are knife edges (a feathered rim, a gutter's lip), not walls.
      for (double x : w) c.thin_samples += x < printer.min_wall_mm && x >= 2 * printer.layer_height_mm;
    }
  }
  c.fit = fit_as_placed(part, printer);
  c.turned = fit_in_build_volume(part, printer);
  return c;
}

namespace {

//! What the mold needs to know of its inputs, and the refusals: the appliance's volume, which of
//! its faces lie on the skin (inner) and which face away from it (outer), their centres.
struct Inspection {
  double appliance_ml = 0;
  std::vector<Vec3> centres;
  std::vector<char> inner, outer;
};

Inspection inspect(const Mesh& appliance, const Mesh& face, const MoldOptions& o) {
  validate(appliance, "appliance");
  validate(face, "face");
  throw_problems("mold options", mold_option_table().check(o));
  Inspection in;
  {
    MeasureOptions mo;
    mo.self_intersections = false;
    const MeshInfo info = measure(appliance, mo);
    if (!info.watertight || !info.volume_mm3 || *info.volume_mm3 <= 0)
      throw InputError(fmt::format("the appliance is not a closed, outward solid ({} boundary edges, {} non-manifold edges): "
                                   "make it with tracecast appliance, or close it with tracecast repair",
                                   info.boundary_edges, info.non_manifold_edges));
    in.appliance_ml = *info.volume_mm3 / 1000.0;
  }
  // Which faces of the appliance lie on the skin (its inner surface).
  const SurfaceQuery skin(face);
  for (const Tri& t : appliance.triangles)
    in.centres.push_back((appliance.vertices[t[0]] + appliance.vertices[t[1]] + appliance.vertices[t[2]]) / 3.0);
  const std::vector<double> on_skin = skin.distances(in.centres);
  in.inner.assign(appliance.triangles.size(), 0);
  in.outer.assign(appliance.triangles.size(), 0);
  double inner_area = 0, total_area = 0;
  for (std::size_t f = 0; f < appliance.triangles.size(); ++f) {
    const double a = triangle_area(appliance, appliance.triangles[f]);
    total_area += a;
    in.inner[f] = on_skin[f] < 0.03;
    if (in.inner[f]) inner_area += a;
  }
  if (inner_area < 0.3 * total_area)
    throw InputError(fmt::format("the appliance does not sit on this face: only {:.0f} % of its surface lies on the skin "
                                 "(expected about half); was it made from another scan, or moved?",
                                 100 * inner_area / total_area));
  // Outer: faces on the far side from the skin (the rim is neither).
  for (std::size_t f = 0; f < appliance.triangles.size(); ++f) in.outer[f] = !in.inner[f] && on_skin[f] > 0.045;
  return in;
}

}  // namespace

void check_mold_inputs(const Mesh& appliance, const Mesh& face, const MoldOptions& o) { inspect(appliance, face, o); }

Mold design_mold(const Mesh& appliance, const Mesh& face, const MoldOptions& o) {
  Mold mold;
  MoldReport& r = mold.report;
  StepTimer timer(r.timings);
  const Inspection in = inspect(appliance, face, o);
  r.appliance_ml = in.appliance_ml;
  const std::vector<Vec3>& centres = in.centres;
  const std::vector<char>&inner = in.inner, &outer = in.outer;
  timer.lap("inspect");

  // Pull direction: least undercut area within a cone around the face's forward direction.
  Vec3 front;
  if (o.front) {
    front = o.front->normalized();
  } else {
    try {
      front = analyze_face(face).frame.axes.col(2);
    } catch (const Error&) {
      front = Vec3::Zero();
      for (std::size_t f = 0; f < appliance.triangles.size(); ++f)
        if (outer[f]) {
          const Tri& t = appliance.triangles[f];
          front += (appliance.vertices[t[1]] - appliance.vertices[t[0]]).cross(appliance.vertices[t[2]] - appliance.vertices[t[0]]);
        }
      front.normalize();
    }
  }
  std::vector<Vec3> normals(appliance.triangles.size());
  std::vector<double> areas(appliance.triangles.size());
  for (std::size_t f = 0; f < appliance.triangles.size(); ++f) {
    const Tri& t = appliance.triangles[f];
    const Vec3 n = (appliance.vertices[t[1]] - appliance.vertices[t[0]]).cross(appliance.vertices[t[2]] - appliance.vertices[t[0]]);
    areas[f] = 0.5 * n.norm();
    normals[f] = n.norm() > 0 ? Vec3(n.normalized()) : Vec3::Zero();
  }
  // Outer faces turned away from the pull lock the shell; inner faces turned towards it lock the
  // cast on the core.
  auto undercut = [&](const Vec3& p, std::vector<char>* which) {
    double a = 0;
    for (std::size_t f = 0; f < normals.size(); ++f) {
      const double c = normals[f].dot(p);
      const bool u = (outer[f] && c < -1e-3) || (inner[f] && c > 1e-3);
      if (which) (*which)[f] = u;
      if (u) a += areas[f];
    }
    return a;
  };
  r.undercut_area_frontal_mm2 = undercut(front, nullptr);
  Vec3 pull = front;
  if (o.pull) {
    pull = o.pull->normalized();
    r.undercut_area_mm2 = undercut(pull, nullptr);
  } else {
    r.pull_searched = true;
    const Vec3 a = (std::abs(front.x()) < 0.9 ? Vec3::UnitX() : Vec3::UnitY()).cross(front).normalized(), b = front.cross(a);
    double best = r.undercut_area_frontal_mm2;
    for (double tilt = 5; tilt <= o.max_pull_tilt_deg + 1e-9; tilt += 5)
      for (int k = 0; k < 24; ++k) {
        const double th = tilt * kPi / 180, ph = 2 * kPi * k / 24;
        const Vec3 p = std::cos(th) * front + std::sin(th) * (std::cos(ph) * a + std::sin(ph) * b);
        const double u = undercut(p, nullptr);
        if (u < best - 1e-6) best = u, pull = p;
      }
    r.undercut_area_mm2 = best;
  }
  r.pull = pull;
  // Undercut regions: connected faces, with how far the cast must flex (ray along the pull).
  {
    std::vector<char> which(normals.size(), 0);
    undercut(pull, &which);
    std::vector<int> parent(appliance.vertices.size());
    for (std::size_t i = 0; i < parent.size(); ++i) parent[i] = static_cast<int>(i);
    std::function<int(int)> find = [&](int x) { return parent[x] == x ? x : parent[x] = find(parent[x]); };
    for (std::size_t f = 0; f < which.size(); ++f)
      if (which[f]) {
        const Tri& t = appliance.triangles[f];
        parent[find(t[1])] = find(t[0]);
        parent[find(t[2])] = find(t[0]);
      }
    std::vector<Vec3> origins, dirs;
    std::vector<std::size_t> faces;
    for (std::size_t f = 0; f < which.size(); ++f)
      if (which[f]) {
        origins.push_back(centres[f] + 1e-3 * (outer[f] ? pull : Vec3(-pull)));
        dirs.push_back(outer[f] ? pull : Vec3(-pull));
        faces.push_back(f);
      }
    const auto hits = SurfaceQuery(appliance).cast(origins, dirs);
    std::map<int, Undercut> regions;
    std::map<int, double> weighted;
    for (std::size_t k = 0; k < faces.size(); ++k) {
      const std::size_t f = faces[k];
      Undercut& u = regions[find(appliance.triangles[f][0])];
      u.surface = outer[f] ? "outer" : "inner";
      u.area_mm2 += areas[f];
      u.centroid += areas[f] * centres[f];
      if (hits[k].hit) u.depth_mm = std::max(u.depth_mm, hits[k].t);
    }
    for (auto& [root, u] : regions) {
      if (u.area_mm2 < 1.0) continue;
      u.centroid /= u.area_mm2;
      u.rigid = u.depth_mm > o.rigid_undercut_mm;
      r.undercuts.push_back(u);
    }
    std::sort(r.undercuts.begin(), r.undercuts.end(), [](const Undercut& a, const Undercut& b) { return a.area_mm2 > b.area_mm2; });
    for (const Undercut& u : r.undercuts)
      if (u.rigid)
        r.warnings.push_back(fmt::format("undercut of {:.0f} mm² on the {} surface is {:.1f} mm deep: the cast must flex that far to release",
                                         u.area_mm2, u.surface, u.depth_mm));
  }
  timer.lap("pull");

  // The mold frame: z along the pull.
  Eigen::Matrix3d R;  // rows: x, y, z of the mold frame
  {
    const Vec3 z = pull;
    Vec3 x = (std::abs(z.x()) < 0.9 ? Vec3::UnitX() : Vec3::UnitY());
    x = (x - x.dot(z) * z).normalized();
    R.row(0) = x;
    R.row(1) = z.cross(x);
    R.row(2) = z;
  }
  r.frame = R;
  std::vector<Vec3> A(appliance.vertices.size()), F(face.vertices.size());
  for (std::size_t i = 0; i < A.size(); ++i) A[i] = R * appliance.vertices[i];
  for (std::size_t i = 0; i < F.size(); ++i) F[i] = R * face.vertices[i];
  Aabb abox;
  for (const Vec3& p : A) abox.add(p);
  const double h = o.resolution_mm;
  const double parting = o.flash_land_mm + o.gutter_width_mm;
  const double key_zone = o.keys > 0 ? 2 * o.key_radius_mm + 4 : 4;
  const bool conformal = o.style != "block";
  const double wall = o.wall_mm;
  const double margin = parting + key_zone + (conformal ? std::max(wall, o.frame_mm) : wall);
  const double x0 = std::floor((abox.min.x() - margin) / h) * h, y0 = std::floor((abox.min.y() - margin) / h) * h;
  const int nx = static_cast<int>(std::ceil((abox.max.x() + margin - x0) / h)) + 1;
  const int ny = static_cast<int>(std::ceil((abox.max.y() + margin - y0) / h)) + 1;
  if (static_cast<double>(nx) * ny > 4e6) throw InputError("mold: the appliance is too large for this resolution (over 4 M grid nodes)");
  Grid skin_top(x0, y0, h, nx, ny), out_top(x0, y0, h, nx, ny), in_top(x0, y0, h, nx, ny);
  rasterize_top(skin_top, F, face.triangles);
  rasterize_top(out_top, A, appliance.triangles, &outer);
  // The inner surface of the same (front-most) layer: the highest inner point under the outer one.
  rasterize_top(in_top, A, appliance.triangles, &inner, &out_top);
  std::vector<char> foot(out_top.v.size());
  for (std::size_t p = 0; p < foot.size(); ++p) foot[p] = !std::isnan(out_top.v[p]);
  // Also every node under any appliance face (the rim included).
  {
    Grid any(x0, y0, h, nx, ny);
    rasterize_top(any, A, appliance.triangles);
    for (std::size_t p = 0; p < foot.size(); ++p) foot[p] = foot[p] || !std::isnan(any.v[p]);
  }
  const std::vector<double> dist = distance_to(skin_top, foot);
  // A smooth plane through the skin around the flash land, for the parting surface further out.
  Eigen::Vector3d plane(0, 0, 0);
  {
    Eigen::Matrix3d M = Eigen::Matrix3d::Zero();
    Eigen::Vector3d b = Eigen::Vector3d::Zero();
    std::size_t n = 0;
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < nx; ++i) {
        const std::size_t p = static_cast<std::size_t>(j) * nx + i;
        if (std::isnan(skin_top.v[p]) || dist[p] < parting || dist[p] > parting + 12) continue;
        const Eigen::Vector3d q(skin_top.X(i), skin_top.Y(j), 1);
        M += q * q.transpose();
        b += q * skin_top.v[p];
        ++n;
      }
    if (n < 20) {  // no skin around the appliance (a face cropped at its edge): use the rim's height
      for (std::size_t v = 0; v < A.size(); ++v) {
        const Eigen::Vector3d q(A[v].x(), A[v].y(), 1);
        M += q * q.transpose();
        b += q * A[v].z();
      }
      r.warnings.push_back("the face scan ends at the appliance's edge: the parting surface continues as a plane through the appliance");
    }
    plane = M.ldlt().solve(b);
  }
  // Around the footprint the parting surface is lifted by half the appliance's rim thickness, so
  // that it crosses the rim's wall halfway up instead of grazing the rim's lower edge, which lies
  // on the skin (a boolean of two nearly coincident surfaces leaves needle slivers).
  double lift = 0;
  {
    std::vector<double> rim;
    for (int j = 1; j + 1 < ny; ++j)
      for (int i = 1; i + 1 < nx; ++i) {
        const std::size_t p = static_cast<std::size_t>(j) * nx + i;
        if (!foot[p] || std::isnan(out_top.v[p]) || std::isnan(in_top.v[p])) continue;
        if (foot[p - 1] && foot[p + 1] && foot[p - nx] && foot[p + nx]) continue;
        rim.push_back(out_top.v[p] - in_top.v[p]);
      }
    if (!rim.empty()) {
      std::nth_element(rim.begin(), rim.begin() + static_cast<long>(rim.size() / 2), rim.end());
      lift = std::clamp(0.5 * rim[rim.size() / 2], 0.0, 0.5);
    }
  }
  Grid shell_h(x0, y0, h, nx, ny), core_h(x0, y0, h, nx, ny);
  r.gutter_ml = 0;
  double zmax = -1e300;
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i) {
      const std::size_t p = static_cast<std::size_t>(j) * nx + i;
      const double flat = plane[0] * shell_h.X(i) + plane[1] * shell_h.Y(j) + plane[2];
      double z;
      if (foot[p] && !std::isnan(out_top.v[p]) && !std::isnan(in_top.v[p]) && out_top.v[p] > in_top.v[p]) {
        z = 0.5 * (out_top.v[p] + in_top.v[p]);  // inside the appliance's thickness
      } else if (foot[p] && !std::isnan(out_top.v[p])) {
        z = out_top.v[p] - 0.02;
      } else {
        const double w = 1.0 - smoothstep(parting + 2, parting + 14, dist[p]);
        z = std::isnan(skin_top.v[p]) ? flat : w * skin_top.v[p] + (1 - w) * flat;
        z += lift * (1.0 - smoothstep(1.5 * h, 1.5 * h + 2.0, dist[p]));
      }
      shell_h.v[p] = z;
      double groove = 0;
      if (o.gutter_width_mm > 0 && o.gutter_depth_mm > 0 && !foot[p] && dist[p] > o.flash_land_mm && dist[p] < parting) {
        const double s = std::sin(kPi * (dist[p] - o.flash_land_mm) / o.gutter_width_mm);
        groove = o.gutter_depth_mm * s * s;
      }
      core_h.v[p] = z - groove;
      r.gutter_ml += groove * h * h / 1000.0;
      zmax = std::max(zmax, z);
      if (!std::isnan(out_top.v[p])) zmax = std::max(zmax, out_top.v[p]);
    }
  double zmin = 1e300;
  for (double z : core_h.v) zmin = std::min(zmin, z);
  for (const Vec3& p : A) zmin = std::min(zmin, p.z());
  double z_bottom = zmin - wall, z_top = zmax + wall;
  // Conformal parts: walls `wall` thick under everything the core presents (the parting surface,
  // the gutter, the appliance's lowest face) and over everything the shell covers.
  Grid core_floor, shell_roof;
  if (conformal) {
    std::vector<Vec3> Aneg = A;
    for (Vec3& p : Aneg) p.z() = -p.z();
    Grid low(x0, y0, h, nx, ny), high(x0, y0, h, nx, ny);
    rasterize_top(low, Aneg, appliance.triangles);
    rasterize_top(high, A, appliance.triangles);
    Grid under = core_h, over = shell_h;
    for (std::size_t p = 0; p < under.v.size(); ++p) {
      if (!std::isnan(low.v[p])) under.v[p] = std::min(under.v[p], -low.v[p]);
      if (!std::isnan(high.v[p])) over.v[p] = std::max(over.v[p], high.v[p]);
    }
    core_floor = ball_offset(under, wall, false);
    shell_roof = ball_offset(over, wall, true);
    z_bottom = *std::min_element(core_floor.v.begin(), core_floor.v.end());
    z_top = *std::max_element(shell_roof.v.begin(), shell_roof.v.end());
  }
  r.box_min = Vec3(x0, y0, z_bottom);
  r.box_max = Vec3(x0 + (nx - 1) * h, y0 + (ny - 1) * h, z_top);
  Mesh appl;
  appl.vertices = A;
  appl.triangles = appliance.triangles;
  timer.lap("parting");

  // Keys near the rectangle's corners, on the parting surface.
  Mesh male, female;
  if (o.keys > 0) {
    const double inset = wall + o.key_radius_mm;
    std::vector<Vec2> spots = {{r.box_min.x() + inset, r.box_min.y() + inset}, {r.box_max.x() - inset, r.box_min.y() + inset},
                               {r.box_max.x() - inset, r.box_max.y() - inset}, {r.box_min.x() + inset, r.box_max.y() - inset}};
    for (int k = 4; k < o.keys; ++k)  // more keys: midpoints of the long sides
      spots.emplace_back(0.5 * (r.box_min.x() + r.box_max.x()) + (k % 2 ? -1 : 1) * 0.25 * (r.box_max.x() - r.box_min.x()),
                         k % 2 ? r.box_min.y() + inset : r.box_max.y() - inset);
    for (int k = 0; k < o.keys; ++k) {
      const Vec2 s = spots[static_cast<std::size_t>(k)];
      const int i = std::clamp(static_cast<int>(std::lround((s.x() - x0) / h)), 0, nx - 1);
      const int j = std::clamp(static_cast<int>(std::lround((s.y() - y0) / h)), 0, ny - 1);
      const std::size_t p = static_cast<std::size_t>(j) * nx + i;
      if (dist[p] < parting + o.key_radius_mm + 1)
        r.warnings.push_back(fmt::format("key {} is only {:.1f} mm from the appliance", k + 1, dist[p]));
      // Off the grid's nodes and planes, so that no sphere vertex or edge meets the parting
      // surface's exactly (exact predicates cope, but rounded constructions make slivers).
      const Vec3 c(shell_h.X(i) + 0.371 * h, shell_h.Y(j) + 0.293 * h, shell_h.v[p] + 0.0137);
      r.key_centres.push_back(c);
      append(male, uv_sphere(c, o.key_radius_mm));
      append(female, uv_sphere(c, o.key_radius_mm + o.printer.key_clearance_mm));
    }
  }
  // Sprue at the cavity's highest point (top pour), vents at its other local high points.
  Mesh cutters;
  {
    std::vector<std::pair<double, std::size_t>> tops;
    for (std::size_t p = 0; p < out_top.v.size(); ++p)
      if (!std::isnan(out_top.v[p])) tops.emplace_back(out_top.v[p], p);
    std::sort(tops.begin(), tops.end(), std::greater<>());
    auto node = [&](std::size_t p) { return Vec3(out_top.X(static_cast<int>(p % nx)), out_top.Y(static_cast<int>(p / nx)), out_top.v[p]); };
    auto thickness = [&](std::size_t p) { return std::isnan(in_top.v[p]) ? 0.05 : out_top.v[p] - in_top.v[p]; };
    if (!tops.empty() && o.sprue_diameter_mm > 0) {
      // Bottom fill: the sprue enters at the cavity's lowest point where it has most of its
      // thickness (not in the feathered band), so the silicone rises and pushes the air up to the
      // vents; top pour: at the highest point.
      double tmax = 0;
      for (const auto& [z, p] : tops) tmax = std::max(tmax, thickness(p));
      std::size_t best = tops.front().second;
      if (!o.top_pour) {
        double zlow = 1e300;
        for (const auto& [z, p] : tops)
          if (thickness(p) >= 0.75 * tmax && dist[p] == 0 && z < zlow) zlow = z, best = p;
      }
      const Vec3 c = node(best);
      r.sprue_bottom = c - Vec3(0, 0, std::min(0.3, 0.5 * thickness(best)));
      append(cutters, cylinder(c.x(), c.y(), r.sprue_bottom.z(), z_top + 1, 0.5 * o.sprue_diameter_mm, 48));
    }
    if (o.vent_diameter_mm > 0) {
      // Air is trapped under local high points of the cavity's ceiling (within the cavity: the
      // neighbourhood is its footprint), so each gets a vent up through the shell.
      const int R = static_cast<int>(std::ceil(6.0 / h));
      for (const auto& [z, p] : tops) {
        if (static_cast<int>(r.vent_bottoms.size()) >= o.max_vents) break;
        const int i = static_cast<int>(p % nx), j = static_cast<int>(p / nx);
        bool is_max = true;
        for (int dj = -R; dj <= R && is_max; ++dj)
          for (int di = -R; di <= R && is_max; ++di) {
            const int a = i + di, b = j + dj;
            if (a < 0 || b < 0 || a >= nx || b >= ny || di * di + dj * dj > R * R) continue;
            const double q = out_top.at(a, b);
            if (!std::isnan(q) && q > z) is_max = false;
          }
        if (!is_max) continue;
        const Vec3 c = node(p);
        if (o.sprue_diameter_mm > 0 && (c - r.sprue_bottom).head<2>().norm() < 0.5 * o.sprue_diameter_mm + 10) continue;
        bool near = false;
        for (const Vec3& v : r.vent_bottoms) near = near || (v - c).head<2>().norm() < 15;
        if (near || dist[p] > 0 || thickness(p) < 0.2) continue;
        const Vec3 bottom = c - Vec3(0, 0, std::min(0.2, 0.5 * thickness(p)));
        r.vent_bottoms.push_back(bottom);
        append(cutters, cylinder(c.x(), c.y(), bottom.z(), z_top + 1, 0.5 * o.vent_diameter_mm, 16));
      }
    }
  }
  // Pry slots: notches across the parting line in the middle of the two long walls.
  Mesh slots;
  if (o.pry_slot_mm > 0) {
    const bool along_x = (r.box_max.x() - r.box_min.x()) >= (r.box_max.y() - r.box_min.y());
    for (int side : {0, 1}) {
      int i, j;
      if (along_x) {
        i = nx / 2;
        j = side ? ny - 1 : 0;
      } else {
        i = side ? nx - 1 : 0;
        j = ny / 2;
      }
      const Vec3 c(shell_h.X(i), shell_h.Y(j), shell_h.at(i, j));
      const double w = o.pry_slot_mm, depth = 3.0;
      Vec3 lo, hi;
      if (along_x) {
        lo = Vec3(c.x() - 0.5 * w, side ? c.y() - depth : c.y() - 1, c.z() - 2);
        hi = Vec3(c.x() + 0.5 * w, side ? c.y() + 1 : c.y() + depth, c.z() + 2);
      } else {
        lo = Vec3(side ? c.x() - depth : c.x() - 1, c.y() - 0.5 * w, c.z() - 2);
        hi = Vec3(side ? c.x() + 1 : c.x() + depth, c.y() + 0.5 * w, c.z() + 2);
      }
      append(slots, box(lo, hi));
    }
  }
  // Hollowing (resin printing): a closed void in each part, `hollow` mm inside every surface
  // (heights min-/max-filtered over the wall's reach, on a 2 mm grid), clear of the keys, sprue
  // and vents, with two drain holes through the face each part is printed on.
  Mesh core_void, shell_void;
  if (o.hollow_mm > 0) {
    const double t = o.hollow_mm;
    const int k = std::max(1, static_cast<int>(std::lround(2.0 / h)));
    const int reach = static_cast<int>(std::ceil((t + k * h) / h));
    const double inset = t + 4.0;  // pry slots reach 3 mm into the walls
    const int i0 = static_cast<int>(std::ceil(inset / h)), j0 = i0;
    const int ci = (nx - 1 - 2 * i0) / k + 1, cj = (ny - 1 - 2 * j0) / k + 1;
    if (ci >= 4 && cj >= 4) {
      // Core: under the lowest of its top (the skin under the appliance, the gutter) nearby.
      Grid top(x0 + i0 * h, y0 + j0 * h, k * h, ci, cj), floor(x0 + i0 * h, y0 + j0 * h, k * h, ci, cj);
      for (int b = 0; b < cj; ++b)
        for (int a = 0; a < ci; ++a) {
          const int fi = i0 + a * k, fj = j0 + b * k;
          double lo = 1e300, hi = -1e300;
          for (int dj = -reach; dj <= reach; ++dj)
            for (int di = -reach; di <= reach; ++di) {
              const int ii = std::clamp(fi + di, 0, nx - 1), jj = std::clamp(fj + dj, 0, ny - 1);
              const std::size_t p = static_cast<std::size_t>(jj) * nx + ii;
              const double in = in_top.v[p], out = out_top.v[p];
              lo = std::min({lo, core_h.v[p], std::isnan(in) ? 1e300 : in});
              hi = std::max({hi, shell_h.v[p], std::isnan(out) ? -1e300 : out});
            }
          // Keys: the shell's hollows rise to the key's top.
          for (const Vec3& c : r.key_centres)
            if ((Vec2(top.X(a), top.Y(b)) - c.head<2>()).norm() < o.key_radius_mm + t + k * h)
              hi = std::max(hi, c.z() + o.key_radius_mm + o.printer.key_clearance_mm);
          top.at(a, b) = lo - t;
          floor.at(a, b) = hi + t;
        }
      core_void = heightfield_solid(top, z_bottom + t);
      shell_void = heightfield_solid(floor, z_top - t);
      // Keep clear of the sprue and vents (they cross the shell) by the wall.
      Mesh keep_out;
      if (o.sprue_diameter_mm > 0)
        append(keep_out, cylinder(r.sprue_bottom.x(), r.sprue_bottom.y(), z_bottom - 5, z_top + 5, 0.5 * o.sprue_diameter_mm + t, 48));
      for (const Vec3& v : r.vent_bottoms) append(keep_out, cylinder(v.x(), v.y(), z_bottom - 5, z_top + 5, 0.5 * o.vent_diameter_mm + t, 24));
      if (!keep_out.triangles.empty())
        shell_void = detail::boolean(shell_void, keep_out, detail::BooleanOp::Difference, "the shell's hollow around sprue and vents");
      // Drain holes, 3.5 mm, at two opposite corners of each void.
      const double dx = 0.5 * inset + 6, r_drain = 1.75;
      Mesh core_drains, shell_drains;
      for (const Vec2& at : {Vec2(r.box_min.x() + inset + dx, r.box_min.y() + inset + dx),
                            Vec2(r.box_max.x() - inset - dx, r.box_max.y() - inset - dx)}) {
        append(core_drains, cylinder(at.x() + 0.013, at.y() + 0.017, z_bottom - 1, z_bottom + t + 0.5, r_drain, 24));
        append(shell_drains, cylinder(at.x() + 0.013, at.y() + 0.017, z_top - t - 0.5, z_top + 1, r_drain, 24));
      }
      core_void = detail::boolean(core_void, core_drains, detail::BooleanOp::Union, "the core's drain holes");
      shell_void = detail::boolean(shell_void, shell_drains, detail::BooleanOp::Union, "the shell's drain holes");
    } else {
      r.warnings.push_back("the mold is too small to hollow");
    }
  }
  Mesh core, shell;
  double envelope_ml = (r.box_max - r.box_min).prod() / 1000.0;
  if (conformal) {
    const Supports sup = conformal_supports(core_h, o, wall, r);
    for (std::size_t p = 0; p < sup.core.size(); ++p) {
      if (sup.core[p]) core_floor.v[p] = z_bottom;
      if (sup.shell[p]) shell_roof.v[p] = z_top;
    }
    core = heightfield_slab(core_h, core_floor);
    shell = heightfield_slab(shell_roof, shell_h);
    envelope_ml = volume(heightfield_slab(shell_roof, core_floor)) / 1000.0;
  } else {
    core = heightfield_solid(core_h, z_bottom);
    shell = heightfield_solid(shell_h, z_top);
  }
  timer.lap("features");

  using detail::BooleanOp;
  auto debug = [&](const char* what, const Mesh& m) {
    if (!log_enabled(LogLevel::Debug)) return;
    MeasureOptions mo;
    mo.self_intersections = false;
    const MeshInfo i = measure(m, mo);
    const auto pairs = self_intersecting_pairs(m);
    log_debug("mold: {}: {} faces, watertight {}, boundary {}, non-manifold {}, crossings {}", what, m.triangles.size(), i.watertight,
              i.boundary_edges, i.non_manifold_edges, pairs.size());
    for (std::size_t k = 0; k < pairs.size() && k < 6; ++k) {
      for (std::size_t f : {pairs[k].first, pairs[k].second}) {
        const Tri& t = m.triangles[f];
        const Vec3 g = (m.vertices[t[0]] + m.vertices[t[1]] + m.vertices[t[2]]) / 3;
        const double area = 0.5 * (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).norm();
        const int i = static_cast<int>(std::lround((g.x() - x0) / h)), j = static_cast<int>(std::lround((g.y() - y0) / h));
        log_debug("mold:    face at {:.3f} {:.3f} {:.3f} area {:.2e}  out {:.3f} in {:.3f} H {:.3f} foot {}", g.x(), g.y(), g.z(), area,
                  out_top.at(i, j), in_top.at(i, j), shell_h.at(i, j), static_cast<int>(foot[static_cast<std::size_t>(j) * nx + i]));
      }
    }
  };
  debug("core raw", core);
  debug("shell raw", shell);
  debug("appliance", appl);
  debug("male", male);
  if (!male.triangles.empty()) core = detail::boolean(core, male, BooleanOp::Union, "the core's keys");
  debug("core+keys", core);
  core = detail::boolean(core, appl, BooleanOp::Difference, "the core minus the appliance");
  debug("core-appliance", core);
  if (!slots.triangles.empty()) core = detail::boolean(core, slots, BooleanOp::Difference, "the core's pry slots");
  if (!core_void.triangles.empty()) core = detail::boolean(core, core_void, BooleanOp::Difference, "the core's hollow");
  timer.lap("core");
  shell = detail::boolean(shell, appl, BooleanOp::Difference, "the shell minus the appliance");
  append(cutters, female);
  append(cutters, slots);
  if (!cutters.triangles.empty()) shell = detail::boolean(shell, cutters, BooleanOp::Difference, "the shell's keys, sprue and vents");
  if (!shell_void.triangles.empty()) shell = detail::boolean(shell, shell_void, BooleanOp::Difference, "the shell's hollow");
  timer.lap("shell");

  r.sliver_ml = (keep_largest_piece(core) + keep_largest_piece(shell)) / 1000.0;
  r.void_ml = envelope_ml - volume(core) / 1000.0 - volume(shell) / 1000.0;
  // Print pose: the core on its flat base, the shell turned over onto its flat top, side by side
  // on the plate; slivers under a micrometre merged away and coordinates rounded to single
  // precision (what STL and 3MF store), then every part checked as it will be written.
  {
    double x_next = 0;
    for (auto& [name, m] : {std::pair<const char*, Mesh*>{"core", &core}, {"shell", &shell}}) {
      // Slivers under a micrometre welded away, unless the weld opens the surface (it drops pairs
      // of faces it makes back to back); caps and needles that rounding would turn over removed.
      Mesh q = detail::remove_slivers(*m, 1e-3);
      if (!measure(q, MeasureOptions{false}).watertight) q = *m;
      q = detail::remove_near_degenerate(q, 179.5, 1e4, 1e-3);
      if (std::string(name) == "shell")
        for (Vec3& v : q.vertices) v = Vec3(v.x(), -v.y(), -v.z());
      // Flat on its base when that fits the printer; else turned to the orientation that fits
      // best, and written so: the file's pose is the one the report's size is for.
      if (!fit_as_placed(q, o.printer).fits) {
        const BuildFit best = fit_in_build_volume(q, o.printer);
        if (best.fits) {
          const Eigen::Matrix3d R = orientation_matrix(best);
          for (Vec3& v : q.vertices) v = R * v;
          r.warnings.push_back(fmt::format("the {} is laid on its side to fit the {} printer ({:.0f} × {:.0f} × {:.0f} mm)", name,
                                           o.printer.name, best.size_mm.x(), best.size_mm.y(), best.size_mm.z()));
        }
      }
      const Aabb b = bounding_box(q.vertices);
      const Vec3 shift(std::round(x_next - b.min.x()), std::round(-0.5 * (b.min.y() + b.max.y())), std::round(-b.min.z()));
      for (Vec3& v : q.vertices) v = single_precision(Vec3(v + shift));
      settle_in_single_precision(q, 8);
      x_next += std::ceil(b.extent().x()) + 10.0;
      mold.print_parts.push_back({name, std::move(q)});
    }
  }
  for (const NamedMesh& part : mold.print_parts) {
    const std::string& name = part.name;
    PartCheck c = check_part(name, part.mesh, o.printer);
    if (!is_valid_solid(c)) throw ProcessingError("mold: " + solid_problem(c));
    for (std::string& w : part_warnings(c, o.printer)) r.warnings.push_back(std::move(w));
    r.parts.push_back(c);
  }
  r.warnings.push_back(technology_warning(o.printer));
  timer.lap("check");
  mold.parts.push_back({"core", std::move(core)});
  mold.parts.push_back({"shell", std::move(shell)});
  return mold;
}

}  // namespace tracecast::print
