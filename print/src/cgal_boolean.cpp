// Booleans on closed triangle meshes with CGAL's corefinement, never Nef polyhedra; the print
// module's one CGAL translation unit. The corefinement runs with exact constructions (EPECK):
// with rounded constructions, the intersection points of nearly tangent surfaces (a parting
// surface grazing an appliance's thin rim) come out on the wrong side and the result crosses
// itself. Only the final coordinates are rounded to doubles.
#include <CGAL/Exact_predicates_exact_constructions_kernel.h>
#include <CGAL/Polygon_mesh_processing/corefinement.h>
#include <CGAL/Polygon_mesh_processing/repair_degeneracies.h>
#include <CGAL/Surface_mesh.h>
#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cmath>

#include "boolean.h"
#include "tracecast/mesh/cgal.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/submesh.h"

namespace tracecast::print::detail {

namespace PMP = CGAL::Polygon_mesh_processing;
using EK = CGAL::Exact_predicates_exact_constructions_kernel;
using ExactMesh = CGAL::Surface_mesh<EK::Point_3>;

namespace {

ExactMesh to_exact(const Mesh& m) {
  ExactMesh out;
  std::vector<ExactMesh::Vertex_index> v;
  v.reserve(m.vertices.size());
  for (const Vec3& p : m.vertices) v.push_back(out.add_vertex(EK::Point_3(p.x(), p.y(), p.z())));
  for (const Tri& t : m.triangles)
    if (out.add_face(v[static_cast<std::size_t>(t[0])], v[static_cast<std::size_t>(t[1])], v[static_cast<std::size_t>(t[2])]) ==
        ExactMesh::null_face())
      throw ProcessingError("mold: a part to combine is not a manifold surface");
  return out;
}

Mesh from_exact(const ExactMesh& sm) {
  Mesh m;
  std::vector<std::int32_t> index(sm.number_of_vertices() + sm.number_of_removed_vertices(), -1);
  for (const auto v : sm.vertices()) {
    index[v.idx()] = static_cast<std::int32_t>(m.vertices.size());
    const EK::Point_3& p = sm.point(v);
    m.vertices.emplace_back(CGAL::to_double(p.x()), CGAL::to_double(p.y()), CGAL::to_double(p.z()));
  }
  for (const auto f : sm.faces()) {
    Tri t{};
    int k = 0;
    for (const auto v : CGAL::vertices_around_face(sm.halfedge(f), sm)) {
      if (k == 3) throw ProcessingError("mold: a boolean produced a face that is not a triangle");
      t[k++] = index[v.idx()];
    }
    if (k != 3) throw ProcessingError("mold: a boolean produced a face that is not a triangle");
    m.triangles.push_back(t);
  }
  return m;
}

//! Merges vertices closer than eps (rounding leaves slivers of a few 1e-15 mm²), then drops the
//! faces that collapse and pairs of faces that became each other's reverse.
Mesh weld_close(const Mesh& m, double eps) {
  std::vector<std::int32_t> parent(m.vertices.size());
  for (std::size_t i = 0; i < parent.size(); ++i) parent[i] = static_cast<std::int32_t>(i);
  auto find = [&](std::int32_t x) {
    while (parent[static_cast<std::size_t>(x)] != x) x = parent[static_cast<std::size_t>(x)] = parent[static_cast<std::size_t>(parent[static_cast<std::size_t>(x)])];
    return x;
  };
  // Pairs closer than eps: a sweep over the vertices sorted along an oblique direction (not an
  // axis: a grid's nodes share their x by the hundred), where two points closer than eps are
  // closer than eps too.
  const Vec3 u = Vec3(0.8017, 0.5345, 0.2673).normalized();
  const auto& V = m.vertices;
  std::vector<std::pair<double, std::int32_t>> order(V.size());
  for (std::size_t i = 0; i < V.size(); ++i) order[i] = {u.dot(V[i]), static_cast<std::int32_t>(i)};
  std::sort(order.begin(), order.end());
  for (std::size_t a = 0; a < order.size(); ++a)
    for (std::size_t b = a + 1; b < order.size() && order[b].first - order[a].first < eps; ++b)
      if ((V[static_cast<std::size_t>(order[b].second)] - V[static_cast<std::size_t>(order[a].second)]).norm() < eps) {
        const std::int32_t x = find(order[a].second), y = find(order[b].second);
        if (x != y) parent[static_cast<std::size_t>(std::max(x, y))] = std::min(x, y);
      }
  Mesh out;
  out.vertices = m.vertices;
  std::vector<std::pair<std::array<std::int32_t, 3>, std::size_t>> seen;  // corners sorted, face
  for (const Tri& t : m.triangles) {
    const Tri u{find(t[0]), find(t[1]), find(t[2])};
    if (u[0] == u[1] || u[1] == u[2] || u[0] == u[2]) continue;
    std::array<std::int32_t, 3> sorted = u;
    std::sort(sorted.begin(), sorted.end());
    seen.emplace_back(sorted, out.triangles.size());
    out.triangles.push_back(u);
  }
  std::sort(seen.begin(), seen.end());
  std::vector<char> keep(out.triangles.size(), 1);
  for (std::size_t a = 0; a < seen.size();) {
    std::size_t b = a;
    while (b < seen.size() && seen[b].first == seen[a].first) ++b;
    if (b - a == 2) keep[seen[a].second] = keep[seen[a + 1].second] = 0;  // a collapsed sheet: both sides go
    a = b;
  }
  return submesh(out, keep);
}

}  // namespace

Mesh remove_slivers(const Mesh& m, double eps) {
  cgal::SurfaceMesh sm = cgal::to_surface_mesh(weld_close(m, eps));
  PMP::remove_degenerate_faces(sm);
  sm.collect_garbage();
  return cgal::from_surface_mesh(sm);
}

Mesh remove_near_degenerate(const Mesh& m, double max_angle_deg, double max_aspect, double collapse_mm) {
  cgal::SurfaceMesh sm = cgal::to_surface_mesh(m);
  PMP::experimental::remove_almost_degenerate_faces(sm, std::cos(max_angle_deg * M_PI / 180.0), max_aspect, collapse_mm);
  sm.collect_garbage();
  return cgal::from_surface_mesh(sm);
}

Mesh boolean(const Mesh& a, const Mesh& b, BooleanOp op, const char* what) {
  const auto t0 = std::chrono::steady_clock::now();
  ExactMesh sa = to_exact(a), sb = to_exact(b), out;
  bool ok = false;
  switch (op) {
    case BooleanOp::Union: ok = PMP::corefine_and_compute_union(sa, sb, out); break;
    case BooleanOp::Difference: ok = PMP::corefine_and_compute_difference(sa, sb, out); break;
    case BooleanOp::Intersection: ok = PMP::corefine_and_compute_intersection(sa, sb, out); break;
  }
  if (!ok) throw ProcessingError(fmt::format("mold: the boolean for {} failed (CGAL could not build a valid result)", what));

  // Rounding the exact result to doubles can flatten a sliver into a degenerate face; CGAL's
  // repair collapses those (exact predicates) so that the surface stays closed and manifold.
  Mesh result = remove_slivers(from_exact(out), 1e-6);
  log_debug("boolean: {} ({} and {} faces) in {:.2f} s", what, a.triangles.size(), b.triangles.size(),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return result;
}

void split(const Mesh& a, const Mesh& b, Mesh& inside, Mesh& outside, const char* what) {
  const auto t0 = std::chrono::steady_clock::now();
  ExactMesh sa = to_exact(a), sb = to_exact(b), in, out;
  const std::array<boost::optional<ExactMesh*>, 4> outputs = {boost::none, &in, &out, boost::none};
  const std::array<bool, 4> ok = PMP::corefine_and_compute_boolean_operations(sa, sb, outputs);
  if (!ok[PMP::Corefinement::INTERSECTION] || !ok[PMP::Corefinement::TM1_MINUS_TM2])
    throw ProcessingError(fmt::format("mold: cutting {} failed (CGAL could not build a valid result)", what));
  inside = remove_slivers(from_exact(in), 1e-6);
  outside = remove_slivers(from_exact(out), 1e-6);
  log_debug("split: {} ({} and {} faces) in {:.2f} s", what, a.triangles.size(), b.triangles.size(),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace tracecast::print::detail
