// The closed solids mold features are made of (primitives.h).
#include "primitives.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tracecast::print::detail {

Mesh uv_sphere(const Vec3& c, double r, int rings, int segments) {
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

Mesh tube(const std::vector<std::vector<Vec3>>& rings, const Vec3& start, const Vec3& end) {
  Mesh m;
  const auto P = static_cast<int>(rings.size()), S = static_cast<int>(rings.front().size());
  for (const auto& ring : rings) m.vertices.insert(m.vertices.end(), ring.begin(), ring.end());
  m.vertices.push_back(start);
  m.vertices.push_back(end);
  const auto c0 = P * S, c1 = P * S + 1;
  for (int i = 0; i + 1 < P; ++i)
    for (int k = 0; k < S; ++k) {
      const int a = i * S + k, b = i * S + (k + 1) % S;
      m.triangles.push_back({a, b, b + S});
      m.triangles.push_back({a, b + S, a + S});
    }
  for (int k = 0; k < S; ++k) {
    m.triangles.push_back({c0, (k + 1) % S, k});
    m.triangles.push_back({c1, (P - 1) * S + k, (P - 1) * S + (k + 1) % S});
  }
  return m;
}

Mesh lathe(double x, double y, const std::vector<Vec2>& profile, int segments) {
  std::vector<std::vector<Vec3>> rings;
  for (const Vec2& q : profile) {
    rings.emplace_back();
    for (int k = 0; k < segments; ++k) {
      const double a = 2 * kPi * k / segments;
      rings.back().emplace_back(x + q.x() * std::cos(a), y + q.x() * std::sin(a), q.y());
    }
  }
  return tube(rings, Vec3(x, y, profile.front().y()), Vec3(x, y, profile.back().y()));
}

Mesh cylinder(double x, double y, double z0, double z1, double r, int segments) { return lathe(x, y, {{r, z0}, {r, z1}}, segments); }


Mesh box(const Vec3& lo, const Vec3& hi) {
  Mesh m;
  for (int k = 0; k < 8; ++k) m.vertices.emplace_back(k & 1 ? hi.x() : lo.x(), k & 2 ? hi.y() : lo.y(), k & 4 ? hi.z() : lo.z());
  const int f[12][3] = {{0, 2, 1}, {1, 2, 3}, {4, 5, 6}, {5, 7, 6}, {0, 1, 4}, {1, 5, 4},
                        {2, 6, 3}, {3, 6, 7}, {0, 4, 2}, {2, 4, 6}, {1, 3, 5}, {3, 7, 5}};
  for (const auto& t : f) m.triangles.push_back({t[0], t[1], t[2]});
  return m;
}

Mesh front_block(const std::vector<std::vector<Vec3>>& rows, double back, int axis) {
  Mesh m;
  const int J = static_cast<int>(rows.size()), K = static_cast<int>(rows.front().size());
  auto front = [&](int j, int k) { return 2 * (j * K + k); };
  for (const auto& row : rows)
    for (const Vec3& q : row) {
      const Vec3 b(back, q.y(), q.z());
      m.vertices.push_back(axis == 0 ? q : Vec3(q.y(), q.x(), q.z()));
      m.vertices.push_back(axis == 0 ? b : Vec3(b.y(), b.x(), b.z()));
    }
  auto quad = [&](int a, int b, int c, int d) {
    m.triangles.push_back({a, b, c});
    m.triangles.push_back({a, c, d});
  };
  for (int j = 0; j + 1 < J; ++j)
    for (int k = 0; k + 1 < K; ++k) {
      quad(front(j, k), front(j + 1, k), front(j + 1, k + 1), front(j, k + 1));
      quad(front(j, k) + 1, front(j, k + 1) + 1, front(j + 1, k + 1) + 1, front(j + 1, k) + 1);
    }
  for (int j = 0; j + 1 < J; ++j) {  // bottom and top
    quad(front(j, 0), front(j, 0) + 1, front(j + 1, 0) + 1, front(j + 1, 0));
    quad(front(j, K - 1), front(j + 1, K - 1), front(j + 1, K - 1) + 1, front(j, K - 1) + 1);
  }
  for (int k = 0; k + 1 < K; ++k) {  // the two ends
    quad(front(0, k), front(0, k + 1), front(0, k + 1) + 1, front(0, k) + 1);
    quad(front(J - 1, k), front(J - 1, k) + 1, front(J - 1, k + 1) + 1, front(J - 1, k + 1));
  }
  if (signed_volume(m) < 0)
    for (Tri& t : m.triangles) std::swap(t[1], t[2]);
  return m;
}

Mesh rod(const Vec3& a, const Vec3& b, double r, int segments) {
  const Vec3 d = (b - a).normalized();
  const Vec3 e1 = d.unitOrthogonal(), e2 = d.cross(e1);
  std::vector<std::vector<Vec3>> rings(2);
  for (int k = 0; k < segments; ++k) {
    const double t = 2 * kPi * (k + 0.29) / segments;
    const Vec3 u = r * (std::cos(t) * e1 + std::sin(t) * e2);
    rings[0].push_back(a + u);
    rings[1].push_back(b + u);
  }
  return tube(rings, a, b);
}

double distance_to_segment(const Vec2& q, const Vec2& a, const Vec2& b) {
  const Vec2 ab = b - a;
  const double t = ab.squaredNorm() > 0 ? std::clamp((q - a).dot(ab) / ab.squaredNorm(), 0.0, 1.0) : 0.0;
  return (q - (a + t * ab)).norm();
}

std::vector<Mesh> apart(const std::vector<Mesh>& solids) {
  std::vector<Mesh> groups;
  std::vector<std::vector<Aabb>> boxes;
  for (const Mesh& s : solids) {
    const Aabb b = bounding_box(s);
    const auto clear = [&](const std::vector<Aabb>& in) {
      return std::none_of(in.begin(), in.end(), [&](const Aabb& o) { return (b.min.array() <= o.max.array()).all() && (o.min.array() <= b.max.array()).all(); });
    };
    std::size_t g = 0;
    while (g < groups.size() && !clear(boxes[g])) ++g;
    if (g == groups.size()) groups.emplace_back(), boxes.emplace_back();
    append(groups[g], s);
    boxes[g].push_back(b);
  }
  return groups;
}

std::vector<Vec3> farthest_first(const std::vector<Vec3>& pool, const std::vector<Vec3>& taken, std::size_t want, double apart) {
  std::vector<double> gap(pool.size(), std::numeric_limits<double>::infinity());  // to the nearest taken or chosen
  const auto take = [&](const Vec3& t) {
    for (std::size_t i = 0; i < pool.size(); ++i) gap[i] = std::min(gap[i], (pool[i] - t).norm());
  };
  for (const Vec3& t : taken) take(t);
  std::vector<Vec3> chosen;
  while (chosen.size() < want && !pool.empty()) {
    const auto far = std::max_element(gap.begin(), gap.end());
    if (!(taken.empty() && chosen.empty()) && *far < apart) break;
    chosen.push_back(pool[static_cast<std::size_t>(far - gap.begin())]);
    take(chosen.back());
  }
  return chosen;
}

}  // namespace tracecast::print::detail
