// Bad input: every case is an InputError whose message names the file and the problem.
#include <catch2/catch.hpp>

#include "fixtures.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"

using namespace tracecast;

namespace {

//! Reading `content` as `name` must throw InputError mentioning the file and `words`.
void expect_bad(const std::string& name, const std::string& content, const std::string& words) {
  const auto path = test::temp_dir("bad") / name;
  test::write_bytes(path, content);
  INFO(name);
  try {
    io::read_geometry(path);
    FAIL("no error for " << name);
  } catch (const InputError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find(path.string()) == 0);
    CHECK(msg.find(words) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
  }
}

const std::string kPlyHead =
    "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
    "element face 1\nproperty list uchar int vertex_indices\nend_header\n";

}  // namespace

TEST_CASE("missing, empty and unknown files", "[io][errors]") {
  CHECK_THROWS_WITH(io::read_geometry("/nonexistent/scan.ply"), Catch::Contains("/nonexistent/scan.ply: cannot open"));
  expect_bad("empty.ply", "", "empty");
  expect_bad("scan.abc", "whatever", "unknown file type");
  CHECK_THROWS_WITH(io::read_geometry(test::temp_dir("dir")), Catch::Contains("folder"));
}

TEST_CASE("PLY errors", "[io][errors]") {
  expect_bad("wrong-magic.ply", "plx\nformat ascii 1.0\n", "not a PLY file");
  expect_bad("no-end.ply", "ply\nformat ascii 1.0\nelement vertex 3\n", "end_header");
  expect_bad("bad-format.ply", "ply\nformat weird 1.0\nend_header\n", "unknown PLY format");
  expect_bad("nan.ply", kPlyHead + "0 0 0\nnan 1 0\n0 1 0\n3 0 1 2\n", "non-finite");
  expect_bad("inf.ply", kPlyHead + "0 0 0\n1 inf 0\n0 1 0\n3 0 1 2\n", "non-finite");
  expect_bad("index.ply", kPlyHead + "0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "refers to vertex 7");
  expect_bad("negative.ply", kPlyHead + "0 0 0\n1 0 0\n0 1 0\n3 0 -1 2\n", "negative vertex index");
  expect_bad("truncated-ascii.ply", kPlyHead + "0 0 0\n1 0 0\n", "more data than the file holds");
  expect_bad("garbage-value.ply", kPlyHead + "0 0 0\n1 zero 0\n0 1 0\n3 0 1 2\n", "line 11: expected a number");
  expect_bad("huge.ply",
             "ply\nformat binary_little_endian 1.0\nelement vertex 1000000000000\nproperty float x\nproperty float y\n"
             "property float z\nend_header\n" + std::string(120, '\0'),
             "1000000000000 vertex");
  expect_bad("huge-list.ply",
             "ply\nformat binary_little_endian 1.0\nelement vertex 0\nproperty float x\nproperty float y\n"
             "property float z\nelement face 1\nproperty list int int vertex_indices\nend_header\n" +
                 std::string("\xff\xff\xff\x7f", 4) + std::string(16, '\0'),
             "runs past the end");
  std::string bin = "ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                    "property float z\nend_header\n" + std::string(30, '\0');
  expect_bad("truncated-binary.ply", bin, "more data than the file holds");
  expect_bad("no-vertex.ply", "ply\nformat ascii 1.0\nelement face 0\nproperty list uchar int vertex_indices\nend_header\n",
             "no 'vertex' element");
  expect_bad("no-xyz.ply", "ply\nformat ascii 1.0\nelement vertex 1\nproperty float u\nend_header\n1\n", "lacks an x");
}

TEST_CASE("STL errors", "[io][errors]") {
  std::string head(80, ' ');
  auto count = [](std::uint32_t n) { return std::string(reinterpret_cast<const char*>(&n), 4); };
  expect_bad("short.stl", "abc", "too short");
  expect_bad("huge.stl", head + count(0xFFFFFFFFu) + std::string(50, '\0'), "declares 4294967295 triangles");
  expect_bad("zero.stl", head + count(0), "holds no vertices");
  expect_bad("ascii-bad.stl", "solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0\n", "expected z");
  expect_bad("ascii-quad.stl",
             "solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 1 1 0\nvertex 0 1 0\n"
             "endloop\nendfacet\nendsolid\n",
             "only triangles");
  expect_bad("ascii-noend.stl", "solid x\n", "endsolid");
  std::string nan_facet = head + count(1) + std::string(12, '\0');
  const float bad[9] = {0, 0, 0, 1, 0, 0, 0, std::numeric_limits<float>::quiet_NaN(), 0};
  nan_facet.append(reinterpret_cast<const char*>(bad), 36);
  nan_facet += std::string(2, '\0');
  expect_bad("nan.stl", nan_facet, "non-finite");
}

TEST_CASE("OBJ, OFF and point-format errors", "[io][errors]") {
  expect_bad("index.obj", "v 0 0 0\nv 1 0 0\nf 1 2 3\n", "only 2 vertices");
  expect_bad("zero-index.obj", "v 0 0 0\nf 0 1 1\n", "malformed face corner");
  expect_bad("text.obj", "v 0 zero 0\n", "line 1");
  expect_bad("nothing.obj", "# only a comment\n", "no vertices");
  expect_bad("bad.off", "OFX\n", "not an OFF file");
  expect_bad("huge.off", "OFF\n1000000000000 1 0\n0 0 0\n", "more than the");
  expect_bad("index.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n", "refers to vertex 3");
  expect_bad("truncated.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n", "truncated");
  expect_bad("zero-faces.off", "OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n", "has no faces");
  expect_bad("ragged.xyz", "0 0 0\n1 1\n", "columns");
  expect_bad("count.pts", "5\n0 0 0\n1 1 1\n", "declares 5 points");
  expect_bad("huge.pcd", "FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 1\nHEIGHT 1\nPOINTS 999999999999\nDATA binary\n0000",
             "999999999999 points");
  expect_bad("bad-lzf.pcd",
             "FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 1\nHEIGHT 1\nPOINTS 1\nDATA binary_compressed\n" +
                 std::string("\x05\x00\x00\x00\x0c\x00\x00\x00\xe0\xff\x00\x00\x00", 13),
             "LZF");
  expect_bad("nofields.pcd", "VERSION 0.7\nDATA ascii\n", "FIELDS");
}

TEST_CASE("GLB, glTF, 3MF and FBX errors never crash", "[io][errors]") {
  expect_bad("magic.glb", "notglTF-at-all", "not a GLB file");
  std::string glb = "glTF";
  auto u32 = [&](std::uint32_t v) { glb.append(reinterpret_cast<const char*>(&v), 4); };
  u32(2);
  u32(999);
  expect_bad("length.glb", glb, "declares 999 bytes");
  glb = "glTF";
  u32(1);
  u32(12);
  expect_bad("v1.glb", glb, "version 1");
  // A valid container whose accessor points past its buffer.
  const std::string json =
      R"({"asset":{"version":"2.0"},"buffers":[{"byteLength":8}],"bufferViews":[{"buffer":0,"byteLength":8}],)"
      R"("accessors":[{"bufferView":0,"componentType":5126,"count":100,"type":"VEC3"}]})";
  std::string padded = json;
  while (padded.size() % 4) padded += ' ';
  glb = "glTF";
  u32(2);
  u32(static_cast<std::uint32_t>(12 + 8 + padded.size() + 8 + 8));
  u32(static_cast<std::uint32_t>(padded.size()));
  u32(0x4E4F534Au);
  glb += padded;
  u32(8);
  u32(0x004E4942u);
  glb += std::string(8, '\0');
  expect_bad("accessor.glb", glb, "runs past the end");
  expect_bad("bad.gltf", "{ not json", "not a glTF file");
  expect_bad("notzip.3mf", "PK\x03\x04 but not really a zip archive", "cannot read as 3mf");
  expect_bad("garbage.fbx", std::string("Kaydara FBX Binary  \0\x1a\0", 23) + std::string(64, '\x7f'), "fbx");
}
