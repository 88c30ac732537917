// Stamping: the keyed tile pattern as a normal displacement of the appliance's outer surface.
#include <fmt/format.h>
#include <tbb/parallel_for.h>

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <numeric>
#include <cmath>
#include <map>
#include <memory>

#include "tile.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/face.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/step_timer.h"
#include "tracecast/watermark/mark.h"
#include "tracecast/watermark/payload.h"

namespace tracecast::watermark {

using namespace detail;

namespace {

double smoothstep(double x) {
  x = std::clamp(x, 0.0, 1.0);
  return x * x * (3 - 2 * x);
}

Vec3 face_normal(const Mesh& m, const Tri& t) {
  return (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]);
}

//! The forward direction of a closed shell: the principal axis of its normals, signed so that the
//! faces looking that way spread their normals apart (the convex outer surface of a piece that
//! bulges forward, as faces do; the inner surface's normals converge).
Vec3 find_front(const Mesh& m) {
  Eigen::Matrix3d nn = Eigen::Matrix3d::Zero();
  for (const Tri& t : m.triangles) {
    const Vec3 n = face_normal(m, t);
    const double a = n.norm();
    if (a > 0) nn += (n / a) * (n / a).transpose() * a;
  }
  const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es(nn);
  const Vec3 axis = es.eigenvectors().col(2);
  Vec3 nbar = Vec3::Zero(), cbar = Vec3::Zero();
  double area = 0;
  for (const Tri& t : m.triangles) {
    const Vec3 n = face_normal(m, t);
    if (n.dot(axis) <= 0) continue;
    const double a = 0.5 * n.norm();
    nbar += a * n.normalized();
    cbar += a * (m.vertices[t[0]] + m.vertices[t[1]] + m.vertices[t[2]]) / 3.0;
    area += a;
  }
  if (!(area > 0)) return axis;
  nbar /= area;
  cbar /= area;
  double spread = 0;
  for (const Tri& t : m.triangles) {
    const Vec3 n = face_normal(m, t);
    if (n.dot(axis) <= 0) continue;
    const Vec3 c = (m.vertices[t[0]] + m.vertices[t[1]] + m.vertices[t[2]]) / 3.0;
    spread += 0.5 * n.norm() * (n.normalized() - nbar).dot(c - cbar);
  }
  return spread >= 0 ? axis : Vec3(-axis);
}

//! Splits every edge longer than `max_len` whose ends are not both unmarked (mask 0), until none
//! is left; midpoints take the mean mask and normal. Conforming: neighbours share midpoints.
//! `origin` (one per face, in and out) keeps each face's face of the mesh before any split.
std::size_t split_long_edges(Mesh& m, std::vector<double>& mask, std::vector<Vec3>& normals, double max_len,
                             std::vector<std::uint32_t>& origin) {
  std::size_t splits = 0;
  // An edge as one sorted key: its lower corner in the high half. The edges split in a round are
  // numbered in key order (their midpoints' vertices follow the mesh's in that order).
  const auto key = [](std::int32_t a, std::int32_t b) {
    return (static_cast<std::uint64_t>(std::min(a, b)) << 32) | static_cast<std::uint32_t>(std::max(a, b));
  };
  for (int round = 0; round < 8; ++round) {
    std::vector<std::uint64_t> split;
    auto marked = [&](std::int32_t a, std::int32_t b) {
      return (mask[static_cast<std::size_t>(a)] > 0 || mask[static_cast<std::size_t>(b)] > 0) &&
             (m.vertices[static_cast<std::size_t>(a)] - m.vertices[static_cast<std::size_t>(b)]).norm() > max_len;
    };
    for (const Tri& t : m.triangles)
      for (int e = 0; e < 3; ++e) {
        const std::int32_t a = t[e], b = t[(e + 1) % 3];
        if (marked(a, b)) split.push_back(key(a, b));
      }
    std::sort(split.begin(), split.end());
    split.erase(std::unique(split.begin(), split.end()), split.end());
    if (split.empty()) break;
    const auto first = static_cast<std::int32_t>(m.vertices.size());
    for (const std::uint64_t e : split) {
      const auto a = static_cast<std::size_t>(e >> 32), b = static_cast<std::size_t>(e & 0xffffffffu);
      m.vertices.push_back(0.5 * (m.vertices[a] + m.vertices[b]));
      mask.push_back(0.5 * (mask[a] + mask[b]));
      normals.push_back((normals[a] + normals[b]).normalized());
    }
    splits += split.size();
    std::vector<Tri> out;
    std::vector<std::uint32_t> out_origin;
    out.reserve(m.triangles.size() * 2);
    out_origin.reserve(m.triangles.size() * 2);
    for (std::size_t f = 0; f < m.triangles.size(); ++f) {
      const Tri& t0 = m.triangles[f];
      auto mid_of = [&](const Tri& t, int e) {
        const auto it = std::lower_bound(split.begin(), split.end(), key(t[e], t[(e + 1) % 3]));
        return it == split.end() || *it != key(t[e], t[(e + 1) % 3]) ? -1 : first + static_cast<std::int32_t>(it - split.begin());
      };
      int k = 0;
      for (int e = 0; e < 3; ++e) k += mid_of(t0, e) >= 0;
      if (k == 0) {
        out.push_back(t0);
        out_origin.push_back(origin[f]);
        continue;
      }
      // Rotate so that: one split edge is edge 0 (k = 1); the unsplit edge is edge 2 (k = 2).
      Tri t = t0;
      for (int r = 0; r < 3; ++r) {
        const bool ok = k == 1 ? mid_of(t, 0) >= 0 : k == 2 ? mid_of(t, 2) < 0 : true;
        if (ok) break;
        t = Tri{t[1], t[2], t[0]};
      }
      const std::int32_t m0 = mid_of(t, 0), m1 = mid_of(t, 1), m2 = mid_of(t, 2);
      if (k == 1) {
        out.push_back({t[0], m0, t[2]});
        out.push_back({m0, t[1], t[2]});
      } else if (k == 2) {
        out.push_back({m0, t[1], m1});
        out.push_back({t[0], m0, m1});
        out.push_back({t[0], m1, t[2]});
      } else {
        out.push_back({t[0], m0, m2});
        out.push_back({m0, t[1], m1});
        out.push_back({m2, m1, t[2]});
        out.push_back({m0, m1, m2});
      }
      out_origin.resize(out.size(), origin[f]);  // the pieces of a split face keep its origin
    }
    m.triangles = std::move(out);
    origin = std::move(out_origin);
  }
  return splits;
}

}  // namespace

