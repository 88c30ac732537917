// The multi-part mold (see multipart.h for the construction).
#include "tracecast/print/multipart.h"

#include <fmt/format.h>

#include <algorithm>
#include <bitset>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <unordered_map>
#include <utility>

#include <tbb/parallel_for.h>

#include "boolean.h"
#include "primitives.h"
#include "tracecast/mesh/box_grid.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/face.h"
#include "tracecast/mesh/level_set.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/submesh.h"

namespace tracecast::print {

namespace stages {

namespace {

constexpr int kDirections = 96;    // candidate pulls, spread evenly over the sphere
constexpr int kMaxShells = 5;
constexpr double kSeeCos = 0.1;    // a face is released along a pull at most 84° from its normal
using DirSet = std::bitset<kDirections>;

std::vector<Vec3> sphere_directions(int n) {
  std::vector<Vec3> d;
  const double golden = detail::kPi * (3 - std::sqrt(5.0));
  for (int i = 0; i < n; ++i) {
    const double z = 1 - (i + 0.5) * 2.0 / n, r = std::sqrt(1 - z * z);
    d.emplace_back(r * std::cos(golden * i), r * std::sin(golden * i), z);
  }
  return d;
}

//! Which of `dirs` release each face: turned towards it, and a ray from the face along it meets
//! neither the piece nor the skin.
std::vector<DirSet> released(const std::vector<std::size_t>& faces, const std::vector<Vec3>& centre, const FaceNormals& n,
                             const std::vector<Vec3>& dirs, const SurfaceQuery& piece, const SurfaceQuery& skin) {
  std::vector<DirSet> out(faces.size());
  for (std::size_t k = 0; k < dirs.size(); ++k) {
    std::vector<Vec3> origins, along;
    std::vector<std::size_t> which;
    for (std::size_t s = 0; s < faces.size(); ++s) {
      const std::size_t f = faces[s];
      if (n.normal[f].dot(dirs[k]) < kSeeCos) continue;
      origins.push_back(centre[f] + 1e-2 * n.normal[f]);
      along.push_back(dirs[k]);
      which.push_back(s);
    }
    const std::vector<RayHit> a = piece.cast(origins, along), b = skin.cast(origins, along);
    for (std::size_t r = 0; r < which.size(); ++r)
      if (!a[r].hit && !b[r].hit) out[which[r]].set(k);
  }
  return out;
}

//! The fewest directions (or exactly `count`) whose released sets cover the samples' area, chosen
//! greedily (each adding the most; beyond two, only while one adds at least 3 % of the area), then
//! each swapped for a better one while that covers more.
std::vector<int> cover(const std::vector<DirSet>& seen, const std::vector<double>& weight, int count) {
  const double total = std::accumulate(weight.begin(), weight.end(), 0.0);
  auto covered = [&](const std::vector<int>& chosen) {
    DirSet mask;
    for (int c : chosen) mask.set(static_cast<std::size_t>(c));
    double a = 0;
    for (std::size_t s = 0; s < seen.size(); ++s)
      if ((seen[s] & mask).any()) a += weight[s];
    return a;
  };
  std::vector<int> chosen;
  const int most = count > 0 ? count : kMaxShells;
  while (static_cast<int>(chosen.size()) < most) {
    int best = 0;
    double best_a = -1;
    for (int d = 0; d < kDirections; ++d) {
      std::vector<int> trial = chosen;
      trial.push_back(d);
      if (const double a = covered(trial); a > best_a) best_a = a, best = d;
    }
    // As needed: a part more only while it releases at least 3 % more of the surface (what is
    // left flexes out), until 99 % is released.
    if (count == 0 && chosen.size() >= 2 && best_a - covered(chosen) < 0.03 * total) break;
    chosen.push_back(best);
    if (count == 0 && chosen.size() >= 2 && best_a > 0.99 * total) break;
  }
  for (bool better = true; better;) {
    better = false;
    for (std::size_t i = 0; i < chosen.size(); ++i)
      for (int d = 0; d < kDirections; ++d) {
        std::vector<int> trial = chosen;
        trial[i] = d;
        if (covered(trial) > covered(chosen) + 1e-9) chosen = trial, better = true;
      }
  }
  return chosen;
}

//! Edge-neighbours of each face (−1 where none).
std::vector<std::array<std::int64_t, 3>> face_neighbours(const Mesh& m) {
  std::vector<std::pair<std::uint64_t, std::int64_t>> edges;
  edges.reserve(3 * m.triangles.size());
  for (std::size_t f = 0; f < m.triangles.size(); ++f)
    for (int e = 0; e < 3; ++e) {
      const auto a = static_cast<std::uint64_t>(m.triangles[f][e]), b = static_cast<std::uint64_t>(m.triangles[f][(e + 1) % 3]);
      edges.emplace_back(std::min(a, b) << 32 | std::max(a, b), static_cast<std::int64_t>(3 * f + e));
    }
  std::sort(edges.begin(), edges.end());
  std::vector<std::array<std::int64_t, 3>> nb(m.triangles.size(), {-1, -1, -1});
  for (std::size_t i = 0; i + 1 < edges.size(); ++i)
    if (edges[i].first == edges[i + 1].first) {
      const std::int64_t a = edges[i].second, b = edges[i + 1].second;
      nb[static_cast<std::size_t>(a / 3)][static_cast<std::size_t>(a % 3)] = b / 3;
      nb[static_cast<std::size_t>(b / 3)][static_cast<std::size_t>(b % 3)] = a / 3;
    }
  return nb;
}

//! The piece's outer faces, found by distance.
class OuterFaces {
 public:
  OuterFaces(const Mesh& piece, const std::vector<std::size_t>& faces, const std::vector<Vec3>& centre)
      : faces_(faces), centre_(centre), boxes_(face_boxes(piece, faces)), grid_(boxes_) {}
  OuterFaces(const OuterFaces&) = delete;
  OuterFaces& operator=(const OuterFaces&) = delete;
  const std::vector<std::size_t>& faces() const { return faces_; }
  //! fn(f) for every outer face f whose centre lies within r of p.
  template <class F>
  void within(const Vec3& p, double r, F&& fn) const {
    grid_.overlapping(p.array() - r, p.array() + r, [&](std::size_t g) {
      if ((centre_[faces_[g]] - p).squaredNorm() <= r * r) fn(faces_[g]);
    });
  }

