// Booleans on closed triangle meshes with CGAL's corefinement (exact predicates, never Nef
// polyhedra); the print module's one CGAL translation unit.
#include <CGAL/Polygon_mesh_processing/corefinement.h>
#include <fmt/format.h>

#include "boolean.h"
#include "tracecast/mesh/cgal.h"
#include "tracecast/mesh/errors.h"

namespace tracecast::print::detail {

namespace PMP = CGAL::Polygon_mesh_processing;

Mesh boolean(const Mesh& a, const Mesh& b, BooleanOp op, const char* what) {
  cgal::SurfaceMesh sa = cgal::to_surface_mesh(a), sb = cgal::to_surface_mesh(b), out;
  bool ok = false;
  switch (op) {
    case BooleanOp::Union: ok = PMP::corefine_and_compute_union(sa, sb, out); break;
    case BooleanOp::Difference: ok = PMP::corefine_and_compute_difference(sa, sb, out); break;
    case BooleanOp::Intersection: ok = PMP::corefine_and_compute_intersection(sa, sb, out); break;
  }
  if (!ok) throw ProcessingError(fmt::format("mold: the boolean for {} failed (CGAL could not build a valid result)", what));
  return cgal::from_surface_mesh(out);
}

}  // namespace tracecast::print::detail
