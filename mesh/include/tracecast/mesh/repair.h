// Repair of scanned surfaces: what a scan needs before it can become an appliance.
//
// Steps, each counted in the report: weld identical vertices; drop degenerate and duplicate faces;
// make the surface manifold (vertices shared by separate fans are split) and consistently oriented
// (outward for closed surfaces); drop small pieces; fill holes up to a size with a fair patch
// (CGAL's triangulate, refine and fair: curvature-continuous with the surrounding surface) and
// report the larger ones instead of inventing surface; optionally remesh isotropically to an edge
// length and smooth (Taubin, which does not shrink). The report ends with the distances between
// input and output.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/mesh.h"
#include "tracecast/mesh/options.h"
#include "tracecast/mesh/step_timer.h"

namespace tracecast {

struct RepairOptions {
  double max_hole_mm = 25.0;        //!< fill holes no wider than this (largest extent of the boundary); 0: none
  double min_piece_fraction = 0.01; //!< drop pieces with fewer faces than this share of the largest
  double remesh_edge_mm = 0;        //!< isotropic remeshing to this edge length (0: off)
  int remesh_iterations = 3;
  int smooth_iterations = 0;        //!< Taubin smoothing passes (0: off)
  std::size_t decimate_faces = 0;   //!< quadric decimation to this many faces, last (0: off)
  bool fix_self_intersections = true;  //!< find crossing faces (exact predicates) and repair them
};

struct Hole {
  double size_mm = 0;       //!< largest extent of its boundary's bounding box
  std::size_t edges = 0;
  bool filled = false;
  bool faired = false;      //!< the patch was faired (curvature-continuous); false: the refined
                            //!< triangulation was kept because fairing failed or ran away
};

struct RepairReport {
  std::size_t vertices_in = 0, faces_in = 0;
  std::size_t welded_vertices = 0;
  std::size_t degenerate_faces = 0, duplicate_faces = 0;
  std::size_t split_vertices = 0;   //!< duplicated to make the surface manifold
  bool reoriented = false;          //!< faces flipped for a consistent orientation
  bool flipped_outward = false;     //!< the surface faced inward and was turned outward
  std::size_t removed_pieces = 0, removed_piece_faces = 0;
  std::size_t self_intersections_found = 0;  //!< pairs of crossing faces before the fix
  std::size_t self_intersections_left = 0;   //!< after it, and after remeshing, smoothing, decimating (0 unless CGAL's repair gave up)
  //! pairs of crossing faces that remeshing, smoothing or decimating made (where the surface is
  //! thinner than about an edge), found and repaired as those before
  std::size_t self_intersections_made = 0;
  std::vector<Hole> holes;          //!< every hole found, filled or not
  std::size_t vertices_out = 0, faces_out = 0;
  DistanceStats input_to_output;    //!< from the input's vertices to the repaired surface (mm)
  DistanceStats output_to_input;    //!< from the repaired surface's vertices to the input (mm), hole patches excluded
  Timings timings;                  //!< seconds per step
};
//! The repair report (docs/formats.md: in, fixed, holes, out, distance_mm, timings_s).
void to_json(nlohmann::json& j, const RepairReport& r);

//! `tracecast repair`'s options: flags, report, docs.
const OptionTable<RepairOptions>& repair_option_table();

//! Throws InputError if the mesh has no usable faces.
Mesh repair(const Mesh& mesh, const RepairOptions& options = {}, RepairReport* report = nullptr);

//! The triangle soup made manifold and consistently oriented (degenerate faces dropped,
//! non-manifold vertices and edges split by duplicating vertices); nothing else changes.
Mesh make_manifold(const Mesh& mesh);

//! Fills the holes whose border passes through one of the points given (each hole with a refined,
//! faired patch, as repair() fills a scan's holes); the other holes stay open. Returns the mesh and
//! how many holes were filled.
std::pair<Mesh, std::size_t> fill_holes_through(const Mesh& mesh, const std::vector<Vec3>& on_border);

//! Isotropic remeshing (CGAL) of any triangle mesh to the given edge length (mm); boundaries
//! are remeshed too and stay boundaries. A mesh that will have 20,000 faces or more is remeshed in
//! two halves on both cores (half the area each, across its box's longest side), the edges between
//! them held (split alike on both sides, never collapsed, flipped or moved) and joined point for
//! point; deterministic, as the remeshing in one piece is.
Mesh remesh_isotropic(const Mesh& mesh, double edge_mm, int iterations = 3);

//! Quadric-error decimation to at most `faces` triangles (normals dropped); the mesh itself when
//! it has no more than that.
Mesh decimated(const Mesh& mesh, std::size_t faces);
//! Vertex clustering on a grid of `cell_mm` (fast, coarse: for previews and viewers, not for
//! geometry that is measured); normals dropped.
Mesh clustered(const Mesh& mesh, double cell_mm);

}  // namespace tracecast