 private:
  const std::vector<std::size_t>& faces_;
  const std::vector<Vec3>& centre_;
  FaceBoxes boxes_;
  BoxGrid grid_;
};

//! Shell regions smaller than `least` mm² join the shell part they share most edges with; one that
//! borders no other shell part (only the rim and the inner surface: an island on a rounded edge)
//! joins the part most of the outer surface within `reach` of it goes to.
void merge_islands(Division& d, const std::vector<std::array<std::int64_t, 3>>& nb, const FaceNormals& n, double least, const OuterFaces& outer,
                   const std::vector<Vec3>& centre, double reach) {
  for (int round = 0; round < 10; ++round) {
    std::vector<std::int64_t> parent(d.label.size());
    std::iota(parent.begin(), parent.end(), 0);
    std::function<std::int64_t(std::int64_t)> find = [&](std::int64_t x) {
      while (parent[static_cast<std::size_t>(x)] != x) x = parent[static_cast<std::size_t>(x)] = parent[static_cast<std::size_t>(parent[static_cast<std::size_t>(x)])];
      return x;
    };
    for (std::size_t f = 0; f < d.label.size(); ++f)
      for (std::int64_t g : nb[f])
        if (d.label[f] > 0 && g >= 0 && d.label[static_cast<std::size_t>(g)] == d.label[f]) parent[static_cast<std::size_t>(find(g))] = find(static_cast<std::int64_t>(f));
    std::unordered_map<std::int64_t, double> area;
    std::unordered_map<std::int64_t, std::map<int, int>> border;
    for (std::size_t f = 0; f < d.label.size(); ++f) {
      if (d.label[f] <= 0) continue;
      const std::int64_t r = find(static_cast<std::int64_t>(f));
      area[r] += n.area[f];
      for (std::int64_t g : nb[f])
        if (g >= 0 && d.label[static_cast<std::size_t>(g)] > 0 && d.label[static_cast<std::size_t>(g)] != d.label[f]) ++border[r][d.label[static_cast<std::size_t>(g)]];
    }
    std::unordered_map<std::int64_t, std::map<int, double>> around;  // islands bordering no shell part: the outer surface near
    for (std::size_t f = 0; f < d.label.size(); ++f) {
      if (d.label[f] <= 0) continue;
      const std::int64_t r = find(static_cast<std::int64_t>(f));
      if (area[r] >= least || !border[r].empty()) continue;
      std::map<int, double>& votes = around[r];
      outer.within(centre[f], reach, [&](std::size_t g) {
        if (d.label[g] > 0 && d.label[g] != d.label[f]) votes[d.label[g]] += n.area[g];
      });
    }
    std::unordered_map<std::int64_t, int> relabel;
    auto most = [](const auto& m) { return std::max_element(m.begin(), m.end(), [](const auto& x, const auto& y) { return x.second < y.second; })->first; };
    for (const auto& [r, a] : area)
      if (a < least && !border[r].empty()) relabel[r] = most(border[r]);
    for (const auto& [r, votes] : around)
      if (!votes.empty()) relabel[r] = most(votes);
    if (relabel.empty()) return;
    for (std::size_t f = 0; f < d.label.size(); ++f)
      if (d.label[f] > 0)
        if (auto it = relabel.find(find(static_cast<std::int64_t>(f))); it != relabel.end()) d.label[f] = it->second;
  }
}

//! Each outer face takes the shell part that most of the outer surface within `radius` of it
//! belongs to (by area), among the parts whose pull does not face away from it; a few rounds. A
//! strip or an island of one part narrower than the wall leaves the bisector between the two parts
//! running along the surface instead of across it: the full-head mask's eye openings had the bead
//! round them, facing into the opening, given to a pull that sees it from the side, and the parting
//! surface between that part and the one in front ran along the skin across the opening, a layer of
//! the first 0.1–1 mm thick between the core and the second.
void smooth_labels(Division& d, const OuterFaces& outer, const FaceNormals& n, const std::vector<Vec3>& centre, double radius) {
  const std::vector<std::size_t>& faces = outer.faces();
  const std::size_t shells = d.pulls.size();
  for (int round = 0; round < 4; ++round) {
    std::vector<int> next(faces.size());
    tbb::parallel_for(std::size_t(0), faces.size(), [&](std::size_t s) {
      const std::size_t f = faces[s];
      std::vector<double> area(shells + 1, 0.0);
      outer.within(centre[f], radius, [&](std::size_t g) { area[static_cast<std::size_t>(d.label[g])] += n.area[g]; });
      int best = d.label[f];
      for (std::size_t k = 1; k <= shells; ++k)
        if (area[k] > area[static_cast<std::size_t>(best)] && n.normal[f].dot(d.pulls[k - 1]) >= 0) best = static_cast<int>(k);
      next[s] = best;
    });
    std::size_t changed = 0;
    for (std::size_t s = 0; s < faces.size(); ++s) changed += std::exchange(d.label[faces[s]], next[s]) != next[s];
    log_debug("mold: division smoothed over {:.1f} mm, round {}: {} faces change part", radius, round + 1, changed);
    if (changed == 0) break;
  }
}

std::vector<Vec3> face_centres(const Mesh& m) {
  std::vector<Vec3> c(m.triangles.size());
  for (std::size_t f = 0; f < c.size(); ++f) {
    const Tri& t = m.triangles[f];
    c[f] = (m.vertices[t[0]] + m.vertices[t[1]] + m.vertices[t[2]]) / 3.0;
  }
  return c;
}

//! Outer faces of the inspection that do not stand square to the skin: a cut wall across the
//! piece (a mask's eye opening or neck) faces along the skin and is rim; the back of an ear,
//! facing the head, is outer.
std::vector<char> facing_out(const Mesh& skin, const Inspection& in, const FaceNormals& n) {
  std::vector<Vec3> pts;
  std::vector<std::size_t> which;
  for (std::size_t f = 0; f < in.outer.size(); ++f)
    if (in.outer[f]) pts.push_back(in.centres[f]), which.push_back(f);
  const std::vector<Vec3> q = SurfaceQuery(skin).closest_points(pts);
  std::vector<char> out(in.outer.size(), 0);
  for (std::size_t k = 0; k < which.size(); ++k) {
    const Vec3 away = pts[k] - q[k];
    out[which[k]] = away.norm() > 0 && std::abs(n.normal[which[k]].dot(away.normalized())) > 0.5;
  }
  return out;
}

}  // namespace

Division divide_surface(const Mesh& piece, const Mesh& skin, const Inspection& in, int shells, double smooth_mm) {
  const FaceNormals n = face_normals(piece);
  const std::vector<char> outer = facing_out(skin, in, n);
  std::vector<std::size_t> faces, sample;
  for (std::size_t f = 0; f < outer.size(); ++f)
    if (outer[f]) faces.push_back(f);
  if (faces.empty()) throw InputError("mold: the piece has no outer surface off the skin");
  const std::size_t stride = std::max<std::size_t>(1, faces.size() / 40000);
  std::vector<double> weight;
  for (std::size_t s = 0; s < faces.size(); s += stride) sample.push_back(faces[s]), weight.push_back(n.area[faces[s]]);
  const SurfaceQuery piece_q(piece), skin_q(skin);
  const std::vector<Vec3> dirs = sphere_directions(kDirections);
  const std::vector<int> chosen = cover(released(sample, in.centres, n, dirs, piece_q, skin_q), weight, shells);

  Division d;
  for (int c : chosen) d.pulls.push_back(dirs[static_cast<std::size_t>(c)]);
  const std::vector<DirSet> seen = released(faces, in.centres, n, d.pulls, piece_q, skin_q);
  d.label.assign(piece.triangles.size(), -1);
  for (std::size_t f = 0; f < in.inner.size(); ++f)
    if (in.inner[f]) d.label[f] = 0;
  for (std::size_t s = 0; s < faces.size(); ++s) {
    double best = -2;
    for (std::size_t k = 0; k < d.pulls.size(); ++k) {
      const double c = n.normal[faces[s]].dot(d.pulls[k]) + (seen[s].test(k) ? 2 : 0);
      if (c > best) best = c, d.label[faces[s]] = static_cast<int>(k) + 1;
    }
  }
  const OuterFaces near(piece, faces, in.centres);
  smooth_labels(d, near, n, in.centres, smooth_mm);
  double outer_area = 0;
  for (std::size_t f : faces) outer_area += n.area[f];
  merge_islands(d, face_neighbours(piece), n, std::max(0.02 * outer_area, 25.0), near, in.centres, 4 * smooth_mm);
  // The parts' names and pulls (what each forms and releases is measured on the parts as made).
  d.parts.assign(d.pulls.size() + 1, {});
  for (std::size_t k = 0; k < d.pulls.size(); ++k) {
    d.parts[k + 1].part = fmt::format("shell-{}", k + 1);
    d.parts[k + 1].direction = d.pulls[k];
  }
  // The core: the cast lifts off it along the skin's mean normal under the piece, or, where the
  // piece wraps round it (no such direction: a mask on a head), is peeled off.
  d.parts[0].part = "core";
  Vec3 mean = Vec3::Zero();
  double inner_area = 0;
  for (std::size_t f = 0; f < in.inner.size(); ++f)
    if (in.inner[f]) mean += n.area[f] * n.normal[f], inner_area += n.area[f];
  if (inner_area > 0 && mean.norm() > 0.5 * inner_area) d.parts[0].direction = mean.normalized();
  return d;
}

namespace {

//! How far under `top` (along `c`) the piece's walls stand square to the plane: the parts end
//! there (over the edge's rounding each part would end in a wedge), at least kOpenShort under it;
//! none within 5 mm.
std::optional<double> square_below(const Mesh& piece, const Division& d, const FaceNormals& n, const Vec3& c, double top) {
  const std::vector<Vec3> centre = face_centres(piece);
  for (double depth = kOpenShort; depth <= 5.0; depth += 0.25) {
    std::vector<double> tilt;
    for (std::size_t f = 0; f < d.label.size(); ++f)
      if (const double h = top - c.dot(centre[f]); d.label[f] >= 0 && h > depth && h < depth + 0.5) tilt.push_back(std::abs(n.normal[f].dot(c)));
    if (tilt.size() < 10) return std::nullopt;
    std::nth_element(tilt.begin(), tilt.begin() + static_cast<std::ptrdiff_t>(0.9 * tilt.size()), tilt.end());
    if (tilt[static_cast<std::size_t>(0.9 * tilt.size())] < 0.3) return depth;
  }
  return std::nullopt;
}

}  // namespace

std::optional<OpenPlane> find_open_plane(const Mesh& piece, const Division& d) {
  constexpr double kCos = 0.995, kOff = 0.5;
  const FaceNormals n = face_normals(piece);
  std::vector<std::size_t> rim;
  for (std::size_t f = 0; f < d.label.size(); ++f)
    if (d.label[f] < 0) rim.push_back(f);
  if (rim.empty()) return std::nullopt;
  auto corner = [&](std::size_t f, int i) { return piece.vertices[static_cast<std::size_t>(piece.triangles[f][i])]; };
  auto members = [&](const Vec3& c, double off, auto&& fn) {
    for (std::size_t f : rim)
      if (n.normal[f].dot(c) > kCos && std::abs(c.dot(corner(f, 0)) - off) < kOff) fn(f);
  };
  const std::size_t stride = std::max<std::size_t>(1, rim.size() / 300);
  Vec3 best_c = Vec3::UnitZ();
  double best_off = 0, best_area = 0;
  for (std::size_t s = 0; s < rim.size(); s += stride) {
    const Vec3 c = n.normal[rim[s]];
    const double off = c.dot(corner(rim[s], 0));
    double a = 0;
    members(c, off, [&](std::size_t f) { a += n.area[f]; });
    if (a > best_area) best_area = a, best_c = c, best_off = off;
  }
  if (best_area < 100.0) return std::nullopt;
  double lowest = std::numeric_limits<double>::infinity();
  members(best_c, best_off, [&](std::size_t f) {
    for (int i = 0; i < 3; ++i) lowest = std::min(lowest, best_c.dot(corner(f, i)));
  });
  const std::optional<double> depth = square_below(piece, d, n, best_c, lowest);
  if (!depth) return std::nullopt;
  return OpenPlane{best_c, lowest - *depth};
}

namespace {

//! Keys on the parting surfaces: between each pair of shell parts, in the flange beside the
//! boundary of their shares (a ball on the lower-numbered part); between core and shell, on the
//! skin's flange round the piece (a ball on the core).
void place_keys(MultipartPlan& plan, const Mesh& piece, const Mesh& skin, const Division& d, const MoldOptions& o, double radius) {
  const FaceNormals n = face_normals(piece);
  const std::vector<Vec3> centre = face_centres(piece);
  const auto nb = face_neighbours(piece);
  const double out = o.wall_mm + 0.5 * o.flange_mm;
  std::map<std::pair<int, int>, std::vector<Vec3>> boundary;
  for (std::size_t f = 0; f < d.label.size(); ++f)
    for (std::int64_t g : nb[f])
      if (g >= 0 && d.label[f] > 0 && d.label[static_cast<std::size_t>(g)] > d.label[f])
        boundary[{d.label[f], d.label[static_cast<std::size_t>(g)]}].push_back(centre[f] + out * n.normal[f]);
  for (const auto& [pair, pts] : boundary)
    for (const Vec3& c : detail::farthest_first(pts, {}, 30, 15)) plan.keys.push_back({c, radius, pair.first, pair.second});
  // Core keys: on the skin, `out` from the piece, clear of the open plane.
  const SurfaceQuery piece_q(piece);
  const std::vector<double> dist = piece_q.distances(skin.vertices);
  const std::vector<Vec3> normals = vertex_normals(skin);
  std::vector<Vec3> ring;
  for (std::size_t v = 0; v < skin.vertices.size(); ++v) {
    if (std::abs(dist[v] - out) > 0.5) continue;
    if (plan.open && plan.open->normal.dot(skin.vertices[v]) > plan.open->offset - radius - o.wall_mm) continue;
    ring.push_back(skin.vertices[v] + plan.lift * normals[v]);
  }
  const std::vector<Vec3> core_keys = detail::farthest_first(ring, {}, 16, 15);
  std::vector<SurfaceQuery> shares;
  for (std::size_t k = 1; k <= d.pulls.size(); ++k) {
    std::vector<char> keep(d.label.size());
    for (std::size_t f = 0; f < keep.size(); ++f) keep[f] = d.label[f] == static_cast<int>(k);
    shares.emplace_back(submesh(piece, keep));
  }
  // Their balls smaller where the core's wall under the skin is thinner than a ball.
  const double core_radius = std::min(radius, o.wall_mm + plan.lift - 0.5);
  for (const Vec3& c : core_keys) {
    int part = 1;
    double least = std::numeric_limits<double>::infinity();
    for (std::size_t k = 0; k < shares.size(); ++k)
      if (const double dd = shares[k].distances({c})[0]; dd < least) least = dd, part = static_cast<int>(k) + 1;
    plan.keys.push_back({c, core_radius, 0, part});
  }
}

//! Whether the piece's surface within `r` + 1 mm of face `f`'s centre turns less than 40° from it:
//! a channel square to it there meets the cavity square all round (no knife edge at its mouth).
bool flat_round(const std::vector<Vec3>& centre, const FaceNormals& n, const std::vector<int>& label, std::size_t f, double r) {
  for (std::size_t g = 0; g < centre.size(); ++g)
    if (label[g] > 0 && (centre[g] - centre[f]).squaredNorm() < (r + 1) * (r + 1) && n.normal[g].dot(n.normal[f]) < 0.766) return false;
  return true;
}

//! The sprue (when the piece is not open along a plane): at the highest point of the cavity in the
//! casting pose where the surface is flat round it. Vents at the cavity's local high points (none
//! within 15 mm of a higher one). Each channel leaves square to the surface through a boss of its
//! part, where that line does not meet the piece again.
void place_channels(MultipartPlan& plan, const Mesh& piece, const Division& d, const MoldOptions& o) {
  const FaceNormals n = face_normals(piece);
  const std::vector<Vec3> centre = face_centres(piece);
  std::vector<std::size_t> tops;
  for (std::size_t f = 0; f < d.label.size(); ++f)
    if (d.label[f] > 0 && n.normal[f].dot(plan.up) > 0.7) tops.push_back(f);
  std::sort(tops.begin(), tops.end(), [&](std::size_t a, std::size_t b) { return centre[a].dot(plan.up) > centre[b].dot(plan.up); });
  const SurfaceQuery piece_q(piece);
  const double reach = o.wall_mm + o.flange_mm;
  auto clear = [&](std::size_t f) { return !piece_q.cast({centre[f] + 1e-2 * n.normal[f]}, {n.normal[f]})[0].hit; };
  auto add = [&](std::size_t f, double r, bool sprue) {
    plan.channels.push_back({centre[f] - 0.5 * n.normal[f], centre[f] + reach * n.normal[f], r, sprue, d.label[f]});
  };
  std::vector<Vec3> taken;
  if (!plan.open && o.sprue_diameter_mm > 0 && !tops.empty()) {
    // The widest of the sprue's diameter and 6 mm that a flat enough place near the top takes;
    // failing both, the highest point, with a warning.
    auto site = [&](double r) -> std::optional<std::size_t> {
      for (std::size_t k = 0; k < std::min<std::size_t>(tops.size(), 2000); ++k)
        if (flat_round(centre, n, d.label, tops[k], r) && clear(tops[k])) return tops[k];
      return std::nullopt;
    };
    double r = 0.5 * o.sprue_diameter_mm;
    std::optional<std::size_t> at = site(r);
    if (!at && r > 3 && (at = site(3.0))) {
      r = 3.0;
      plan.warnings.push_back("the sprue is 6 mm wide: nowhere near the cavity's top is flat enough for a wider one to meet it square");
    }
    if (!at) {
      at = tops.front();
      plan.warnings.push_back("the sprue meets the cavity at its highest point, which curves away round it: its mouth has a thin lip");
    }
    add(*at, r, true);
    taken.push_back(centre[*at]);
  }
  const double top = plan.open ? plan.open->offset : std::numeric_limits<double>::infinity();
  int vents = 0;
  for (std::size_t f : tops) {
    if (o.vent_diameter_mm <= 0 || vents >= o.max_vents) break;
    if (plan.open && plan.open->normal.dot(centre[f]) > top - 5) continue;
    bool near = false;
    for (const Vec3& t : taken) near = near || (t - centre[f]).norm() < 15;
    if (near) continue;
    taken.push_back(centre[f]);  // a high point: its neighbourhood is lower (sorted)
    if (clear(f)) add(f, 0.5 * o.vent_diameter_mm, false), ++vents;
  }
}

}  // namespace

double multipart_grid_mm(const MoldOptions& o, const Mesh& piece) {
  if (o.grid_mm > 0) return o.grid_mm;
  return std::min(0.5 * o.wall_mm, bounding_box(piece).extent().maxCoeff() > 150 ? 1.5 : 1.0);
}

MultipartPlan plan_multipart(const Mesh& piece, const Mesh& skin, const Division& d, const MoldOptions& o) {
  MultipartPlan plan;
  plan.grid_mm = o.grid_mm;
  const double clearance = o.printer.key_clearance_mm;
  const double radius = std::min(o.key_radius_mm, 0.5 * o.flange_mm - o.printer.min_wall_mm - clearance);
  plan.flange_half = std::max(o.wall_mm, radius + clearance + o.printer.min_wall_mm + 0.5 * o.grid_mm);
  plan.open = find_open_plane(piece, d);
  if (plan.open) {
    plan.lift = kOpenLift;
    plan.up = plan.open->normal;
  } else if (d.parts[0].direction) {
    plan.up = -*d.parts[0].direction;
  }
  if (o.keys > 0 && radius >= 1) place_keys(plan, piece, skin, d, o, radius);
  place_channels(plan, piece, d, o);
  return plan;
}

namespace {

//! Signed distance to the cylinder of radius r round the segment ab, flat at both ends.
double capped_cylinder(const Vec3& p, const Vec3& a, const Vec3& b, double r) {
  const Vec3 axis = (b - a).normalized();
  const double t = (p - a).dot(axis), len = (b - a).norm();
  const double radial = ((p - a) - t * axis).norm() - r, along = std::max(-t, t - len);
  return std::hypot(std::max(radial, 0.0), std::max(along, 0.0)) + std::min(std::max(radial, along), 0.0);
}

//! The distances every part's field is made of, at a batch of points.
struct Distances {
  std::vector<double> piece, skin;         // signed, negative inside
  std::vector<std::vector<double>> share;  // to each shell part's share of the outer surface
  std::vector<char> shells_clear;          // no shell part's field is near zero here: shares not measured
};

//! A bound under every shell part's field at point i that needs no share distance: each is at
//! least max(lift − s_S, min(s_P − (w + F) − k/4, the bosses)) (part_field: a smooth max is never
//! under the larger of its two, a smooth min never more than k/4 under the smaller).
double shell_floor(double sp, double ss, const Vec3& p, const MultipartPlan& plan, const MoldOptions& o) {
  double env = sp - (o.wall_mm + o.flange_mm) - 0.25 * o.grid_mm;
  for (const Channel& c : plan.channels) env = std::min(env, capped_cylinder(p, c.from, c.to, c.radius + o.wall_mm));
  return std::max(plan.lift - ss, env);
}

struct FieldSources {
  SurfaceQuery piece, skin;
  std::vector<SurfaceQuery> shares;
  //! The distances at `p`. Where the shells' floor is over a grid step's diagonal (1.01 √3 h), it
  //! is over zero at every grid point an edge from there reaches (the floor's slope is at most 1):
  //! no shell's surface crosses those edges, so the value there needs no share distance.
  Distances at(const std::vector<Vec3>& p, const MultipartPlan& plan, const MoldOptions& o) const {
    Distances d;
    d.piece = piece.signed_distances(p);
    d.skin = skin.signed_distances(p);
    d.shells_clear.assign(p.size(), 0);
    std::vector<Vec3> near;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < p.size(); ++i) {
      d.shells_clear[i] = shell_floor(d.piece[i], d.skin[i], p[i], plan, o) > 1.01 * std::sqrt(3.0) * o.grid_mm;
      if (!d.shells_clear[i]) near.push_back(p[i]), which.push_back(i);
    }
    for (const SurfaceQuery& s : shares) {
      const std::vector<double> v = s.distances(near);
      d.share.emplace_back(p.size(), std::numeric_limits<double>::infinity());
      for (std::size_t n = 0; n < which.size(); ++n) d.share.back()[which[n]] = v[n];
    }
    return d;
  }
};

//! Part `k`'s field at point i (negative inside): see multipart.h.
double part_field(const Distances& d, std::size_t i, std::size_t k, const Vec3& p, const MultipartPlan& plan, const MoldOptions& o, double clip) {
  const double w = o.wall_mm, reach = o.wall_mm + o.flange_mm, sp = d.piece[i], ss = d.skin[i], k_round = std::min(o.grid_mm, 1.0);
  // Where the envelope's surfaces meet they are rounded over a grid step (a sharp crease
  // sampled on a grid is a row of notches), at most 1 mm: the rounding eats into the flanges
  // where the keys sit (the mask's mold on the 1.5 mm grid held 5 keys rounded over 1.5 mm, 15
  // over 1 mm). The parting surfaces stay as they are, so that neighbouring parts meet on them.
  double v;
  if (k == 0) {
    v = smooth_max(ss - plan.lift, smooth_max(-ss - w, sp - reach, k_round), k_round);
  } else if (d.shells_clear[i]) {
    v = shell_floor(sp, ss, p, plan, o);
  } else {
    double others = std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < d.share.size(); ++j)
      if (j + 1 != k) others = std::min(others, d.share[j][i]);
    const double lambda = std::isinf(others) ? -1e9 : d.share[k - 1][i] - others;
    const double flange = smooth_max(sp - reach, std::min(-lambda - 2 * plan.flange_half, ss - plan.lift - plan.flange_half), k_round);
    double env = smooth_min(sp - w, flange, k_round);
    for (const Channel& c : plan.channels)  // a boss round each channel of this part, its end square to it
      if (c.part == static_cast<int>(k)) env = std::min(env, capped_cylinder(p, c.from, c.to, c.radius + w));
    v = smooth_max(env, std::max(plan.lift - ss, lambda), k_round);
  }
  return std::max(v, clip);
}

}  // namespace

