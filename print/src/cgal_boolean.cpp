// Booleans on closed triangle meshes with CGAL's corefinement, never Nef polyhedra; the print
// module's one CGAL translation unit. The corefinement runs with exact constructions (EPECK):
// with rounded constructions, the intersection points of nearly tangent surfaces (a parting
// surface grazing an appliance's thin rim) come out on the wrong side and the result crosses
// itself. Only the final coordinates are rounded to doubles.
#include <CGAL/Exact_predicates_exact_constructions_kernel.h>
#include <CGAL/Polygon_mesh_processing/connected_components.h>
#include <CGAL/Polygon_mesh_processing/corefinement.h>
#include <CGAL/Polygon_mesh_processing/repair_degeneracies.h>
#include <CGAL/Surface_mesh.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <unordered_map>

#include "boolean.h"
#include "tracecast/mesh/box_grid.h"
#include "tracecast/mesh/cgal.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/point_hash.h"
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
    const Tri w{find(t[0]), find(t[1]), find(t[2])};
    if (w[0] == w[1] || w[1] == w[2] || w[0] == w[2]) continue;
    std::array<std::int32_t, 3> sorted = w;
    std::sort(sorted.begin(), sorted.end());
    seen.emplace_back(sorted, out.triangles.size());
    out.triangles.push_back(w);
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

//! Whether the ray from p along d crosses triangle t: 1 through its inside, 0 not at all, -1 when
//! it is not clean (p on the surface, or the ray through an edge or a corner).
int ray_hits(const Mesh& m, const Tri& t, const Vec3& d, const Vec3& p) {
  const Vec3 &a = m.vertices[static_cast<std::size_t>(t[0])], &b = m.vertices[static_cast<std::size_t>(t[1])],
             &c = m.vertices[static_cast<std::size_t>(t[2])];
  const Vec3 e1 = b - a, e2 = c - a, q = d.cross(e2);
  const double det = e1.dot(q);
  if (std::abs(det) < 1e-14 * e1.norm() * e2.norm()) return 0;  // parallel to the ray
  const Vec3 s = p - a;
  const double u = s.dot(q) / det;
  if (u < -1e-9 || u > 1 + 1e-9) return 0;
  const Vec3 r = s.cross(e1);
  const double v = d.dot(r) / det;
  if (v < -1e-9 || u + v > 1 + 1e-9) return 0;
  const double t_hit = e2.dot(r) / det;
  if (t_hit < -1e-9) return 0;
  if (t_hit < 1e-7 || u < 1e-9 || v < 1e-9 || u + v > 1 - 1e-9) return -1;
  return 1;
}

//! Whether points lie inside a closed mesh, by the parity of a ray's crossings; nullopt when no
//! ray of three leaves p cleanly (p on the surface, or every ray through an edge or a corner).
//! Each ray direction has a grid of the faces' shadows across it, built when first needed, so
//! that a ray is tested only against the faces whose shadow holds its origin: the same answers as
//! testing every face, at a few dozen tests a ray.
class ParityTest {
 public:
  explicit ParityTest(const Mesh& m) : m_(m) {}

  std::optional<bool> inside(const Vec3& p) {
    // The first rays test every face: a grid costs about as much as a few dozen such rays.
    const bool use_grid = ++queries_ > 32;
    for (std::size_t k = 0; k < 3; ++k) {
      if (use_grid && !grids_[k]) grids_[k] = std::make_unique<Grid>(m_, kDirs()[k]);
      const std::optional<int> crossings = use_grid ? grids_[k]->crossings(m_, p) : every_face(kDirs()[k], p);
      if (crossings) return *crossings % 2 == 1;
    }
    return std::nullopt;
  }

 private:
  static const std::array<Vec3, 3>& kDirs() {
    static const std::array<Vec3, 3> d = {Vec3(0.5773, 0.6421, 0.5043).normalized(), Vec3(-0.3127, 0.8311, -0.4597).normalized(),
                                          Vec3(0.7129, -0.2477, -0.6561).normalized()};
    return d;
  }

