// repair(): CGAL's hole filling and isotropic remeshing on a Surface_mesh (its own translation
// unit: these headers take minutes to compile), Open3D's Taubin filter for smoothing.
#include <CGAL/Polygon_mesh_processing/border.h>
#include <CGAL/Polygon_mesh_processing/connected_components.h>
#include <CGAL/Polygon_mesh_processing/fair.h>
#include <CGAL/Polygon_mesh_processing/orientation.h>
#include <CGAL/Polygon_mesh_processing/remesh.h>
#include <CGAL/Polygon_mesh_processing/repair_self_intersections.h>
#include <CGAL/Polygon_mesh_processing/triangulate_hole.h>
#include <open3d/geometry/TriangleMesh.h>

#include <tbb/parallel_invoke.h>

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <unordered_set>

#include "tracecast/mesh/cgal.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/open3d.h"
#include "tracecast/mesh/point_hash.h"
#include "tracecast/mesh/repair.h"
#include "tracecast/mesh/step_timer.h"
#include "tracecast/mesh/submesh.h"

namespace tracecast {

namespace PMP = CGAL::Polygon_mesh_processing;

namespace {

//! Drops faces with repeated corners or no area, then repeated faces (the same three corners).
void drop_degenerate_and_duplicate_faces(Mesh& m, RepairReport& r) {
  std::vector<Tri> kept;
  kept.reserve(m.triangles.size());
  for (const Tri& t : m.triangles) {
    const Vec3 n = (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]);
    if (t[0] == t[1] || t[1] == t[2] || t[0] == t[2] || n.squaredNorm() == 0.0) {
      ++r.degenerate_faces;
      continue;
    }
    kept.push_back(t);
  }
  std::vector<std::size_t> order(kept.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto key = [&](std::size_t i) {
    std::array<std::int32_t, 3> k = kept[i];
    std::sort(k.begin(), k.end());
    return k;
  };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
  std::vector<char> drop(kept.size(), 0);
  for (std::size_t i = 1; i < order.size(); ++i)
    if (key(order[i]) == key(order[i - 1])) {
      drop[order[i]] = 1;
      ++r.duplicate_faces;
    }
  m.triangles.clear();
  for (std::size_t i = 0; i < kept.size(); ++i)
    if (!drop[i]) m.triangles.push_back(kept[i]);
}

//! Removes the connected pieces smaller than min_piece_fraction of the largest.
void drop_small_pieces(cgal::SurfaceMesh& sm, const RepairOptions& o, RepairReport& r) {
  auto fccmap = sm.add_property_map<cgal::SurfaceMesh::Face_index, std::size_t>("f:cc").first;
  const std::size_t n = PMP::connected_components(sm, fccmap);
  std::vector<std::size_t> count(n, 0);
  for (auto f : sm.faces()) ++count[fccmap[f]];
  const std::size_t largest = *std::max_element(count.begin(), count.end());
  const auto threshold = static_cast<std::size_t>(o.min_piece_fraction * static_cast<double>(largest));
  std::vector<std::size_t> remove;
  for (std::size_t c = 0; c < n; ++c)
    if (count[c] < threshold) {
      remove.push_back(c);
      ++r.removed_pieces;
      r.removed_piece_faces += count[c];
    }
  if (!remove.empty()) PMP::remove_connected_components(sm, remove, fccmap);
  sm.remove_property_map(fccmap);
  sm.collect_garbage();
}

//! Self-intersections, counted with exact predicates; the faces involved are removed and the gap
//! re-filled (smoothing first, then local hole filling: CGAL's repair).
//! Returns the pairs left.
std::size_t repair_crossings(cgal::SurfaceMesh& sm) {
  PMP::experimental::remove_self_intersections(sm);
  sm.collect_garbage();
  return count_self_intersections(cgal::from_surface_mesh(sm));
}

void fix_self_intersections(cgal::SurfaceMesh& sm, RepairReport& r) {
  r.self_intersections_found = count_self_intersections(cgal::from_surface_mesh(sm));
  r.self_intersections_left = r.self_intersections_found;
  if (r.self_intersections_found > 0) r.self_intersections_left = repair_crossings(sm);
}

//! Triangulates and refines the hole whose border `h` starts, then fairs it; fairing can diverge
//! on some holes (a spike hundreds of mm long was seen on a thinned-out scan), so a faired patch
//! that leaves the hole's neighbourhood is put back to its refined, unfaired shape.
void fill_hole(cgal::SurfaceMesh& sm, cgal::SurfaceMesh::Halfedge_index h, const CGAL::Bbox_3& box, Hole& hole,
               std::vector<cgal::SurfaceMesh::Vertex_index>& patch_vertices) {
  std::vector<cgal::SurfaceMesh::Face_index> faces;
  std::vector<cgal::SurfaceMesh::Vertex_index> patch;
  PMP::triangulate_and_refine_hole(sm, h, std::back_inserter(faces), std::back_inserter(patch));
  hole.filled = !faces.empty();
  std::vector<cgal::Point> refined;
  for (const auto v : patch) refined.push_back(sm.point(v));
  bool faired = !patch.empty() && PMP::fair(sm, patch, CGAL::parameters::fairing_continuity(2));
  const double slack = 0.5 * hole.size_mm;
  for (const auto v : patch) {
    const cgal::Point& p = sm.point(v);
    if (!(p.x() >= box.xmin() - slack && p.x() <= box.xmax() + slack && p.y() >= box.ymin() - slack && p.y() <= box.ymax() + slack &&
          p.z() >= box.zmin() - slack && p.z() <= box.zmax() + slack))
      faired = false;
  }
  if (!faired)
    for (std::size_t k = 0; k < patch.size(); ++k) sm.point(patch[k]) = refined[k];
  hole.faired = faired || patch.empty();
  patch_vertices.insert(patch_vertices.end(), patch.begin(), patch.end());
}

//! Each border cycle, measured by its bounding box; the small ones filled with a fair patch.
//! Returns the patches' vertices.
//! Remeshing, smoothing and decimating move vertices without looking at the rest of the surface:
//! where it is thinner than about an edge (a mask's lip, a knife rim), faces can end up crossing.
//! Found and repaired as the input's were; `left` is then what remains of both.
void recross(Mesh& out, std::vector<char>& in_patch, RepairReport& r, StepTimer& timer) {
  r.self_intersections_made = count_self_intersections(out);
  if (r.self_intersections_made > 0) {
    cgal::SurfaceMesh sm = cgal::to_surface_mesh(out);
    r.self_intersections_left = repair_crossings(sm);
    out = cgal::from_surface_mesh(sm);
    in_patch.assign(out.vertices.size(), 0);  // faces were replaced: patches can no longer be told apart
  }
  timer.lap("self-intersections-after");
}

std::vector<cgal::SurfaceMesh::Vertex_index> fill_small_holes(cgal::SurfaceMesh& sm, const RepairOptions& o, RepairReport& r) {
  std::vector<cgal::SurfaceMesh::Vertex_index> patch_vertices;
  std::vector<cgal::SurfaceMesh::Halfedge_index> cycles;
  PMP::extract_boundary_cycles(sm, std::back_inserter(cycles));
  for (const auto h : cycles) {
    Hole hole;
    CGAL::Bbox_3 box;
    for (const auto e : CGAL::halfedges_around_face(h, sm)) {
      box += sm.point(sm.source(e)).bbox();
      ++hole.edges;
    }
    hole.size_mm = std::max({box.xmax() - box.xmin(), box.ymax() - box.ymin(), box.zmax() - box.zmin()});
    if (o.max_hole_mm > 0 && hole.size_mm <= o.max_hole_mm) fill_hole(sm, h, box, hole, patch_vertices);
    r.holes.push_back(hole);
  }
  return patch_vertices;
}

//! Outward: the volume enclosed with the vertices' centroid must be positive. For a closed
//! surface that is its volume; for an open face scan the centroid lies behind the face.
void orient_outward(cgal::SurfaceMesh& sm, RepairReport& r) {
  CGAL::Vector_3<cgal::Kernel> sum(0, 0, 0);
  for (const auto v : sm.vertices()) sum = sum + (sm.point(v) - CGAL::ORIGIN);
  const cgal::Point c = CGAL::ORIGIN + sum / static_cast<double>(std::max<std::size_t>(1, sm.number_of_vertices()));
  double six_v = 0;
  for (const auto f : sm.faces()) {
    const auto h = sm.halfedge(f);
    const auto a = sm.point(sm.source(h)) - c, b = sm.point(sm.target(h)) - c, d = sm.point(sm.target(sm.next(h))) - c;
    six_v += CGAL::determinant(a, b, d);
  }
  if (six_v < 0) {
    PMP::reverse_face_orientations(sm);
    r.flipped_outward = true;
  }
}

//! How far the input's vertices lie from the output, and the output's (outside the hole
//! patches) from the input.
void measure_deviation(const Mesh& input, const Mesh& out, const std::vector<char>& in_patch, RepairReport& r) {
  const SurfaceQuery to_out(out);
  std::vector<char> used(input.vertices.size(), 0);
  for (const Tri& t : input.triangles)
    for (std::int32_t v : t) used[static_cast<std::size_t>(v)] = 1;
  std::vector<Vec3> referenced;
  for (std::size_t i = 0; i < input.vertices.size(); ++i)
    if (used[i]) referenced.push_back(input.vertices[i]);
  r.input_to_output = summarize(to_out.distances(referenced));
  const SurfaceQuery to_in(input);
  std::vector<Vec3> original;
  for (std::size_t i = 0; i < out.vertices.size(); ++i)
    if (i >= in_patch.size() || !in_patch[i]) original.push_back(out.vertices[i]);
  r.output_to_input = summarize(to_in.distances(original));
}

//! Remeshing, Taubin smoothing and decimation, as asked; `in_patch` is cleared where the
//! vertices no longer are the ones the patches made. The remeshing is `remesh_isotropic`'s (a
//! large surface in two halves on both cores).
Mesh remesh_smooth_decimate(cgal::SurfaceMesh& sm, const std::vector<cgal::SurfaceMesh::Vertex_index>& patch_vertices, const RepairOptions& o,
                            std::vector<char>& in_patch, StepTimer& timer) {
  // The patch vertices keep their indices through from_surface_mesh (no garbage left to collect);
  // remeshing moves every vertex, so then none is marked.
  sm.collect_garbage();
  Mesh out = cgal::from_surface_mesh(sm);
  in_patch.assign(out.vertices.size(), 0);
  if (o.remesh_edge_mm > 0) {
    out = remesh_isotropic(out, o.remesh_edge_mm, o.remesh_iterations);
    in_patch.assign(out.vertices.size(), 0);
    timer.lap("remesh");
  } else {
    for (const auto v : patch_vertices)
      if (static_cast<std::size_t>(v.idx()) < in_patch.size()) in_patch[v.idx()] = 1;
  }
  if (o.smooth_iterations > 0) {
    auto o3 = to_open3d(out);
    o3 = o3->FilterSmoothTaubin(o.smooth_iterations, 0.5, -0.53);
    out.vertices = o3->vertices_;
    timer.lap("smooth");
  }
  if (o.decimate_faces > 0 && out.triangles.size() > o.decimate_faces) {
    out = decimated(out, o.decimate_faces);
    in_patch.assign(out.vertices.size(), 0);  // vertices are new: patches can no longer be told apart
    timer.lap("decimate");
  }
  return out;
}

}  // namespace

Mesh repair(const Mesh& input, const RepairOptions& o, RepairReport* report_out) {
  RepairReport r;
  StepTimer timer(r.timings);
  validate(input, "mesh to repair");
  throw_problems("repair options", repair_option_table().check(o));
  r.vertices_in = input.vertices.size();
  r.faces_in = input.triangles.size();

  Mesh m = input;
  m.normals.clear();
  m.colors.clear();
  r.welded_vertices = weld_identical_vertices(m);
  drop_degenerate_and_duplicate_faces(m, r);
  if (m.triangles.empty()) throw InputError("mesh to repair has no usable faces");
  timer.lap("clean");

  // Manifold and consistently oriented (CGAL's soup repair), outward when closed.
  cgal::ToSurfaceMeshReport conv;
  cgal::SurfaceMesh sm = cgal::to_surface_mesh(m, &conv);
  r.split_vertices = conv.duplicated_vertices;
  r.reoriented = conv.reoriented;
  timer.lap("orient");
  drop_small_pieces(sm, o, r);
  timer.lap("pieces");
  if (o.fix_self_intersections) {
    fix_self_intersections(sm, r);
    timer.lap("self-intersections");
  }
  const auto patch_vertices = fill_small_holes(sm, o, r);
  timer.lap("holes");
  orient_outward(sm, r);

  std::vector<char> in_patch;
  Mesh out = remesh_smooth_decimate(sm, patch_vertices, o, in_patch, timer);
  const bool reshaped = o.remesh_edge_mm > 0 || o.smooth_iterations > 0 || o.decimate_faces > 0;
  if (o.fix_self_intersections && reshaped) recross(out, in_patch, r, timer);
  r.vertices_out = out.vertices.size();
  r.faces_out = out.triangles.size();
  measure_deviation(input, out, in_patch, r);
  timer.lap("report");
  if (report_out) *report_out = r;
  return out;
}

}  // namespace tracecast

