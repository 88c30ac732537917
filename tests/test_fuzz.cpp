// Mutation fuzzing of every reader: ≥ 1,000 damaged copies (bit flips, byte stamps,
// truncations, insertions, huge numbers) of a small valid file of each format. Every read must
// either succeed with valid geometry or throw InputError: no crash, no other exception (an
// unguarded giant allocation would surface as std::bad_alloc), no sanitizer report. This
// test's binary links the readers built with AddressSanitizer and UndefinedBehaviorSanitizer.
#include <assimp/Exporter.hpp>
#include <assimp/Importer.hpp>
#include <assimp/scene.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>

#include "fixtures.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"

// Large allocation requests must reach our code as std::bad_alloc, not abort the process.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1:detect_leaks=0"; }

using namespace tracecast;

namespace {

constexpr int kMutationsPerFormat = 1000;

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  std::size_t below(std::size_t n) { return n ? static_cast<std::size_t>(next() % n) : 0; }
};

std::string mutate(const std::string& seed, Rng& rng) {
  std::string s = seed;
  const int ops = 1 + static_cast<int>(rng.below(4));
  for (int k = 0; k < ops && !s.empty(); ++k) {
    const std::size_t at = rng.below(s.size());
    switch (rng.below(7)) {
      case 0:  // flip a bit
        s[at] = static_cast<char>(s[at] ^ (1 << rng.below(8)));
        break;
      case 1: {  // stamp a boundary byte value
        const char values[] = {'\0', '\x7f', '\x80', '\xff', '-', '9', '\n', ' '};
        s[at] = values[rng.below(sizeof values)];
        break;
      }
      case 2:  // truncate
        s.resize(at);
        break;
      case 3:  // insert random bytes
        for (std::size_t i = 0, n = 1 + rng.below(8); i < n; ++i)
          s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), static_cast<char>(rng.next()));
        break;
      case 4: {  // overwrite 4 bytes with a huge little-endian count
        const std::uint32_t v = rng.below(2) ? 0xFFFFFFFFu : 0x7FFFFFF0u;
        for (std::size_t i = 0; i < 4 && at + i < s.size(); ++i) s[at + i] = static_cast<char>(v >> (8 * i));
        break;
      }
      case 5: {  // a huge decimal number where a digit was
        const std::size_t d = s.find_first_of("0123456789", at);
        if (d != std::string::npos) s.replace(d, 1, rng.below(2) ? "99999999999999" : "-2147483649");
        break;
      }
      case 6: {  // duplicate a slice
        const std::size_t len = std::min<std::size_t>(1 + rng.below(64), s.size() - at);
        s.insert(at, s.substr(at, len));
        break;
      }
    }
  }
  return s;
}

//! Writes each mutation to `name` and reads it. Returns how many reads succeeded.
int fuzz(const std::string& name, const std::string& seed, std::uint64_t salt) {
  const auto dir = test::temp_dir("fuzz");
  const auto path = dir / name;
  io::ReadOptions ro;
  ro.importer_timeout_s = 10;
  // The seed itself must read.
  test::write_bytes(path, seed);
  REQUIRE_NOTHROW(io::read_geometry(path, ro));
  Rng rng{0x9E3779B97F4A7C15ull ^ salt};
  int ok = 0, rejected = 0, contained = 0;
  for (int i = 0; i < kMutationsPerFormat; ++i) {
    test::write_bytes(path, mutate(seed, rng));
    try {
      const io::Geometry g = io::read_geometry(path, ro);
      validate(g.mesh, "fuzzed result");  // what a reader accepts must be valid
      ++ok;
    } catch (const InputError& e) {
      ++rejected;
      // Crashes and runaway reads of the third-party importer, stopped by the isolation.
      const std::string w = e.what();
      contained += w.find("importer crashed") != std::string::npos || w.find("took longer") != std::string::npos ||
                   w.find("stopped without a result") != std::string::npos;
    } catch (const std::exception& e) {
      FAIL(name << " mutation " << i << ": unexpected " << typeid(e).name() << ": " << e.what());
    }
  }
  CHECK(ok + rejected == kMutationsPerFormat);
  std::printf("fuzz %-6s %4d mutations: %4d read as valid geometry, %4d rejected with a clear error"
              " (%d of them importer crashes or hangs contained by isolation)\n",
              name.c_str(), kMutationsPerFormat, ok, rejected, contained);
  return ok;
}

std::string written(const std::string& ext, const Mesh& m, io::WriteOptions wo = {}) {
  const auto p = test::temp_dir("fuzz-seed") / ("seed" + ext);
  io::write_mesh(p, m, wo);
  return test::read_bytes(p);
}

Mesh small_mesh() { return test::with_colors_and_normals(test::uv_sphere(100, 4, 6)); }

}  // namespace

