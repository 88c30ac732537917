// measure(): topology, area, volume and self-intersections against meshes whose answers are known.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>

#include "fixtures.h"
#include "tracecast/mesh/box_grid.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/random.h"

using namespace tracecast;

namespace {
constexpr double kPi = 3.14159265358979323846;
}

TEST_CASE("closed cube: watertight genus 0, exact area and volume", "[measure]") {
  const MeshInfo i = measure(test::cube(10));
  CHECK(i.watertight);
  CHECK(i.edge_manifold);
  CHECK(i.vertex_manifold);
  CHECK(i.oriented);
  CHECK(i.components == 1);
  CHECK(i.boundary_loops == 0);
  CHECK(i.edges == 18);
  CHECK(i.euler_characteristic == 2);
  REQUIRE(i.genus);
  CHECK(*i.genus == 0);
  CHECK(i.area_mm2 == Approx(600));
  REQUIRE(i.volume_mm3);
  CHECK(*i.volume_mm3 == Approx(1000));
  REQUIRE(i.self_intersecting_pairs);
  CHECK(*i.self_intersecting_pairs == 0);
}

TEST_CASE("torus: genus 1 and volume within 1 % of 2 pi^2 R r^2", "[measure]") {
  const double R = 50, r = 12;
  const MeshInfo i = measure(test::torus(R, r, 160, 64));
  CHECK(i.watertight);
  REQUIRE(i.genus);
  CHECK(*i.genus == 1);
  REQUIRE(i.volume_mm3);
  CHECK(*i.volume_mm3 == Approx(2 * kPi * kPi * R * r * r).epsilon(0.01));
  CHECK(i.area_mm2 == Approx(4 * kPi * kPi * R * r).epsilon(0.01));
}

TEST_CASE("sphere far from the origin: volume unaffected by the offset", "[measure]") {
  Mesh s = test::uv_sphere(90, 90, 180);
  for (Vec3& v : s.vertices) v += Vec3(1e4, -2e4, 3e4);
  const MeshInfo i = measure(s, {false});
  REQUIRE(i.volume_mm3);
  CHECK(*i.volume_mm3 == Approx(4.0 / 3.0 * kPi * 90 * 90 * 90).epsilon(0.005));
}

TEST_CASE("inward-facing closed mesh has negative volume", "[measure]") {
  Mesh c = test::cube(2);
  for (Tri& t : c.triangles) std::swap(t[1], t[2]);
  const MeshInfo i = measure(c);
  REQUIRE(i.volume_mm3);
  CHECK(*i.volume_mm3 == Approx(-8));
}

TEST_CASE("open disk: one boundary loop, not watertight, no volume", "[measure]") {
  const MeshInfo i = measure(test::disk(30, 24));
  CHECK_FALSE(i.watertight);
  CHECK(i.boundary_loops == 1);
  CHECK(i.boundary_edges == 24);
  REQUIRE(i.genus);
  CHECK(*i.genus == 0);
  CHECK_FALSE(i.volume_mm3);
}

TEST_CASE("two separate cubes are two components", "[measure]") {
  Mesh m = test::cube(1);
  append(m, test::cube(1, Vec3(5, 0, 0)));
  const MeshInfo i = measure(m);
  CHECK(i.components == 2);
  REQUIRE(i.genus);
  CHECK(*i.genus == 0);
  CHECK(*i.volume_mm3 == Approx(2));
}

TEST_CASE("three faces on one edge: not edge-manifold, no genus", "[measure]") {
  Mesh m;
  m.vertices = {{0, 0, 0}, {1, 0, 0}, {0.5, 1, 0}, {0.5, -1, 0}, {0.5, 0, 1}};
  m.triangles = {{0, 1, 2}, {1, 0, 3}, {0, 1, 4}};
  const MeshInfo i = measure(m);
  CHECK(i.non_manifold_edges == 1);
  CHECK_FALSE(i.edge_manifold);
  CHECK_FALSE(i.genus);
}

TEST_CASE("two cubes touching at one corner: vertex non-manifold", "[measure]") {
  Mesh a = test::cube(1);
  Mesh b = test::cube(1, Vec3(1, 1, 1));
  // Share the corner (1,1,1): vertex 7 of a is vertex 0 of b.
  const auto offset = static_cast<std::int32_t>(a.vertices.size());
  for (Tri t : b.triangles) {
    for (auto& v : t) v = (v == 0) ? 7 : v + offset;
    a.triangles.push_back(t);
  }
  a.vertices.insert(a.vertices.end(), b.vertices.begin(), b.vertices.end());
  const MeshInfo i = measure(a);
  CHECK(i.edge_manifold);
  CHECK(i.non_manifold_vertices == 1);
  CHECK_FALSE(i.vertex_manifold);
  CHECK(i.unreferenced_vertices == 1);
  CHECK(i.components == 1);
  REQUIRE(i.self_intersecting_pairs);
  CHECK(*i.self_intersecting_pairs == 0);  // touching at a shared corner is not an intersection
}

TEST_CASE("a flipped face breaks orientation", "[measure]") {
  Mesh c = test::cube(1);
  std::swap(c.triangles[3][1], c.triangles[3][2]);
  const MeshInfo i = measure(c);
  CHECK_FALSE(i.oriented);
  CHECK(i.inconsistent_edges == 3);
  CHECK_FALSE(i.watertight);
  CHECK_FALSE(i.volume_mm3);
}

