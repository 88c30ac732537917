// The appliance's solid, stage by stage: the skin patch inside the region (kept inside the scan's
// border), the designed thickness feathered along the surface, the offset directions, the scan's
// own folds smoothed, the thickness limited where the skin faces itself across a crease, concave
// areas pushed out, crossings untangled, and the figures measured on the result.
#include "appliance_build.h"

#include <fmt/format.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <array>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/geodesic.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/point_hash.h"
#include "tracecast/mesh/repair.h"
#include "tracecast/mesh/submesh.h"

namespace tracecast::detail {

namespace {

constexpr double kPi = 3.14159265358979323846;

//! C2 taper 0 → 1 over [0, 1].
double smootherstep(double s) {
  s = std::clamp(s, 0.0, 1.0);
  return s * s * s * (s * (6 * s - 15) + 10);
}

//! min(a, b) with the corner where they cross rounded over a width k (polynomial smooth minimum).
double smooth_min(double a, double b, double k) {
  if (k <= 0) return std::min(a, b);
  const double h = std::max(k - std::abs(a - b), 0.0) / k;
  return std::min(a, b) - 0.25 * h * h * k;
}

std::uint64_t edge_key(std::int32_t a, std::int32_t b) {
  const auto [lo, hi] = std::minmax(a, b);
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(lo)) << 32) | static_cast<std::uint32_t>(hi);
}

