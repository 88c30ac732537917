// The mesh module's CGAL code, kept in one translation unit (CGAL headers take minutes to
// compile): conversions to and from Surface_mesh, the exact-predicate self-intersection test on
// triangle soups.
//
// CGAL 5.5's self_intersections() needs a valid halfedge graph, which a non-manifold scan is not;
// so the broad phase is CGAL's box_intersection_d and the narrow phase its exact do_intersect,
// with adjacency handled as follows: triangles sharing an edge intersect only if they fold onto
// each other (coplanar, third corners on the same side); triangles sharing one corner intersect
// only if an opposite edge of one meets the other.
#include <CGAL/Exact_predicates_inexact_constructions_kernel.h>
#include <CGAL/Polygon_mesh_processing/orient_polygon_soup.h>
#include <CGAL/Polygon_mesh_processing/polygon_soup_to_polygon_mesh.h>
#include <CGAL/box_intersection_d.h>
#include <CGAL/intersections.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_invoke.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <unordered_map>

#include "tracecast/mesh/cgal.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/point_hash.h"

namespace tracecast {

namespace {
using K = CGAL::Exact_predicates_inexact_constructions_kernel;
using P3 = K::Point_3;
using Box = CGAL::Box_intersection_d::Box_with_info_d<double, 3, std::uint32_t>;

bool pair_intersects(const std::array<std::uint32_t, 3>& a, const std::array<std::uint32_t, 3>& b,
                     const std::vector<P3>& P) {
  int shared = 0, ia = -1, ib = -1;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      if (a[i] == b[j]) {
        ++shared;
        ia = i;
        ib = j;
      }
  if (shared == 3) return false;  // duplicate triangle: counted as such elsewhere
  if (shared == 2) {
    // Find the corner of each triangle that is not on the shared edge.
    auto lone = [&](const std::array<std::uint32_t, 3>& t, const std::array<std::uint32_t, 3>& o) {
      for (int i = 0; i < 3; ++i)
        if (t[i] != o[0] && t[i] != o[1] && t[i] != o[2]) return i;
      return 0;
    };
    const int pa = lone(a, b), pb = lone(b, a);
    const P3& e0 = P[a[(pa + 1) % 3]];
    const P3& e1 = P[a[(pa + 2) % 3]];
    const P3& p = P[a[pa]];
    const P3& q = P[b[pb]];
    return CGAL::coplanar(e0, e1, p, q) && CGAL::coplanar_orientation(e0, e1, p, q) == CGAL::POSITIVE;
  }
  const K::Triangle_3 ta(P[a[0]], P[a[1]], P[a[2]]), tb(P[b[0]], P[b[1]], P[b[2]]);
  if (shared == 1) {
    const K::Segment_3 sa(P[a[(ia + 1) % 3]], P[a[(ia + 2) % 3]]), sb(P[b[(ib + 1) % 3]], P[b[(ib + 2) % 3]]);
    return CGAL::do_intersect(sa, tb) || CGAL::do_intersect(sb, ta);
  }
  return CGAL::do_intersect(ta, tb);
}

//! The pairs of overlapping boxes (by their infos), found on both cores: the boxes split at the
//! median of their centres along x, each half against itself, and the boxes of each half that
//! reach across the split against those of the other.
std::vector<std::pair<std::uint32_t, std::uint32_t>> overlapping_boxes(std::vector<Box> boxes) {
  using Pairs = std::vector<std::pair<std::uint32_t, std::uint32_t>>;
  const auto self = [](std::vector<Box>& range, Pairs& out) {
    CGAL::box_self_intersection_d(range.begin(), range.end(), [&](const Box& a, const Box& b) { out.emplace_back(a.info(), b.info()); });
  };
  Pairs all;
  if (boxes.size() < 20000) {  // not worth a second core
    self(boxes, all);
    return all;
  }
  const auto centre = [](const Box& b) { return b.min_coord(0) + b.max_coord(0); };
  const auto mid = boxes.begin() + static_cast<std::ptrdiff_t>(boxes.size() / 2);
  std::nth_element(boxes.begin(), mid, boxes.end(), [&](const Box& a, const Box& b) { return centre(a) < centre(b); });
  std::vector<Box> left(boxes.begin(), mid), right(mid, boxes.end());
  double left_reach = -std::numeric_limits<double>::infinity(), right_reach = std::numeric_limits<double>::infinity();
  for (const Box& b : left) left_reach = std::max(left_reach, b.max_coord(0));
  for (const Box& b : right) right_reach = std::min(right_reach, b.min_coord(0));
  std::vector<Box> left_across, right_across;
  for (const Box& b : left)
    if (b.max_coord(0) >= right_reach) left_across.push_back(b);
  for (const Box& b : right)
    if (b.min_coord(0) <= left_reach) right_across.push_back(b);
  Pairs in_left, in_right, across;
  tbb::parallel_invoke([&] { self(left, in_left); }, [&] { self(right, in_right); },
                       [&] {
                         CGAL::box_intersection_d(left_across.begin(), left_across.end(), right_across.begin(), right_across.end(),
                                                  [&](const Box& a, const Box& b) { across.emplace_back(a.info(), b.info()); });
                       });
  all.reserve(in_left.size() + in_right.size() + across.size());
  for (Pairs* p : {&in_left, &in_right, &across}) all.insert(all.end(), p->begin(), p->end());
  return all;
}

}  // namespace

std::vector<std::pair<std::size_t, std::size_t>> self_intersecting_pairs(const Mesh& mesh, const std::vector<char>* only) {
  // Vertices at the same position are the same corner (split seams are not intersections).
  std::unordered_map<Vec3, std::uint32_t, PointHash> canon;
  canon.reserve(mesh.vertices.size());
  std::vector<std::uint32_t> id(mesh.vertices.size());
  std::vector<P3> P;
  P.reserve(mesh.vertices.size());
  for (std::size_t i = 0; i < mesh.vertices.size(); ++i) {
    const Vec3& v = mesh.vertices[i];
    auto [it, inserted] = canon.emplace(Vec3(v.x() + 0.0, v.y() + 0.0, v.z() + 0.0), static_cast<std::uint32_t>(P.size()));
    if (inserted) P.emplace_back(v.x(), v.y(), v.z());
    id[i] = it->second;
  }
  std::vector<std::array<std::uint32_t, 3>> T;
  std::vector<std::size_t> source;  // index in mesh.triangles
  std::vector<Box> boxes;
  T.reserve(mesh.triangles.size());
  boxes.reserve(mesh.triangles.size());
  for (std::size_t f = 0; f < mesh.triangles.size(); ++f) {
    const Tri& t = mesh.triangles[f];
    const std::array<std::uint32_t, 3> c{id[t[0]], id[t[1]], id[t[2]]};
    if (c[0] == c[1] || c[1] == c[2] || c[0] == c[2] || CGAL::collinear(P[c[0]], P[c[1]], P[c[2]])) continue;
    boxes.emplace_back(P[c[0]].bbox() + P[c[1]].bbox() + P[c[2]].bbox(), static_cast<std::uint32_t>(T.size()));
    T.push_back(c);
    source.push_back(f);
  }
  std::vector<std::pair<std::uint32_t, std::uint32_t>> candidates;
  if (!only) {
    candidates = overlapping_boxes(std::move(boxes));
  } else {
    // The flagged boxes against all: a pair of flagged ones is met twice, a box with itself once.
    std::vector<Box> flagged;
    for (const Box& b : boxes)
      if ((*only)[source[b.info()]]) flagged.push_back(b);
    const auto met = [&](const Box& a, const Box& b) {
      if (a.info() != b.info()) candidates.emplace_back(std::min(a.info(), b.info()), std::max(a.info(), b.info()));
    };
    // A few flagged boxes (a settling's later rounds: 8 of nefertiti's 756,000) are tested against
    // each box directly, without sorting them all (1.4 s).
    if (flagged.size() <= 64) {
      for (const Box& a : flagged)
        for (const Box& b : boxes)
          if (CGAL::do_overlap(a.bbox(), b.bbox())) met(a, b);
    } else {
      CGAL::box_intersection_d(flagged.begin(), flagged.end(), boxes.begin(), boxes.end(), met);
    }
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  }
  std::vector<char> hit(candidates.size(), 0);
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, candidates.size(), 4096), [&](const auto& r) {
    for (std::size_t i = r.begin(); i != r.end(); ++i)
      hit[i] = pair_intersects(T[candidates[i].first], T[candidates[i].second], P);
  });
  std::vector<std::pair<std::size_t, std::size_t>> pairs;
  for (std::size_t i = 0; i < candidates.size(); ++i)
    if (hit[i]) {
      const std::size_t a = source[candidates[i].first], b = source[candidates[i].second];
      pairs.emplace_back(std::min(a, b), std::max(a, b));
    }
  std::sort(pairs.begin(), pairs.end());
  return pairs;
}

