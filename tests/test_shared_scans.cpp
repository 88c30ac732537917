// Real third-party scans from ../shared/scans (run with the [shared] tag; skipped when absent).
#include <catch2/catch.hpp>

#include "fixtures.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/scan/reconstruct.h"

#include <cstdio>

using namespace tracecast;

namespace {
std::filesystem::path scan_file(const char* name) { return *test::shared_scans() / name; }
}  // namespace

TEST_CASE("nefertiti: 49,971 vertices, 99,938 faces, closed", "[shared]") {
  const io::Geometry g = io::read_mesh(scan_file("nefertiti.obj"));
  CHECK(g.mesh.vertices.size() == 49971);
  CHECK(g.mesh.triangles.size() == 99938);
  CHECK(g.units.unit == Unit::Millimetre);
  const MeshInfo i = measure(g.mesh);
  CHECK(i.watertight);
  CHECK(i.vertex_manifold);
  REQUIRE(i.genus);
  CHECK(*i.genus == 0);
  CHECK(*i.self_intersecting_pairs == 0);
  CHECK(i.box.extent().z() == Approx(494.6).margin(0.1));
}

TEST_CASE("igea: 134,345 vertices with its triangle-strip faces, metres guessed", "[shared]") {
  const io::Geometry g = io::read_mesh(scan_file("igea.ply"));
  CHECK(g.mesh.vertices.size() == 134345);
  CHECK(g.mesh.triangles.size() > 250000);
  CHECK(g.units.unit == Unit::Metre);
  const MeshInfo i = measure(g.mesh, {false});
  CHECK(i.edge_manifold);
  CHECK(i.unreferenced_vertices == 0);
  CHECK(i.box.extent().maxCoeff() == Approx(99.3).margin(0.5));
}

TEST_CASE("face.obj: open, with a boundary loop", "[shared]") {
  const io::Geometry g = io::read_mesh(scan_file("face.obj"));
  CHECK(g.mesh.vertices.size() == 25905);
  CHECK(g.mesh.triangles.size() == 51712);
  const MeshInfo i = measure(g.mesh);
  CHECK_FALSE(i.watertight);
  CHECK(i.boundary_loops > 0);
}

TEST_CASE("decimated-max.obj: closed", "[shared]") {
  const io::Geometry g = io::read_mesh(scan_file("decimated-max.obj"));
  CHECK(g.mesh.vertices.size() == 5272);
  CHECK(g.mesh.triangles.size() == 10540);
  CHECK(measure(g.mesh).watertight);
}

TEST_CASE("corrupt GLBs are clear errors, not crashes", "[shared]") {
  for (const char* f : {"corrupt/facecap-utf8-mangled.glb", "corrupt/leeperrysmith-utf8-mangled.glb"}) {
    INFO(f);
    CHECK_THROWS_WITH(io::read_geometry(scan_file(f)), Catch::Contains("GLB header declares"));
  }
}

TEST_CASE("real scans round-trip through every mesh format", "[shared]") {
  const io::Geometry g = io::read_mesh(scan_file("nefertiti.obj"));
  const double size = bounding_box(g.mesh).extent().norm();
  for (const char* ext : {".ply", ".stl", ".obj", ".3mf", ".glb"}) {
    INFO(ext);
    const auto path = test::temp_dir("realrt") / (std::string("n") + ext);
    io::write_mesh(path, g.mesh);
    const io::Geometry back = io::read_mesh(path);
    REQUIRE(back.mesh.triangles.size() == g.mesh.triangles.size());
    CHECK(test::max_corner_distance(g.mesh, back.mesh) <= 1e-6 * size);
  }
}

namespace {
//! tracecast scan with default options on a real scan: the surface's 95th-percentile distance to
//! the input points must be at most 1.5 × the input's median point spacing.
void check_scan(const char* name) {
  const io::Geometry g = io::read_geometry(scan_file(name));
  PointCloud cloud = to_point_cloud(g.mesh);
  if (g.has_faces()) cloud.normals = scan::outward_vertex_normals(g.mesh);
  scan::ScanReport r;
  const Mesh surface = scan::reconstruct_surface(cloud, {}, &r, g.has_faces() ? &g.mesh : nullptr);
  std::printf("scan %s: spacing %.3f mm, p95 %.3f mm (limit %.3f), invented %.1f of %.0f mm2, %zu boundary loops\n", name,
              r.median_spacing_mm, r.accuracy.p95, 1.5 * r.median_spacing_mm, r.invented_area_mm2, r.area_mm2,
              r.boundary_loops);
  CHECK(r.accuracy.p95 <= 1.5 * r.median_spacing_mm);
  CHECK(r.invented_area_mm2 <= 0.01 * r.area_mm2);
  CHECK(measure(surface, {false}).vertex_manifold);
}
}  // namespace

TEST_CASE("scan: igea (unknown unit) to a surface within 1.5 spacings, closed", "[shared][scan]") {
  check_scan("igea.ply");
}

TEST_CASE("scan: nefertiti to a surface within 1.5 spacings", "[shared][scan]") { check_scan("nefertiti.obj"); }