//! Keeps the part of `m` where the per-vertex field f ≥ 0, cutting triangles exactly along the
//! zero level of the linear interpolation of f. Values within `snap` of zero are set to zero
//! first, so that no sliver is created next to a vertex. `level`: the kept points on the zero
//! level (the cut's points and the corners at zero).
Mesh level_set_cut(const Mesh& m, std::vector<double> f, double snap, std::vector<Vec3>& level) {
  for (double& x : f)
    if (std::abs(x) < snap) x = 0;
  Mesh out;
  std::vector<std::int32_t> keep(m.vertices.size(), -1);
  auto vertex = [&](std::int32_t v) {
    auto& k = keep[static_cast<std::size_t>(v)];
    if (k < 0) {
      k = static_cast<std::int32_t>(out.vertices.size());
      out.vertices.push_back(m.vertices[static_cast<std::size_t>(v)]);
      if (f[static_cast<std::size_t>(v)] == 0) level.push_back(out.vertices.back());
    }
    return k;
  };
  std::unordered_map<std::uint64_t, std::int32_t> cuts;
  auto cut = [&](std::int32_t a, std::int32_t b) {
    const auto [lo, hi] = std::minmax(a, b);
    auto it = cuts.find(edge_key(lo, hi));
    if (it != cuts.end()) return it->second;
    const double fa = f[static_cast<std::size_t>(lo)], fb = f[static_cast<std::size_t>(hi)];
    const double t = fa / (fa - fb);
    const auto id = static_cast<std::int32_t>(out.vertices.size());
    const Vec3& pa = m.vertices[static_cast<std::size_t>(lo)];
    out.vertices.push_back(pa + t * (m.vertices[static_cast<std::size_t>(hi)] - pa));
    level.push_back(out.vertices.back());
    cuts.emplace(edge_key(lo, hi), id);
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
Mesh largest_component(const Mesh& m) {
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
  for (std::size_t f = 0; f < m.triangles.size(); ++f) keep[f] = piece[f] == best;
  return submesh(m, keep);
}

//! Directed boundary edges (a → b as they appear in their one triangle), as loops.
std::vector<std::vector<std::int32_t>> boundary_loops(const Mesh& m) {
  std::unordered_map<std::uint64_t, int> count;
  for (const Tri& t : m.triangles)
    for (int k = 0; k < 3; ++k) ++count[edge_key(t[k], t[(k + 1) % 3])];
  std::map<std::int32_t, std::int32_t> next;
  for (const Tri& t : m.triangles)
    for (int k = 0; k < 3; ++k)
      if (count[edge_key(t[k], t[(k + 1) % 3])] == 1) next[t[k]] = t[(k + 1) % 3];
  std::vector<std::vector<std::int32_t>> loops;
  std::unordered_map<std::int32_t, char> seen;
  for (const auto& [s, unused] : next) {
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

double loop_length(const Mesh& m, const std::vector<std::int32_t>& loop) {
  double length = 0;
  for (std::size_t i = 0; i < loop.size(); ++i)
    length += (m.vertices[static_cast<std::size_t>(loop[(i + 1) % loop.size()])] - m.vertices[static_cast<std::size_t>(loop[i])]).norm();
  return length;
}

ThicknessStats stats(const std::vector<double>& v, const std::vector<double>& wanted) {
  ThicknessStats s;
  if (v.empty()) return s;
  s.samples = v.size();
  std::size_t ok = 0;
  for (std::size_t i = 0; i < v.size(); ++i) ok += std::abs(v[i] - wanted[i]) <= std::max(0.05 * wanted[i], 0.02);
  s.within_5_percent = static_cast<double>(ok) / static_cast<double>(v.size());
  std::vector<double> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  s.p05 = sorted[static_cast<std::size_t>(0.05 * static_cast<double>(sorted.size() - 1))];
  s.p95 = sorted[static_cast<std::size_t>(0.95 * static_cast<double>(sorted.size() - 1))];
  s.min = sorted.front();
  s.max = sorted.back();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  return s;
}

// ---- The patch ----------------------------------------------------------------------------

//! The skin around the region, cropped from the face, and points along the crop's edges that
//! are the scan's own border or where its surface turns away from the front (not the crop's
//! generous cut around the region).
struct Crop {
  Mesh mesh;
  std::vector<Vec3> border;
};

Crop crop_face(const Mesh& face, const RegionField& field, const FaceAnalysis& fa, double reach) {
  const FaceFrame& frame = fa.frame;
  const DepthMap depth = depth_map(face, frame, std::min(1.0, fa.scale));
  const std::vector<Vec3> normals = vertex_normals(face);
  std::vector<char> seen(face.vertices.size(), 0), near(face.vertices.size(), 0);
  for (std::size_t i = 0; i < face.vertices.size(); ++i) {
    const Vec3 q = frame.to_local(face.vertices[i]);
    const double front = depth.sample(q.x(), q.y());
    seen[i] = frame.direction_to_local(normals[i]).z() > -0.5 && (std::isnan(front) || q.z() > front - 40.0 * fa.scale);
    near[i] = field(face.vertices[i]) > -reach;
  }
  std::vector<char> keep(face.triangles.size(), 0);
  std::unordered_map<std::uint64_t, std::pair<int, char>> edges;  // faces on the edge; one of them unseen
  for (std::size_t f = 0; f < face.triangles.size(); ++f) {
    const Tri& t = face.triangles[f];
    bool all_seen = true, all_near = true;
    for (std::int32_t v : t) all_seen &= seen[static_cast<std::size_t>(v)] != 0, all_near &= near[static_cast<std::size_t>(v)] != 0;
    keep[f] = all_seen && all_near;
    for (int k = 0; k < 3; ++k) {
      auto& e = edges[edge_key(t[k], t[(k + 1) % 3])];
      ++e.first;
      e.second |= !all_seen;
    }
  }
  Crop c;
  c.mesh = submesh(face, keep);
  c.mesh.normals.clear();
  c.mesh.colors.clear();
  if (c.mesh.triangles.empty()) throw InputError("the region does not cover any part of the face's surface");
  // Only the crop's outer edge counts as border: holes inside it (nostrils, ear canals, unseen
  // pockets) are cut away with their own edges.
  std::set<std::array<double, 3>> outer_edge;
  const auto loops = boundary_loops(c.mesh);
  const auto longest = std::max_element(loops.begin(), loops.end(), [&](const auto& x, const auto& y) { return loop_length(c.mesh, x) < loop_length(c.mesh, y); });
  if (longest != loops.end())
    for (std::int32_t v : *longest) {
      const Vec3& q = c.mesh.vertices[static_cast<std::size_t>(v)];
      outer_edge.insert({q.x(), q.y(), q.z()});
    }
  auto on_outer_edge = [&](const Vec3& q) { return outer_edge.count({q.x(), q.y(), q.z()}) > 0; };
  for (std::size_t f = 0; f < face.triangles.size(); ++f) {
    if (!keep[f]) continue;
    const Tri& t = face.triangles[f];
    for (int k = 0; k < 3; ++k) {
      const auto& e = edges[edge_key(t[k], t[(k + 1) % 3])];
      if (e.first != 1 && !e.second) continue;  // inside the scan, or cut only by the region's reach
      const Vec3 &a = face.vertices[t[k]], &b = face.vertices[t[(k + 1) % 3]];
      if (!on_outer_edge(a) || !on_outer_edge(b)) continue;
      const int steps = std::max(1, static_cast<int>(std::ceil((b - a).norm() / 0.25)));
      for (int s = 0; s < steps; ++s) c.border.push_back(a + (b - a) * (static_cast<double>(s) / steps));
    }
  }
  return c;
}

//! Diffuses a per-vertex field along the surface (`passes` half-steps towards the neighbours'
//! mean) where `where` says: each pass spreads it by about an edge length.
void diffuse(std::vector<double>& f, const Adjacency& adj, int passes, const std::vector<char>& where) {
  std::vector<std::size_t> moving;
  for (std::size_t i = 0; i < f.size(); ++i)
    if (where[i] && adj.start[i + 1] > adj.start[i]) moving.push_back(i);
  std::vector<double> next(moving.size());
  for (int it = 0; it < passes; ++it) {
    for (std::size_t k = 0; k < moving.size(); ++k) {
      const std::size_t i = moving[k];
      double s = 0;
      int c = 0;
      adj.each(i, [&](std::size_t j) { s += f[j], ++c; });
      next[k] = 0.5 * f[i] + 0.5 * s / c;
    }
    for (std::size_t k = 0; k < moving.size(); ++k) f[moving[k]] = next[k];
  }
}

//! Per vertex: the distance to the scan's border less the margin; large where there is no
//! border nearby.
std::vector<double> border_distance(const Mesh& m, const std::vector<Vec3>& border, double margin) {
  const double far = 1e3;
  std::vector<double> g = nearest_point_distances(border, m.vertices);
  for (double& x : g) x = std::min(far, x - margin);
  return g;
}

//! A vertex whose triangles form more than one fan (where the cut pinched the patch: two edge
//! loops touching at a point) gets a copy for each fan but the first, at the same position.
void split_pinched_vertices(Mesh& m) {
  std::vector<std::vector<std::size_t>> around(m.vertices.size());
  for (std::size_t f = 0; f < m.triangles.size(); ++f)
    for (std::int32_t v : m.triangles[f]) around[static_cast<std::size_t>(v)].push_back(f);
  const std::size_t n = m.vertices.size();
  for (std::size_t v = 0; v < n; ++v) {
    const std::vector<std::size_t>& fs = around[v];
    std::vector<int> fan(fs.size(), -1);
    int fans = 0;
    for (std::size_t s = 0; s < fs.size(); ++s) {  // flood each fan across the edges at v
      if (fan[s] >= 0) continue;
      std::vector<std::size_t> todo{s};
      fan[s] = fans;
      while (!todo.empty()) {
        const Tri& a = m.triangles[fs[todo.back()]];
        todo.pop_back();
        for (std::size_t o = 0; o < fs.size(); ++o) {
          if (fan[o] >= 0) continue;
          const Tri& b = m.triangles[fs[o]];
          int shared = 0;  // corners shared besides v
          for (std::int32_t x : a)
            if (static_cast<std::size_t>(x) != v && std::find(b.begin(), b.end(), x) != b.end()) ++shared;
          if (shared) fan[o] = fans, todo.push_back(o);
        }
      }
      ++fans;
    }
    for (int k = 1; k < fans; ++k) {
      const auto copy = static_cast<std::int32_t>(m.vertices.size());
      m.vertices.push_back(m.vertices[v]);
      for (std::size_t s = 0; s < fs.size(); ++s)
        if (fan[s] == k)
          for (std::int32_t& x : m.triangles[fs[s]])
            if (static_cast<std::size_t>(x) == v) x = copy;
    }
  }
}

//! Vertices that share a position (where the cut pinched the patch and the vertex was split
//! between its fans) each moved `step` towards the middle of its own fan, so that no edge or rim
//! face built on them has zero length or area.
void separate_split_vertices(Mesh& m, double step) {
  std::map<std::array<double, 3>, std::vector<std::size_t>> at;
  for (std::size_t i = 0; i < m.vertices.size(); ++i) at[{m.vertices[i].x(), m.vertices[i].y(), m.vertices[i].z()}].push_back(i);
  std::vector<Vec3> fan(m.vertices.size(), Vec3::Zero());
  std::vector<int> faces(m.vertices.size(), 0);
  for (const Tri& t : m.triangles) {
    const Vec3 c = (m.vertices[t[0]] + m.vertices[t[1]] + m.vertices[t[2]]) / 3.0;
    for (std::int32_t v : t) fan[static_cast<std::size_t>(v)] += c, ++faces[static_cast<std::size_t>(v)];
  }
  for (const auto& [pos, group] : at) {
    if (group.size() < 2) continue;
    for (std::size_t i : group) {
      if (!faces[i]) continue;
      const Vec3 d = fan[i] / faces[i] - m.vertices[i];
      if (d.norm() > 0) m.vertices[i] += std::min(step, 0.5 * d.norm()) * d.normalized();
    }
  }
}

//! Closes the edge loops shorter than `max_length` (pinholes the cut leaves where an opening
//! grazes the outline or the scan): a fan from the loop's centre.
Mesh fill_small_loops(Mesh m, double max_length) {
  for (const auto& loop : boundary_loops(m)) {
    if (loop_length(m, loop) > max_length || loop.size() < 3) continue;
    Vec3 centre = Vec3::Zero();
    for (std::int32_t v : loop) centre += m.vertices[static_cast<std::size_t>(v)];
    if (loop.size() == 3) {
      m.triangles.push_back({loop[0], loop[2], loop[1]});
      continue;
    }
    const auto c = static_cast<std::int32_t>(m.vertices.size());
    m.vertices.push_back(centre / static_cast<double>(loop.size()));
    for (std::size_t i = 0; i < loop.size(); ++i) m.triangles.push_back({c, loop[(i + 1) % loop.size()], loop[i]});
  }
  return m;
}

//! Edge loops the cut did not make — most of their points off the zero level: holes that making the
//! surface manifold opened where the scan folds tightly (nefertiti's nostrils: two slits 7–9 mm
//! long, and the appliance's rim ran down into them) — are holes in the skin, not edges: each is
//! filled with a faired patch. Returns the patch and how many were filled.
std::pair<Mesh, std::size_t> fill_stray_loops(const Mesh& m, const std::vector<Vec3>& level) {
  const std::unordered_set<Vec3, PointHash> on_level(level.begin(), level.end());
  std::vector<Vec3> stray;
  for (const auto& loop : boundary_loops(m)) {
    std::size_t on = 0;
    for (std::int32_t v : loop) on += on_level.count(m.vertices[static_cast<std::size_t>(v)]);
    if (2 * on < loop.size()) stray.push_back(m.vertices[static_cast<std::size_t>(loop.front())]);
  }
  if (stray.empty()) return {m, 0};
  return fill_holes_through(m, stray);
}

}  // namespace

//! The patch (inner skin surface), its edges and, per vertex, the distance along the surface to
//! the nearest edge (declared in appliance.h for ApplianceCache).
struct Patch {
  Mesh mesh;
  std::vector<std::vector<std::int32_t>> loops;
  std::vector<double> edge_distance;
  std::vector<char> on_edge;
  std::size_t stray_loops_filled = 0;  //!< holes the cut did not make, filled (ApplianceReport)
};

namespace {

Patch cut_patch(const Mesh& face, const RegionField& field, const FaceAnalysis& fa, const ApplianceSpec& spec) {
  const double h = spec.resolution_mm, margin = spec.border_margin_mm;
  Crop crop = crop_face(face, field, fa, 3.0 + 4 * h);
  if (log_enabled(LogLevel::Debug)) {
    Aabb b;
    for (const Vec3& v : crop.mesh.vertices) b.add(fa.frame.to_local(v));
    log_debug("appliance: crop's box in the face frame {:.1f} {:.1f} {:.1f} .. {:.1f} {:.1f} {:.1f}; {} border samples", b.min.x(),
              b.min.y(), b.min.z(), b.max.x(), b.max.y(), b.max.z(), crop.border.size());
  }
  const Mesh work = largest_component(remesh_isotropic(crop.mesh, h, 1));
  // The region's field (a distance in the frontal projection) and the border's (in space) meet
  // in a smooth minimum, diffused along the surface over about the margin's width (at least two
  // edges): its zero level is a smooth curve on the surface, where the surface turns away from
  // the front as well, and not the border's staircase.
  const double width = std::max(margin, 4 * h);
  const std::vector<double> g = border_distance(work, crop.border, margin);
  std::vector<double> f(work.vertices.size());
  std::vector<char> near_border(f.size(), 0);  // where the border shapes the edge: the openings keep their own
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, f.size(), 2048), [&](const auto& range) {
    for (std::size_t i = range.begin(); i < range.end(); ++i) {
      const double region = field(work.vertices[i]);
      f[i] = smooth_min(region, g[i], width);
      near_border[i] = g[i] < region + 2 * width && std::abs(f[i]) < 3 * width;
    }
  });
  diffuse(f, Adjacency(work), std::clamp(static_cast<int>(std::lround(std::pow(width / h, 2) / 4)), 4, 80), near_border);
  Patch p;
  std::vector<Vec3> level;
  p.mesh = largest_component(make_manifold(level_set_cut(work, f, 0.05 * h, level)));
  split_pinched_vertices(p.mesh);
  separate_split_vertices(p.mesh, 0.05 * h);
  p.mesh = fill_small_loops(std::move(p.mesh), 4 * h);
  std::tie(p.mesh, p.stray_loops_filled) = fill_stray_loops(p.mesh, level);
  if (p.mesh.triangles.size() < 20)
    throw InputError(fmt::format("the region does not cover enough of the face's surface at least {} mm inside the scan's border", margin));
  p.loops = boundary_loops(p.mesh);
  if (p.loops.empty()) throw InputError("the region covers the whole closed surface: it has no edge to feather");
  std::vector<std::int32_t> sources;
  p.on_edge.assign(p.mesh.vertices.size(), 0);
  for (const auto& loop : p.loops)
    for (std::int32_t v : loop) sources.push_back(v), p.on_edge[static_cast<std::size_t>(v)] = 1;
  p.edge_distance = geodesic_distance(p.mesh, sources);
  return p;
}

// ---- Thickness and directions -------------------------------------------------------------

//! The designed full thickness per vertex (before feathering): the thickness map, or the
//! distance to the sculpt along the skin's normals.
std::vector<double> full_thickness(const Patch& p, const std::vector<Vec3>& normals, const ThicknessMap& map,
                                   const FaceFrame& frame, const Mesh* sculpt, ApplianceReport& r) {
  const std::size_t n = p.mesh.vertices.size();
  std::vector<double> full(n, 0.0);
  if (!sculpt) {
    for (std::size_t i = 0; i < n; ++i) {
      const Vec3 q = frame.to_local(p.mesh.vertices[i]);
      full[i] = map(Vec2(q.x(), q.y()));
    }
    return full;
  }
  const SurfaceQuery target(*sculpt);
  std::vector<Vec3> neg(n);
  for (std::size_t i = 0; i < n; ++i) neg[i] = -normals[i];
  const auto up = target.cast(p.mesh.vertices, normals), down = target.cast(p.mesh.vertices, neg);
  std::size_t hits = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (up[i].hit) full[i] = up[i].t;  // below the skin (down) there is nothing to add: 0
    hits += up[i].hit || down[i].hit;
    r.sculpt_misses += !up[i].hit && !down[i].hit;
  }
  if (hits < n / 2)
    throw InputError(fmt::format("the sculpt does not overlap the face in the region ({} of {} skin points see it)", hits, n));
  return full;
}

double feathered(double full, double edge_distance, bool on_edge, const ApplianceSpec& s) {
  const double e = s.edge_thickness_mm;
  return on_edge ? e : e + std::max(0.0, full - e) * smootherstep(edge_distance / s.feather_band_mm);
}

//! Offset directions: the skin's normals averaged over about half the largest thickness.
std::vector<Vec3> offset_directions(const std::vector<Vec3>& normals, const Adjacency& adj, double tmax, double h) {
  std::vector<Vec3> d = normals;
  const int passes = std::clamp(static_cast<int>(std::lround(0.25 * (tmax / h) * (tmax / h))), 1, 60);
  for (int it = 0; it < passes; ++it) {
    std::vector<Vec3> next(d.size());
    for (std::size_t i = 0; i < d.size(); ++i) {
      Vec3 s = d[i];
      adj.each(i, [&](std::size_t j) { s += d[j]; });
      next[i] = s.normalized();
    }
    d.swap(next);
  }
  return d;
}

//! Smooths the skin where `mark` says (grown by two rings): interior vertices towards their
//! neighbours' mean, edge vertices along the edge only. Returns the vertices moved.
void smooth_skin(Patch& p, const Adjacency& adj, std::vector<char> mark, int passes) {
  Mesh& m = p.mesh;
  mark = grow(std::move(mark), adj, 2);
  for (int it = 0; it < passes; ++it) {
    std::vector<Vec3> next = m.vertices;
    for (std::size_t i = 0; i < m.vertices.size(); ++i) {
      if (!mark[i]) continue;
      Vec3 s = Vec3::Zero();
      int c = 0;
      adj.each(i, [&](std::size_t j) {
        if (!p.on_edge[i] || p.on_edge[j]) s += m.vertices[j], ++c;
      });
      if (c) next[i] = 0.5 * m.vertices[i] + 0.5 * s / c;
    }
    m.vertices.swap(next);
  }
}

//! Faces of the skin turned away from the offset direction by more than 87°: the scan's surface
//! doubles back there (a fold or flap of the scan, narrower than the thickness). They are
//! smoothed out, a few passes at a time, until none is left.
void smooth_skin_folds(Patch& p, const Adjacency& adj, const std::vector<Vec3>& d) {
  for (int round = 0; round < 12; ++round) {
    std::vector<char> mark(p.mesh.vertices.size(), 0);
    bool any = false;
    for (const Tri& f : p.mesh.triangles) {
      const Vec3 nf = (p.mesh.vertices[f[1]] - p.mesh.vertices[f[0]]).cross(p.mesh.vertices[f[2]] - p.mesh.vertices[f[0]]);
      const Vec3 df = d[static_cast<std::size_t>(f[0])] + d[static_cast<std::size_t>(f[1])] + d[static_cast<std::size_t>(f[2])];
      if (nf.dot(df) < 0.05 * nf.norm() * df.norm()) {
        for (std::int32_t v : f) mark[static_cast<std::size_t>(v)] = 1;
        any = true;
      }
    }
    if (!any) return;
    smooth_skin(p, adj, std::move(mark), 3);
  }
}

//! Where the ray from the skin along the offset direction meets the skin again (across a crease,
//! under an overhang), the thickness is kept below 45 % of that gap, so that the two sides' outer
//! surfaces stay apart.
void limit_to_gaps(const Patch& p, const std::vector<Vec3>& d, std::vector<double>& t) {
  const std::size_t n = p.mesh.vertices.size();
  const double lift = 0.01;
  std::vector<Vec3> origins(n);
  for (std::size_t i = 0; i < n; ++i) origins[i] = p.mesh.vertices[i] + lift * d[i];
  const auto hits = SurfaceQuery(p.mesh).cast(origins, d);
  for (std::size_t i = 0; i < n; ++i) {
    if (!hits[i].hit) continue;
    const double gap = lift + hits[i].t;
    if (gap < 2.2 * t[i]) t[i] = std::max(0.005, std::min(t[i], 0.45 * gap));
  }
}

//! Concave areas: where the offset point is nearer the skin than the thickness, it is moved out
//! along its direction until it is not (bisection), never past 45 % of the gap across.
std::size_t push_out_of_hollows(const Patch& p, const std::vector<Vec3>& d, const std::vector<double>& t, std::vector<Vec3>& offset) {
  const std::size_t n = p.mesh.vertices.size();
  const SurfaceQuery skin(p.mesh);
  std::vector<Vec3> q(n);
  for (std::size_t i = 0; i < n; ++i) q[i] = p.mesh.vertices[i] + offset[i];
  const std::vector<double> dist = skin.distances(q);
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < n; ++i)
    if (!p.on_edge[i] && t[i] > 0.2 && dist[i] < 0.98 * t[i]) todo.push_back(i);
  std::vector<Vec3> origins, dirs;
  for (std::size_t i : todo) origins.push_back(p.mesh.vertices[i] + 0.01 * d[i]), dirs.push_back(d[i]);
  const auto across = skin.cast(origins, dirs);
  std::vector<double> lo(todo.size()), hi(todo.size());
  for (std::size_t k = 0; k < todo.size(); ++k) {
    lo[k] = t[todo[k]];
    hi[k] = across[k].hit ? std::max(lo[k], std::min(3.0 * lo[k], 0.45 * (across[k].t + 0.01))) : 3.0 * lo[k];
  }
  for (int it = 0; it < 12 && !todo.empty(); ++it) {
    std::vector<Vec3> probe(todo.size());
    for (std::size_t k = 0; k < todo.size(); ++k) probe[k] = p.mesh.vertices[todo[k]] + 0.5 * (lo[k] + hi[k]) * d[todo[k]];
    const std::vector<double> pd = skin.distances(probe);
    for (std::size_t k = 0; k < todo.size(); ++k) (pd[k] < 0.99 * t[todo[k]] ? lo[k] : hi[k]) = 0.5 * (lo[k] + hi[k]);
  }
  for (std::size_t k = 0; k < todo.size(); ++k) offset[todo[k]] = hi[k] * d[todo[k]];
  return todo.size();
}

