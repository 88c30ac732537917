// Conversions between tracecast::Mesh and CGAL's Surface_mesh (exact-predicates kernel).
//
// Include this only from .cpp files that already use CGAL (CGAL headers cost minutes of
// compile time each): stage libraries wrap every CGAL algorithm behind a plain function on
// tracecast::Mesh, so no public header of theirs mentions CGAL.
#pragma once

#include <CGAL/Exact_predicates_inexact_constructions_kernel.h>
#include <CGAL/Surface_mesh.h>

#include <optional>

#include "tracecast/mesh/mesh.h"

namespace tracecast::cgal {

using Kernel = CGAL::Exact_predicates_inexact_constructions_kernel;
using Point = Kernel::Point_3;
using SurfaceMesh = CGAL::Surface_mesh<Point>;

struct ToSurfaceMeshReport {
  std::size_t duplicated_vertices = 0;  //!< added to make non-manifold vertices and edges manifold
  std::size_t dropped_faces = 0;        //!< degenerate (repeated corner) faces left out
  bool reoriented = false;              //!< some faces were flipped to orient the soup consistently
  bool as_soup = false;                 //!< oriented as a polygon soup (slower): not a closed, oriented mesh up to pinched vertices
};

//! Builds a halfedge mesh from any triangle soup: degenerate faces are dropped, the soup is
//! oriented consistently, and non-manifold vertices/edges are split by duplicating vertices
//! (CGAL's soup repair), all reported. Vertex i of a manifold input stays vertex i.
SurfaceMesh to_surface_mesh(const Mesh& mesh, ToSurfaceMeshReport* report = nullptr);

//! The first, fast half of to_surface_mesh: the mesh when it is a consistently oriented manifold
//! up to pinched vertices (each fan then gets its own copy); nullopt when it would need orienting
//! as a soup (a non-manifold edge, faces turned against their neighbours).
std::optional<SurfaceMesh> to_manifold_surface_mesh(const Mesh& mesh, ToSurfaceMeshReport* report = nullptr);

//! Vertices in index order (garbage-collected first if needed) and triangular faces.
//! Throws ProcessingError if a face is not a triangle.
Mesh from_surface_mesh(const SurfaceMesh& sm);

}  // namespace tracecast::cgal