struct StampPlan {
  StampOptions options;
  Mesh original, refined;
  std::vector<std::uint32_t> face_origin;  //!< per face of `refined`: its face of `original`
  std::vector<double> mask, shape;
  std::vector<Vec3> normals;
  Lattice lattice;
  StampReport report;
};

namespace {


//! The faces seen from the front: turned towards it, with nothing in front of them.
std::vector<char> faces_seen_from(const Mesh& m, const SurfaceQuery& query, const Vec3& front) {
  std::vector<char> visible(m.triangles.size(), 0);
  std::vector<Vec3> origins, dirs;
  std::vector<std::size_t> faces;
  for (std::size_t f = 0; f < m.triangles.size(); ++f) {
    const Tri& t = m.triangles[f];
    if (face_normal(m, t).dot(front) <= 0) continue;
    origins.push_back((m.vertices[t[0]] + m.vertices[t[1]] + m.vertices[t[2]]) / 3.0 + 1e-3 * front);
    dirs.push_back(front);
    faces.push_back(f);
  }
  const auto hits = query.cast(origins, dirs);
  for (std::size_t i = 0; i < faces.size(); ++i) visible[faces[i]] = !hits[i].hit;
  return visible;
}

//! Amplitude mask per vertex: the outer surface (every face round it seen from the front), thick
//! enough (measured inwards along its normal), not too steep.
std::vector<double> amplitude_mask(const Mesh& m, const std::vector<Vec3>& vn, const Vec3& front, const StampOptions& o) {
  const SurfaceQuery query(m);
  const std::vector<char> visible = faces_seen_from(m, query, front);
  std::vector<char> outer(m.vertices.size(), 1);
  std::vector<char> used(m.vertices.size(), 0);
  for (std::size_t f = 0; f < m.triangles.size(); ++f)
    for (std::int32_t v : m.triangles[f]) {
      used[static_cast<std::size_t>(v)] = 1;
      if (!visible[f]) outer[static_cast<std::size_t>(v)] = 0;
    }
  std::vector<double> mask(m.vertices.size(), 0.0);
  std::vector<Vec3> origins, dirs;
  std::vector<std::size_t> verts;
  for (std::size_t v = 0; v < m.vertices.size(); ++v) {
    if (!used[v] || !outer[v] || vn[v].dot(front) < 0.3) continue;
    origins.push_back(m.vertices[v] - 1e-4 * vn[v]);
    dirs.push_back(-vn[v]);
    verts.push_back(v);
  }
  const auto hits = query.cast(origins, dirs);
  const double span = o.full_thickness_mm - o.zero_thickness_mm;
  for (std::size_t i = 0; i < verts.size(); ++i) {
    const std::size_t v = verts[i];
    const double t = hits[i].hit ? hits[i].t : 0.0;
    mask[v] = smoothstep((t - o.zero_thickness_mm) / span) * smoothstep((vn[v].dot(front) - 0.35) / 0.25);
  }
  return mask;
}

//! Roughness shaping: the local RMS of the surface's own relief at the mark's scale, relative to
//! its median over the marked area, raises the amplitude where texture hides it.
std::vector<double> roughness_shape(const Mesh& s, const std::vector<double>& mask, const Vec3& front) {
  std::vector<double> shape(s.vertices.size(), 1.0);
  std::vector<Vec3> pts;
  std::vector<std::size_t> ids;
  for (std::size_t v = 0; v < s.vertices.size(); ++v)
    if (mask[v] > 0) {
      pts.push_back(s.vertices[v]);
      ids.push_back(v);
    }
  const Residuals host = residuals(pts, kCellMm, &front);
  std::vector<double> r2(pts.size(), 0.0);
  for (std::size_t i = 0; i < pts.size(); ++i) r2[i] = host.valid[i] ? host.value[i] * host.value[i] : 0.0;
  // Mean square over ≈ 3 mm: average on a voxel grid of 3 mm, read back per vertex.
  std::map<std::array<std::int64_t, 3>, std::pair<double, int>> grid;
  auto cell_of = [](const Vec3& p) {
    return std::array<std::int64_t, 3>{static_cast<std::int64_t>(std::floor(p.x() / 3.0)), static_cast<std::int64_t>(std::floor(p.y() / 3.0)),
                                       static_cast<std::int64_t>(std::floor(p.z() / 3.0))};
  };
  for (std::size_t i = 0; i < pts.size(); ++i)
    if (host.valid[i]) {
      auto& g = grid[cell_of(pts[i])];
      g.first += r2[i];
      g.second += 1;
    }
  std::vector<double> rough;
  for (const auto& [c, g] : grid) rough.push_back(std::sqrt(g.first / g.second));
  if (rough.empty()) return shape;
  std::nth_element(rough.begin(), rough.begin() + static_cast<std::ptrdiff_t>(rough.size() / 2), rough.end());
  const double median = rough[rough.size() / 2];
  if (median > 0)
    for (std::size_t i = 0; i < pts.size(); ++i) {
      const auto it = grid.find(cell_of(pts[i]));
      const double r = it == grid.end() ? median : std::sqrt(it->second.first / it->second.second);
      shape[ids[i]] = std::clamp(0.75 + 0.25 * r / median, 0.75, 1.25) / 1.25;
    }
  return shape;
}

//! The marked area (vertex areas of the refined mesh) and the tiles it holds; refuses a piece
//! with room for under two tiles, warns under the readable count.
void measure_marked_area(const StampPlan& plan, StampReport& report) {
  double area = 0;
  for (const Tri& t : plan.refined.triangles) {
    const double a = 0.5 * face_normal(plan.refined, t).norm();
    for (std::int32_t v : t)
      if (plan.mask[static_cast<std::size_t>(v)] > 0) area += a / 3;
  }
  report.marked_area_mm2 = area;
  report.tiles = area / (kTileMm * kTileMm);
  if (area < 2 * kTileMm * kTileMm)
    throw InputError(fmt::format("stamp: only {:.0f} mm² of the outer surface can carry the mark (at least {:.0f} mm² needed)", area,
                                 2 * kTileMm * kTileMm));
  if (report.tiles < kReadableTiles)
    report.warnings.push_back(fmt::format(
        "only {:.0f} mm² ({:.1f} tiles) of the outer surface carries the mark: below {:.0f} tiles a scan of the cast may not give it back "
        "(docs/methods/watermark.md, piece size)",
        area, report.tiles, kReadableTiles));
}

}  // namespace