// ---- The solid and its crossings ----------------------------------------------------------

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

//! The crossing pairs of `solid` that involve a face with a vertex marked `changed` (the rest
//! was found free of crossings before): only faces overlapping the changed faces' box are tested.
std::vector<std::pair<std::size_t, std::size_t>> crossings_near(const Mesh& solid, const std::vector<char>& changed) {
  Aabb box;
  for (const Tri& t : solid.triangles)
    if (changed[static_cast<std::size_t>(t[0])] || changed[static_cast<std::size_t>(t[1])] || changed[static_cast<std::size_t>(t[2])])
      for (std::int32_t v : t) box.add(solid.vertices[static_cast<std::size_t>(v)]);
  if (box.empty()) return {};
  box.min.array() -= 0.01;
  box.max.array() += 0.01;
  Mesh near;
  near.vertices = solid.vertices;
  std::vector<std::size_t> source;
  for (std::size_t f = 0; f < solid.triangles.size(); ++f) {
    Aabb fb;
    for (std::int32_t v : solid.triangles[f]) fb.add(solid.vertices[static_cast<std::size_t>(v)]);
    if ((fb.max.array() >= box.min.array()).all() && (fb.min.array() <= box.max.array()).all()) {
      near.triangles.push_back(solid.triangles[f]);
      source.push_back(f);
    }
  }
  auto pairs = self_intersecting_pairs(near);
  for (auto& [a, b] : pairs) a = source[a], b = source[b];
  return pairs;
}