namespace {

//! Moves a key between two shell parts onto their parting surface: Newton steps on half the
//! difference of the two parts' fields (each other's negatives there), by central differences.
void onto_parting(Key& k, const FieldFn& fields, std::size_t parts) {
  const auto male = static_cast<std::size_t>(k.male), female = static_cast<std::size_t>(k.female);
  const double step = 0.25;
  for (int round = 0; round < 4; ++round) {
    std::vector<Vec3> pts{k.centre};
    for (int a = 0; a < 3; ++a)
      for (double sgn : {-1.0, 1.0}) pts.push_back(k.centre + sgn * step * Vec3::Unit(a));
    const std::vector<double> v = fields(pts);
    auto g = [&](std::size_t i) { return 0.5 * (v[i * parts + male] - v[i * parts + female]); };
    Vec3 grad;
    for (int a = 0; a < 3; ++a) grad[a] = (g(2 + 2 * static_cast<std::size_t>(a)) - g(1 + 2 * static_cast<std::size_t>(a))) / (2 * step);
    if (grad.squaredNorm() < 1e-6 || std::abs(g(0)) < 1e-3) return;
    k.centre -= g(0) * grad / grad.squaredNorm();
  }
}

//! Whether a key's ball lies within the two parts it joins and, wherever its socket (the ball and
//! the clearance) lies in the socket's part, that part holds the printer's minimum wall round it,
//! all of it outside the cavity: at 200 points of each sphere (at 26, a ball reaching 0.8 mm past a
//! flange's edge between them was kept; with half a wall, checked only where the ball reached in,
//! the bench ear's sockets left walls of 0.38 and 0.71 mm).
bool key_held(const Key& k, const FieldFn& fields, const SurfaceQuery& piece, std::size_t parts, const MoldOptions& o) {
  static const std::vector<Vec3> around = sphere_directions(200);
  const std::size_t n = around.size();
  std::vector<Vec3> pts;  // the ball, the socket, the socket's wall
  for (const double r : {k.radius - 0.05, k.radius + o.printer.key_clearance_mm, k.radius + o.printer.key_clearance_mm + o.printer.min_wall_mm})
    for (const Vec3& u : around) pts.push_back(k.centre + r * u);
  const std::vector<double> v = fields(pts), cavity = piece.signed_distances(pts);
  if (*std::min_element(cavity.begin(), cavity.end()) <= 0) return false;
  const auto male = static_cast<std::size_t>(k.male), female = static_cast<std::size_t>(k.female);
  bool held = true;
  for (std::size_t i = 0; i < n; ++i) {
    held = held && std::min(v[i * parts + male], v[i * parts + female]) < 0;
    if (v[(i + n) * parts + female] < 0) held = held && v[(i + 2 * n) * parts + female] < 0;
  }
  return held;
}

//! A key between two shell parts moved onto their parting surface (onto_parting) where it is held
//! (key_held) and `room` allows it: from its candidate, else from the candidate moved 2 or 4 mm
//! along each axis; with its ball, else with one of three quarters or three fifths of it (not
//! under 2 mm). (Placed 8 mm out from the piece along the surface's normal, a ball on a curved
//! flange often reaches past the flange's edge at a few of its 200 points: on the bench's ear,
//! none of the six candidates between its two shell parts held.)
std::optional<Key> seated_on_parting(const Key& candidate, const FieldFn& fields, const SurfaceQuery& piece, std::size_t parts, const MoldOptions& o,
                                     const std::function<bool(const Key&)>& room) {
  std::vector<Vec3> starts{Vec3::Zero()};
  for (double d : {2.0, 4.0})
    for (int a = 0; a < 3; ++a) starts.push_back(d * Vec3::Unit(a)), starts.push_back(-d * Vec3::Unit(a));
  for (double scale : {1.0, 0.75, 0.6}) {
    if (scale < 1 && scale * candidate.radius < 2.0) break;
    for (const Vec3& s : starts) {
      Key k = candidate;
      k.centre += s;
      k.radius = scale * candidate.radius;
      onto_parting(k, fields, parts);
      if (room(k) && key_held(k, fields, piece, parts, o)) return k;
    }
  }
  return std::nullopt;
}

//! From the candidates (farthest apart first), the keys that are held (key_held; those between
//! shell parts seated on their parting surface first, seated_on_parting): up to six per pair of
//! shell parts 40 mm apart, four between core and shell 25 mm apart, none within two balls and two
//! walls of another. Says which pairs of parts are left with none.
void seat_keys(MultipartPlan& plan, const FieldFn& fields, const SurfaceQuery& piece, std::size_t parts, const MoldOptions& o) {
  std::vector<Key> kept;
  std::map<std::pair<int, int>, int> count;
  std::set<std::pair<int, int>> pairs;
  // The core meets every shell part on the skin: a pair with no candidate at all is named too (the
  // full-head mask poured through its neck had none for shell-1, and said nothing).
  if (o.keys > 0)
    for (std::size_t k = 1; k < parts; ++k) pairs.insert({0, static_cast<int>(k)});
  for (Key k : plan.keys) {
    const std::pair<int, int> pair{k.male, k.female};
    pairs.insert(pair);
    const bool core = k.male == 0;
    if (count[pair] >= (core ? 4 : 6)) continue;
    const auto room = [&](const Key& c) {
      return std::all_of(kept.begin(), kept.end(), [&](const Key& q) {
        const double apart = (q.centre - c.centre).norm();
        return apart >= 2 * (c.radius + o.wall_mm) && (q.male != c.male || q.female != c.female || apart >= (core ? 25 : 40));
      });
    };
    if (core) {
      if (room(k) && key_held(k, fields, piece, parts, o)) kept.push_back(k), ++count[pair];
    } else if (const std::optional<Key> seated = seated_on_parting(k, fields, piece, parts, o, room)) {
      kept.push_back(*seated), ++count[pair];
    }
  }
  for (const auto& [pair, n] : count) log_debug("mold: {} key(s) between parts {} and {}", n, pair.first, pair.second);
  std::set<std::pair<int, int>> missing;
  for (const auto& p : pairs)
    if (count[p] == 0) missing.insert(p);
  for (const auto& [male, female] : missing)
    plan.warnings.push_back(male == 0 ? fmt::format("no key between the core and shell-{}: no room for one on the skin round the piece", female)
                                      : fmt::format("no key between shell-{} and shell-{}: their flanges hold no ball", male, female));
  plan.keys = std::move(kept);
}

}  // namespace