std::shared_ptr<const StampPlan> plan_stamp(const Mesh& appliance, const StampOptions& o) {
  throw_problems("stamp", stamp_option_table().check(o));
  auto plan = std::make_shared<StampPlan>();
  StampPlan& out = *plan;
  out.options = o;
  out.original = appliance;
  StepTimer timer(out.report.timings);
  const MeshInfo info = measure(appliance, {false});
  if (!info.watertight) throw InputError("stamp: the piece is not a closed surface (stamp the appliance, not a scan)");

  const Vec3 front = o.front ? Vec3(o.front->normalized()) : find_front(appliance);
  out.report.front = front;
  out.report.vertices_before = appliance.vertices.size();
  const std::vector<Vec3> vn = vertex_normals(appliance);
  std::vector<double> mask = amplitude_mask(appliance, vn, front, o);
  timer.lap("mask");

  Mesh s = appliance;
  s.normals.clear();
  s.colors.clear();
  std::vector<Vec3> normals = vn;
  std::vector<std::uint32_t> origin(s.triangles.size());
  std::iota(origin.begin(), origin.end(), 0u);
  out.report.split_edges = split_long_edges(s, mask, normals, o.resolution_mm, origin);
  out.report.vertices_after = s.vertices.size();
  timer.lap("refine");

  std::vector<double> shape = o.roughness_shaping ? roughness_shape(s, mask, front) : std::vector<double>(s.vertices.size(), 1.0);
  timer.lap("roughness");

  // The pattern in a plane across the front, extruded along it.
  const Vec3 e1 = (std::abs(front.x()) < 0.9 ? Vec3::UnitX() : Vec3::UnitY()).cross(front).normalized();
  const Vec3 e2 = front.cross(e1);
  out.lattice.a = kTileMm * e1;
  out.lattice.b = kTileMm * e2;
  out.refined = std::move(s);
  out.face_origin = std::move(origin);
  out.mask = std::move(mask);
  out.shape = std::move(shape);
  out.normals = std::move(normals);
  measure_marked_area(out, out.report);
  return plan;
}