TEST_CASE("degenerate and duplicate faces are counted", "[measure]") {
  Mesh c = test::cube(1);
  c.triangles.push_back({0, 0, 1});
  c.triangles.push_back(c.triangles[0]);
  const MeshInfo i = measure(c);
  CHECK(i.degenerate_triangles == 1);
  CHECK(i.duplicate_triangles == 1);
}

TEST_CASE("self-intersections: crossing cubes, folded faces, shared corners", "[measure]") {
  SECTION("interpenetrating cubes cross") {
    Mesh m = test::cube(2);
    append(m, test::cube(2, Vec3(1, 1, 1)));
    CHECK(count_self_intersections(m) > 0);
  }
  SECTION("cubes apart do not") {
    Mesh m = test::cube(2);
    append(m, test::cube(2, Vec3(2.5, 0, 0)));
    CHECK(count_self_intersections(m) == 0);
  }
  SECTION("two triangles folded flat onto each other across their shared edge") {
    Mesh m;
    m.vertices = {{0, 0, 0}, {1, 0, 0}, {0.5, 1, 0}, {0.3, 0.5, 0}};
    m.triangles = {{0, 1, 2}, {1, 0, 3}};  // 3 lies on the same side as 2: overlap
    CHECK(count_self_intersections(m) == 1);
    m.vertices[3] = {0.3, -0.5, 0};  // other side: a flat, valid fan
    CHECK(count_self_intersections(m) == 0);
  }
  SECTION("triangles sharing a corner whose edge pierces the other") {
    Mesh m;
    m.vertices = {{0, 0, 0}, {2, -1, 0}, {2, 1, 0}, {1, 0, -1}, {1, 0, 1}};
    m.triangles = {{0, 1, 2}, {0, 3, 4}};
    CHECK(count_self_intersections(m) == 1);
  }
  SECTION("split seam vertices at the same position are not intersections") {
    Mesh m = test::cube(1);
    // Duplicate vertex 0 and let two faces use the copy.
    m.vertices.push_back(m.vertices[0]);
    m.triangles[0][0] = 8;
    CHECK(count_self_intersections(m) == 0);
  }
}

TEST_CASE("self-intersections, only some faces tested against all: exactly the pairs that have one of them", "[measure]") {
  // Three spheres, two overlapping: many crossing pairs, between the first and second only. Fine
  // ones too (over 20,000 faces), whose search for all pairs splits the boxes between both cores.
  const int rings = GENERATE(16, 90);
  INFO(rings << " rings");
  Mesh m = test::uv_sphere(10, rings, 2 * rings);
  append(m, [&] { Mesh b = test::uv_sphere(10, rings, 2 * rings); for (Vec3& v : b.vertices) v += Vec3(12, 1, 0.5); return b; }());
  append(m, [] { Mesh c = test::uv_sphere(5, 12, 24); for (Vec3& v : c.vertices) v += Vec3(-40, 0, 0); return c; }());
  const auto all = self_intersecting_pairs(m);
  REQUIRE(all.size() > 20);
  SplitMix64 r{23};
  for (double share : {0.0, 0.05, 0.5, 1.0}) {
    std::vector<char> only(m.triangles.size(), 0);
    for (char& c : only) c = r.uniform() < share;
    std::vector<std::pair<std::size_t, std::size_t>> want;
    for (const auto& p : all)
      if (only[p.first] || only[p.second]) want.push_back(p);
    CHECK(self_intersecting_pairs(m, &only) == want);
  }
}

TEST_CASE("box grid: every overlapping box met exactly once, small, touching and huge boxes alike", "[measure]") {
  SplitMix64 rng{7};
  FaceBoxes boxes, queries;
  auto add = [&](FaceBoxes& b, const Vec3& lo, const Vec3& size) {
    b.lo.push_back(lo);
    b.hi.push_back(lo + size);
  };
  for (int i = 0; i < 3000; ++i) {  // mostly small boxes, some long walls, one box over the whole field
    const Vec3 lo(100 * rng.uniform(), 100 * rng.uniform(), 20 * rng.uniform());
    const double s = i % 100 == 0 ? 60.0 : 0.4;
    add(boxes, lo, Vec3(s * rng.uniform() + 0.01, s * rng.uniform() + 0.01, 0.4 * rng.uniform()));
  }
  add(boxes, Vec3(-1, -1, -1), Vec3(200, 200, 50));
  add(boxes, Vec3(10, 10, 10), Vec3(1, 1, 1));  // touched face to face by the first query
  add(queries, Vec3(11, 10, 10), Vec3(1, 1, 1));
  for (int i = 0; i < 500; ++i) {
    const double s = i % 50 == 0 ? 80.0 : 1.0;
    add(queries, Vec3(100 * rng.uniform(), 100 * rng.uniform(), 20 * rng.uniform()), Vec3(s * rng.uniform(), s * rng.uniform(), rng.uniform()));
  }
  const BoxGrid grid(boxes);
  std::size_t pairs = 0, wrong = 0;
  for (std::size_t q = 0; q < queries.size(); ++q) {
    std::vector<int> met(boxes.size(), 0);
    grid.overlapping(queries.lo[q], queries.hi[q], [&](std::size_t g) { ++met[g]; });
    for (std::size_t g = 0; g < boxes.size(); ++g) {
      const bool overlap = boxes.overlap(queries.lo[q], queries.hi[q], g);  // brute force
      pairs += overlap;
      wrong += met[g] != (overlap ? 1 : 0);
    }
  }
  std::printf("box grid: %zu overlapping pairs, %zu met other than once\n", pairs, wrong);
  CHECK(pairs > 500);  // 621: enough of each kind to test
  CHECK(wrong == 0);
}
