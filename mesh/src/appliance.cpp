// The appliance (see appliance.h for the method).
#include "tracecast/mesh/appliance.h"

#include <fmt/format.h>
#include <open3d/geometry/KDTreeFlann.h>
#include <open3d/geometry/PointCloud.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/step_timer.h"
#include "tracecast/mesh/submesh.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/repair.h"

namespace tracecast {

namespace {

constexpr double kPi = 3.14159265358979323846;

double smoothstep(double e0, double e1, double x) {
  const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
  return t * t * (3 - 2 * t);
}
//! C2 taper 0 → 1 over [0, 1].
double smootherstep(double s) {
  s = std::clamp(s, 0.0, 1.0);
  return s * s * s * (s * (6 * s - 15) + 10);
}

std::vector<Vec2> superellipse(Vec2 c, double a, double b, double exponent = 2.0, int segments = 160) {
  std::vector<Vec2> p;
  for (int k = 0; k < segments; ++k) {
    const double t = 2 * kPi * k / segments, ct = std::cos(t), st = std::sin(t);
    p.emplace_back(c.x() + a * std::copysign(std::pow(std::abs(ct), 2.0 / exponent), ct),
                   c.y() + b * std::copysign(std::pow(std::abs(st), 2.0 / exponent), st));
  }
  return p;
}

//! Signed distance to a closed polygon, positive inside.
double signed_distance(const std::vector<Vec2>& poly, const Vec2& q) {
  double best = std::numeric_limits<double>::infinity();
  bool inside = false;
  for (std::size_t i = 0, j = poly.size() - 1; i < poly.size(); j = i++) {
    const Vec2 &a = poly[j], &b = poly[i];
    const Vec2 ab = b - a;
    const double t = std::clamp((q - a).dot(ab) / std::max(ab.squaredNorm(), 1e-300), 0.0, 1.0);
    best = std::min(best, (a + t * ab - q).squaredNorm());
    if ((a.y() > q.y()) != (b.y() > q.y()) && q.x() < a.x() + (q.y() - a.y()) / (b.y() - a.y()) * ab.x()) inside = !inside;
  }
  return inside ? std::sqrt(best) : -std::sqrt(best);
}

struct Shape {  // union of polygons
  std::vector<std::vector<Vec2>> polys;
  double sd(const Vec2& q) const {
    double s = -std::numeric_limits<double>::infinity();
    for (const auto& p : polys) s = std::max(s, signed_distance(p, q));
    return s;
  }
};

enum class Use { region, opening, zone };

Shape make_shape(const RegionShape& r, const FaceAnalysis& fa, double margin, Use use, const Mesh* surface) {
  Shape s;
  if (!r.outline.empty()) {
    if (r.outline.size() < 3) throw InputError("an outline needs at least 3 points");
    s.polys.push_back(r.outline);
    return s;
  }
  if (!r.points.empty()) {
    if (r.points.size() < 3) throw InputError("an outline needs at least 3 points");
    std::vector<Vec3> pts = r.points;
    if (surface) pts = SurfaceQuery(*surface).closest_points(pts);
    std::vector<Vec2> poly;
    for (const Vec3& p : pts) {
      const Vec3 q = fa.frame.to_local(p);
      poly.emplace_back(q.x(), q.y());
    }
    s.polys.push_back(poly);
    return s;
  }
  const Landmarks& L = fa.landmarks;
  const double ey = 0.5 * (L.eye_left.y() + L.eye_right.y());
  const double u = std::max(ey, 15.0);
  // The face's width scale: the sockets' centroids sit nearer the nose than the pupils on some
  // faces, so the nose-to-eye height (about 0.6 of the pupils' distance) bounds it from below.
  const double E = std::max({L.eye_distance(), 1.6 * u, 30.0});
  auto eye_centre = [&](const Vec3& e) {
    const double side = e.x() >= 0 ? 1.0 : -1.0;
    return Vec2(side * std::max(std::abs(e.x()), 0.45 * E), e.y());
  };
  const double cy = std::min(L.chin.y(), L.mouth_center.y() - 10.0);
  const std::string& p = r.preset;
  const bool zone = use == Use::zone;
  if (p == "full_face" || p == "upper_face") {
    const double top = ey + 1.2 * u;
    const double bottom = p == "full_face" ? cy - 0.3 * u : -0.45 * u;
    s.polys.push_back(superellipse({0, 0.5 * (top + bottom)}, 1.0 * E, 0.5 * (top - bottom), 2.5));
  } else if (p == "nose") {
    s.polys.push_back(superellipse({0, 0.25 * u}, 0.36 * E, 0.75 * u));
  } else if (p == "forehead") {
    s.polys.push_back(superellipse({0, ey + 0.8 * u}, 0.95 * E, 0.45 * u, 2.5));
  } else if (p == "cheek_left" || p == "cheek_right") {
    const double side = p == "cheek_left" ? 1.0 : -1.0;
    s.polys.push_back(superellipse({side * 0.72 * E, -0.15 * u}, 0.38 * E, 0.6 * u));
  } else if (p == "chin") {
    s.polys.push_back(superellipse({0, cy + 0.05 * u}, 0.5 * E, 0.45 * u));
  } else if (p == "eyes") {
    for (const Vec3& e : {L.eye_left, L.eye_right})
      s.polys.push_back(zone ? superellipse(eye_centre(e), 0.45 * E, 0.32 * E)
                             : superellipse(eye_centre(e), 0.2 * E + margin, 0.1 * E + margin));
  } else if (p == "nostrils") {
    if (L.nostrils_found) {  // the hollows found, or the usual proportions
      for (const Vec3& n : {L.nostril_left, L.nostril_right})
        s.polys.push_back(superellipse({n.x(), n.y()}, 0.055 * E + margin, 0.04 * E + margin));
    } else {
      for (double side : {1.0, -1.0})
        s.polys.push_back(superellipse({side * 0.1 * E, -0.17 * u}, 0.055 * E + margin, 0.04 * E + margin));
    }
  } else if (p == "mouth") {
    const double half = std::max(0.5 * (L.mouth_left - L.mouth_right).norm(), 0.2 * E);
    s.polys.push_back(zone ? superellipse({L.mouth_center.x(), L.mouth_center.y()}, half + 8, 0.25 * u + 6)
                           : superellipse({L.mouth_center.x(), L.mouth_center.y()}, half + margin, 0.12 * u + margin));
  } else {
    throw InputError(fmt::format("unknown region '{}' (full_face, upper_face, nose, forehead, cheek_left, cheek_right, chin, eyes, nostrils, mouth)", p));
  }
  return s;
}

//! Vertex adjacency (CSR).
struct Adjacency {
  std::vector<std::size_t> start;
  std::vector<std::int32_t> nb;
  explicit Adjacency(const Mesh& m) {
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
  template <class F>
  void each(std::size_t v, F&& f) const {
    for (std::size_t k = start[v]; k < start[v + 1]; ++k) f(static_cast<std::size_t>(nb[k]));
  }
};

//! Keeps the part of `m` where the per-vertex field f ≥ 0, cutting triangles exactly along the
//! zero level of the linear interpolation of f. Values within `snap` of zero are set to zero
//! first, so that no sliver is created next to a vertex.
Mesh level_set_cut(const Mesh& m, std::vector<double> f, double snap) {
  for (double& x : f)
    if (std::abs(x) < snap) x = 0;
  Mesh out;
  std::vector<std::int32_t> keep(m.vertices.size(), -1);
  auto vertex = [&](std::int32_t v) {
    auto& k = keep[static_cast<std::size_t>(v)];
    if (k < 0) {
      k = static_cast<std::int32_t>(out.vertices.size());
      out.vertices.push_back(m.vertices[static_cast<std::size_t>(v)]);
    }
    return k;
  };
  std::map<std::pair<std::int32_t, std::int32_t>, std::int32_t> cuts;
  auto cut = [&](std::int32_t a, std::int32_t b) {
    const auto key = std::minmax(a, b);
    auto it = cuts.find(key);
    if (it != cuts.end()) return it->second;
    const double fa = f[static_cast<std::size_t>(key.first)], fb = f[static_cast<std::size_t>(key.second)];
    const double t = fa / (fa - fb);
    const auto id = static_cast<std::int32_t>(out.vertices.size());
    out.vertices.push_back(m.vertices[static_cast<std::size_t>(key.first)] +
                           t * (m.vertices[static_cast<std::size_t>(key.second)] - m.vertices[static_cast<std::size_t>(key.first)]));
    cuts.emplace(key, id);
    return id;
  };
  for (const Tri& t : m.triangles) {
    const double v[3] = {f[static_cast<std::size_t>(t[0])], f[static_cast<std::size_t>(t[1])], f[static_cast<std::size_t>(t[2])]};
    const int pos = (v[0] > 0) + (v[1] > 0) + (v[2] > 0), neg = (v[0] < 0) + (v[1] < 0) + (v[2] < 0);
    if (pos == 0) continue;
    if (neg == 0) {
      out.triangles.push_back({vertex(t[0]), vertex(t[1]), vertex(t[2])});
      continue;
    }
    // Rotate so that corner 0 is the odd one out (alone in its sign class among ±).
    for (int r = 0; r < 3; ++r) {
      const int a = r, b = (r + 1) % 3, c = (r + 2) % 3;
      const double fa = v[a], fb = v[b];
      if (pos == 1 && neg == 2 && fa > 0) {  // one corner inside
        out.triangles.push_back({vertex(t[a]), cut(t[a], t[b]), cut(t[a], t[c])});
      } else if (pos == 2 && neg == 1 && fa < 0) {  // one corner outside: a quad
        const std::int32_t ab = cut(t[a], t[b]), ac = cut(t[a], t[c]);
        out.triangles.push_back({ab, vertex(t[b]), vertex(t[c])});
        out.triangles.push_back({ab, vertex(t[c]), ac});
      } else if (pos == 1 && neg == 1 && fa == 0) {  // zero corner, the edge opposite is cut
        const std::int32_t bc = cut(t[b], t[c]);
        if (fb > 0) out.triangles.push_back({vertex(t[a]), vertex(t[b]), bc});
        else out.triangles.push_back({vertex(t[a]), bc, vertex(t[c])});
      } else {
        continue;
      }
      break;
    }
  }
  return out;
}

//! Keeps the connected component (by shared vertices) with the largest area; drops unused vertices.
Mesh largest_component(const Mesh& m, std::size_t* dropped = nullptr) {
  const std::vector<std::size_t> piece = face_components(m);
  std::map<std::size_t, double> area;
  for (std::size_t f = 0; f < m.triangles.size(); ++f) {
    const Tri& t = m.triangles[f];
    area[piece[f]] += (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).norm();
  }
  std::size_t best = 0;
  double best_area = -1;
  for (const auto& [label, a] : area)
    if (a > best_area) best = label, best_area = a;
  std::vector<char> keep(m.triangles.size(), 0);
  std::size_t drop = 0;
  for (std::size_t f = 0; f < m.triangles.size(); ++f) {
    keep[f] = piece[f] == best;
    drop += !keep[f];
  }
  Mesh out = submesh(m, keep);
  if (dropped) *dropped = drop;
  return out;
}

//! Directed boundary edges (a → b as they appear in their one triangle), as loops.
std::vector<std::vector<std::int32_t>> boundary_loops(const Mesh& m) {
  std::map<std::pair<std::int32_t, std::int32_t>, int> count;
  for (const Tri& t : m.triangles)
    for (int k = 0; k < 3; ++k) ++count[std::minmax(t[k], t[(k + 1) % 3])];
  std::unordered_map<std::int32_t, std::int32_t> next;
  for (const Tri& t : m.triangles)
    for (int k = 0; k < 3; ++k)
      if (count[std::minmax(t[k], t[(k + 1) % 3])] == 1) next[t[k]] = t[(k + 1) % 3];
  std::vector<std::vector<std::int32_t>> loops;
  std::unordered_map<std::int32_t, char> seen;
  std::vector<std::int32_t> starts;
  for (const auto& [a, b] : next) starts.push_back(a);
  std::sort(starts.begin(), starts.end());
  for (std::int32_t s : starts) {
    if (seen[s]) continue;
    std::vector<std::int32_t> loop;
    std::int32_t v = s;
    while (!seen[v]) {
      seen[v] = 1;
      loop.push_back(v);
      auto it = next.find(v);
      if (it == next.end()) break;
      v = it->second;
    }
    loops.push_back(loop);
  }
  return loops;
}

//! Distance from every vertex to the nearest boundary edge (sampled every ≤ 0.05 mm).
std::vector<double> distance_to_boundary(const Mesh& m, const std::vector<std::vector<std::int32_t>>& loops) {
  open3d::geometry::PointCloud samples;
  for (const auto& loop : loops)
    for (std::size_t i = 0; i < loop.size(); ++i) {
      const Vec3& a = m.vertices[static_cast<std::size_t>(loop[i])];
      const Vec3& b = m.vertices[static_cast<std::size_t>(loop[(i + 1) % loop.size()])];
      const int n = std::max(1, static_cast<int>(std::ceil((b - a).norm() / 0.05)));
      for (int k = 0; k < n; ++k) samples.points_.push_back(a + (b - a) * (static_cast<double>(k) / n));
    }
  std::vector<double> d(m.vertices.size(), std::numeric_limits<double>::infinity());
  if (samples.points_.empty()) return d;
  open3d::geometry::KDTreeFlann tree(samples);
  std::vector<int> idx(1);
  std::vector<double> d2(1);
  for (std::size_t i = 0; i < m.vertices.size(); ++i)
    if (tree.SearchKNN(m.vertices[i], 1, idx, d2) > 0) d[i] = std::sqrt(d2[0]);
  return d;
}

double signed_volume(const Mesh& m) {
  double v = 0;
  for (const Tri& t : m.triangles) v += m.vertices[t[0]].dot(m.vertices[t[1]].cross(m.vertices[t[2]]));
  return v / 6.0;
}

double area(const Mesh& m) {
  double a = 0;
  for (const Tri& t : m.triangles) a += 0.5 * (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).norm();
  return a;
}

ThicknessStats stats(std::vector<double> v, const std::vector<double>& wanted) {
  ThicknessStats s;
  if (v.empty()) return s;
  s.samples = v.size();
  std::size_t ok = 0;
  for (std::size_t i = 0; i < v.size(); ++i)
    ok += std::abs(v[i] - wanted[i]) <= std::max(0.05 * wanted[i], 0.02);
  s.within_5_percent = static_cast<double>(ok) / static_cast<double>(v.size());
  std::vector<double> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  s.p05 = sorted[static_cast<std::size_t>(0.05 * static_cast<double>(sorted.size() - 1))];
  s.p95 = sorted[static_cast<std::size_t>(0.95 * static_cast<double>(sorted.size() - 1))];
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  return s;
}

//! The patch (inner skin surface) and, per vertex, the distance to its edge.
struct Patch {
  Mesh mesh;
  std::vector<std::vector<std::int32_t>> loops;
  std::vector<double> edge_distance;
};

using Field = std::function<double(const Vec3& world)>;  // positive inside the region

Patch cut_patch(const Mesh& face, const Field& field, const FaceAnalysis& fa, double h, double band) {
  // Crop generously (front-facing surface near the front of the depth map), remesh, cut exactly.
  const DepthMap depth = depth_map(face, fa.frame, 1.0);
  const std::vector<Vec3> normals = vertex_normals(face);
  std::vector<char> in(face.vertices.size(), 0);
  for (std::size_t i = 0; i < face.vertices.size(); ++i) {
    const Vec3 q = fa.frame.to_local(face.vertices[i]);
    const double front = depth.sample(q.x(), q.y());
    const bool visible_side = fa.frame.direction_to_local(normals[i]).z() > -0.5 &&
                              (std::isnan(front) || q.z() > front - 40.0);
    in[i] = visible_side && field(face.vertices[i]) > -(3.0 + 4 * h);
  }
  std::vector<char> keep(face.triangles.size(), 0);
  for (std::size_t f = 0; f < face.triangles.size(); ++f) {
    const Tri& t = face.triangles[f];
    keep[f] = in[static_cast<std::size_t>(t[0])] && in[static_cast<std::size_t>(t[1])] && in[static_cast<std::size_t>(t[2])];
  }
  Mesh crop = submesh(face, keep);
  crop.normals.clear();
  crop.colors.clear();
  if (crop.triangles.empty()) throw InputError("the region does not cover any part of the face's surface");
  if (log_enabled(LogLevel::Debug)) {
    Aabb b;
    for (const Vec3& v : crop.vertices) b.add(fa.frame.to_local(v));
    log_debug("appliance: crop's box in the face frame {:.1f} {:.1f} {:.1f} .. {:.1f} {:.1f} {:.1f}", b.min.x(), b.min.y(), b.min.z(),
              b.max.x(), b.max.y(), b.max.z());
  }
  crop = largest_component(remesh_isotropic(crop, h, 3));
  std::vector<double> f(crop.vertices.size());
  for (std::size_t i = 0; i < f.size(); ++i) f[i] = field(crop.vertices[i]);
  Patch p;
  p.mesh = largest_component(make_manifold(level_set_cut(crop, f, 0.05 * h)));
  if (p.mesh.triangles.size() < 20) throw InputError("the region does not cover any part of the face's surface");
  p.loops = boundary_loops(p.mesh);
  if (p.loops.empty()) throw InputError("the region covers the whole closed surface: it has no edge to feather");
  p.edge_distance = distance_to_boundary(p.mesh, p.loops);
  (void)band;
  return p;
}

Mesh assemble(const Patch& p, const std::vector<Vec3>& outer) {
  const Mesh& in = p.mesh;
  const auto n = static_cast<std::int32_t>(in.vertices.size());
  Mesh s;
  s.vertices = in.vertices;
  s.vertices.insert(s.vertices.end(), outer.begin(), outer.end());
  s.triangles.reserve(2 * in.triangles.size() + 2 * in.vertices.size());
  for (const Tri& t : in.triangles) s.triangles.push_back({t[0], t[2], t[1]});
  for (const Tri& t : in.triangles) s.triangles.push_back({t[0] + n, t[1] + n, t[2] + n});
  for (const auto& loop : p.loops)
    for (std::size_t i = 0; i < loop.size(); ++i) {
      const std::int32_t a = loop[i], b = loop[(i + 1) % loop.size()];
      s.triangles.push_back({a, b, b + n});
      s.triangles.push_back({a, b + n, a + n});
    }
  return s;
}

Mesh build_solid(const Mesh& face, const Field& field, const std::function<double(const Vec2&)>& base_thickness,
                 const ApplianceSpec& spec, const Mesh* sculpt, ApplianceReport& r) {
  StepTimer timer(r.timings);
  const double h = spec.resolution_mm, band = spec.feather_band_mm, e = spec.edge_thickness_mm;
  Patch p = cut_patch(face, field, r.face, h, band);
  timer.lap("region");
  const Mesh& in = p.mesh;
  const std::size_t n = in.vertices.size();
  const std::vector<Vec3> normals = vertex_normals(in);
  const Adjacency adj(in);
  std::vector<char> on_edge(n, 0);
  for (const auto& loop : p.loops)
    for (std::int32_t v : loop) on_edge[static_cast<std::size_t>(v)] = 1;

  // Full thickness per vertex (before feathering).
  std::vector<double> full(n);
  double tmax = 0;
  if (sculpt) {
    const SurfaceQuery target(*sculpt);
    std::vector<Vec3> neg(n);
    for (std::size_t i = 0; i < n; ++i) neg[i] = -normals[i];
    const auto up = target.cast(in.vertices, normals), down = target.cast(in.vertices, neg);
    std::size_t hits = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (up[i].hit) {
        full[i] = up[i].t;
        ++hits;
      } else if (down[i].hit) {
        full[i] = 0;  // the sculpt lies under the skin here: nothing to add
        ++hits;
      } else {
        full[i] = 0;
        ++r.sculpt_misses;
      }
    }
    if (hits < n / 2)
      throw InputError(fmt::format("the sculpt does not overlap the face in the region ({} of {} skin points see it)", hits, n));
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      const Vec3 q = r.face.frame.to_local(in.vertices[i]);
      full[i] = base_thickness(Vec2(q.x(), q.y()));
    }
  }
  for (double t : full) tmax = std::max(tmax, t);
  std::vector<double> t(n);
  for (std::size_t i = 0; i < n; ++i)
    t[i] = on_edge[i] ? e : e + std::max(0.0, full[i] - e) * smootherstep(p.edge_distance[i] / band);

