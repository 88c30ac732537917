// Internal: booleans on closed meshes (cgal_boolean.cpp).
#pragma once

#include <optional>

#include "tracecast/mesh/mesh.h"

namespace tracecast::print::detail {

enum class BooleanOp { Union, Difference, Intersection };

//! a ∪ b, a − b or a ∩ b; both closed, outward, free of self-intersections. Throws
//! ProcessingError naming `what` if CGAL cannot build a valid result. `local`: when b is small
//! next to a (a key, a drill, a cutter), only a's faces within b's box enter the exact
//! corefinement; the result is the same surface (false: always the whole of both).
Mesh boolean(const Mesh& a, const Mesh& b, BooleanOp op, const char* what, bool local = true);

//! a ∩ b and a − b from one corefinement (b: a cutter such as a half-space's box).
void split(const Mesh& a, const Mesh& b, Mesh& inside, Mesh& outside, const char* what, bool local = true);

//! Merges vertices closer than eps and drops the faces that collapse (and CGAL's degenerate-face
//! repair after it), keeping the surface closed: removes the slivers a boolean can leave.
Mesh remove_slivers(const Mesh& m, double eps);
//! remove_slivers, or nullopt when the weld leaves a surface that is not closed and manifold
//! (points of two sheets apart welded together): found by measuring the welded faces, before any
//! halfedge mesh is built or a soup oriented.
std::optional<Mesh> remove_slivers_if_closed(const Mesh& m, double eps);
//! Flips away caps (a corner wider than `max_angle_deg`) and collapses needles (longest edge over
//! `max_aspect` times the shortest, shortest under `collapse_mm`): the near-degenerate triangles
//! that rounding to single precision would turn over.
Mesh remove_near_degenerate(const Mesh& m, double max_angle_deg, double max_aspect, double collapse_mm);

}  // namespace tracecast::print::detail