//! The crossing pairs after a round that moved the vertices marked `changed`: those near what moved,
//! tested again, and the previous pairs neither of whose faces moved (they cross as before).
std::vector<std::pair<std::size_t, std::size_t>> still_crossing(const Mesh& solid, const std::vector<char>& changed,
                                                                const std::vector<std::pair<std::size_t, std::size_t>>& before) {
  auto pairs = crossings_near(solid, changed);
  auto moved = [&](std::size_t f) {
    const Tri& t = solid.triangles[f];
    return changed[static_cast<std::size_t>(t[0])] || changed[static_cast<std::size_t>(t[1])] || changed[static_cast<std::size_t>(t[2])];
  };
  for (const auto& ab : before)
    if (!moved(ab.first) && !moved(ab.second) && std::find(pairs.begin(), pairs.end(), ab) == pairs.end()) pairs.push_back(ab);
  return pairs;
}

//! The offset being untangled: skin, directions, the thickness kept per vertex, outer points.
struct Shell {
  Patch& p;
  const Adjacency& adj;
  const std::vector<Vec3>& d;
  std::vector<double>& t;
  std::vector<Vec3>& offset;
  ApplianceReport& r;

  std::vector<Vec3> outer() const {
    std::vector<Vec3> o(offset.size());
    for (std::size_t i = 0; i < o.size(); ++i) o[i] = p.mesh.vertices[i] + offset[i];
    return o;
  }
  //! Smooths the outer surface's positions over the marked area (grown by `rings`): bridges a
  //! crease narrower than the thickness instead of following it into the fold, never letting a
  //! vertex sink below its thickness along its direction.
  void relax(std::vector<char> mark, int rings) {
    mark = grow(std::move(mark), adj, rings);
    std::vector<Vec3> o = outer();
    for (int it = 0; it < 10; ++it) {
      std::vector<Vec3> next = o;
      for (std::size_t i = 0; i < o.size(); ++i) {
        if (!mark[i] || p.on_edge[i]) continue;
        Vec3 s = Vec3::Zero();
        int c = 0;
        adj.each(i, [&](std::size_t j) { s += o[j], ++c; });
        if (!c) continue;
        Vec3 q = 0.5 * o[i] + 0.5 * s / c;
        const double along = (q - p.mesh.vertices[i]).dot(d[i]);
        if (along < t[i]) q += (t[i] - along) * d[i];
        next[i] = q;
      }
      o.swap(next);
    }
    for (std::size_t i = 0; i < o.size(); ++i) offset[i] = o[i] - p.mesh.vertices[i];
    for (char m : mark) r.relaxed_vertices += m;
  }
  //! Brings the marked outer points (grown by two rings) closer to the skin.
  void thin(std::vector<char> mark) {
    mark = grow(std::move(mark), adj, 2);
    for (std::size_t i = 0; i < mark.size(); ++i)
      if (mark[i]) {
        t[i] = std::max(0.005, 0.6 * t[i]);
        offset[i] = t[i] * d[i];
      }
  }
  //! Outer faces turned over against the skin's face below them, relaxed.
  void unfold() {
    for (int round = 0; round < 10; ++round) {
      const std::vector<Vec3> o = outer();
      std::vector<char> mark(o.size(), 0);
      bool any = false;
      for (const Tri& f : p.mesh.triangles) {
        const std::vector<Vec3>& in = p.mesh.vertices;
        const Vec3 ni = (in[f[1]] - in[f[0]]).cross(in[f[2]] - in[f[0]]);
        const Vec3 no = (o[f[1]] - o[f[0]]).cross(o[f[2]] - o[f[0]]);
        if (no.dot(ni) <= 0) {
          for (std::int32_t v : f) mark[static_cast<std::size_t>(v)] = 1;
          any = true;
        }
      }
      if (!any) return;
      relax(mark, 2 + round);
    }
  }
  //! Exact crossings, removed by the least change that works: outer surfaces crossing each
  //! other are relaxed and thinned, outer surfaces crossing the skin thinned, and the skin
  //! smoothed where the scan's surface crosses itself or crossings persist. Crossings left after
  //! 16 rounds, or after a round that could move nothing, are an error naming the place.
  Mesh untangle() {
    unfold();
    Mesh solid = assemble(p, outer());
    const std::size_t F = p.mesh.triangles.size(), n = p.mesh.vertices.size();
    std::vector<char> changed;
    std::vector<std::pair<std::size_t, std::size_t>> pairs;
    for (int round = 0;; ++round) {
      pairs = round == 0 ? self_intersecting_pairs(solid) : still_crossing(solid, changed, pairs);
      r.self_intersections = pairs.size();
      if (pairs.empty()) return solid;
      auto give_up = [&] {
        const Vec3 at = r.face.frame.to_local(solid.vertices[static_cast<std::size_t>(solid.triangles[pairs.front().first][0])]);
        return ProcessingError(fmt::format("the appliance's surfaces still cross near ({:.1f}, {:.1f}, {:.1f}) mm in the face frame "
                                           "({} crossing pairs) after smoothing and thinning there; the scan may cross itself",
                                           at.x(), at.y(), at.z(), pairs.size()));
      };
      if (round == 16) throw give_up();
      std::vector<char> relax_mark(n, 0), thin_mark(n, 0), skin_mark(n, 0);
      for (const auto& [a, b] : pairs) {
        const std::size_t ka = std::min<std::size_t>(a / F, 2), kb = std::min<std::size_t>(b / F, 2);  // 0 skin, 1 outer, 2 rim
        for (std::size_t f : {a, b})
          for (std::int32_t v : solid.triangles[f]) {
            const auto i = static_cast<std::size_t>(v) % n;
            if (ka == 0 && kb == 0) skin_mark[i] = 1;
            else if (ka == 0 || kb == 0) thin_mark[i] = 1;
            else relax_mark[i] = thin_mark[i] = 1;
            if (round >= 2) skin_mark[i] = 1;
          }
      }
      log_debug("appliance: untangling round {}: {} crossing pairs", round, pairs.size());
      if (std::count(skin_mark.begin(), skin_mark.end(), 1)) smooth_skin(p, adj, skin_mark, 3);
      thin(thin_mark);
      if (std::count(relax_mark.begin(), relax_mark.end(), 1)) relax(relax_mark, 2 + round);
      Mesh next = assemble(p, outer());
      changed.assign(next.vertices.size(), 0);
      for (std::size_t v = 0; v < next.vertices.size(); ++v) changed[v] = next.vertices[v] != solid.vertices[v];
      // Nothing could move (the crossings sit where the edge is pinned and the thickness spent):
      // they stay, and testing only what moved would miss them.
      if (std::none_of(changed.begin(), changed.end(), [](char c) { return c != 0; })) throw give_up();
      solid = std::move(next);
    }
  }
};

