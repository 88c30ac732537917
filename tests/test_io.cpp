// Readers and writers: round trips for every writable format, and each reader on hand-written
// files of the variants scanners produce.
#include <catch2/catch.hpp>

#include <cmath>

#include "fixtures.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"

using namespace tracecast;
using tracecast::test::max_corner_distance;

namespace {

//! Round trip through `ext` and check positions within 1e-6 of the size (relative), same faces.
void check_round_trip(const Mesh& m, const std::string& ext, io::WriteOptions wo = {}) {
  const auto dir = test::temp_dir("roundtrip");
  const auto path = dir / ("mesh" + ext);
  io::write_mesh(path, m, wo);
  io::ReadOptions ro;
  ro.units = Unit::Auto;  // declared units (3MF: mm, GLB: m) must bring it back to mm
  const io::Geometry g = io::read_mesh(path, ro);
  INFO(ext << (wo.ascii ? " ascii" : "") << " units " << unit_name(g.units.unit) << " (" << g.units.reason << ")");
  REQUIRE(g.mesh.triangles.size() == m.triangles.size());
  const double size = bounding_box(m).extent().norm();
  CHECK(max_corner_distance(m, g.mesh) <= 1e-6 * size);
}

}  // namespace

TEST_CASE("round trips preserve geometry and face count", "[io]") {
  // Off-origin and in mm-like magnitudes, so that float storage is exercised.
  Mesh sphere = test::uv_sphere(87.3, 24, 48);
  for (Vec3& v : sphere.vertices) v += Vec3(12.5, -40.25, 130.0);
  const Mesh t = test::torus(60, 18, 40, 20);
  io::WriteOptions binary, ascii;
  ascii.ascii = true;
  for (const Mesh* m : {&static_cast<const Mesh&>(sphere), &t}) {
    check_round_trip(*m, ".ply", binary);
    check_round_trip(*m, ".ply", ascii);
    check_round_trip(*m, ".stl", binary);
    check_round_trip(*m, ".stl", ascii);
    check_round_trip(*m, ".obj");
    check_round_trip(*m, ".3mf");
    check_round_trip(*m, ".glb");
  }
}

TEST_CASE("PLY double precision is lossless", "[io]") {
  Mesh m = test::uv_sphere(100.0 / 3.0, 10, 20);
  const auto path = test::temp_dir("plyd") / "m.ply";
  io::WriteOptions wo;
  wo.double_precision = true;
  io::write_mesh(path, m, wo);
  io::ReadOptions ro;
  ro.units = Unit::Millimetre;
  const io::Geometry g = io::read_mesh(path, ro);
  CHECK(g.mesh.vertices == m.vertices);
  CHECK(g.mesh.triangles == m.triangles);
}

TEST_CASE("STL corners are welded into shared vertices", "[io]") {
  const Mesh m = test::uv_sphere(50, 12, 24);
  const auto path = test::temp_dir("stlweld") / "m.stl";
  io::write_mesh(path, m);
  const io::Geometry g = io::read_mesh(path);
  CHECK(g.vertices_in_file == 3 * m.triangles.size());
  CHECK(g.mesh.vertices.size() == m.vertices.size());
  CHECK(g.welded_vertices == 3 * m.triangles.size() - m.vertices.size());
}

TEST_CASE("normals and colours survive PLY, OBJ and GLB", "[io]") {
  const Mesh m = test::with_colors_and_normals(test::uv_sphere(80, 10, 20));
  for (const char* ext : {".ply", ".obj", ".glb"}) {
    INFO(ext);
    const auto path = test::temp_dir("attrs") / (std::string("m") + ext);
    io::write_mesh(path, m);
    const io::Geometry g = io::read_mesh(path);
    REQUIRE(g.mesh.vertices.size() >= m.vertices.size());
    REQUIRE(g.mesh.has_colors());
    // Compare through the triangles: GLB is welded on reading, so vertex order may differ.
    double dc = 0;
    for (std::size_t f = 0; f < m.triangles.size(); ++f)
      for (int k = 0; k < 3; ++k)
        dc = std::max(dc, (m.colors[m.triangles[f][k]] - g.mesh.colors[g.mesh.triangles[f][k]]).norm());
    CHECK(dc < 1e-3);
    if (std::string(ext) != ".glb") {  // GLB welding keeps one normal per position
      REQUIRE(g.mesh.has_normals());
      double dn = 0;
      for (std::size_t f = 0; f < m.triangles.size(); ++f)
        for (int k = 0; k < 3; ++k)
          dn = std::max(dn, (m.normals[m.triangles[f][k]] - g.mesh.normals[g.mesh.triangles[f][k]]).norm());
      CHECK(dn < 1e-6);
    }
  }
}