namespace {

//! The box the parts' grid covers: the piece's, grown by the wall, the flange and two steps.
Aabb parts_box(const Mesh& piece, const MoldOptions& o) {
  Aabb box = bounding_box(piece);
  const double grow = o.wall_mm + o.flange_mm + 2 * o.grid_mm;
  box.min -= Vec3::Constant(grow);
  box.max += Vec3::Constant(grow);
  return box;
}

//! Refuses, naming --grid, a piece whose parts' grid would hold more values than the level sets
//! take (150 M: a bust's head and shoulders at 1 mm), with the finest step that fits.
void check_grid_size(const Mesh& piece, std::size_t parts, const MoldOptions& o) {
  const Vec3 extent = parts_box(piece, o).extent();
  const auto values = [&](double h) { return ((extent / h).array().ceil() + 2).prod() * static_cast<double>(parts); };
  if (values(o.grid_mm) <= 1.5e8) return;
  double fits = o.grid_mm;
  while (values(fits) > 1.5e8) fits += 0.1;
  throw InputError(fmt::format("mold: the parts' box ({:.0f} × {:.0f} × {:.0f} mm) and its {} parts need {:.0f} M grid values at --grid {} mm, "
                               "over the 150 M the level sets take: use --grid {:.1f} or coarser (at most half of --wall, {} mm)",
                               extent.x(), extent.y(), extent.z(), parts, values(o.grid_mm) / 1e6, o.grid_mm, fits, o.wall_mm / 2));
}

}  // namespace

