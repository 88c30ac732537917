// Height fields over a regular grid (see heightfield.h).
#include "tracecast/print/heightfield.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <tuple>

namespace tracecast::print {

std::size_t Grid::nearest(double x, double y) const {
  const int i = std::clamp(static_cast<int>(std::lround((x - x0) / h)), 0, nx - 1);
  const int j = std::clamp(static_cast<int>(std::lround((y - y0) / h)), 0, ny - 1);
  return index(i, j);
}

std::size_t cell_of(const Grid& g, double x, double y) {
  return g.index(std::clamp(static_cast<int>(std::floor((x - g.x0) / g.h)), 0, g.nx - 2),
                 std::clamp(static_cast<int>(std::floor((y - g.y0) / g.h)), 0, g.ny - 2));
}

bool corners(const Grid& g, double x, double y, GridCorners& out) {
  const double u = (x - g.x0) / g.h, w = (y - g.y0) / g.h;
  if (!(u >= 0 && w >= 0 && u <= g.nx - 1 && w <= g.ny - 1)) return false;
  const int i = std::min(static_cast<int>(u), g.nx - 2), j = std::min(static_cast<int>(w), g.ny - 2);
  const double fu = u - i, fw = w - j;
  const std::size_t n00 = g.index(i, j), n10 = g.index(i + 1, j), n01 = g.index(i, j + 1), n11 = g.index(i + 1, j + 1);
  if ((i + j) % 2 == 0) {  // diagonal (i, j)–(i+1, j+1)
    if (fu >= fw) out = {{n00, n10, n11}, {1 - fu, fu - fw, fw}};
    else out = {{n00, n11, n01}, {1 - fw, fu, fw - fu}};
  } else {  // diagonal (i+1, j)–(i, j+1)
    if (fu + fw <= 1) out = {{n00, n10, n01}, {1 - fu - fw, fu, fw}};
    else out = {{n10, n11, n01}, {1 - fw, fu + fw - 1, 1 - fu}};
  }
  return true;
}

double sample(const Grid& g, double x, double y) {
  GridCorners c;
  if (!corners(g, x, y, c)) return std::numeric_limits<double>::quiet_NaN();
  return c.weight[0] * g.v[c.node[0]] + c.weight[1] * g.v[c.node[1]] + c.weight[2] * g.v[c.node[2]];
}

void rasterize_top(Grid& g, const std::vector<Vec3>& P, const std::vector<Tri>& tris, const std::vector<char>* use,
                   const Grid* ceiling) {
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


Mesh heightfield_solid(const Grid& g, double base, const CellPoints* points) {
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
  if (points) m.vertices.insert(m.vertices.end(), points->points.begin(), points->points.end());
  for (int j = 0; j + 1 < ny; ++j)
    for (int i = 0; i + 1 < nx; ++i) {
      if (points && points->cells.count(g.index(i, j))) {
        for (const Tri& t : cell_triangles(g, i, j, *points)) add(t[0], t[1], t[2]);  // points follow the nodes: indices hold
      } else if ((i + j) % 2 == 0) {
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


Mesh heightfield_slab(const Grid& top, const Grid& bottom, const CellPoints* top_points, const CellPoints* bottom_points) {
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
  for (bool low : {false, true}) {
    const CellPoints* cp = low ? bottom_points : top_points;
    const auto first_point = static_cast<std::int32_t>(m.vertices.size());
    if (cp) m.vertices.insert(m.vertices.end(), cp->points.begin(), cp->points.end());
    auto vertex = [&](std::int32_t v) { return v < layer ? v + (low ? layer : 0) : first_point + (v - layer); };
    for (int j = 0; j + 1 < ny; ++j)
      for (int i = 0; i + 1 < nx; ++i) {
        if (cp && cp->cells.count(top.index(i, j))) {
          for (const Tri& t : cell_triangles(top, i, j, *cp)) add(vertex(t[0]), vertex(t[1]), vertex(t[2]), low);
        } else if ((i + j) % 2 == 0) {
          add(node(i, j, low), node(i + 1, j, low), node(i + 1, j + 1, low), low);
          add(node(i, j, low), node(i + 1, j + 1, low), node(i, j + 1, low), low);
        } else {
          add(node(i, j, low), node(i + 1, j, low), node(i, j + 1, low), low);
          add(node(i + 1, j, low), node(i + 1, j + 1, low), node(i, j + 1, low), low);
        }
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


namespace {

//! The max (or min) of the field over the square of (2r + 1)² nodes round each node (clamped at
//! the grid's edge), separably: along x, then along y.
std::vector<double> square_filter(const Grid& g, int r, bool max) {
  auto pick = [max](double a, double b) { return max ? std::max(a, b) : std::min(a, b); };
  std::vector<double> row(g.v.size()), out(g.v.size());
  for (int j = 0; j < g.ny; ++j)
    for (int i = 0; i < g.nx; ++i) {
      double m = g.at(i, j);
      for (int k = std::max(0, i - r); k <= std::min(g.nx - 1, i + r); ++k) m = pick(m, g.at(k, j));
      row[g.index(i, j)] = m;
    }
  for (int j = 0; j < g.ny; ++j)
    for (int i = 0; i < g.nx; ++i) {
      double m = row[g.index(i, j)];
      for (int k = std::max(0, j - r); k <= std::min(g.ny - 1, j + r); ++k) m = pick(m, row[g.index(i, k)]);
      out[g.index(i, j)] = m;
    }
  return out;
}

}  // namespace

void plane_creases(Grid& g, const std::vector<char>& free, int r) {
  Grid t = g;
  t.v = square_filter(t, r, true);  // closing: valleys filled
  t.v = square_filter(t, r, false);
  t.v = square_filter(t, r, false);  // opening: ridges planed
  t.v = square_filter(t, r, true);
  for (std::size_t k = 0; k < g.v.size(); ++k)
    if (free[k]) g.v[k] = t.v[k];
}

std::size_t extend_edges(Grid& g, int rings) {
  std::size_t filled = 0;
  for (int ring = 0; ring < rings; ++ring) {
    std::vector<std::pair<std::size_t, double>> next;
    for (int j = 0; j < g.ny; ++j)
      for (int i = 0; i < g.nx; ++i) {
        if (!std::isnan(g.at(i, j))) continue;
        double sum = 0;
        int known = 0;
        for (int b = std::max(0, j - 1); b <= std::min(g.ny - 1, j + 1); ++b)
          for (int a = std::max(0, i - 1); a <= std::min(g.nx - 1, i + 1); ++a)
            if (!std::isnan(g.at(a, b))) sum += g.at(a, b), ++known;
        if (known > 0) next.emplace_back(g.index(i, j), sum / known);
      }
    if (next.empty()) break;
    for (const auto& [k, z] : next) g.v[k] = z;
    filled += next.size();
  }
  return filled;
}

std::size_t fill_enclosed_holes(Grid& g) {
  const auto n = static_cast<std::size_t>(g.nx) * static_cast<std::size_t>(g.ny);
  std::vector<char> hole(n, 0);
  std::vector<std::size_t> nodes, stack;
  for (std::size_t start = 0; start < n; ++start) {
    if (!std::isnan(g.v[start]) || hole[start]) continue;
    // One NaN region (4-connected); it is a hole unless it reaches the grid's border.
    std::vector<std::size_t> region;
    bool border = false;
    hole[start] = 2;
    stack.push_back(start);
    while (!stack.empty()) {
      const std::size_t k = stack.back();
      stack.pop_back();
      region.push_back(k);
      const int i = static_cast<int>(k % g.nx), j = static_cast<int>(k / g.nx);
      border = border || i == 0 || j == 0 || i == g.nx - 1 || j == g.ny - 1;
      for (const auto& [di, dj] : {std::pair{1, 0}, {-1, 0}, {0, 1}, {0, -1}}) {
        const int a = i + di, b = j + dj;
        if (a < 0 || b < 0 || a >= g.nx || b >= g.ny) continue;
        const std::size_t m = g.index(a, b);
        if (std::isnan(g.v[m]) && !hole[m]) hole[m] = 2, stack.push_back(m);
      }
    }
    if (!border) nodes.insert(nodes.end(), region.begin(), region.end());
  }
  if (nodes.empty()) return 0;
  // Laplace's equation over the holes, their rims held: over-relaxed Gauss–Seidel sweeps, from the
  // mean of the known nodes.
  double known = 0;
  std::size_t count = 0;
  for (std::size_t k = 0; k < n; ++k)
    if (!std::isnan(g.v[k])) known += g.v[k], ++count;
  for (std::size_t k : nodes) g.v[k] = known / static_cast<double>(count);
  constexpr double kOmega = 1.9;
  for (int sweep = 0; sweep < 5000; ++sweep) {
    double change = 0;
    for (std::size_t k : nodes) {
      const int i = static_cast<int>(k % g.nx), j = static_cast<int>(k / g.nx);
      const double step = kOmega * (0.25 * (g.at(i - 1, j) + g.at(i + 1, j) + g.at(i, j - 1) + g.at(i, j + 1)) - g.v[k]);
      change = std::max(change, std::abs(step));
      g.v[k] += step;
    }
    if (change < 1e-6) break;
  }
  return nodes.size();
}

void level_border(Grid& g, int band) {
  band = std::min({band, (g.nx - 1) / 2, (g.ny - 1) / 2});
  for (int j = 0; j < g.ny; ++j)
    for (int i = 0; i < g.nx; ++i) {
      const int a = std::clamp(i, band, g.nx - 1 - band), b = std::clamp(j, band, g.ny - 1 - band);
      if (a != i || b != j) g.at(i, j) = g.at(a, b);
    }
}

void limit_fall(Grid& g, const std::vector<char>& fixed, double slope) {
  const double step = slope * g.h, diagonal = step * std::sqrt(2.0);
  const auto relax = [&](int i, int j, int di, int dj) {
    const std::size_t k = g.index(i, j);
    if (fixed[k]) return;
    const auto from = [&](int a, int b, double drop) {
      if (a < 0 || b < 0 || a >= g.nx || b >= g.ny) return;
      const double v = g.at(a, b) - drop;
      if (!std::isnan(v) && !(g.v[k] >= v)) g.v[k] = v;  // a NaN node is raised too
    };
    from(i - di, j, step);
    from(i, j - dj, step);
    from(i - di, j - dj, diagonal);
    from(i + di, j - dj, diagonal);
  };
  // Raster sweeps, forward then backward, carry each node's cone across the grid; fixed nodes
  // block it, so the sweeps repeat until nothing changes (two or three rounds).
  for (bool changed = true; changed;) {
    const std::vector<double> before = g.v;
    for (int j = 0; j < g.ny; ++j)
      for (int i = 0; i < g.nx; ++i) relax(i, j, 1, 1);
    for (int j = g.ny - 1; j >= 0; --j)
      for (int i = g.nx - 1; i >= 0; --i) relax(i, j, -1, -1);
    changed = g.v != before;
  }
}

}  // namespace tracecast::print