  // Offset directions: normals averaged over about half the largest thickness.
  std::vector<Vec3> d = normals;
  const int passes = std::clamp(static_cast<int>(std::lround(0.25 * (tmax / h) * (tmax / h))), 1, 60);
  for (int it = 0; it < passes; ++it) {
    std::vector<Vec3> next(n);
    for (std::size_t i = 0; i < n; ++i) {
      Vec3 s = d[i];
      adj.each(i, [&](std::size_t j) { s += d[j]; });
      next[i] = s.normalized();
    }
    d.swap(next);
  }
  if (sculpt) {
    // Exactly onto the sculpt: the distances again, along the smoothed directions.
    const SurfaceQuery target(*sculpt);
    const auto hit = target.cast(in.vertices, d);
    for (std::size_t i = 0; i < n; ++i)
      if (hit[i].hit && !on_edge[i]) t[i] = e + std::max(0.0, hit[i].t - e) * smootherstep(p.edge_distance[i] / band);
  }
  const std::vector<double> wanted = t;
  std::vector<Vec3> offset(n);
  for (std::size_t i = 0; i < n; ++i) offset[i] = t[i] * d[i];
  if (!sculpt) {
    // Concave areas: where the offset point is nearer the skin than the thickness, move it out
    // along its direction until it is not.
    const SurfaceQuery skin(in);
    std::vector<Vec3> q(n);
    for (std::size_t i = 0; i < n; ++i) q[i] = in.vertices[i] + offset[i];
    const std::vector<double> dist = skin.distances(q);
    std::vector<std::size_t> todo;
    for (std::size_t i = 0; i < n; ++i)
      if (!on_edge[i] && t[i] > 0.2 && dist[i] < 0.98 * t[i]) todo.push_back(i);
    std::vector<double> lo(todo.size()), hi(todo.size());
    for (std::size_t k = 0; k < todo.size(); ++k) lo[k] = t[todo[k]], hi[k] = 3.0 * t[todo[k]];
    for (int it = 0; it < 12 && !todo.empty(); ++it) {
      std::vector<Vec3> probe(todo.size());
      for (std::size_t k = 0; k < todo.size(); ++k) probe[k] = in.vertices[todo[k]] + 0.5 * (lo[k] + hi[k]) * d[todo[k]];
      const std::vector<double> pd = skin.distances(probe);
      for (std::size_t k = 0; k < todo.size(); ++k) (pd[k] < 0.99 * t[todo[k]] ? lo[k] : hi[k]) = 0.5 * (lo[k] + hi[k]);
    }
    for (std::size_t k = 0; k < todo.size(); ++k) offset[todo[k]] = hi[k] * d[todo[k]];
    r.pushed_vertices = todo.size();
  }
  timer.lap("offset");