Division plan_division(const Mesh& piece, const Mesh& skin, const Inspection& in, const MoldOptions& o) {
  Division d = divide_surface(piece, skin, in, o.parts >= 3 ? o.parts - 1 : 0, 0.5 * o.wall_mm);
  check_grid_size(piece, d.pulls.size() + 1, o);
  return d;
}

void carry_plan(MoldPlan& plan, const std::vector<std::uint32_t>& origin) {
  if (!plan.multipart_design) return;
  std::vector<int>& label = plan.multipart_design->division.label;
  std::vector<int> carried(origin.size());
  for (std::size_t f = 0; f < origin.size(); ++f) {
    if (origin[f] >= label.size()) throw ProcessingError("mold: the stamped piece's faces do not match their origins");
    carried[f] = label[origin[f]];
  }
  label = std::move(carried);
}

namespace {

//! Each shell part's share of the outer surface, less a band along the seams where it meets
//! another shell part's. Beyond a ridge where two shares meet (an ear's helix), the nearest point
//! of both is the same point on the ridge: their distances tie over a wedge of space, the sign of
//! their difference there was the single-precision distances' noise, and the parting surface
//! between the two parts a field of grid-sized blocks (the bench ear's: 5.2 % of its edges turning
//! over 60°). With the faces within `band` of a seam left out, the nearest points differ, and the
//! tie is the surface between those (0.13 % at two grid steps; at one ring of faces the seam's
//! zigzag still fluted it). A share that is all band is kept whole.
std::vector<Mesh> separated_shares(const Mesh& piece, const Division& d, double band) {
  constexpr int kShared = -1;
  std::vector<int> by_vertex(piece.vertices.size(), 0);  // 0: no shell part's; k; kShared: two parts'
  for (std::size_t f = 0; f < d.label.size(); ++f)
    if (d.label[f] >= 1)
      for (const std::int32_t v : piece.triangles[f]) {
        int& l = by_vertex[static_cast<std::size_t>(v)];
        l = l == 0 || l == d.label[f] ? d.label[f] : kShared;
      }
  std::vector<Vec3> seam;
  for (std::size_t v = 0; v < by_vertex.size(); ++v)
    if (by_vertex[v] == kShared) seam.push_back(piece.vertices[v]);
  const std::vector<double> from_seam = nearest_point_distances(seam, face_centres(piece));
  std::vector<Mesh> shares;
  for (int k = 1; k <= static_cast<int>(d.pulls.size()); ++k) {
    std::vector<char> keep(d.label.size(), 0);
    bool any = false;
    for (std::size_t f = 0; f < keep.size(); ++f) {
      keep[f] = d.label[f] == k && from_seam[f] > band;
      any = any || keep[f];
    }
    if (!any)
      for (std::size_t f = 0; f < keep.size(); ++f) keep[f] = d.label[f] == k;
    shares.push_back(submesh(piece, keep));
  }
  return shares;
}

}  // namespace