  //! The faces' shadows on the plane across d, in cells (a face in every cell its padded shadow
  //! box touches).
  struct Grid {
    Vec3 d, u, w;
    double u0 = 0, w0 = 0, cell = 1;
    int nu = 1, nw = 1;
    std::vector<std::uint32_t> start, faces;  // faces of cell c: faces[start[c] .. start[c + 1])

    Grid(const Mesh& m, const Vec3& dir) : d(dir) {
      u = (std::abs(d.x()) < 0.9 ? Vec3::UnitX() : Vec3::UnitY()).cross(d).normalized();
      w = d.cross(u);
      std::vector<std::array<double, 4>> box(m.triangles.size());  // u min, u max, w min, w max
      double umin = 1e300, umax = -1e300, wmin = 1e300, wmax = -1e300;
      for (std::size_t f = 0; f < m.triangles.size(); ++f) {
        std::array<double, 4> b{1e300, -1e300, 1e300, -1e300};
        for (std::int32_t v : m.triangles[f]) {
          const Vec3& q = m.vertices[static_cast<std::size_t>(v)];
          b[0] = std::min(b[0], q.dot(u)), b[1] = std::max(b[1], q.dot(u));
          b[2] = std::min(b[2], q.dot(w)), b[3] = std::max(b[3], q.dot(w));
        }
        const double pad = 1e-6 + 1e-6 * std::max(b[1] - b[0], b[3] - b[2]);  // beyond the tests' tolerances
        b = {b[0] - pad, b[1] + pad, b[2] - pad, b[3] + pad};
        box[f] = b;
        umin = std::min(umin, b[0]), umax = std::max(umax, b[1]), wmin = std::min(wmin, b[2]), wmax = std::max(wmax, b[3]);
      }
      if (m.triangles.empty()) return;
      const double side = std::max(umax - umin, wmax - wmin);
      const int n = std::clamp(static_cast<int>(std::sqrt(static_cast<double>(m.triangles.size()))), 1, 2048);
      cell = std::max(side / n, 1e-9);
      u0 = umin, w0 = wmin;
      nu = std::max(1, static_cast<int>((umax - umin) / cell) + 1), nw = std::max(1, static_cast<int>((wmax - wmin) / cell) + 1);
      std::vector<std::uint32_t> count(static_cast<std::size_t>(nu) * nw + 1, 0);
      const auto each_cell = [&](const std::array<double, 4>& b, auto&& fn) {
        const int i0 = cu(b[0]), i1 = cu(b[1]), j0 = cw(b[2]), j1 = cw(b[3]);
        for (int j = j0; j <= j1; ++j)
          for (int i = i0; i <= i1; ++i) fn(static_cast<std::size_t>(j) * nu + i);
      };
      for (const auto& b : box) each_cell(b, [&](std::size_t c) { ++count[c + 1]; });
      for (std::size_t c = 1; c < count.size(); ++c) count[c] += count[c - 1];
      start = count;
      faces.resize(count.back());
      for (std::size_t f = 0; f < box.size(); ++f) each_cell(box[f], [&](std::size_t c) { faces[count[c]++] = static_cast<std::uint32_t>(f); });
    }
    int cu(double x) const { return std::clamp(static_cast<int>((x - u0) / cell), 0, nu - 1); }
    int cw(double x) const { return std::clamp(static_cast<int>((x - w0) / cell), 0, nw - 1); }

    //! The ray's crossings from p along d; nullopt when it is not clean.
    std::optional<int> crossings(const Mesh& m, const Vec3& p) const {
      if (faces.empty()) return 0;
      const double pu = p.dot(u), pw = p.dot(w);
      if (pu < u0 || pw < w0 || pu > u0 + nu * cell || pw > w0 + nw * cell) return 0;  // no shadow holds it
      const std::size_t c = static_cast<std::size_t>(cw(pw)) * nu + cu(pu);
      int n = 0;
      for (std::uint32_t k = start[c]; k < start[c + 1]; ++k) {
        const int hit = ray_hits(m, m.triangles[faces[k]], d, p);
        if (hit < 0) return std::nullopt;
        n += hit;
      }
      return n;
    }
  };

