// Conversions to the libraries tracecast builds on (CGAL Surface_mesh, Open3D).
#include <catch2/catch.hpp>

#include <algorithm>
#include <open3d/geometry/TriangleMesh.h>

#include "fixtures.h"
#include "tracecast/mesh/cgal.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/open3d.h"

using namespace tracecast;

namespace {

//! Two closed, outward unit cubes touching at one corner, which both use (the second's own copy
//! of it, vertex 8, is left unused): a pinched vertex.
Mesh cubes_touching_at_a_corner() {
  Mesh a = test::cube(1);
  const Mesh b = test::cube(1, Vec3(1, 1, 1));
  const auto offset = static_cast<std::int32_t>(a.vertices.size());
  for (Tri t : b.triangles) {
    for (auto& v : t) v = (v == 0) ? 7 : v + offset;
    a.triangles.push_back(t);
  }
  a.vertices.insert(a.vertices.end(), b.vertices.begin(), b.vertices.end());
  return a;
}

}  // namespace

TEST_CASE("CGAL Surface_mesh round trip keeps a manifold mesh exactly", "[convert]") {
  const Mesh t = test::torus(40, 10, 24, 12);
  cgal::ToSurfaceMeshReport r;
  const cgal::SurfaceMesh sm = cgal::to_surface_mesh(t, &r);
  CHECK(sm.number_of_vertices() == t.vertices.size());
  CHECK(sm.number_of_faces() == t.triangles.size());
  CHECK(r.duplicated_vertices == 0);
  CHECK_FALSE(r.reoriented);
  CHECK_FALSE(r.as_soup);
  CHECK(sm.is_valid());
  const Mesh back = cgal::from_surface_mesh(sm);
  CHECK(back.vertices == t.vertices);
  CHECK(back.triangles == t.triangles);
}

TEST_CASE("CGAL conversion repairs a non-manifold, mis-oriented soup and says so", "[convert]") {
  // Two cubes sharing a corner (non-manifold vertex), one face flipped, one degenerate face.
  Mesh a = cubes_touching_at_a_corner();
  std::swap(a.triangles[2][1], a.triangles[2][2]);
  a.triangles.push_back({1, 1, 2});
  cgal::ToSurfaceMeshReport r;
  const cgal::SurfaceMesh sm = cgal::to_surface_mesh(a, &r);
  CHECK(r.dropped_faces == 1);
  CHECK(r.duplicated_vertices == 1);
  CHECK(r.reoriented);
  CHECK(r.as_soup);
  CHECK(sm.is_valid());
  const MeshInfo i = measure(cgal::from_surface_mesh(sm));
  CHECK(i.vertex_manifold);
  CHECK(i.oriented);
  CHECK(i.components == 2);
}

TEST_CASE("CGAL conversion gives each fan at a pinched vertex its own copy and keeps every face as it is", "[convert]") {
  // Two closed, outward cubes touching at one corner: the only flaw is the pinch. Each face must
  // come back with the same corners in the same turn (nothing reoriented), the corner copied once.
  const Mesh a = cubes_touching_at_a_corner();
  REQUIRE(a.vertices[7] == a.vertices[8]);  // the second cube's own copy of the corner, unused
  REQUIRE_FALSE(measure(a).vertex_manifold);
  cgal::ToSurfaceMeshReport r;
  const cgal::SurfaceMesh sm = cgal::to_surface_mesh(a, &r);
  CHECK(r.dropped_faces == 0);
  CHECK(r.duplicated_vertices == 1);
  CHECK_FALSE(r.reoriented);
  CHECK_FALSE(r.as_soup);
  CHECK(sm.is_valid());
  const Mesh back = cgal::from_surface_mesh(sm);
  const MeshInfo i = measure(back);
  CHECK(i.vertex_manifold);
  CHECK(i.oriented);
  CHECK(i.components == 2);
  CHECK(back.vertices.size() == 16);  // b's own copy of the corner is unused; the pinch's copy added
  // The faces as rings of positions, each started at its least corner: the same set both ways.
  const auto rings = [](const Mesh& m) {
    std::vector<std::array<std::array<double, 3>, 3>> out;
    for (const Tri& t : m.triangles) {
      std::array<std::array<double, 3>, 3> ring;
      for (int k = 0; k < 3; ++k) ring[k] = {m.vertices[t[k]].x(), m.vertices[t[k]].y(), m.vertices[t[k]].z()};
      std::rotate(ring.begin(), std::min_element(ring.begin(), ring.end()), ring.end());
      out.push_back(ring);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  CHECK(rings(back) == rings(a));
}

TEST_CASE("Open3D round trip keeps vertices, triangles, normals and colours", "[convert]") {
  const Mesh m = test::with_colors_and_normals(test::uv_sphere(30, 8, 16));
  const auto o = to_open3d(m);
  CHECK(o->vertices_.size() == m.vertices.size());
  CHECK(o->triangles_.size() == m.triangles.size());
  const Mesh back = from_open3d(*o);
  CHECK(back.vertices == m.vertices);
  CHECK(back.triangles == m.triangles);
  CHECK(back.normals == m.normals);
  CHECK(back.colors == m.colors);
  PointCloud c = to_point_cloud(m);
  CHECK(from_open3d(*to_open3d(c)).points == c.points);
  o->triangles_.push_back({0, 1, 100000});
  CHECK_THROWS(from_open3d(*o));
}
