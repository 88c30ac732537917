#include "tracecast/mesh/measure.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <numeric>

namespace tracecast {

namespace {

struct UnionFind {
  std::vector<std::uint32_t> parent;
  explicit UnionFind(std::size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0u); }
  std::uint32_t find(std::uint32_t x) {
    while (parent[x] != x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  }
  void unite(std::uint32_t a, std::uint32_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
};

struct HalfEdge {
  std::uint64_t key;     // undirected: min << 32 | max
  std::uint32_t face;
  std::uint8_t corner;   // the edge runs from corner to corner+1
  bool forward;          // runs min -> max
  bool operator<(const HalfEdge& o) const { return key != o.key ? key < o.key : face < o.face; }
};

//! Same three corners as another triangle (in any order).
std::size_t count_duplicate_triangles(const std::vector<Tri>& F) {
  std::vector<std::array<std::int32_t, 3>> sorted;
  sorted.reserve(F.size());
  for (const Tri& t : F) {
    std::array<std::int32_t, 3> s = t;
    std::sort(s.begin(), s.end());
    sorted.push_back(s);
  }
  std::sort(sorted.begin(), sorted.end());
  std::size_t n = 0;
  for (std::size_t i = 1; i < sorted.size(); ++i) n += sorted[i] == sorted[i - 1];
  return n;
}

//! Half-edges of the non-degenerate triangles, sorted so that each undirected edge's are together.
std::vector<HalfEdge> sorted_half_edges(const std::vector<Tri>& F, const std::vector<char>& good) {
  std::vector<HalfEdge> he;
  he.reserve(3 * F.size());
  for (std::size_t f = 0; f < F.size(); ++f) {
    if (!good[f]) continue;
    for (std::uint8_t c = 0; c < 3; ++c) {
      const auto a = static_cast<std::uint32_t>(F[f][c]), b = static_cast<std::uint32_t>(F[f][(c + 1) % 3]);
      const std::uint64_t key = (std::uint64_t(std::min(a, b)) << 32) | std::max(a, b);
      he.push_back({key, static_cast<std::uint32_t>(f), c, a < b});
    }
  }
  std::sort(he.begin(), he.end());
  return he;
}

//! Edges by how many triangles use them (boundary, manifold, more), with the boundary's vertices
//! joined into loops and, across each manifold edge, the corners (face, vertex) it joins.
struct EdgeTopology {
  UnionFind boundary, corners;
  std::vector<char> on_boundary;
  EdgeTopology(std::size_t vertices, std::size_t faces) : boundary(vertices), corners(3 * faces), on_boundary(vertices, 0) {}
};

void classify_edges(const std::vector<Tri>& F, const std::vector<HalfEdge>& he, MeshInfo& info, EdgeTopology& topo) {
  auto corner_of = [&](std::uint32_t f, std::int32_t v) -> std::uint32_t {
    for (std::uint32_t k = 0; k < 3; ++k)
      if (F[f][k] == v) return 3 * f + k;
    return 3 * f;
  };
  for (std::size_t i = 0; i < he.size();) {
    std::size_t j = i;
    while (j < he.size() && he[j].key == he[i].key) ++j;
    const std::size_t n = j - i;
    ++info.edges;
    const auto a = static_cast<std::int32_t>(he[i].key >> 32), b = static_cast<std::int32_t>(he[i].key & 0xffffffffu);
    if (n == 1) {
      ++info.boundary_edges;
      topo.boundary.unite(static_cast<std::uint32_t>(a), static_cast<std::uint32_t>(b));
      topo.on_boundary[static_cast<std::size_t>(a)] = topo.on_boundary[static_cast<std::size_t>(b)] = 1;
    } else if (n == 2) {
      if (he[i].forward == he[i + 1].forward) ++info.inconsistent_edges;
      const std::uint32_t f1 = he[i].face, f2 = he[i + 1].face;
      topo.corners.unite(corner_of(f1, a), corner_of(f2, a));
      topo.corners.unite(corner_of(f1, b), corner_of(f2, b));
    } else {
      ++info.non_manifold_edges;
    }
    i = j;
  }
}

//! Vertices whose corners form more than one group: more than one fan of triangles.
std::size_t count_non_manifold_vertices(const std::vector<Tri>& F, const std::vector<char>& good, std::size_t vertices, UnionFind& corners) {
  std::vector<std::uint32_t> first_group(vertices, UINT32_MAX);
  std::vector<char> bad(vertices, 0);
  for (std::uint32_t f = 0; f < F.size(); ++f) {
    if (!good[f]) continue;
    for (std::uint32_t k = 0; k < 3; ++k) {
      const auto v = static_cast<std::size_t>(F[f][k]);
      const std::uint32_t g = corners.find(3 * f + k);
      if (first_group[v] == UINT32_MAX) first_group[v] = g;
      else if (first_group[v] != g) bad[v] = 1;
    }
  }
  return static_cast<std::size_t>(std::count(bad.begin(), bad.end(), 1));
}

//! How many groups the selected vertices fall into.
std::size_t count_groups(UnionFind& groups, const std::vector<char>& selected) {
  std::vector<char> seen(selected.size(), 0);
  std::size_t n = 0;
  for (std::size_t v = 0; v < selected.size(); ++v) {
    if (!selected[v]) continue;
    const auto r = groups.find(static_cast<std::uint32_t>(v));
    if (!seen[r]) {
      seen[r] = 1;
      ++n;
    }
  }
  return n;
}

//! χ, the genus when the surface is a manifold (χ = Σ (2 − 2gᵢ − bᵢ) over components), and the
//! volume when it is closed.
void euler_genus_volume(const Mesh& mesh, const std::vector<char>& good, MeshInfo& info) {
  const auto& V = mesh.vertices;
  const std::size_t good_faces = static_cast<std::size_t>(std::count(good.begin(), good.end(), 1));
  const std::size_t used_vertices = V.size() - info.unreferenced_vertices;
  info.euler_characteristic =
      static_cast<int>(static_cast<long long>(used_vertices) - static_cast<long long>(info.edges) + static_cast<long long>(good_faces));
  if (info.edge_manifold && info.vertex_manifold && info.oriented && info.degenerate_triangles == 0) {
    const long long twice_g =
        2LL * static_cast<long long>(info.components) - info.euler_characteristic - static_cast<long long>(info.boundary_loops);
    if (twice_g >= 0 && twice_g % 2 == 0) info.genus = static_cast<int>(twice_g / 2);
  }
  if (info.watertight) info.volume_mm3 = signed_volume(mesh);
}

}  // namespace

MeshInfo measure(const Mesh& mesh, const MeasureOptions& options) {
  MeshInfo info;
  const auto& V = mesh.vertices;
  const auto& F = mesh.triangles;
  info.vertices = V.size();
  info.triangles = F.size();
  info.box = bounding_box(mesh);

  std::vector<char> used(V.size(), 0), good(F.size(), 0);
  for (std::size_t f = 0; f < F.size(); ++f) {
    const Tri& t = F[f];
    for (std::int32_t i : t) used[static_cast<std::size_t>(i)] = 1;
    const Vec3 n = (V[t[1]] - V[t[0]]).cross(V[t[2]] - V[t[0]]);
    const double a2 = n.norm();
    info.area_mm2 += 0.5 * a2;
    if (t[0] == t[1] || t[1] == t[2] || t[0] == t[2] || a2 == 0.0) ++info.degenerate_triangles;
    else good[f] = 1;
  }
  info.unreferenced_vertices = static_cast<std::size_t>(std::count(used.begin(), used.end(), 0));
  info.duplicate_triangles = count_duplicate_triangles(F);

  EdgeTopology topo(V.size(), F.size());
  classify_edges(F, sorted_half_edges(F, good), info, topo);
  info.non_manifold_vertices = count_non_manifold_vertices(F, good, V.size(), topo.corners);
  UnionFind components(V.size());
  for (std::size_t f = 0; f < F.size(); ++f) {
    components.unite(static_cast<std::uint32_t>(F[f][0]), static_cast<std::uint32_t>(F[f][1]));
    components.unite(static_cast<std::uint32_t>(F[f][0]), static_cast<std::uint32_t>(F[f][2]));
  }
  info.components = count_groups(components, used);
  info.boundary_loops = count_groups(topo.boundary, topo.on_boundary);
  info.edge_manifold = info.non_manifold_edges == 0;
  info.vertex_manifold = info.non_manifold_vertices == 0;
  info.oriented = info.inconsistent_edges == 0;
  info.watertight = info.boundary_edges == 0 && info.edge_manifold && info.oriented && !F.empty();
  euler_genus_volume(mesh, good, info);
  if (options.self_intersections && !F.empty()) info.self_intersecting_pairs = count_self_intersections(mesh);
  return info;
}

void to_json(nlohmann::json& j, const MeshInfo& m) {
  const auto or_null = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  j = {{"vertices", m.vertices},
       {"faces", m.triangles},
       {"unreferenced_vertices", m.unreferenced_vertices},
       {"degenerate_faces", m.degenerate_triangles},
       {"duplicate_faces", m.duplicate_triangles},
       {"connected_components", m.components},
       {"edges", m.edges},
       {"boundary_edges", m.boundary_edges},
       {"boundary_loops", m.boundary_loops},
       {"non_manifold_edges", m.non_manifold_edges},
       {"non_manifold_vertices", m.non_manifold_vertices},
       {"inconsistently_oriented_edges", m.inconsistent_edges},
       {"edge_manifold", m.edge_manifold},
       {"vertex_manifold", m.vertex_manifold},
       {"oriented", m.oriented},
       {"watertight", m.watertight},
       {"euler_characteristic", m.euler_characteristic},
       {"genus", or_null(m.genus)},
       {"self_intersecting_face_pairs", or_null(m.self_intersecting_pairs)},
       {"area_mm2", m.area_mm2},
       {"volume_mm3", or_null(m.volume_mm3)}};
}

}  // namespace tracecast