  //! The ray's crossings from p along d, testing every face.
  std::optional<int> every_face(const Vec3& d, const Vec3& p) const {
    int n = 0;
    for (const Tri& t : m_.triangles) {
      const int hit = ray_hits(m_, t, d, p);
      if (hit < 0) return std::nullopt;
      n += hit;
    }
    return n;
  }

  const Mesh& m_;
  std::size_t queries_ = 0;
  std::array<std::unique_ptr<Grid>, 3> grids_;
};

//! Vertex indices by their exact double coordinates.
using PointIndex = std::unordered_map<Vec3, std::int32_t, PointHash>;

//! The two meshes' faces, cut along where they cross, on one vertex list, sorted by side.
struct Pieces {
  std::vector<Vec3> vertices;
  std::vector<Tri> a_in, a_out, b_in, b_out;  //!< a's faces inside and outside b; b's inside and outside a
};

//! Side of each component of `sm` (faces joined across edges that are not on the crossing) with
//! respect to the closed mesh `other`: its largest face's centre, tested by rays. False when a
//! component's side cannot be told (it lies on `other`'s surface).
bool component_sides(const ExactMesh& sm, const ExactMesh::Property_map<ExactMesh::Edge_index, bool>& crossing, ParityTest& other,
                     std::vector<char>& side_of_face) {
  auto comp = const_cast<ExactMesh&>(sm).add_property_map<ExactMesh::Face_index, std::size_t>("f:comp", 0);
  const std::size_t n = PMP::connected_components(sm, comp.first, PMP::parameters::edge_is_constrained_map(crossing));
  std::vector<double> best(n, -1);
  std::vector<Vec3> probe(n);
  for (const auto f : sm.faces()) {
    std::array<Vec3, 3> v;
    int k = 0;
    for (const auto x : CGAL::vertices_around_face(sm.halfedge(f), sm)) {
      const auto& q = sm.point(x);
      v[k++] = Vec3(CGAL::to_double(q.x()), CGAL::to_double(q.y()), CGAL::to_double(q.z()));
    }
    const double area = (v[1] - v[0]).cross(v[2] - v[0]).norm();
    if (area > best[comp.first[f]]) best[comp.first[f]] = area, probe[comp.first[f]] = (v[0] + v[1] + v[2]) / 3.0;
  }
  std::vector<char> side(n);
  for (std::size_t c = 0; c < n; ++c) {
    const auto in = other.inside(probe[c]);
    if (!in) return false;
    side[c] = *in;
  }
  side_of_face.assign(sm.number_of_faces() + sm.number_of_removed_faces(), 0);
  for (const auto f : sm.faces()) side_of_face[f.idx()] = side[comp.first[f]];
  return true;
}

//! Which faces of a come within 1 µm of a face of b (their boxes overlap), and, if `near_b` is
//! given, which faces of b come within 1 µm of a face of a (the same pairs).
std::vector<char> faces_near(const Mesh& a, const Mesh& b, std::vector<char>* near_b = nullptr) {
  const FaceBoxes ba = face_boxes(a), bb = face_boxes(b, 1e-3);
  std::vector<char> near(a.triangles.size(), 0);
  if (near_b) near_b->assign(b.triangles.size(), 0);
  const BoxGrid grid(bb);
  for (std::size_t f = 0; f < a.triangles.size(); ++f)
    grid.overlapping(ba.lo[f], ba.hi[f], [&](std::size_t g) {
      near[f] = 1;
      if (near_b) (*near_b)[g] = 1;
    });
  return near;
}