// ---- Figures ------------------------------------------------------------------------------

//! Largest turning angle between successive 1 mm steps along a closed loop (degrees).
double max_turn_deg(const Mesh& m, const std::vector<std::int32_t>& loop, double* length) {
  std::vector<Vec3> pts;
  for (std::int32_t v : loop) pts.push_back(m.vertices[static_cast<std::size_t>(v)]);
  double total = 0;
  for (std::size_t i = 0; i < pts.size(); ++i) total += (pts[(i + 1) % pts.size()] - pts[i]).norm();
  *length = total;
  if (total < 6) return 0;
  // Resample at 1 mm of arc length.
  std::vector<Vec3> even;
  double carry = 0;
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const Vec3 a = pts[i], b = pts[(i + 1) % pts.size()];
    const double len = (b - a).norm();
    double s = carry;
    for (; s < len; s += 1.0) even.push_back(a + (b - a) * (s / len));
    carry = s - len;
  }
  double worst = 0;
  for (std::size_t i = 0; i < even.size(); ++i) {
    const Vec3 u = even[i] - even[(i + even.size() - 1) % even.size()], w = even[(i + 1) % even.size()] - even[i];
    if (u.norm() < 1e-9 || w.norm() < 1e-9) continue;
    worst = std::max(worst, std::acos(std::clamp(u.normalized().dot(w.normalized()), -1.0, 1.0)) * 180 / kPi);
  }
  return worst;
}