namespace tracecast {

namespace {

using Point = std::array<double, 3>;
Point point_of(const Vec3& v) { return {v.x(), v.y(), v.z()}; }

//! One half of a mesh remeshed, and where its seam lies after: the edges it shares with the other
//! half (`seam`, by their ends' positions) are held, split where long (at their midpoints, as the
//! other half splits them) but never collapsed, flipped or moved.
struct Half {
  Mesh mesh;
  std::set<Point> seam;  //!< the held edges' ends after remeshing
};

Half remeshed_half(const Mesh& half, const std::set<std::pair<Point, Point>>& seam, double edge_mm, int iterations) {
  cgal::SurfaceMesh sm = cgal::to_surface_mesh(half);
  auto held = sm.add_property_map<cgal::SurfaceMesh::Edge_index, bool>("e:held", false).first;
  const auto at = [&](cgal::SurfaceMesh::Vertex_index v) {
    const cgal::SurfaceMesh::Point& p = sm.point(v);
    return Point{p.x(), p.y(), p.z()};
  };
  for (const auto e : edges(sm)) {
    if (!is_border(e, sm)) continue;
    const Point a = at(source(halfedge(e, sm), sm)), b = at(target(halfedge(e, sm), sm));
    held[e] = seam.count({std::min(a, b), std::max(a, b)}) > 0;
  }
  PMP::isotropic_remeshing(faces(sm), edge_mm, sm,
                           CGAL::parameters::number_of_iterations(static_cast<unsigned>(std::max(1, iterations)))
                               .edge_is_constrained_map(held)
                               .collapse_constraints(false));
  sm.collect_garbage();
  Half out;
  for (const auto e : edges(sm))
    if (held[e]) out.seam.insert(at(source(halfedge(e, sm), sm))), out.seam.insert(at(target(halfedge(e, sm), sm)));
  out.mesh = cgal::from_surface_mesh(sm);
  return out;
}

//! The two halves joined along their seam (the second's seam vertices become the first's), or
//! nothing when the seams do not match point for point.
std::optional<Mesh> joined(const Half& a, const Half& b) {
  if (a.seam != b.seam) return std::nullopt;
  std::map<Point, std::int32_t> seam_a;
  for (std::size_t i = 0; i < a.mesh.vertices.size(); ++i)
    if (const Point p = point_of(a.mesh.vertices[i]); a.seam.count(p)) seam_a.emplace(p, static_cast<std::int32_t>(i));
  Mesh out = a.mesh;
  std::vector<std::int32_t> id(b.mesh.vertices.size(), -1);
  for (std::size_t i = 0; i < b.mesh.vertices.size(); ++i) {
    const auto it = seam_a.find(point_of(b.mesh.vertices[i]));
    if (it != seam_a.end()) {
      id[i] = it->second;
    } else {
      id[i] = static_cast<std::int32_t>(out.vertices.size());
      out.vertices.push_back(b.mesh.vertices[i]);
    }
  }
  for (const Tri& t : b.mesh.triangles) out.triangles.push_back({id[static_cast<std::size_t>(t[0])], id[static_cast<std::size_t>(t[1])], id[static_cast<std::size_t>(t[2])]});
  return out;
}

Mesh remeshed_whole(const Mesh& mesh, double edge_mm, int iterations) {
  cgal::SurfaceMesh sm = cgal::to_surface_mesh(mesh);
  PMP::isotropic_remeshing(faces(sm), edge_mm, sm, CGAL::parameters::number_of_iterations(static_cast<unsigned>(std::max(1, iterations))));
  sm.collect_garbage();
  return cgal::from_surface_mesh(sm);
}

//! Per face, its side (0 or 1) of a cut across the box's longest side that leaves half the area on
//! each (so half the remeshed faces).
std::vector<char> sides_by_area(const Mesh& mesh) {
  int axis = 0;
  bounding_box(mesh.vertices).extent().maxCoeff(&axis);
  std::vector<double> centre(mesh.triangles.size()), area(mesh.triangles.size());
  double total = 0;
  for (std::size_t f = 0; f < centre.size(); ++f) {
    const Tri& t = mesh.triangles[f];
    const Vec3 &a = mesh.vertices[t[0]], &b = mesh.vertices[t[1]], &c = mesh.vertices[t[2]];
    centre[f] = a[axis] + b[axis] + c[axis];
    total += area[f] = 0.5 * (b - a).cross(c - a).norm();
  }
  std::vector<std::size_t> order(centre.size());
  for (std::size_t f = 0; f < order.size(); ++f) order[f] = f;
  std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return centre[x] < centre[y] || (centre[x] == centre[y] && x < y); });
  std::vector<char> side(centre.size(), 1);
  double first = 0;
  for (std::size_t k = 0; k < order.size() && first < 0.5 * total; ++k) side[order[k]] = 0, first += area[order[k]];
  return side;
}