TEST_CASE("fuzz: PLY binary, ascii and strips", "[fuzz]") {
  fuzz("f.ply", written(".ply", small_mesh()), 1);
  io::WriteOptions ascii;
  ascii.ascii = true;
  fuzz("f.ply", written(".ply", small_mesh(), ascii), 2);
  fuzz("f.ply",
       "ply\nformat binary_little_endian 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
       "element tristrips 1\nproperty list int int vertex_indices\nend_header\n" +
           [] {
             std::string b;
             const float v[12] = {0, 0, 0, 100, 0, 0, 0, 100, 0, 100, 100, 0};
             b.append(reinterpret_cast<const char*>(v), sizeof v);
             const std::int32_t l[6] = {5, 0, 1, 2, 3, -1};
             b.append(reinterpret_cast<const char*>(l), sizeof l);
             return b;
           }(),
       3);
}

TEST_CASE("fuzz: STL binary and ascii", "[fuzz]") {
  fuzz("f.stl", written(".stl", small_mesh()), 4);
  io::WriteOptions ascii;
  ascii.ascii = true;
  fuzz("f.stl", written(".stl", small_mesh(), ascii), 5);
}

TEST_CASE("fuzz: OBJ and OFF", "[fuzz]") {
  fuzz("f.obj", written(".obj", small_mesh()), 6);
  fuzz("f.off", "OFF\n4 2 0\n0 0 0\n100 0 0\n0 100 0\n100 100 0\n3 0 1 2\n4 1 3 2 0\n", 7);
}

TEST_CASE("fuzz: point formats XYZ, PTS, PCD", "[fuzz]") {
  fuzz("f.xyz", "0 0 0 0 0 1\n100 0 0 0 0 1\n0 100 0 0 0 1\n", 8);
  fuzz("f.pts", "3\n0 0 0 10 255 0 0\n100 0 0 10 0 255 0\n0 100 0 10 0 0 255\n", 9);
  const std::string head = "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 2\nHEIGHT 1\nPOINTS 2\n";
  fuzz("f.pcd", head + "DATA ascii\n0 0 0\n100 100 100\n", 10);
  const float pts[6] = {0, 0, 0, 100, 100, 100};
  fuzz("f.pcd", head + "DATA binary\n" + std::string(reinterpret_cast<const char*>(pts), sizeof pts), 11);
  // binary_compressed: 24 column-major bytes as one literal run.
  const float cols[6] = {0, 100, 0, 100, 0, 100};
  std::string body;
  const std::uint32_t csize = 25, usize = 24;
  body.append(reinterpret_cast<const char*>(&csize), 4);
  body.append(reinterpret_cast<const char*>(&usize), 4);
  body += static_cast<char>(23);
  body.append(reinterpret_cast<const char*>(cols), sizeof cols);
  fuzz("f.pcd", head + "DATA binary_compressed\n" + body, 12);
}

TEST_CASE("fuzz: 3MF, GLB, glTF and FBX through the isolated importer", "[fuzz]") {
  fuzz("f.3mf", written(".3mf", test::uv_sphere(100, 3, 4)), 13);
  fuzz("f.glb", written(".glb", test::uv_sphere(100, 3, 4)), 14);
  // glTF text with an embedded base64 buffer: one triangle.
  fuzz("f.gltf",
       R"({"asset":{"version":"2.0"},"scene":0,"scenes":[{"nodes":[0]}],"nodes":[{"mesh":0}],)"
       R"("meshes":[{"primitives":[{"attributes":{"POSITION":0}}]}],)"
       R"("buffers":[{"byteLength":36,"uri":"data:application/octet-stream;base64,)"
       R"(AAAAAAAAAAAAAAAAzczMPQAAAAAAAAAAAAAAAM3MzD0AAAAA"}],)"
       R"("bufferViews":[{"buffer":0,"byteLength":36}],)"
       R"("accessors":[{"bufferView":0,"componentType":5126,"count":3,"type":"VEC3",)"
       R"("min":[0,0,0],"max":[0.1,0.1,0]}]})",
       15);
  // FBX produced by Assimp's own exporter from one of our OBJ files.
  const auto dir = test::temp_dir("fuzz-fbx");
  io::write_mesh(dir / "s.obj", test::uv_sphere(100, 3, 4));
  Assimp::Importer importer;
  const aiScene* scene = importer.ReadFile((dir / "s.obj").string(), 0);
  REQUIRE(scene);
  Assimp::Exporter exporter;
  // ASCII FBX: Assimp 5.2 cannot re-import its own binary FBX export ("block offset is out of range").
  REQUIRE(exporter.Export(scene, "fbxa", (dir / "s.fbx").string()) == AI_SUCCESS);
  fuzz("f.fbx", test::read_bytes(dir / "s.fbx"), 16);
}