void measure_outline(const Patch& p, const RegionField& field, double h, ApplianceReport& r) {
  const auto& loop = *std::max_element(p.loops.begin(), p.loops.end(),
                                       [&](const auto& x, const auto& y) { return loop_length(p.mesh, x) < loop_length(p.mesh, y); });
  r.outline.max_turn_deg = max_turn_deg(p.mesh, loop, &r.outline.length_mm);
  for (std::size_t i = 0; i < loop.size(); ++i) {
    const Vec3& a = p.mesh.vertices[static_cast<std::size_t>(loop[i])];
    const Vec3& b = p.mesh.vertices[static_cast<std::size_t>(loop[(i + 1) % loop.size()])];
    if (field(a) > h && field(b) > h) r.outline.border_mm += (b - a).norm();  // the region goes on: held back by the border
  }
}

//! Thickness by rays from the skin along its normals to the outer surface; what was thinned
//! against the design, and the rim.
void measure_thickness(const Patch& p, const std::vector<Vec3>& outer, const std::vector<double>& wanted, double band,
                       ApplianceReport& r) {
  const Mesh& in = p.mesh;
  const std::vector<Vec3> normals = vertex_normals(in);
  Mesh outer_mesh;
  outer_mesh.vertices = outer;
  outer_mesh.triangles = in.triangles;
  const auto hits = SurfaceQuery(outer_mesh).cast(in.vertices, normals);
  const std::vector<double> va = vertex_areas(in);
  std::vector<double> all, interior, all_wanted, interior_wanted;
  for (std::size_t i = 0; i < in.vertices.size(); ++i) {
    if (p.on_edge[i]) {  // the rim's own height: a ray along the skin's normal there runs off the edge
      r.rim_max_mm = std::max(r.rim_max_mm, (outer[i] - in.vertices[i]).norm());
      continue;
    }
    const double got = hits[i].hit ? hits[i].t : (outer[i] - in.vertices[i]).norm();
    if (p.edge_distance[i] <= 0.5) r.band_end_max_mm = std::max(r.band_end_max_mm, got);
    const double short_by = wanted[i] - got;
    if (short_by > std::max(0.05 * wanted[i], 0.02)) {
      ++r.thinned.vertices;
      r.thinned.area_mm2 += va[i];
      r.thinned.max_mm = std::max(r.thinned.max_mm, short_by);
    }
    if (!hits[i].hit) continue;
    all.push_back(hits[i].t);
    all_wanted.push_back(wanted[i]);
    if (p.edge_distance[i] >= band) interior.push_back(hits[i].t), interior_wanted.push_back(wanted[i]);
  }
  r.thickness = stats(all, all_wanted);
  r.interior_thickness = stats(interior, interior_wanted);
}