//! The edges between faces of different sides, by their ends' positions (lower end first).
std::set<std::pair<Point, Point>> seam_between(const Mesh& mesh, const std::vector<char>& side) {
  std::map<std::pair<std::int32_t, std::int32_t>, int> sides;  // bit 1 << side for each face on the edge
  for (std::size_t f = 0; f < side.size(); ++f)
    for (int k = 0; k < 3; ++k) {
      const std::int32_t u = mesh.triangles[f][k], v = mesh.triangles[f][(k + 1) % 3];
      sides[{std::min(u, v), std::max(u, v)}] |= 1 << side[f];
    }
  std::set<std::pair<Point, Point>> seam;
  for (const auto& [e, bits] : sides)
    if (bits == 3) {
      const Point a = point_of(mesh.vertices[static_cast<std::size_t>(e.first)]), b = point_of(mesh.vertices[static_cast<std::size_t>(e.second)]);
      seam.insert({std::min(a, b), std::max(a, b)});
    }
  return seam;
}

}  // namespace

Mesh remesh_isotropic(const Mesh& mesh, double edge_mm, int iterations) {
  if (!(edge_mm > 0)) throw InputError("remeshing needs a positive edge length");
  // Under 20,000 faces to come (about 2.3 per edge length squared of surface), in one piece.
  if (2.3 * surface_area(mesh) / (edge_mm * edge_mm) < 20000 || mesh.triangles.size() < 100) return remeshed_whole(mesh, edge_mm, iterations);
  // Else in two halves on both cores; the edges between them are held (split alike on both
  // sides, never collapsed or moved), and the halves joined along them.
  const std::vector<char> side = sides_by_area(mesh);
  const std::set<std::pair<Point, Point>> seam = seam_between(mesh, side);
  std::array<Mesh, 2> half;
  std::array<Half, 2> remeshed;
  for (int k = 0; k < 2; ++k) {
    std::vector<char> keep(side.size());
    for (std::size_t f = 0; f < side.size(); ++f) keep[f] = side[f] == k;
    half[k] = submesh(mesh, keep);
  }
  tbb::parallel_invoke([&] { remeshed[0] = remeshed_half(half[0], seam, edge_mm, iterations); },
                       [&] { remeshed[1] = remeshed_half(half[1], seam, edge_mm, iterations); });
  log_debug("remesh: {} faces in two halves of {} and {}, {} edges between them; {} and {} faces after", mesh.triangles.size(),
            half[0].triangles.size(), half[1].triangles.size(), seam.size(), remeshed[0].mesh.triangles.size(),
            remeshed[1].mesh.triangles.size());
  if (std::optional<Mesh> whole = joined(remeshed[0], remeshed[1])) return std::move(*whole);
  log_debug("remesh: the halves' seams differ ({} and {} points): remeshed in one piece", remeshed[0].seam.size(), remeshed[1].seam.size());
  return remeshed_whole(mesh, edge_mm, iterations);
}