Stamped apply_stamp(const StampPlan& plan, std::uint64_t id, const Key& key, bool hausdorff) {
  Stamped out;
  out.face_origin = plan.face_origin;
  out.report = plan.report;
  out.report.key_id = key.id();
  out.report.id = id;
  StepTimer timer(out.report.timings);
  Mesh s = plan.refined;
  const auto cells = cell_values(make_layout(key), encode(id));
  out.displacement_mm.assign(s.vertices.size(), 0.0);
  double maxd = 0;
  for (std::size_t v = 0; v < s.vertices.size(); ++v) {
    if (plan.mask[v] <= 0) continue;
    const Eigen::Vector2d c = plan.lattice.coords(s.vertices[v]);
    const double d = plan.options.max_displacement_mm * plan.mask[v] * plan.shape[v] * pattern(cells, c.x(), c.y());
    out.displacement_mm[v] = d;
    s.vertices[v] += d * plan.normals[v];
    maxd = std::max(maxd, std::abs(d));
  }
  double area = 0, sum2 = 0;
  for (const Tri& t : s.triangles) {
    const double a = 0.5 * face_normal(plan.refined, t).norm();
    for (std::int32_t v : t)
      if (plan.mask[static_cast<std::size_t>(v)] > 0) {
        area += a / 3;
        sum2 += a / 3 * std::pow(out.displacement_mm[static_cast<std::size_t>(v)], 2);
      }
  }
  out.report.max_displacement_um = 1000 * maxd;
  out.report.rms_displacement_um = area > 0 ? 1000 * std::sqrt(sum2 / area) : 0;
  timer.lap("displace");
  if (hausdorff) {
    const auto d1 = SurfaceQuery(plan.original).distances(s.vertices);
    const auto d2 = SurfaceQuery(s).distances(plan.original.vertices);
    out.report.hausdorff_mm = std::max(*std::max_element(d1.begin(), d1.end()), *std::max_element(d2.begin(), d2.end()));
    timer.lap("hausdorff");
  }
  out.mesh = std::move(s);
  return out;
}

Stamped stamp(const Mesh& appliance, std::uint64_t id, const Key& key, const StampOptions& o) {
  return apply_stamp(*plan_stamp(appliance, o), id, key, true);
}

}  // namespace tracecast::watermark