TEST_CASE("3MF, OBJ and GLB keep several named objects", "[io]") {
  const std::vector<NamedMesh> parts = {{"core", test::cube(40)}, {"shell", test::cube(30, Vec3(100, 0, 0))},
                                        {"key <1> & \"x\"", test::uv_sphere(5, 6, 8)}};
  for (const char* ext : {".3mf", ".obj", ".glb"}) {
    INFO(ext);
    const auto path = test::temp_dir("objects") / (std::string("mold") + ext);
    io::write_objects(path, parts);
    const io::Geometry g = io::read_mesh(path);
    REQUIRE(g.objects.size() == 3);
    std::size_t faces = 0;
    for (std::size_t i = 0; i < 3; ++i) {
      CHECK(g.objects[i].triangle_count == parts[i].mesh.triangles.size());
      faces += parts[i].mesh.triangles.size();
    }
    CHECK(g.mesh.triangles.size() == faces);
    if (std::string(ext) != ".obj") {  // Assimp names nodes after the objects
      CHECK(g.objects[0].name == "core");
      CHECK(g.objects[1].name == "shell");
    } else {
      CHECK(g.objects[0].name == "core");
      CHECK(g.objects[2].name == "key <1> & \"x\"");
    }
  }
}

TEST_CASE("3MF declares millimetres and GLB metres", "[io]") {
  const auto dir = test::temp_dir("units");
  io::write_mesh(dir / "a.3mf", test::cube(200));
  io::write_mesh(dir / "a.glb", test::cube(200));
  const io::Geometry a = io::read_mesh(dir / "a.3mf");
  CHECK(a.units.source == "file");
  CHECK(a.units.unit == Unit::Millimetre);
  CHECK(bounding_box(a.mesh).extent().x() == Approx(200).epsilon(1e-6));
  const io::Geometry b = io::read_mesh(dir / "a.glb");
  CHECK(b.units.source == "file");
  CHECK(b.units.unit == Unit::Metre);
  CHECK(bounding_box(b.mesh).extent().x() == Approx(200).epsilon(1e-6));
}

TEST_CASE("writes are byte-identical for identical input", "[io]") {
  const Mesh m = test::with_colors_and_normals(test::torus(50, 10, 30, 12));
  const auto a = test::temp_dir("determinism-a"), b = test::temp_dir("determinism-b");
  for (const char* ext : {".ply", ".stl", ".obj", ".3mf", ".glb"}) {
    const std::string name = std::string("m") + ext;
    io::write_mesh(a / name, m);
    io::write_mesh(b / name, m);
    CHECK(test::read_bytes(a / name) == test::read_bytes(b / name));
  }
}

TEST_CASE("a failed write leaves the existing file untouched and no temporary behind", "[io]") {
  const auto dir = test::temp_dir("atomic");
  const auto path = dir / "good.ply";
  io::write_mesh(path, test::cube(10));
  const std::string before = test::read_bytes(path);
  Mesh bad = test::cube(10);
  bad.triangles.push_back({0, 1, 99});  // index out of range: refused before writing
  CHECK_THROWS_AS(io::write_mesh(path, bad), ProcessingError);
  Mesh nan = test::cube(10);
  nan.vertices[3].x() = std::nan("");
  CHECK_THROWS_AS(io::write_mesh(path, nan), ProcessingError);
  CHECK(test::read_bytes(path) == before);
  CHECK_THROWS_AS(io::write_mesh(dir / "no-such-folder" / "x.ply", test::cube(1)), ProcessingError);
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  CHECK(files == 1);
}

TEST_CASE("PLY triangle strips with restarts and degenerate joins", "[io]") {
  // Two strips: 0 1 2 3 (two triangles) and 4 5 6 6 7 (a join: 1 real + degenerates).
  const auto path = test::temp_dir("strips") / "s.ply";
  test::write_bytes(path,
                    "ply\nformat ascii 1.0\nelement vertex 8\nproperty float x\nproperty float y\nproperty float z\n"
                    "element tristrips 1\nproperty list int int vertex_indices\nend_header\n"
                    "0 0 0\n1 0 0\n0 1 0\n1 1 0\n0 0 1\n1 0 1\n0 1 1\n1 1 1\n"
                    "10 0 1 2 3 -1 4 5 6 6 7\n");
  io::ReadOptions ro;
  ro.units = Unit::Millimetre;
  const io::Geometry g = io::read_mesh(path, ro);
  REQUIRE(g.mesh.triangles.size() == 3);
  CHECK(g.mesh.triangles[0] == Tri{0, 1, 2});
  CHECK(g.mesh.triangles[1] == Tri{2, 1, 3});  // second triangle of a strip swaps to keep orientation
  CHECK(g.mesh.triangles[2] == Tri{4, 5, 6});
  REQUIRE(g.notes.size() == 1);
}