Mesh make_manifold(const Mesh& mesh) { return cgal::from_surface_mesh(cgal::to_surface_mesh(mesh)); }

std::pair<Mesh, std::size_t> fill_holes_through(const Mesh& mesh, const std::vector<Vec3>& on_border) {
  const std::unordered_set<Vec3, PointHash> marked(on_border.begin(), on_border.end());
  cgal::SurfaceMesh sm = cgal::to_surface_mesh(mesh);
  std::vector<cgal::SurfaceMesh::Halfedge_index> cycles;
  PMP::extract_boundary_cycles(sm, std::back_inserter(cycles));
  std::vector<cgal::SurfaceMesh::Vertex_index> patch_vertices;
  std::size_t filled = 0;
  for (const auto h : cycles) {
    Hole hole;
    CGAL::Bbox_3 box;
    bool through = false;
    for (const auto e : CGAL::halfedges_around_face(h, sm)) {
      const cgal::Point& q = sm.point(sm.source(e));
      box += q.bbox();
      through = through || marked.count(Vec3(q.x(), q.y(), q.z()));
    }
    if (!through) continue;
    hole.size_mm = std::max({box.xmax() - box.xmin(), box.ymax() - box.ymin(), box.zmax() - box.zmin()});
    fill_hole(sm, h, box, hole, patch_vertices);
    filled += hole.filled;
  }
  return {cgal::from_surface_mesh(sm), filled};
}

}  // namespace tracecast