std::vector<Mesh> multipart_solids(const Mesh& piece, const Mesh& skin, const Division& d, MultipartPlan& plan, const MoldOptions& o) {
  FieldSources src{SurfaceQuery(piece), SurfaceQuery(skin), {}};
  for (const Mesh& share : separated_shares(piece, d, 2 * o.grid_mm)) src.shares.emplace_back(share);
  const std::size_t parts = d.pulls.size() + 1;
  const FieldFn fields = [&](const std::vector<Vec3>& p) {
    const Distances dist = src.at(p, plan, o);
    std::vector<double> v(p.size() * parts);
    tbb::parallel_for(std::size_t(0), p.size(), [&](std::size_t i) {
      const double clip = plan.open ? plan.open->normal.dot(p[i]) - plan.open->offset : -1e9;
      for (std::size_t k = 0; k < parts; ++k) v[i * parts + k] = part_field(dist, i, k, p[i], plan, o, clip);
    });
    return v;
  };
  seat_keys(plan, fields, src.piece, parts, o);
  return level_set_surfaces(fields, parts, parts_box(piece, o), o.grid_mm, 2.0);
}

namespace {

//! The faces of `m` that form the cavity: their centres within 0.1 µm of the piece. Only the
//! centres inside a box of the piece's faces (grown by that much) are measured: a part's faces
//! mostly lie a wall away from the piece (the mask's mold: 6.3 M faces, 47 s measured all).
std::vector<std::size_t> forming_faces(const Mesh& m, const std::vector<Vec3>& centre, const SurfaceQuery& piece_q, const BoxGrid& near) {
  std::vector<char> candidate(centre.size(), 0);
  tbb::parallel_for(std::size_t(0), centre.size(), [&](std::size_t f) {
    near.overlapping(centre[f], centre[f], [&](std::size_t) { candidate[f] = 1; });
  });
  std::vector<std::size_t> which;
  std::vector<Vec3> at;
  for (std::size_t f = 0; f < m.triangles.size(); ++f)
    if (candidate[f]) which.push_back(f), at.push_back(centre[f]);
  const std::vector<double> off = piece_q.distances(at);
  std::vector<std::size_t> formed;
  for (std::size_t i = 0; i < which.size(); ++i)
    if (off[i] < 1e-4) formed.push_back(which[i]);
  return formed;
}

}  // namespace

void measure_release(std::vector<PartPull>& pulls, const std::vector<NamedMesh>& parts, const Mesh& piece) {
  const SurfaceQuery piece_q(piece);
  const FaceBoxes boxes = face_boxes(piece, 1e-4);
  const BoxGrid near(boxes);
  for (std::size_t k = 0; k < parts.size(); ++k) {
    PartPull& p = pulls[k];
    const Mesh& m = parts[k].mesh;
    const FaceNormals n = face_normals(m);
    const std::vector<Vec3> centre = face_centres(m);
    p.cavity_area_mm2 = p.undercut_area_mm2 = p.undercut_depth_mm = 0;
    const std::vector<std::size_t> formed = forming_faces(m, centre, piece_q, near);
    for (std::size_t f : formed) p.cavity_area_mm2 += n.area[f];
    if (!p.direction) continue;
    // From the cavity's side of each face (its normal points into the cavity), along the pull.
    std::vector<Vec3> o, dir(formed.size(), *p.direction);
    for (std::size_t f : formed) o.push_back(centre[f] + 1e-3 * *p.direction);
    const std::vector<RayHit> in = piece_q.cast(o, dir);
    std::vector<Vec3> o2;
    std::vector<std::size_t> held;
    for (std::size_t i = 0; i < formed.size(); ++i)
      if (in[i].hit) held.push_back(i), o2.push_back(o[i] + (in[i].t + 1e-3) * *p.direction), p.undercut_area_mm2 += n.area[formed[i]];
    const std::vector<RayHit> out = piece_q.cast(o2, std::vector<Vec3>(o2.size(), *p.direction));
    for (std::size_t i = 0; i < held.size(); ++i)
      if (out[i].hit) p.undercut_depth_mm = std::max(p.undercut_depth_mm, in[held[i]].t + out[i].t);
  }
}

