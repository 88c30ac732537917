#include <catch2/catch.hpp>

#include "fixtures.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/scan/synthetic_face.h"

using namespace tracecast;

TEST_CASE("synthetic face mesh is a clean open surface on the ground truth", "[scan][synthetic]") {
  const scan::SyntheticFace face;
  const Mesh m = face.mesh(1.0);
  const MeshInfo i = measure(m);
  CHECK(i.components == 1);
  CHECK(i.boundary_loops == 1);
  CHECK(i.edge_manifold);
  CHECK(i.vertex_manifold);
  CHECK(i.oriented);
  CHECK(i.degenerate_triangles == 0);
  REQUIRE(i.self_intersecting_pairs);
  CHECK(*i.self_intersecting_pairs == 0);
  const Vec3 size = i.box.extent();
  CHECK(size.x() == Approx(150).margin(2));
  CHECK(size.y() == Approx(210).margin(2));
  double worst = 0;
  for (const Vec3& v : m.vertices) worst = std::max(worst, std::abs(v.z() - face.height(v.x(), v.y())));
  CHECK(worst == 0.0);
  // Faces point towards the viewer (+z).
  double up = 0;
  for (const Tri& t : m.triangles)
    up += (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).z();
  CHECK(up > 0);
  REQUIRE(m.normals.size() == m.vertices.size());
  for (const Vec3& n : m.normals) CHECK(n.z() > 0);
}

TEST_CASE("the nose is the highest point and the eye sockets are hollows", "[scan][synthetic]") {
  const scan::SyntheticFace face;
  const double tip = face.height(0, -12);
  CHECK(tip > face.height(40, -12));
  CHECK(tip > face.height(0, 40));
  CHECK(face.height(31, 22) < face.height(31, 36));  // socket below brow
}

TEST_CASE("seeds vary the face deterministically", "[scan][synthetic]") {
  scan::FaceParams a, b, c;
  a.seed = 7;
  b.seed = 7;
  c.seed = 8;
  const scan::SyntheticFace fa(a), fb(b), fc(c);
  CHECK(fa.height(3, -10) == fb.height(3, -10));
  CHECK(fa.height(3, -10) != fc.height(3, -10));
  CHECK(fa.mesh(2.0).vertices == fb.mesh(2.0).vertices);
}