std::size_t count_self_intersections(const Mesh& mesh) { return self_intersecting_pairs(mesh).size(); }

}  // namespace tracecast

namespace tracecast::cgal {

namespace {

using SoupFace = std::array<std::size_t, 3>;

//! Builds the mesh face by face as it is (its unused points left out); false when a face cannot be
//! added (a non-manifold edge or vertex, or faces turned against their neighbours).
bool build_as_is(const std::vector<Point>& points, const std::vector<SoupFace>& faces, SurfaceMesh& sm) {
  sm = SurfaceMesh();
  sm.reserve(points.size(), 3 * faces.size() / 2, faces.size());
  std::vector<SurfaceMesh::Vertex_index> vertex(points.size(), SurfaceMesh::null_vertex());
  std::vector<char> used(points.size(), 0);
  for (const auto& f : faces) used[f[0]] = used[f[1]] = used[f[2]] = 1;
  for (std::size_t i = 0; i < points.size(); ++i)
    if (used[i]) vertex[i] = sm.add_vertex(points[i]);
  for (const auto& f : faces)
    if (sm.add_face(vertex[f[0]], vertex[f[1]], vertex[f[2]]) == SurfaceMesh::null_face()) return false;
  return true;
}

//! Gives each fan of faces round a vertex, beyond the first, its own copy of the vertex (a pinch,
//! where two sheets of a closed part touch at one point); returns how many copies were made.
std::size_t split_pinched_vertices(std::vector<Point>& points, std::vector<SoupFace>& faces) {
  const std::size_t n = points.size();
  std::vector<std::size_t> offset(n + 1, 0), around(3 * faces.size());
  for (const auto& f : faces)
    for (std::size_t v : f) ++offset[v + 1];
  for (std::size_t v = 0; v < n; ++v) offset[v + 1] += offset[v];
  std::vector<std::size_t> fill(offset.begin(), offset.end() - 1);
  for (std::size_t f = 0; f < faces.size(); ++f)
    for (std::size_t v : faces[f]) around[fill[v]++] = f;
  std::size_t copies = 0;
  std::vector<std::pair<std::size_t, std::size_t>> by_neighbour;  // (the face's other corner, local face)
  std::vector<std::size_t> parent;
  for (std::size_t v = 0; v < n; ++v) {
    const std::size_t first = offset[v], degree = offset[v + 1] - first;
    if (degree < 2) continue;
    by_neighbour.clear();
    for (std::size_t i = 0; i < degree; ++i)
      for (std::size_t w : faces[around[first + i]])
        if (w != v) by_neighbour.emplace_back(w, i);
    std::sort(by_neighbour.begin(), by_neighbour.end());
    parent.resize(degree);
    for (std::size_t i = 0; i < degree; ++i) parent[i] = i;
    const auto root = [&](std::size_t i) {
      while (parent[i] != i) i = parent[i] = parent[parent[i]];
      return i;
    };
    for (std::size_t i = 1; i < by_neighbour.size(); ++i)  // faces sharing the edge (v, w) are one fan
      if (by_neighbour[i].first == by_neighbour[i - 1].first) parent[root(by_neighbour[i].second)] = root(by_neighbour[i - 1].second);
    std::vector<std::size_t> copy_of(degree, SIZE_MAX);
    const std::size_t kept = root(0);
    for (std::size_t i = 0; i < degree; ++i) {
      const std::size_t r = root(i);
      if (r == kept) continue;
      if (copy_of[r] == SIZE_MAX) {
        copy_of[r] = points.size();
        points.push_back(points[v]);
        ++copies;
      }
      for (std::size_t& c : faces[around[first + i]])
        if (c == v) c = copy_of[r];
    }
  }
  return copies;
}


//! The mesh's points and faces for CGAL, faces with a repeated corner left out (counted in `r`).
void soup_of(const Mesh& mesh, std::vector<Point>& points, std::vector<SoupFace>& faces, ToSurfaceMeshReport& r) {
  points.reserve(mesh.vertices.size());
  for (const Vec3& v : mesh.vertices) points.emplace_back(v.x(), v.y(), v.z());
  faces.reserve(mesh.triangles.size());
  for (const Tri& t : mesh.triangles) {
    if (t[0] == t[1] || t[1] == t[2] || t[0] == t[2]) {
      ++r.dropped_faces;
      continue;
    }
    faces.push_back({static_cast<std::size_t>(t[0]), static_cast<std::size_t>(t[1]), static_cast<std::size_t>(t[2])});
  }
}

//! A consistently oriented manifold (a closed part from a boolean) is built face by face as it
//! is, several times faster than orienting the soup; so is one whose only flaw is a pinched
//! vertex, once each fan has its own copy of it (in about one run in four, a weld of slivers left
//! one in nefertiti's largest section: oriented as a soup, 3.6 s instead of 1.1).
std::optional<SurfaceMesh> as_manifold(const std::vector<Point>& points, const std::vector<SoupFace>& faces, ToSurfaceMeshReport& r) {
  SurfaceMesh sm;
  if (build_as_is(points, faces, sm)) return sm;
  std::vector<Point> split_points = points;
  std::vector<SoupFace> split_faces = faces;
  if (const std::size_t copies = split_pinched_vertices(split_points, split_faces); copies > 0 && build_as_is(split_points, split_faces, sm)) {
    r.duplicated_vertices = copies;
    return sm;
  }
  return std::nullopt;
}

}  // namespace

std::optional<SurfaceMesh> to_manifold_surface_mesh(const Mesh& mesh, ToSurfaceMeshReport* report) {
  ToSurfaceMeshReport r;
  std::vector<Point> points;
  std::vector<SoupFace> faces;
  soup_of(mesh, points, faces, r);
  std::optional<SurfaceMesh> sm = as_manifold(points, faces, r);
  if (report) *report = r;
  return sm;
}

SurfaceMesh to_surface_mesh(const Mesh& mesh, ToSurfaceMeshReport* report) {
  ToSurfaceMeshReport r;
  std::vector<Point> points;
  std::vector<SoupFace> faces;
  soup_of(mesh, points, faces, r);
  if (std::optional<SurfaceMesh> sm = as_manifold(points, faces, r)) {
    if (report) *report = r;
    return std::move(*sm);
  }
  // Anything else is oriented first, duplicating vertices where it cannot be made manifold.
  r.as_soup = true;
  const std::size_t before = points.size();
  const auto original = faces;
  CGAL::Polygon_mesh_processing::orient_polygon_soup(points, faces);
  r.duplicated_vertices = points.size() - before;
  for (std::size_t f = 0; f < faces.size() && !r.reoriented; ++f) {
    // A flipped face keeps its corner set but reverses the cyclic order.
    const auto& a = original[f];
    const auto& b = faces[f];
    for (int k = 0; k < 3; ++k)
      if (a[0] == b[k] && a[1] == b[(k + 2) % 3]) r.reoriented = true;
  }
  SurfaceMesh sm;
  CGAL::Polygon_mesh_processing::polygon_soup_to_polygon_mesh(points, faces, sm);
  if (report) *report = r;
  return sm;
}

Mesh from_surface_mesh(const SurfaceMesh& input) {
  const SurfaceMesh* sm = &input;
  SurfaceMesh compacted;
  if (input.has_garbage()) {
    compacted = input;
    compacted.collect_garbage();
    sm = &compacted;
  }
  Mesh m;
  m.vertices.reserve(sm->number_of_vertices());
  for (const auto v : sm->vertices()) {
    const Point& p = sm->point(v);
    m.vertices.emplace_back(p.x(), p.y(), p.z());
  }
  m.triangles.reserve(sm->number_of_faces());
  for (const auto f : sm->faces()) {
    Tri t{};
    int k = 0;
    for (const auto v : CGAL::vertices_around_face(sm->halfedge(f), *sm)) {
      if (k == 3) throw ProcessingError("CGAL mesh has a face that is not a triangle");
      t[k++] = static_cast<std::int32_t>(v.idx());
    }
    if (k != 3) throw ProcessingError("CGAL mesh has a face that is not a triangle");
    m.triangles.push_back(t);
  }
  return m;
}

}  // namespace tracecast::cgal