std::vector<NamedMesh> cut_cavity(std::vector<Mesh> solids, const Mesh& piece, const MultipartPlan& plan, const PrinterProfile& printer,
                                  double& sliver_ml) {
  using detail::BooleanOp;
  auto near = [](const Mesh& m, const Vec3& a, const Vec3& b, double r) {
    const Aabb box = bounding_box(m);
    for (int i = 0; i < 3; ++i)
      if (std::max(a[i], b[i]) + r < box.min[i] || std::min(a[i], b[i]) - r > box.max[i]) return false;
    return true;
  };
  std::vector<NamedMesh> out(solids.size());
  // Parts one at a time: each boolean already runs on both cores. The small solids go first, while
  // the part is still the level set's (differences commute), each kind in one boolean of as many
  // as do not touch (a boolean of a part with millions of faces costs seconds whatever the other
  // mesh); the piece last.
  for (std::size_t k = 0; k < solids.size(); ++k) {
    const std::string name = part_name(k);
    Mesh m = std::move(solids[k]);
    std::vector<Mesh> balls, cutters;
    for (const Key& key : plan.keys) {
      if (key.male == static_cast<int>(k)) balls.push_back(detail::uv_sphere(key.centre, key.radius));
      if (key.female == static_cast<int>(k)) cutters.push_back(detail::uv_sphere(key.centre, key.radius + printer.key_clearance_mm));
    }
    if (k > 0)
      for (const Channel& c : plan.channels)
        if (near(m, c.from, c.to, c.radius))  // through the boss's end
          cutters.push_back(detail::rod(c.from, c.to + 2 * (c.to - c.from).normalized(), c.radius, 24));
    for (Mesh& group : detail::apart(balls)) m = detail::boolean(m, group, BooleanOp::Union, "keys");
    for (Mesh& group : detail::apart(cutters)) m = detail::boolean(m, group, BooleanOp::Difference, "key sockets, sprue and vents");
    m = detail::boolean(m, piece, BooleanOp::Difference, name.c_str());
    out[k] = {name, std::move(m)};
  }
  // What the booleans cut off a part: given to a part it lies against, else dropped.
  std::vector<Mesh> off(out.size());
  for (std::size_t k = 0; k < out.size(); ++k) off[k] = split_off_pieces(out[k].mesh);
  for (std::size_t k = 0; k < out.size(); ++k)
    for (std::size_t j = 0; j < out.size() && !off[k].triangles.empty(); ++j)
      if (j != k) give_pieces(out[j].mesh, off[k]);
  for (std::size_t k = 0; k < off.size(); ++k) {  // the pieces of mold size stay with their part
    const double before = sliver_ml;
    for (const Mesh& kept : pieces_of(off[k], kLeastPieceMl, sliver_ml)) append(out[k].mesh, kept);
    if (sliver_ml > before) log_debug("mold: the {}'s booleans left {:.3f} ml in pieces beside it, dropped", out[k].name, sliver_ml - before);
  }
  return out;
}

}  // namespace stages

bool needs_multipart(const Mesh& piece, const Mesh& skin, const stages::Inspection& in, const stages::PullChoice& pc, const MoldOptions& o) {
  if (o.parts >= 3) return true;  // the skin was found closed by inspect_inputs()
  if (o.parts == 2) return false;
  const stages::FaceNormals n = stages::face_normals(piece);
  double outer = 0;
  for (std::size_t f = 0; f < in.outer.size(); ++f)
    if (in.outer[f]) outer += n.area[f];
  if (pc.undercut_area_mm2 <= 0.2 * outer) return false;
  MeasureOptions mo;
  mo.self_intersections = false;
  return measure(skin, mo).watertight;
}

namespace {

//! The options with the grid's step chosen (multipart_grid_mm).
MoldOptions with_grid(const MoldOptions& o, const Mesh& piece) {
  MoldOptions g = o;
  g.grid_mm = stages::multipart_grid_mm(o, piece);
  return g;
}

//! A rotation taking `from` to `to` (unit vectors).
Eigen::Matrix3d turning(const Vec3& from, const Vec3& to) { return Eigen::Quaterniond::FromTwoVectors(from, to).toRotationMatrix(); }

//! Part k's turn into its print pose: its pull points down (its cavity up; the ear's core under the
//! cast, the mask's core crown down with its open neck up).
Eigen::Matrix3d print_turn(std::size_t k, const stages::Division& d, const stages::MultipartPlan& plan) {
  const Vec3 pull = k == 0 ? (d.parts[0].direction ? *d.parts[0].direction : Vec3(-plan.up)) : d.pulls[k - 1];
  return turning(pull, -Vec3::UnitZ());
}

}  // namespace

std::string stages::part_name(std::size_t k) { return k == 0 ? "core" : fmt::format("shell-{}", k); }

stages::MultipartDesign stages::plan_multipart_design(const Mesh& piece, const Mesh& skin, const Inspection& in, const MoldOptions& given,
                                                      StepTimer& timer) {
  const MoldOptions o = with_grid(given, piece);
  MultipartDesign m;
  m.division = plan_division(piece, skin, in, o);
  timer.lap("pulls");
  m.plan = plan_multipart(piece, skin, m.division, o);
  timer.lap("features");
  m.solids = multipart_solids(piece, skin, m.division, m.plan, o);
  timer.lap("walls");
  for (std::size_t k = 0; k < m.solids.size(); ++k) {
    const Eigen::Matrix3d t = print_turn(k, m.division, m.plan);
    Aabb box;
    for (const Vec3& v : m.solids[k].vertices) box.add(t * v);
    double ball = 0;  // the part's own keys stand out of its solid by at most their radius
    for (const Key& key : m.plan.keys)
      if (key.male == static_cast<int>(k)) ball = std::max(ball, key.radius);
    sections_or_refuse(part_name(k), box.extent() + Vec3::Constant(2 * ball), o);
  }
  return m;
}

namespace {

//! cut_cavity(), or, when CGAL cannot cut the piece because its surface crosses itself, a
//! ProcessingError that says so and how to get out of it.
std::vector<NamedMesh> cut_or_explain(std::vector<Mesh> solids, const Mesh& piece, const stages::MultipartPlan& plan, const MoldOptions& o,
                                      double& sliver_ml) {
  try {
    return stages::cut_cavity(std::move(solids), piece, plan, o.printer, sliver_ml);
  } catch (const std::exception& e) {
    const MeshInfo info = measure(piece);
    if (info.self_intersecting_pairs.value_or(0) > 0)
      throw ProcessingError(fmt::format("mold: the piece's surface crosses itself ({} pairs of faces), so its cavity cannot be cut; a mark's "
                                        "displacement can fold the slivers of a level set's surface (tracecast ear, mask): remesh the piece "
                                        "first (tracecast repair --remesh-edge 0.4)",
                                        *info.self_intersecting_pairs));
    if (dynamic_cast<const Error*>(&e)) throw;
    throw ProcessingError(fmt::format("mold: cutting the cavity failed: {}", e.what()));
  }
}

//! Where a section's dowel boss may go (stages::BossRoom), in a part's print frame: 0.5 mm off the
//! cavity, the key clearance off every other part, a wall off the keys' balls and the channels'
//! bores, and short of the plane a mask is poured at. The piece's and the parts' surfaces are
//! measured on first use (most molds are not cut into sections).
class BossSpace {
 public:
  BossSpace(const Mesh& piece, const std::vector<NamedMesh>& parts, const stages::MultipartPlan& plan, const MoldOptions& o)
      : piece_(piece), parts_(parts), plan_(plan), o_(o), queries_(parts.size() + 1) {}