  // Relax folds and crossings: flipped outer faces first (cheap), then exact intersection tests.
  std::vector<Vec3> outer(n);
  auto rebuild = [&] {
    for (std::size_t i = 0; i < n; ++i) outer[i] = in.vertices[i] + offset[i];
  };
  // Relaxing a folded or crossing area smooths the outer surface's positions there (which
  // bridges a crease narrower than the thickness instead of following it into the fold), never
  // letting a vertex sink below its thickness along its direction.
  auto relax = [&](std::vector<char> mark, int rings) {
    for (int grow = 0; grow < rings; ++grow) {
      std::vector<char> next = mark;
      for (std::size_t i = 0; i < n; ++i)
        if (mark[i]) adj.each(i, [&](std::size_t j) { next[j] = 1; });
      mark.swap(next);
    }
    for (int it = 0; it < 10; ++it) {
      std::vector<Vec3> next = outer;
      for (std::size_t i = 0; i < n; ++i) {
        if (!mark[i] || on_edge[i]) continue;
        Vec3 s = Vec3::Zero();
        int c = 0;
        adj.each(i, [&](std::size_t j) { s += outer[j], ++c; });
        if (!c) continue;
        Vec3 q = 0.5 * outer[i] + 0.5 * s / c;
        const double along = (q - in.vertices[i]).dot(d[i]);
        if (along < t[i]) q += (t[i] - along) * d[i];
        next[i] = q;
      }
      outer.swap(next);
    }
    for (std::size_t i = 0; i < n; ++i) offset[i] = outer[i] - in.vertices[i];
    std::size_t c = 0;
    for (char m : mark) c += m;
    r.relaxed_vertices += c;
  };
  rebuild();
  for (int round = 0; round < 10; ++round) {
    std::vector<char> mark(n, 0);
    bool any = false;
    for (const Tri& f : in.triangles) {
      const Vec3 ni = (in.vertices[f[1]] - in.vertices[f[0]]).cross(in.vertices[f[2]] - in.vertices[f[0]]);
      const Vec3 no = (outer[f[1]] - outer[f[0]]).cross(outer[f[2]] - outer[f[0]]);
      if (no.dot(ni) <= 0) {
        for (std::int32_t v : f) mark[static_cast<std::size_t>(v)] = 1;
        any = true;
      }
    }
    if (!any) break;
    relax(mark, 2 + round);
    rebuild();
  }
  Mesh solid = assemble(p, outer);
  timer.lap("folds");
  for (int round = 0;; ++round) {
    const auto pairs = self_intersecting_pairs(solid);
    r.self_intersections = pairs.size();
    if (pairs.empty()) break;
    if (round == 16) {
      const Tri& f = solid.triangles[pairs.front().first];
      const Vec3 at = r.face.frame.to_local(solid.vertices[static_cast<std::size_t>(f[0])]);
      throw ProcessingError(fmt::format(
          "the appliance's outer surface crosses itself near ({:.1f}, {:.1f}, {:.1f}) mm in the face frame ({} crossing pairs); "
          "try a smaller thickness there or a coarser --resolution",
          at.x(), at.y(), at.z(), pairs.size()));
    }
    std::vector<char> mark(n, 0);
    const auto nn = static_cast<std::int32_t>(n);
    if (log_enabled(LogLevel::Debug)) {
      const std::size_t F = in.triangles.size();
      std::size_t kinds[3][3] = {};
      for (const auto& [a, b] : pairs) kinds[std::min<std::size_t>(a / F, 2)][std::min<std::size_t>(b / F, 2)]++;
      log_debug("appliance: round {}: inner-inner {} inner-outer {} inner-rim {} outer-outer {} outer-rim {} rim-rim {}", round,
                kinds[0][0], kinds[0][1], kinds[0][2], kinds[1][1], kinds[1][2], kinds[2][2]);
    }
    // Outer faces crossing each other are relaxed; outer faces crossing the skin (where the
    // skin overhangs, as an eyelid does) are brought closer to it there: the appliance thins
    // rather than pierce the face, and the report's minimum thickness shows it.
    const std::size_t F = in.triangles.size();
    std::vector<char> thin(n, 0);
    bool any_thin = false;
    for (const auto& [a, b] : pairs) {
      const bool skin = a < F || b < F;
      for (std::size_t f : {a, b})
        for (std::int32_t v : solid.triangles[f]) {
          if (f < F) continue;
          (skin ? thin : mark)[static_cast<std::size_t>(v % nn)] = 1;
          any_thin |= skin;
        }
    }
    if (any_thin) {
      for (int grow = 0; grow < 2; ++grow) {
        std::vector<char> next = thin;
        for (std::size_t i = 0; i < n; ++i)
          if (thin[i]) adj.each(i, [&](std::size_t j) { next[j] = 1; });
        thin.swap(next);
      }
      for (std::size_t i = 0; i < n; ++i)
        if (thin[i] && !on_edge[i]) {
          t[i] = std::max(e, 0.6 * t[i]);
          offset[i] = t[i] * d[i];
          ++r.thinned_vertices;
        }
    }
    if (std::find(mark.begin(), mark.end(), 1) != mark.end()) relax(mark, 2 + round);
    rebuild();
    solid = assemble(p, outer);
  }
  timer.lap("check");