TEST_CASE("PLY big-endian binary, polygons and uchar colours", "[io]") {
  std::string s =
      "ply\nformat binary_big_endian 1.0\ncomment made by hand\nelement vertex 4\nproperty double x\n"
      "property double y\nproperty double z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
      "element face 1\nproperty list uchar uint vertex_indices\nproperty uchar flags\nend_header\n";
  auto be = [&](auto v) {
    char raw[sizeof(v)];
    std::memcpy(raw, &v, sizeof(v));
    for (std::size_t i = sizeof(v); i-- > 0;) s += raw[i];
  };
  const double P[4][3] = {{0, 0, 0}, {100, 0, 0}, {100, 100, 0}, {0, 100, 0}};
  for (auto& p : P) {
    for (double c : p) be(c);
    s += static_cast<char>(255);
    s += static_cast<char>(0);
    s += static_cast<char>(51);
  }
  s += static_cast<char>(4);
  for (std::uint32_t i : {0u, 1u, 2u, 3u}) be(i);
  s += static_cast<char>(7);
  const auto path = test::temp_dir("plybe") / "q.ply";
  test::write_bytes(path, s);
  io::ReadOptions ro;
  ro.units = Unit::Millimetre;
  const io::Geometry g = io::read_mesh(path, ro);
  REQUIRE(g.mesh.triangles.size() == 2);  // quad fan-triangulated
  CHECK(g.mesh.vertices[2] == Vec3(100, 100, 0));
  REQUIRE(g.mesh.has_colors());
  CHECK(g.mesh.colors[0].x() == Approx(1.0));
  CHECK(g.mesh.colors[0].z() == Approx(0.2));
}

TEST_CASE("OBJ: negative indices, v/vt/vn corners, polygons, vertex colours", "[io]") {
  const auto path = test::temp_dir("obj") / "q.obj";
  test::write_bytes(path,
                    "# comment\nmtllib x.mtl\no first\nv 0 0 0 1 0 0\nv 1 0 0 0 1 0\nv 1 1 0 0 0 1\nv 0 1 0 1 1 1\n"
                    "vt 0 0\nvn 0 0 1\nf 1/1/1 2/1/1 3/1/1 4/1/1\ng second\nf -4 -2 -1\n");
  io::ReadOptions ro;
  ro.units = Unit::Millimetre;
  const io::Geometry g = io::read_mesh(path, ro);
  REQUIRE(g.mesh.triangles.size() == 3);
  CHECK(g.mesh.triangles[2] == Tri{0, 2, 3});
  REQUIRE(g.objects.size() == 2);
  CHECK(g.objects[0].name == "first");
  CHECK(g.objects[1].name == "second");
  REQUIRE(g.mesh.has_colors());
  CHECK(g.mesh.colors[1] == Vec3(0, 1, 0));
}

TEST_CASE("OFF with header counts on the keyword line and comments", "[io]") {
  const auto path = test::temp_dir("off") / "t.off";
  test::write_bytes(path, "OFF 4 2 0\n# a comment\n0 0 0\n1 0 0\n0 1 0\n1 1 0\n3 0 1 2\n3 1 3 2 255 0 0\n");
  io::ReadOptions ro;
  ro.units = Unit::Millimetre;
  const io::Geometry g = io::read_mesh(path, ro);
  CHECK(g.mesh.vertices.size() == 4);
  CHECK(g.mesh.triangles.size() == 2);
}