//! For each face of a outside `near`, the side of b it lies on: the faces that are not near b
//! fall into pieces joined across their edges, each wholly inside or outside b (one ray each).
//! False when a piece's side cannot be told.
bool far_sides(const Mesh& a, const std::vector<char>& near, ParityTest& b, std::vector<char>& inside_b) {
  std::vector<std::size_t> parent(a.triangles.size());
  for (std::size_t f = 0; f < parent.size(); ++f) parent[f] = f;
  const auto find = [&](std::size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  std::vector<std::array<std::size_t, 3>> edges;  // lower corner, upper corner, face
  edges.reserve(3 * a.triangles.size());
  for (std::size_t f = 0; f < a.triangles.size(); ++f)
    if (!near[f])
      for (int k = 0; k < 3; ++k) {
        const auto u = static_cast<std::size_t>(a.triangles[f][k]), v = static_cast<std::size_t>(a.triangles[f][(k + 1) % 3]);
        edges.push_back({std::min(u, v), std::max(u, v), f});
      }
  std::sort(edges.begin(), edges.end());
  for (std::size_t i = 1; i < edges.size(); ++i)
    if (edges[i][0] == edges[i - 1][0] && edges[i][1] == edges[i - 1][1]) parent[find(edges[i][2])] = find(edges[i - 1][2]);
  std::map<std::size_t, char> side;
  inside_b.assign(a.triangles.size(), 0);
  for (std::size_t f = 0; f < a.triangles.size(); ++f) {
    if (near[f]) continue;
    const std::size_t r = find(f);
    auto it = side.find(r);
    if (it == side.end()) {
      const Tri& t = a.triangles[f];
      const auto in = b.inside((a.vertices[static_cast<std::size_t>(t[0])] + a.vertices[static_cast<std::size_t>(t[1])] +
                                 a.vertices[static_cast<std::size_t>(t[2])]) / 3.0);
      if (!in) return false;
      it = side.emplace(r, *in).first;
    }
    inside_b[f] = it->second;
  }
  return true;
}

//! The faces of m marked `near`, into the empty exact mesh sm; `orig` gives each of its vertices'
//! index in m. False when they do not form a manifold surface.
bool near_part(const Mesh& m, const std::vector<char>& near, ExactMesh::Property_map<ExactMesh::Vertex_index, std::int32_t>* orig,
               ExactMesh& sm) {
  *orig = sm.add_property_map<ExactMesh::Vertex_index, std::int32_t>("v:orig", -1).first;
  std::vector<ExactMesh::Vertex_index> vmap(m.vertices.size(), ExactMesh::null_vertex());
  for (std::size_t f = 0; f < m.triangles.size(); ++f) {
    if (!near[f]) continue;
    std::array<ExactMesh::Vertex_index, 3> t;
    for (int k = 0; k < 3; ++k) {
      const auto i = static_cast<std::size_t>(m.triangles[f][k]);
      if (vmap[i] == ExactMesh::null_vertex()) {
        vmap[i] = sm.add_vertex(EK::Point_3(m.vertices[i].x(), m.vertices[i].y(), m.vertices[i].z()));
        (*orig)[vmap[i]] = static_cast<std::int32_t>(i);
      }
      t[k] = vmap[i];
    }
    if (sm.add_face(t[0], t[1], t[2]) == ExactMesh::null_face()) return false;
  }
  return true;
}

//! Which faces of a and b go through the exact corefinement: a's near b's; all of a small b (a
//! key, a drill, a cutter's face), or of a large b only those near a's. Empty when that would not
//! save much (half the faces are near).
struct NearFaces {
  std::vector<char> a, b;
  bool whole_b = false;
};
std::optional<NearFaces> near_faces(const Mesh& a, const Mesh& b) {
  NearFaces n;
  n.whole_b = 8 * b.triangles.size() <= a.triangles.size();
  n.a = faces_near(a, b, n.whole_b ? nullptr : &n.b);
  if (n.whole_b) n.b.assign(b.triangles.size(), 1);
  const auto na = static_cast<std::size_t>(std::count(n.a.begin(), n.a.end(), 1));
  const auto nb = static_cast<std::size_t>(std::count(n.b.begin(), n.b.end(), 1));
  if (n.whole_b ? 2 * na >= a.triangles.size() : 2 * (na + nb) >= a.triangles.size() + b.triangles.size()) return std::nullopt;
  return n;
}

//! a and b cut along where they cross, only their near faces (near_faces()) going through the
//! exact corefinement: the others keep their places, each piece of them on one side of the other
//! mesh. nullopt when that would not save much or cannot be done (the near faces do not form a
//! manifold surface, or a piece lies on the other's surface), for the whole corefinement to do
//! instead.
std::optional<Pieces> local_pieces(const Mesh& a, const Mesh& b) {
  const std::optional<NearFaces> near = near_faces(a, b);
  if (!near) return std::nullopt;
  ParityTest in_a(a), in_b(b);
  std::vector<char> a_far_inside, b_far_inside;
  if (!far_sides(a, near->a, in_b, a_far_inside)) return std::nullopt;
  if (!near->whole_b && !far_sides(b, near->b, in_a, b_far_inside)) return std::nullopt;

  ExactMesh sa, sb;
  ExactMesh::Property_map<ExactMesh::Vertex_index, std::int32_t> orig_a, orig_b;
  if (!near_part(a, near->a, &orig_a, sa)) return std::nullopt;
  if (near->whole_b) sb = to_exact(b);
  else if (!near_part(b, near->b, &orig_b, sb)) return std::nullopt;
  auto cross_a = sa.add_property_map<ExactMesh::Edge_index, bool>("e:crossing", false).first;
  auto cross_b = sb.add_property_map<ExactMesh::Edge_index, bool>("e:crossing", false).first;
  try {
    PMP::corefine(sa, sb, PMP::parameters::edge_is_constrained_map(cross_a), PMP::parameters::edge_is_constrained_map(cross_b));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::vector<char> a_inside, b_inside;
  if (!component_sides(sa, cross_a, in_b, a_inside) || !component_sides(sb, cross_b, in_a, b_inside)) return std::nullopt;

  Pieces out;
  out.vertices = a.vertices;
  // Vertices by their point rounded to doubles, shared by both meshes: a's corners, and the points
  // the crossing made. Two exact points that round to one double become one vertex, as the weld
  // after it would make them (an std::map of exact points took 1.0–1.6 s of nefertiti's cavity).
  PointIndex added;
  const auto index_of = [&](const EK::Point_3& q) {
    const Vec3 p(CGAL::to_double(q.x()), CGAL::to_double(q.y()), CGAL::to_double(q.z()));
    const auto [it, fresh] = added.emplace(p, static_cast<std::int32_t>(out.vertices.size()));
    if (fresh) out.vertices.push_back(p);
    return it->second;
  };
  for (const auto x : sa.vertices())
    if (orig_a[x] >= 0) added.emplace(a.vertices[static_cast<std::size_t>(orig_a[x])], orig_a[x]);  // where b passes through a corner of a
  for (std::size_t f = 0; f < a.triangles.size(); ++f)
    if (!near->a[f]) (a_far_inside[f] ? out.a_in : out.a_out).push_back(a.triangles[f]);
  if (!near->whole_b) {
    // b's far faces on the vertices b's near part keeps (one index per point), or their own.
    std::vector<std::int32_t> b_index(b.vertices.size(), -1);
    for (const auto x : sb.vertices())
      if (orig_b[x] >= 0) b_index[static_cast<std::size_t>(orig_b[x])] = index_of(sb.point(x));
    for (std::size_t f = 0; f < b.triangles.size(); ++f) {
      if (near->b[f]) continue;
      Tri t = b.triangles[f];
      for (std::int32_t& v : t) {
        std::int32_t& i = b_index[static_cast<std::size_t>(v)];
        if (i < 0) {
          i = static_cast<std::int32_t>(out.vertices.size());
          out.vertices.push_back(b.vertices[static_cast<std::size_t>(v)]);
        }
        v = i;
      }
      (b_far_inside[f] ? out.b_in : out.b_out).push_back(t);
    }
  }
  const auto collect = [&](const ExactMesh& sm, const std::vector<char>& inside_other, std::vector<Tri>& in, std::vector<Tri>& outside) {
    std::vector<std::int32_t> index(sm.num_vertices(), -1);  // each vertex's point looked up once
    for (const auto f : sm.faces()) {
      Tri t{};
      int k = 0;
      for (const auto x : CGAL::vertices_around_face(sm.halfedge(f), sm)) {
        std::int32_t& i = index[x.idx()];
        if (i < 0) i = index_of(sm.point(x));
        t[k++] = i;
      }
      (inside_other[f.idx()] ? in : outside).push_back(t);
    }
  };
  collect(sa, a_inside, out.a_in, out.a_out);
  collect(sb, b_inside, out.b_in, out.b_out);
  return out;
}

//! The faces given (b's reversed where asked) as one compact mesh, slivers removed.
Mesh assemble(const Pieces& p, std::initializer_list<std::pair<const std::vector<Tri>*, bool>> parts) {
  Mesh m;
  m.vertices = p.vertices;
  for (const auto& [faces, reversed] : parts)
    for (const Tri& t : *faces) m.triangles.push_back(reversed ? Tri{t[0], t[2], t[1]} : t);
  return remove_slivers(submesh(m, std::vector<char>(m.triangles.size(), 1)), 1e-6);
}

}  // namespace

namespace {

Mesh without_degenerate_faces(cgal::SurfaceMesh sm) {
  PMP::remove_degenerate_faces(sm);
  sm.collect_garbage();
  return cgal::from_surface_mesh(sm);
}

}  // namespace

Mesh remove_slivers(const Mesh& m, double eps) { return without_degenerate_faces(cgal::to_surface_mesh(weld_close(m, eps))); }

std::optional<Mesh> remove_slivers_if_closed(const Mesh& m, double eps) {
  const Mesh welded = weld_close(m, eps);
  if (!measure(welded, MeasureOptions{false}).watertight) return std::nullopt;  // before building anything
  std::optional<cgal::SurfaceMesh> sm = cgal::to_manifold_surface_mesh(welded);
  if (!sm) return std::nullopt;
  return without_degenerate_faces(std::move(*sm));
}

Mesh remove_near_degenerate(const Mesh& m, double max_angle_deg, double max_aspect, double collapse_mm) {
  cgal::SurfaceMesh sm = cgal::to_surface_mesh(m);
  PMP::experimental::remove_almost_degenerate_faces(sm, std::cos(max_angle_deg * M_PI / 180.0), max_aspect, collapse_mm);
  sm.collect_garbage();
  return cgal::from_surface_mesh(sm);
}

Mesh boolean(const Mesh& a, const Mesh& b, BooleanOp op, const char* what, bool local) {
  const auto t0 = std::chrono::steady_clock::now();
  if (const auto p = local ? local_pieces(a, b) : std::nullopt) {
    Mesh result;
    switch (op) {
      case BooleanOp::Union: result = assemble(*p, {{&p->a_out, false}, {&p->b_out, false}}); break;
      case BooleanOp::Difference: result = assemble(*p, {{&p->a_out, false}, {&p->b_in, true}}); break;
      case BooleanOp::Intersection: result = assemble(*p, {{&p->a_in, false}, {&p->b_in, false}}); break;
    }
    log_debug("boolean: {} ({} and {} faces, locally) in {:.2f} s", what, a.triangles.size(), b.triangles.size(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return result;
  }
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

void split(const Mesh& a, const Mesh& b, Mesh& inside, Mesh& outside, const char* what, bool local) {
  const auto t0 = std::chrono::steady_clock::now();
  if (const auto p = local ? local_pieces(a, b) : std::nullopt) {
    inside = assemble(*p, {{&p->a_in, false}, {&p->b_in, false}});
    outside = assemble(*p, {{&p->a_out, false}, {&p->b_in, true}});
    log_debug("split: {} ({} and {} faces, locally) in {:.2f} s", what, a.triangles.size(), b.triangles.size(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return;
  }
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