  // Report: thickness by rays from the skin along its normals to the outer surface.
  {
    Mesh outer_mesh;
    outer_mesh.vertices = outer;
    outer_mesh.triangles = in.triangles;
    const SurfaceQuery q(outer_mesh);
    const auto hits = q.cast(in.vertices, normals);
    std::vector<double> all, interior, all_wanted, interior_wanted;
    for (std::size_t i = 0; i < n; ++i) {
      if (on_edge[i]) {
        r.rim_max_mm = std::max(r.rim_max_mm, offset[i].norm());
        continue;
      }
      if (p.edge_distance[i] <= 0.5) r.band_end_max_mm = std::max(r.band_end_max_mm, offset[i].norm());
      if (!hits[i].hit) continue;
      all.push_back(hits[i].t);
      all_wanted.push_back(wanted[i]);
      if (p.edge_distance[i] >= band) interior.push_back(hits[i].t), interior_wanted.push_back(wanted[i]);
    }
    r.thickness = stats(all, all_wanted);
    r.interior_thickness = stats(interior, interior_wanted);
  }
  r.boundary_loops = p.loops.size();
  r.inner_area_mm2 = area(in);
  r.volume_mm3 = signed_volume(solid);
  MeasureOptions mo;
  mo.self_intersections = false;
  const MeshInfo info = measure(solid, mo);
  r.closed = info.watertight;
  r.manifold = info.edge_manifold && info.vertex_manifold;
  r.oriented = info.oriented && r.volume_mm3 > 0;
  r.vertices = solid.vertices.size();
  r.faces = solid.triangles.size();
  if (!r.closed || !r.manifold || !r.oriented)
    throw ProcessingError(fmt::format("the appliance is not a valid solid (closed {}, manifold {}, oriented {})", r.closed,
                                      r.manifold, r.oriented));
  timer.lap("report");
  return solid;
}

RegionShape parse_shape(const nlohmann::json& j, const std::string& where) {
  RegionShape s;
  if (j.is_string()) {
    s.preset = j.get<std::string>();
    return s;
  }
  if (!j.is_object()) throw InputError(fmt::format("{}: expected a preset name or an object with \"outline\" or \"points\"", where));
  auto read_points = [&](const char* key, int dims) {
    std::vector<Eigen::VectorXd> pts;
    for (const auto& p : j.at(key)) {
      if (!p.is_array() || static_cast<int>(p.size()) != dims)
        throw InputError(fmt::format("{}.{}: every point needs {} numbers", where, key, dims));
      Eigen::VectorXd v(dims);
      for (int k = 0; k < dims; ++k) {
        if (!p[static_cast<std::size_t>(k)].is_number()) throw InputError(fmt::format("{}.{}: coordinates must be numbers", where, key));
        v[k] = p[static_cast<std::size_t>(k)].get<double>();
        if (!std::isfinite(v[k])) throw InputError(fmt::format("{}.{}: coordinates must be finite", where, key));
      }
      pts.push_back(v);
    }
    if (pts.size() < 3) throw InputError(fmt::format("{}.{}: at least 3 points are needed", where, key));
    return pts;
  };
  if (j.contains("outline")) {
    for (const auto& v : read_points("outline", 2)) s.outline.emplace_back(v[0], v[1]);
  } else if (j.contains("points")) {
    for (const auto& v : read_points("points", 3)) s.points.emplace_back(v[0], v[1], v[2]);
  } else if (j.contains("preset") && j.at("preset").is_string()) {
    s.preset = j.at("preset").get<std::string>();
  } else {
    throw InputError(fmt::format("{}: expected \"preset\", \"outline\" or \"points\"", where));
  }
  return s;
}

}  // namespace

