// What a mesh is: counts, closedness, manifoldness, genus, area, volume, self-intersections.
//
// Works on any triangle soup (non-manifold, open, inconsistently oriented); every figure is
// exact combinatorics or a plain sum, except self-intersections, which use exact predicates.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

#include "tracecast/mesh/mesh.h"

namespace tracecast {

struct MeasureOptions {
  bool self_intersections = true;  //!< the slowest figure (≈1 s per 100 k faces)
};

struct MeshInfo {
  std::size_t vertices = 0;
  std::size_t triangles = 0;
  std::size_t unreferenced_vertices = 0;  //!< vertices no triangle uses
  std::size_t degenerate_triangles = 0;   //!< repeated corner or zero area
  std::size_t duplicate_triangles = 0;    //!< same three vertices as an earlier triangle
  Aabb box;                               //!< mm

  std::size_t components = 0;        //!< connected by shared vertices
  std::size_t edges = 0;             //!< undirected edges of non-degenerate triangles
  std::size_t boundary_edges = 0;    //!< used by one triangle
  std::size_t non_manifold_edges = 0;   //!< used by more than two triangles
  std::size_t boundary_loops = 0;       //!< connected chains of boundary edges
  std::size_t non_manifold_vertices = 0;  //!< whose triangles form more than one fan
  std::size_t inconsistent_edges = 0;   //!< two triangles traverse the edge the same way
  bool edge_manifold = false;
  bool vertex_manifold = false;
  bool oriented = false;     //!< every interior edge is traversed once each way
  bool watertight = false;   //!< no boundary edges, edge-manifold, oriented
  int euler_characteristic = 0;
  std::optional<int> genus;  //!< sum over components; only for manifold, oriented meshes

  double area_mm2 = 0;
  std::optional<double> volume_mm3;  //!< only when watertight; positive when faces point outward
  std::optional<std::size_t> self_intersecting_pairs;  //!< pairs of triangles that cross
};

MeshInfo measure(const Mesh& mesh, const MeasureOptions& options = {});
//! `tracecast info`'s figures for a mesh (counts, topology, area, volume; null where not measured).
void to_json(nlohmann::json& j, const MeshInfo& m);

//! Pairs of non-adjacent triangles that intersect, plus adjacent ones that overlap beyond their
//! shared corner or edge (exact predicates; degenerate triangles skipped). Runs on soups.
std::size_t count_self_intersections(const Mesh& mesh);
//! The same test, returning the intersecting pairs (indices into mesh.triangles, first < second,
//! sorted). With `only` (one flag per triangle), only pairs with at least one flagged triangle are
//! tested: after a local change, the triangles it touched against all others.
std::vector<std::pair<std::size_t, std::size_t>> self_intersecting_pairs(const Mesh& mesh, const std::vector<char>* only = nullptr);

}  // namespace tracecast