void measure_skin_change(const Patch& p, const std::vector<Vec3>& before, ApplianceReport& r) {
  const std::vector<double> va = vertex_areas(p.mesh);
  for (std::size_t i = 0; i < before.size(); ++i) {
    const double moved = (p.mesh.vertices[i] - before[i]).norm();
    if (moved <= 1e-6) continue;
    ++r.skin_smoothed.vertices;
    r.skin_smoothed.area_mm2 += va[i];
    r.skin_smoothed.max_mm = std::max(r.skin_smoothed.max_mm, moved);
  }
}

void check_solid(const Mesh& solid, ApplianceReport& r) {
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
    throw ProcessingError(fmt::format("the appliance is not a valid solid (closed {}, manifold {}, oriented {})", r.closed, r.manifold,
                                      r.oriented));
}

}  // namespace

Mesh build_solid(const Mesh& face, const RegionField& field, const ThicknessMap& thickness, const ApplianceSpec& spec,
                 const Mesh* sculpt, ApplianceReport& r, ApplianceCache* cache, const std::string& patch_key) {
  StepTimer timer(r.timings);
  const double h = spec.resolution_mm;
  const bool kept = cache && cache->patch && !patch_key.empty() && cache->key == patch_key;
  Patch p = kept ? *cache->patch : cut_patch(face, field, r.face, spec);
  if (cache && !kept && !patch_key.empty()) cache->key = patch_key, cache->patch = std::make_shared<const Patch>(p);
  const std::vector<Vec3> skin = p.mesh.vertices;
  const Adjacency adj(p.mesh);
  const std::size_t n = p.mesh.vertices.size();
  timer.lap("region");

  const std::vector<Vec3> normals = vertex_normals(p.mesh);
  const std::vector<double> full = full_thickness(p, normals, thickness, r.face.frame, sculpt, r);
  std::vector<double> t(n);
  for (std::size_t i = 0; i < n; ++i) t[i] = feathered(full[i], p.edge_distance[i], p.on_edge[i], spec);
  const std::vector<Vec3> d = offset_directions(normals, adj, *std::max_element(full.begin(), full.end()), h);
  smooth_skin_folds(p, adj, d);
  if (sculpt) {  // exactly onto the sculpt: the distances again, along the smoothed directions
    const auto hit = SurfaceQuery(*sculpt).cast(p.mesh.vertices, d);
    for (std::size_t i = 0; i < n; ++i)
      if (hit[i].hit) t[i] = feathered(hit[i].t, p.edge_distance[i], p.on_edge[i], spec);
  }
  const std::vector<double> wanted = t;
  limit_to_gaps(p, d, t);
  std::vector<Vec3> offset(n);
  for (std::size_t i = 0; i < n; ++i) offset[i] = t[i] * d[i];
  if (!sculpt) r.pushed_vertices = push_out_of_hollows(p, d, t, offset);
  timer.lap("offset");

  Shell shell{p, adj, d, t, offset, r};
  const Mesh solid = shell.untangle();
  timer.lap("check");

  r.boundary_loops = p.loops.size();
  r.stray_loops_filled = p.stray_loops_filled;
  r.inner_area_mm2 = surface_area(p.mesh);
  measure_thickness(p, shell.outer(), wanted, spec.feather_band_mm, r);
  measure_skin_change(p, skin, r);
  measure_outline(p, field, h, r);
  check_solid(solid, r);
  timer.lap("report");
  return solid;
}

}  // namespace tracecast::detail