void validate(const ApplianceSpec& s) {
  std::vector<std::string> problems = appliance_option_table().check(s);
  for (const auto& z : s.zones)
    if (!(z.thickness_mm > 0) || z.thickness_mm > 30 || !(z.blend_mm >= 0))
      problems.push_back(fmt::format("thickness zone: thickness must be in (0, 30] mm and blend ≥ 0 (got {}, {})", z.thickness_mm, z.blend_mm));
  throw_problems("appliance", problems);
}

ApplianceSpec read_appliance_spec(const std::string& path, ApplianceSpec defaults) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(fmt::format("{}: cannot open the appliance file", path));
  std::stringstream ss;
  ss << f.rdbuf();
  const auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw InputError(fmt::format("{}: not a JSON object", path));
  return parse_appliance_spec(j, path, std::move(defaults));
}

namespace {

ThicknessZone parse_zone(const nlohmann::json& z, const std::string& path) {
  if (!z.is_object() || !z.contains("zone") || !z.contains("thickness_mm") || !z.at("thickness_mm").is_number())
    throw InputError(fmt::format("{}: every thickness zone needs \"zone\" and \"thickness_mm\"", path));
  ThicknessZone tz;
  tz.shape = parse_shape(z.at("zone"), path + ": thickness_zones");
  tz.thickness_mm = z.at("thickness_mm").get<double>();
  if (z.contains("blend_mm")) {
    if (!z.at("blend_mm").is_number()) throw InputError(fmt::format("{}: \"blend_mm\" must be a number", path));
    tz.blend_mm = z.at("blend_mm").get<double>();
  }
  return tz;
}

}  // namespace