  stages::BossRoom for_part(std::size_t k, const Eigen::Matrix3d& turn) {
    return [this, k, turn](const std::vector<Vec3>& pts) {
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<Vec3> m;
      for (const Vec3& p : pts) m.push_back(turn.transpose() * p);
      std::vector<char> ok(m.size(), 1);
      const double wall = o_.printer.min_wall_mm, clear = o_.printer.key_clearance_mm;
      const std::vector<double> cavity = query(0).signed_distances(m);
      for (std::size_t i = 0; i < m.size(); ++i) {
        ok[i] = cavity[i] > 0.5 && (!plan_.open || plan_.open->normal.dot(m[i]) < plan_.open->offset);
        for (const stages::Key& key : plan_.keys) ok[i] = ok[i] && (m[i] - key.centre).norm() > key.radius + clear + wall;
        for (const stages::Channel& c : plan_.channels)  // the bore runs 2 mm past the boss's end
          ok[i] = ok[i] && stages::capped_cylinder(m[i], c.from, c.to + 2.0 * (c.to - c.from).normalized(), c.radius + wall) > 0;
      }
      for (std::size_t j = 0; j < parts_.size(); ++j) {
        if (j == k) continue;
        const std::vector<double> other = query(j + 1).signed_distances(m);
        for (std::size_t i = 0; i < m.size(); ++i) ok[i] = ok[i] && other[i] > clear;
      }
      log_debug("sections: room for bosses on the {} at {} points in {:.2f} s", stages::part_name(k), pts.size(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      return ok;
    };
  }

 private:
  const SurfaceQuery& query(std::size_t which) {
    if (!queries_[which]) queries_[which] = std::make_unique<SurfaceQuery>(which == 0 ? piece_ : parts_[which - 1].mesh);
    return *queries_[which];
  }
  const Mesh& piece_;
  const std::vector<NamedMesh>& parts_;
  const stages::MultipartPlan& plan_;
  const MoldOptions& o_;
  std::vector<std::unique_ptr<SurfaceQuery>> queries_;
};

//! Each part turned so that its pull points down (print_turn), then laid on the plate as the
//! two-part mold's parts are (print_pose) and checked.
void pose_and_check(Mold& mold, const Mesh& piece, const std::vector<NamedMesh>& parts, const stages::Division& d,
                    const stages::MultipartPlan& plan, const MoldOptions& o) {
  MoldReport& r = mold.report;
  BossSpace space(piece, parts, plan, o);
  std::vector<NamedMesh> posed;
  std::vector<Eigen::Matrix3d> turn;  // per piece: its part's turn
  for (std::size_t k = 0; k < parts.size(); ++k) {
    const Eigen::Matrix3d t = print_turn(k, d, plan);
    NamedMesh part = parts[k];
    for (Vec3& v : part.mesh.vertices) v = t * v;
    std::vector<Vec3> keys;
    for (const stages::Key& key : plan.keys) keys.push_back(t * key.centre);
    Sections s;
    std::vector<NamedMesh> pieces = stages::section_part(part, keys, o, s, r.sliver_ml, space.for_part(k, t));
    const std::size_t count = pieces.size();
    for (NamedMesh& section : pieces) {
      posed.push_back(std::move(section));
      turn.push_back(t);
    }
    if (s.count() > 1) {
      r.part_sections.push_back({part.name, t, s});
      r.warnings.push_back(fmt::format("the {} ({:.0f} × {:.0f} × {:.0f} mm) is cut into {} sections ({} pieces) to fit the {} printer, with {} "
                                       "dowel(s) across the cuts",
                                       part.name, s.part_size_mm.x(), s.part_size_mm.y(), s.part_size_mm.z(), s.count(), count, o.printer.name,
                                       s.dowels.size()));
      for (const std::string& w : s.warnings) r.warnings.push_back(w);
    }
  }
  Timings laps;
  StepTimer timer(laps);
  std::vector<std::size_t> crossings;
  mold.print_parts = stages::print_pose(posed, o.printer, r.warnings, r.print_from_mold, crossings, false);
  for (std::size_t k = 0; k < turn.size(); ++k) r.print_from_mold[k].linear() = r.print_from_mold[k].linear() * turn[k];
  timer.lap("print pose");
  r.parts = stages::check_parts(mold.print_parts, crossings, o.printer, r.warnings);
  timer.lap("checks");
  for (const auto& [step, seconds] : laps) log_debug("multi-part mold: {} {:.2f} s", step, seconds);
  r.warnings.push_back(technology_warning(o.printer));
}

//! The plan's features and the parts' box as the report gives them.
void report_plan(MoldReport& r, const stages::MultipartPlan& plan, const std::vector<Mesh>& solids) {
  for (const std::string& w : plan.warnings) r.warnings.push_back(w);
  for (const stages::Key& k : plan.keys) r.key_centres.push_back(k.centre), r.key_radii_mm.push_back(k.radius);
  for (const stages::Channel& c : plan.channels) (c.sprue ? r.sprue_bottom : r.vent_bottoms.emplace_back()) = c.from;
  r.open_pour = plan.open.has_value();
  r.grid_mm = plan.grid_mm;
  Aabb all;
  for (const Mesh& s : solids) all.add(bounding_box(s).min), all.add(bounding_box(s).max);
  r.box_min = all.min;
  r.box_max = all.max;
}

}  // namespace

Mold design_multipart_mold(const Mesh& piece, const Mesh& skin, const stages::Inspection& in, const MoldOptions& o,
                           stages::MultipartDesign design) {
  using namespace stages;
  Mold mold;
  MoldReport& r = mold.report;
  StepTimer timer(r.timings);
  r.layout = "multi-part";
  r.appliance_ml = in.appliance_ml;
  const Division& d = design.division;
  const MultipartPlan& plan = design.plan;
  std::vector<Mesh>& solids = design.solids;
  if (d.label.size() != piece.triangles.size()) throw ProcessingError("mold: the planned division does not fit the piece's faces");
  r.pull = d.pulls.front();
  report_plan(r, plan, solids);
  double envelope = 0, made = 0;
  for (const Mesh& s : solids) envelope += signed_volume(s);
  std::vector<NamedMesh> parts = cut_or_explain(std::move(solids), piece, plan, o, r.sliver_ml);
  for (const NamedMesh& p : parts) made += signed_volume(p.mesh);
  r.void_ml = (envelope - made) / 1000.0;
  timer.lap("booleans");
  std::vector<const Mesh*> whole;
  for (const NamedMesh& p : parts) whole.push_back(&p.mesh);
  Openings openings;  // along each channel, where it may meet the cavity; the open edge
  for (const Channel& c : plan.channels) {
    const int steps = std::max(1, static_cast<int>(std::ceil((c.to - c.from).norm() / c.radius)));
    for (int k = 0; k <= steps; ++k) openings.balls.emplace_back(c.from + (c.to - c.from) * (static_cast<double>(k) / steps), c.radius + 1.0);
  }
  if (plan.open) openings.beyond = {plan.open->normal, plan.open->offset - 0.1};
  check_closure(piece, whole, openings, "", r);
  timer.lap("closure");
  r.pulls = d.parts;
  measure_release(r.pulls, parts, piece);
  for (const PartPull& p : r.pulls)
    if (p.undercut_area_mm2 >= 1 && p.undercut_depth_mm > o.rigid_undercut_mm)
      r.warnings.push_back(fmt::format("the {} leaves {:.0f} mm² of undercut up to {:.1f} mm deep: the cast must flex that far to release", p.part,
                                       p.undercut_area_mm2, p.undercut_depth_mm));
  timer.lap("release");
  pose_and_check(mold, piece, parts, d, plan, o);
  timer.lap("pose and check");
  mold.parts = std::move(parts);
  return mold;
}

}  // namespace tracecast::print
