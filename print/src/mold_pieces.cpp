// The pieces a part's booleans leave besides its body: dropped, or given to the other part where
// they lie against it (see mold_stages.h).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tracecast/mesh/point_hash.h"
#include "tracecast/mesh/submesh.h"
#include "tracecast/print/mold_stages.h"

namespace tracecast::print {

namespace {

//! Whether a closed surface crosses one of the section cuts (a dowel's hole, before the cut opens it).
bool crosses_a_cut(const Mesh& m, const std::vector<std::size_t>& piece, std::size_t label, const Sections& s) {
  Aabb b;
  for (std::size_t f = 0; f < m.triangles.size(); ++f)
    if (piece[f] == label)
      for (std::int32_t v : m.triangles[f]) b.add(m.vertices[static_cast<std::size_t>(v)]);
  for (int axis : {0, 1})
    for (double c : s.cuts[static_cast<std::size_t>(axis)])
      if (b.min[axis] < c && b.max[axis] > c) return true;
  return false;
}

//! Per face, whether it belongs to the largest piece or to a void crossing a cut of `s`.
std::vector<char> kept_faces(const Mesh& m, const Sections& s) {
  const std::vector<std::size_t> piece = face_components(m);
  std::map<std::size_t, double> vol = piece_volumes(m, piece);
  std::vector<char> keep(m.triangles.size(), 1);
  if (vol.size() <= 1) return keep;
  std::size_t best = vol.begin()->first;
  for (const auto& [label, v] : vol)
    if (v > vol[best]) best = label;
  std::map<std::size_t, char> kept;
  for (const auto& [label, v] : vol) kept[label] = label == best || (v < 0 && s.count() > 1 && crosses_a_cut(m, piece, label, s));
  for (std::size_t f = 0; f < m.triangles.size(); ++f) keep[f] = kept[piece[f]];
  return keep;
}

//! A triangle's corners, as positions in a canonical (sorted) order: the key two coincident faces share.
using Corners = std::array<Vec3, 3>;
Corners sorted_corners(const Mesh& m, const Tri& t) {
  Corners c{m.vertices[static_cast<std::size_t>(t[0])], m.vertices[static_cast<std::size_t>(t[1])], m.vertices[static_cast<std::size_t>(t[2])]};
  std::sort(c.begin(), c.end(), [](const Vec3& a, const Vec3& b) { return std::lexicographical_compare(a.data(), a.data() + 3, b.data(), b.data() + 3); });
  return c;
}
struct CornersHash {
  std::size_t operator()(const Corners& c) const {
    PointHash h;
    return h(c[0]) ^ (h(c[1]) * 0x9E3779B97F4A7C15ULL) ^ (h(c[2]) * 0xC2B2AE3D27D4EB4FULL);
  }
};

//! Whether face `b` of mesh `mb` runs through the same corners as face `a` of `ma` the other way round.
bool opposite(const Mesh& ma, const Tri& a, const Mesh& mb, const Tri& b) {
  auto at = [](const Mesh& m, const Tri& t, int k) { return m.vertices[static_cast<std::size_t>(t[static_cast<std::size_t>(k % 3)])]; };
  for (int i = 0; i < 3; ++i)
    if (at(ma, a, i) == at(mb, b, 0)) return at(ma, a, i + 2) == at(mb, b, 1) && at(ma, a, i + 1) == at(mb, b, 2);
  return false;
}

//! Moves each of the pieces' vertices lying within `tolerance` of a vertex of `to` onto it: the
//! core's and the shell's booleans round the same exact crossing point to doubles apart by up to
//! 1e-13 mm (nefertiti: 425 of 623 vertices where a piece meets the core).
void snap_onto(const Mesh& to, Mesh& pieces, double tolerance) {
  const double q = 100 * tolerance;
  auto key = [q](const Vec3& p) {
    std::array<std::int64_t, 3> k;
    for (int a = 0; a < 3; ++a) k[static_cast<std::size_t>(a)] = static_cast<std::int64_t>(std::floor(p[a] / q));
    return k;
  };
  struct KeyHash {
    std::size_t operator()(const std::array<std::int64_t, 3>& k) const {
      return static_cast<std::size_t>(k[0] * 73856093LL ^ k[1] * 19349663LL ^ k[2] * 83492791LL);
    }
  };
  std::unordered_map<std::array<std::int64_t, 3>, std::vector<std::size_t>, KeyHash> cell;
  for (std::size_t v = 0; v < pieces.vertices.size(); ++v)  // under every cell the point ± tolerance touches
    for (int corner = 0; corner < 8; ++corner) {
      Vec3 p = pieces.vertices[v];
      for (int a = 0; a < 3; ++a) p[a] += (corner >> a & 1) ? tolerance : -tolerance;
      auto& list = cell[key(p)];
      if (std::find(list.begin(), list.end(), v) == list.end()) list.push_back(v);
    }
  for (const Vec3& t : to.vertices)
    if (const auto it = cell.find(key(t)); it != cell.end())
      for (std::size_t v : it->second)
        if ((pieces.vertices[v] - t).cwiseAbs().maxCoeff() <= tolerance) pieces.vertices[v] = t;
}

//! The receiving part's faces near the pieces: those whose corners all occur among the pieces'
//! vertices, by their corners, and each such vertex's faces.
struct Neighbourhood {
  std::unordered_map<Vec3, std::int32_t, PointHash> vertex;
  std::unordered_map<Corners, std::size_t, CornersHash> face;
  std::unordered_map<std::int32_t, std::vector<std::size_t>> faces_at;
};
Neighbourhood neighbourhood(const Mesh& to, const Mesh& pieces) {
  const std::unordered_set<Vec3, PointHash> near(pieces.vertices.begin(), pieces.vertices.end());
  Neighbourhood n;
  for (std::size_t v = 0; v < to.vertices.size(); ++v)
    if (near.count(to.vertices[v])) n.vertex.emplace(to.vertices[v], static_cast<std::int32_t>(v));
  for (std::size_t f = 0; f < to.triangles.size(); ++f) {
    int inside = 0;
    for (std::int32_t v : to.triangles[f])
      if (n.vertex.count(to.vertices[static_cast<std::size_t>(v)])) ++inside, n.faces_at[v].push_back(f);
    if (inside == 3) n.face.emplace(sorted_corners(to, to.triangles[f]), f);
  }
  return n;
}

//! Whether `to` is closed and edge-manifold around `corner` (vertices of `to`) once its faces
//! flagged in `gone_to` leave it and the pieces' faces `piece_faces` not flagged in `shared` join
//! it: every edge at a corner then has exactly one face on each side.
bool closed_around(const Mesh& to, const std::unordered_set<std::int32_t>& corner, const std::vector<char>& gone_to, const Mesh& pieces,
                   const std::vector<std::size_t>& piece_faces, const std::vector<char>& shared, const Neighbourhood& n) {
  auto id = [&](const Mesh& m, std::int32_t v) -> std::int64_t {  // a vertex of `to`, or a piece's vertex `to` lacks
    if (&m == &to) return v;
    const auto it = n.vertex.find(m.vertices[static_cast<std::size_t>(v)]);
    return it == n.vertex.end() ? std::int64_t{-1} - v : std::int64_t{it->second};
  };
  std::map<std::pair<std::int64_t, std::int64_t>, int> half;
  auto add = [&](const Mesh& m, const Tri& t) {
    for (std::size_t k = 0; k < 3; ++k) {
      const std::int64_t a = id(m, t[k]), b = id(m, t[(k + 1) % 3]);
      if ((a >= 0 && corner.count(static_cast<std::int32_t>(a))) || (b >= 0 && corner.count(static_cast<std::int32_t>(b)))) ++half[{a, b}];
    }
  };
  std::unordered_set<std::size_t> seen;
  for (std::int32_t v : corner)
    if (const auto at = n.faces_at.find(v); at != n.faces_at.end())
      for (std::size_t f : at->second)
        if (!gone_to[f] && seen.insert(f).second) add(to, to.triangles[f]);
  for (std::size_t f : piece_faces)
    if (!shared[f]) add(pieces, pieces.triangles[f]);
  for (const auto& [e, count] : half) {
    const auto back = half.find({e.second, e.first});
    if (count != 1 || back == half.end() || back->second != 1) return false;
  }
  return true;
}

//! Joins the given pieces' faces, less the shared ones, to `to`, whose shared faces leave it.
void join(Mesh& to, const Mesh& pieces, const std::vector<char>& gone_to, const std::vector<char>& joins, Neighbourhood& n) {
  Mesh out;
  out.vertices = to.vertices;
  for (std::size_t f = 0; f < to.triangles.size(); ++f)
    if (!gone_to[f]) out.triangles.push_back(to.triangles[f]);
  for (std::size_t f = 0; f < pieces.triangles.size(); ++f) {
    if (!joins[f]) continue;
    Tri t = pieces.triangles[f];
    for (auto& v : t) {
      const Vec3& p = pieces.vertices[static_cast<std::size_t>(v)];
      auto [it, added] = n.vertex.try_emplace(p, static_cast<std::int32_t>(out.vertices.size()));
      if (added) out.vertices.push_back(p);
      v = it->second;
    }
    out.triangles.push_back(t);
  }
  to = submesh(out, std::vector<char>(out.triangles.size(), 1));  // without the shared faces' lone vertices
}

}  // namespace

namespace stages {

Mesh split_off_pieces(Mesh& m, const Sections& s) {
  const std::vector<char> keep = kept_faces(m, s);
  std::vector<char> off(keep.size());
  for (std::size_t f = 0; f < keep.size(); ++f) off[f] = !keep[f];
  Mesh rest = submesh(m, off);
  if (!rest.triangles.empty()) m = submesh(m, keep);
  return rest;
}

double keep_largest_piece(Mesh& m, const Sections& s) { return pieces_volume(split_off_pieces(m, s)); }

double give_pieces(Mesh& to, Mesh& pieces) {
  if (pieces.triangles.empty()) return 0;
  snap_onto(to, pieces, 1e-9);
  Neighbourhood n = neighbourhood(to, pieces);
  const std::vector<std::size_t> label = face_components(pieces);
  std::map<std::size_t, std::vector<std::size_t>> faces_of;
  for (std::size_t f = 0; f < label.size(); ++f) faces_of[label[f]].push_back(f);
  const std::map<std::size_t, double> vol = piece_volumes(pieces, label);
  std::vector<char> gone_to(to.triangles.size(), 0), shared(pieces.triangles.size(), 0), given(pieces.triangles.size(), 0);
  std::vector<std::size_t> all_given;
  std::unordered_set<std::int32_t> all_corners;
  double volume = 0;
  for (const auto& [l, faces] : faces_of) {
    if (vol.at(l) <= 0) continue;  // a bubble of the cavity: filled
    std::vector<std::size_t> mine;  // the faces of `to` this piece lies against
    std::unordered_set<std::int32_t> corner;
    for (std::size_t f : faces)
      if (const auto it = n.face.find(sorted_corners(pieces, pieces.triangles[f]));
          it != n.face.end() && !gone_to[it->second] && opposite(to, to.triangles[it->second], pieces, pieces.triangles[f]))
        mine.push_back(it->second), shared[f] = gone_to[it->second] = 1;
    for (std::size_t f : faces)  // every vertex the piece has in common with `to`
      for (std::int32_t v : pieces.triangles[f])
        if (const auto it = n.vertex.find(pieces.vertices[static_cast<std::size_t>(v)]); it != n.vertex.end()) corner.insert(it->second);
    if (!mine.empty() && closed_around(to, corner, gone_to, pieces, faces, shared, n)) {
      for (std::size_t f : faces) given[f] = 1, all_given.push_back(f);
      all_corners.insert(corner.begin(), corner.end());
      volume += vol.at(l);
      continue;
    }
    for (std::size_t tf : mine) gone_to[tf] = 0;
    for (std::size_t f : faces) shared[f] = 0;
  }
  // Pieces meeting at a corner were each checked alone: the whole is checked once more.
  if (volume == 0 || !closed_around(to, all_corners, gone_to, pieces, all_given, shared, n)) return 0;
  std::vector<char> joins(pieces.triangles.size(), 0);
  for (std::size_t f : all_given) joins[f] = !shared[f];
  join(to, pieces, gone_to, joins, n);
  for (auto& g : given) g = !g;
  pieces = submesh(pieces, given);
  return volume;
}

double pieces_volume(const Mesh& pieces) {
  double sum = 0;
  for (const auto& [label, v] : piece_volumes(pieces, face_components(pieces))) sum += std::abs(v);
  return sum;
}

}  // namespace stages

}  // namespace tracecast::print