TEST_CASE("point clouds: XYZ with normals or colours, PTS, PCD ascii/binary/compressed", "[io]") {
  const auto dir = test::temp_dir("points");
  io::ReadOptions ro;
  ro.units = Unit::Millimetre;
  SECTION("XYZ normals") {
    test::write_bytes(dir / "a.xyz", "0 0 0 0 0 1\n1 2 3 1 0 0\n");
    const PointCloud c = io::read_point_cloud(dir / "a.xyz", ro);
    REQUIRE(c.size() == 2);
    CHECK(c.has_normals());
    CHECK(c.points[1] == Vec3(1, 2, 3));
  }
  SECTION("XYZ colours") {
    test::write_bytes(dir / "b.xyz", "0 0 0 255 0 0\n1 2 3 0 255 0\n");
    const PointCloud c = io::read_point_cloud(dir / "b.xyz", ro);
    REQUIRE(c.has_colors());
    CHECK(c.colors[1] == Vec3(0, 1, 0));
  }
  SECTION("PTS with count, intensity and colour") {
    test::write_bytes(dir / "c.pts", "2\n0 0 0 -120 255 0 0\n5 5 5 30 0 0 255\n");
    const PointCloud c = io::read_point_cloud(dir / "c.pts", ro);
    REQUIRE(c.size() == 2);
    CHECK(c.colors[1] == Vec3(0, 0, 1));
  }
  SECTION("PCD ascii with NaN points skipped") {
    test::write_bytes(dir / "d.pcd",
                      "# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 3\nHEIGHT 1\n"
                      "VIEWPOINT 0 0 0 1 0 0 0\nPOINTS 3\nDATA ascii\n1 2 3\nnan nan nan\n4 5 6\n");
    const PointCloud c = io::read_point_cloud(dir / "d.pcd", ro);
    REQUIRE(c.size() == 2);
    CHECK(c.points[1] == Vec3(4, 5, 6));
  }
  SECTION("PCD binary and binary_compressed give the same points") {
    const std::string head = "VERSION 0.7\nFIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F U\nCOUNT 1 1 1 1\nWIDTH 3\n"
                             "HEIGHT 1\nPOINTS 3\n";
    const float P[3][3] = {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}};
    const std::uint32_t rgb = 0x00FF8000u;
    std::string rows;
    for (auto& p : P) {
      rows.append(reinterpret_cast<const char*>(p), 12);
      rows.append(reinterpret_cast<const char*>(&rgb), 4);
    }
    test::write_bytes(dir / "e.pcd", head + "DATA binary\n" + rows);
    // Column-major: x x x y y y z z z rgb rgb rgb; each float column is 12 bytes of a repeating
    // 4-byte pattern: a 4-byte literal then an 8-byte back-reference of distance 4.
    std::string lzf;
    auto column = [&](const void* four) {
      lzf += static_cast<char>(3);  // literal run of 4 bytes
      lzf.append(static_cast<const char*>(four), 4);
      lzf += static_cast<char>(((8 - 2) << 5) | 0);  // back-reference: length 8
      lzf += static_cast<char>(3);                    // distance 4
    };
    const float one = 1;
    for (int k = 0; k < 3; ++k) column(&one);
    column(&rgb);
    std::string body;
    const std::uint32_t csize = static_cast<std::uint32_t>(lzf.size()), usize = 48;
    body.append(reinterpret_cast<const char*>(&csize), 4);
    body.append(reinterpret_cast<const char*>(&usize), 4);
    body += lzf;
    test::write_bytes(dir / "f.pcd", head + "DATA binary_compressed\n" + body);
    const PointCloud a = io::read_point_cloud(dir / "e.pcd", ro), b = io::read_point_cloud(dir / "f.pcd", ro);
    REQUIRE(a.size() == 3);
    REQUIRE(b.size() == 3);
    CHECK(a.points == b.points);
    CHECK(a.colors == b.colors);
    CHECK(b.colors[0].x() == Approx(1.0));
    CHECK(b.colors[0].y() == Approx(128.0 / 255.0));
  }
  SECTION("PLY without faces is a point cloud; meshes give their vertices") {
    PointCloud c;
    c.points = {{0, 0, 0}, {10, 0, 0}, {0, 10, 0}};
    c.normals = {{0, 0, 1}, {0, 0, 1}, {0, 0, 1}};
    io::write_point_cloud(dir / "g.ply", c);
    const io::Geometry g = io::read_geometry(dir / "g.ply", ro);
    CHECK_FALSE(g.has_faces());
    CHECK(g.mesh.vertices == c.points);
    CHECK_THROWS_AS(io::read_mesh(dir / "g.ply", ro), InputError);
    io::write_point_cloud(dir / "h.xyz", c);
    CHECK(io::read_point_cloud(dir / "h.xyz", ro).normals == c.normals);
  }
}

TEST_CASE("format can be forced regardless of the extension", "[io]") {
  const auto dir = test::temp_dir("force");
  io::write_mesh(dir / "a.ply", test::cube(100));
  std::filesystem::rename(dir / "a.ply", dir / "a.bin");
  CHECK_THROWS_AS(io::read_mesh(dir / "a.bin"), InputError);
  io::ReadOptions ro;
  ro.format = io::Format::Ply;
  CHECK(io::read_mesh(dir / "a.bin", ro).mesh.triangles.size() == 12);
  io::WriteOptions wo;
  wo.format = io::Format::Stl;
  io::write_mesh(dir / "b.dat", test::cube(100), wo);
  ro.format = io::Format::Stl;
  CHECK(io::read_mesh(dir / "b.dat", ro).mesh.triangles.size() == 12);
}