ApplianceSpec parse_appliance_spec(const nlohmann::json& j, const std::string& path, ApplianceSpec s) {
  if (!j.is_object()) throw InputError(fmt::format("{}: not a JSON object", path));
  const OptionTable<ApplianceSpec>& table = appliance_option_table();
  try {
    std::vector<std::string> problems = unknown_keys(j, path, {&table}, {"region", "openings", "thickness_zones"});
    table.read(j, s, path, problems);
    throw_problems(path, problems);
    if (j.contains("region")) s.region = parse_shape(j.at("region"), path + ": region");
    if (j.contains("openings")) {
      if (!j.at("openings").is_array()) throw InputError(fmt::format("{}: \"openings\" must be a list", path));
      s.openings.clear();
      for (const auto& o : j.at("openings")) s.openings.push_back(parse_shape(o, path + ": openings"));
    }
    if (j.contains("thickness_zones")) {
      if (!j.at("thickness_zones").is_array()) throw InputError(fmt::format("{}: \"thickness_zones\" must be a list", path));
      for (const auto& z : j.at("thickness_zones")) s.zones.push_back(parse_zone(z, path));
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: {}", path, e.what()));
  }
  return s;
}

RegionOutline region_polygons(const ApplianceSpec& spec, const FaceAnalysis& fa) {
  RegionOutline out;
  const Shape region = make_shape(spec.region, fa, 0, Use::region, nullptr);
  out.outline = region.polys.front();
  for (const auto& o : spec.openings)
    for (auto& p : make_shape(o, fa, spec.opening_margin_mm, Use::opening, nullptr).polys) out.openings.push_back(p);
  return out;
}

Mesh make_appliance(const Mesh& face, const ApplianceSpec& spec, const Mesh* sculpt, ApplianceReport* report) {
  validate(spec);
  validate(face, "face");
  if (face.triangles.size() < 100) throw InputError("the face has fewer than 100 triangles");
  ApplianceReport r;
  StepTimer timer(r.timings);
  r.face = analyze_face(face, spec.face);
  timer.lap("landmarks");
  const Shape region = make_shape(spec.region, r.face, 0, Use::region, &face);
  std::vector<Shape> openings;
  for (const auto& o : spec.openings) openings.push_back(make_shape(o, r.face, spec.opening_margin_mm, Use::opening, &face));
  std::vector<std::pair<Shape, ThicknessZone>> zones;
  for (const auto& z : spec.zones) zones.emplace_back(make_shape(z.shape, r.face, 0, Use::zone, &face), z);
  const FaceFrame frame = r.face.frame;
  const Field field = [&](const Vec3& w) {
    const Vec3 q = frame.to_local(w);
    const Vec2 xy(q.x(), q.y());
    double f = region.sd(xy);
    for (const Shape& o : openings) f = std::min(f, -o.sd(xy));
    return f;
  };
  const auto thickness = [&](const Vec2& xy) {
    double t = spec.thickness_mm;
    for (const auto& [shape, z] : zones) {
      const double w = z.blend_mm > 0 ? smoothstep(-0.5 * z.blend_mm, 0.5 * z.blend_mm, shape.sd(xy)) : (shape.sd(xy) >= 0 ? 1.0 : 0.0);
      t = (1 - w) * t + w * z.thickness_mm;
    }
    return t;
  };
  Mesh solid = build_solid(face, field, thickness, spec, sculpt, r);
  if (report) *report = r;
  return solid;
}

// ---- Mirroring ---------------------------------------------------------------------------

MirrorResult mirror_restore(const Mesh& input, const MirrorOptions& o, MirrorReport* report) {
  MirrorReport r;
  RepairOptions ro;
  ro.max_hole_mm = o.max_hole_mm;
  ro.fix_self_intersections = false;
  RepairReport rr;
  MirrorResult out;
  out.face = repair(input, ro, &rr);
  for (const Hole& h : rr.holes) r.filled_holes += h.filled;
  r.face = analyze_face(out.face, o.face);
  const FaceFrame& fr = r.face.frame;
  const SymmetryPlane& plane = r.face.plane;
  Mesh mirrored = out.face;
  for (Vec3& p : mirrored.vertices) p = plane.reflect(p);
  for (Tri& t : mirrored.triangles) std::swap(t[1], t[2]);
  const std::size_t n = out.face.vertices.size();
  // Height of the mirrored surface over each vertex, along the face's forward axis.
  const Vec3 z = fr.axes.col(2);
  const SurfaceQuery mq(mirrored);
  std::vector<Vec3> fwd(n, z), back(n, -z);
  const auto a = mq.cast(out.face.vertices, fwd), b = mq.cast(out.face.vertices, back);
  std::vector<double> delta(n, 0);
  std::vector<char> known(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i].hit && (!b[i].hit || a[i].t <= b[i].t)) delta[i] = a[i].t, known[i] = 1;
    else if (b[i].hit) delta[i] = -b[i].t, known[i] = 1;
  }
  const Adjacency adj(out.face);
  out.defect.assign(n, 0);
  if (!o.defect.empty()) {
    std::vector<Shape> shapes;
    for (const auto& d : o.defect) shapes.push_back(make_shape(d, r.face, 0, Use::region, &out.face));
    for (std::size_t i = 0; i < n; ++i) {
      const Vec3 q = fr.to_local(out.face.vertices[i]);
      for (const Shape& s : shapes)
        if (s.sd(Vec2(q.x(), q.y())) >= 0) out.defect[i] = 1;
    }
  } else {
    // Hollows deeper than the threshold below the mirrored side, grown (hysteresis) over the
    // connected vertices still a tenth as deep; specks under 20 vertices are ignored.
    for (std::size_t i = 0; i < n; ++i) out.defect[i] = known[i] && delta[i] > o.asymmetry_mm;
    std::vector<std::size_t> stack;
    for (std::size_t i = 0; i < n; ++i)
      if (out.defect[i]) stack.push_back(i);
    while (!stack.empty()) {
      const std::size_t v = stack.back();
      stack.pop_back();
      adj.each(v, [&](std::size_t j) {
        if (!out.defect[j] && known[j] && delta[j] > 0.1 * o.asymmetry_mm) {
          out.defect[j] = 1;
          stack.push_back(j);
        }
      });
    }
    std::vector<int> comp(n, -1);
    for (std::size_t s = 0; s < n; ++s) {
      if (!out.defect[s] || comp[s] >= 0) continue;
      std::vector<std::size_t> members{s}, todo{s};
      comp[s] = static_cast<int>(s);
      while (!todo.empty()) {
        const std::size_t v = todo.back();
        todo.pop_back();
        adj.each(v, [&](std::size_t j) {
          if (out.defect[j] && comp[j] < 0) {
            comp[j] = static_cast<int>(s);
            members.push_back(j);
            todo.push_back(j);
          }
        });
      }
      if (members.size() < 20)
        for (std::size_t m : members) out.defect[m] = 0;
    }
  }
  for (char c : out.defect) r.defect_vertices += c;
  if (r.defect_vertices == 0)
    throw InputError(o.defect.empty() ? fmt::format("no defect found: no area lies more than {} mm below its mirror image (mark it with --defect)", o.asymmetry_mm)
                                      : "the defect region does not cover any part of the face");
  for (const Tri& t : out.face.triangles)
    if (out.defect[static_cast<std::size_t>(t[0])] && out.defect[static_cast<std::size_t>(t[1])] && out.defect[static_cast<std::size_t>(t[2])])
      r.defect_area_mm2 += 0.5 * (out.face.vertices[t[1]] - out.face.vertices[t[0]]).cross(out.face.vertices[t[2]] - out.face.vertices[t[0]]).norm();
  // Blend weight: 1 on the defect, easing to 0 over blend_mm around it.
  open3d::geometry::PointCloud marked;
  for (std::size_t i = 0; i < n; ++i)
    if (out.defect[i]) marked.points_.push_back(out.face.vertices[i]);
  open3d::geometry::KDTreeFlann tree(marked);
  out.restored = out.face;
  std::vector<int> idx(1);
  std::vector<double> d2(1);
  for (std::size_t i = 0; i < n; ++i) {
    if (!known[i]) continue;
    double w = 1;
    if (!out.defect[i]) {
      tree.SearchKNN(out.face.vertices[i], 1, idx, d2);
      w = 1.0 - smoothstep(0, o.blend_mm, std::sqrt(d2[0]));
    }
    if (w <= 0) continue;
    out.restored.vertices[i] += w * delta[i] * z;
    r.max_change_mm = std::max(r.max_change_mm, std::abs(w * delta[i]));
  }
  if (report) *report = r;
  return out;
}

Mesh make_prosthesis(const MirrorResult& m, double grow_mm, const ApplianceSpec& spec, ApplianceReport* report) {
  validate(spec);
  ApplianceReport r;
  r.face = analyze_face(m.face, spec.face);
  open3d::geometry::PointCloud marked;
  for (std::size_t i = 0; i < m.defect.size(); ++i)
    if (m.defect[i]) marked.points_.push_back(m.face.vertices[i]);
  if (marked.points_.empty()) throw InputError("the defect is empty");
  const open3d::geometry::KDTreeFlann tree(marked);
  const double reach = grow_mm + spec.feather_band_mm;
  const Field field = [&](const Vec3& w) {
    std::vector<int> idx(1);
    std::vector<double> d2(1);
    tree.SearchKNN(w, 1, idx, d2);
    return reach - std::sqrt(d2[0]);
  };
  Mesh solid = build_solid(m.face, field, [](const Vec2&) { return 0.0; }, spec, &m.restored, r);
  if (report) *report = r;
  return solid;
}

}  // namespace tracecast
