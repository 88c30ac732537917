#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "../print/src/boolean.h"
#include "../print/src/primitives.h"
#include "fixtures.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/print/casting.h"
#include "tracecast/print/mold.h"
#include "tracecast/print/printer.h"

using namespace tracecast;
using namespace tracecast::print;

TEST_CASE("silicone to mix for a measured cavity", "[print]") {
  // A 40 mm cube cavity: 64 ml; 1.08 g/ml and 12 % waste: 77.41 g, 38.71 g of each part.
  const MeshInfo i = measure(test::cube(40), {false});
  const SiliconeMix m = silicone_to_mix(*i.volume_mm3);
  CHECK(m.cavity_ml == Approx(64.0));
  CHECK(m.total_g == Approx(64.0 * 1.08 * 1.12));
  CHECK(m.part_a_g == Approx(m.total_g / 2));
  const SiliconeMix ten_to_one = silicone_to_mix(10000, {1.1, 0.15}, 10.0);
  CHECK(ten_to_one.part_a_g == Approx(10 * ten_to_one.part_b_g));
  CHECK_THROWS_AS(silicone_to_mix(-1), InputError);
  CHECK_THROWS_AS(silicone_to_mix(1000, {12.0, 0.12}), InputError);
  CHECK_THROWS_AS(silicone_to_mix(1000, {1.08, 1.5}), InputError);
}

TEST_CASE("build volume fit picks the orientation with the most room", "[print]") {
  const PrinterProfile resin = *find_printer("resin");
  CHECK(resin.key_clearance_mm == 0.1);
  CHECK(find_printer("fdm")->key_clearance_mm == 0.2);
  CHECK_FALSE(find_printer("laser"));
  Mesh tall;  // 240 × 100 × 60 mm box: fits only lying with its long side along z (250 mm)
  tall.vertices = {{0, 0, 0}, {240, 100, 60}};
  const BuildFit f = fit_in_build_volume(tall, resin);
  CHECK(f.fits);
  CHECK(f.size_mm.z() == Approx(240));
  CHECK(f.margin_mm == Approx(10));
  Mesh huge;
  huge.vertices = {{0, 0, 0}, {300, 300, 300}};
  const BuildFit g = fit_in_build_volume(huge, resin);
  CHECK_FALSE(g.fits);
  CHECK(g.margin_mm == Approx(123 - 300));
  // As placed, the same box does not fit; turned by the fit's rotation (a rotation, not a
  // mirror image), it is placed as the fit says.
  CHECK_FALSE(fit_as_placed(tall, resin).fits);
  const Eigen::Matrix3d R = orientation_matrix(f);
  CHECK(R.determinant() == Approx(1.0));
  Mesh turned = tall;
  for (Vec3& v : turned.vertices) v = R * v;
  const BuildFit placed = fit_as_placed(turned, resin);
  CHECK(placed.fits);
  CHECK((placed.size_mm - f.size_mm).norm() < 1e-9);
}

TEST_CASE("booleans: a small cutter done locally gives the surface the whole corefinement gives", "[print][boolean]") {
  using detail::BooleanOp;
  const Mesh part = detail::uv_sphere(Vec3::Zero(), 40.0, 96, 192);  // 36,480 faces
  Mesh keys;  // three small spheres through the surface, and one wholly inside
  for (const Vec3& c : {Vec3(40, 0, 0), Vec3(0, 39, 5), Vec3(-20, -20, 28.28), Vec3(5, 5, 5)}) {
    const Mesh s = detail::uv_sphere(c, 5.0, 12, 24);
    const auto base = static_cast<std::int32_t>(keys.vertices.size());
    keys.vertices.insert(keys.vertices.end(), s.vertices.begin(), s.vertices.end());
    for (const Tri& t : s.triangles) keys.triangles.push_back({t[0] + base, t[1] + base, t[2] + base});
  }
  const Mesh cutter = detail::box(Vec3(-100, -100, -100), Vec3(10.3, 100, 100));  // a section's half-space
  std::vector<std::string> said;
  set_log_sink([&](LogLevel, const std::string& s) { said.push_back(s); }, LogLevel::Debug);
  const auto same = [](const Mesh& local, const Mesh& whole) {
    const MeshInfo a = measure(local), b = measure(whole);
    CHECK(a.watertight);
    CHECK(a.edge_manifold);
    CHECK(a.vertex_manifold);
    CHECK(a.self_intersecting_pairs == std::optional<std::size_t>(0));
    REQUIRE(a.volume_mm3);
    CHECK(*a.volume_mm3 == Approx(*b.volume_mm3).epsilon(1e-9));
    CHECK(a.area_mm2 == Approx(b.area_mm2).epsilon(1e-9));
    CHECK(a.components == b.components);
  };
  for (const BooleanOp op : {BooleanOp::Difference, BooleanOp::Union, BooleanOp::Intersection})
    same(detail::boolean(part, keys, op, "keys"), detail::boolean(part, keys, op, "keys", false));
  Mesh in_local, out_local, in_whole, out_whole;
  detail::split(part, cutter, in_local, out_local, "the sphere");
  detail::split(part, cutter, in_whole, out_whole, "the sphere", false);
  set_log_sink({});
  same(in_local, in_whole);
  same(out_local, out_whole);
  // The local path was taken each time it was asked for (and the whole one when it was not).
  CHECK(std::count_if(said.begin(), said.end(), [](const std::string& s) { return s.find("locally") != std::string::npos; }) == 4);
  CHECK(said.size() == 8);

  // A large other mesh (the appliance cut out of a mold part): only the faces of each near the
  // other go through the corefinement. Here a fine sphere through the part's side, and another
  // wholly inside it: the other mesh has as many faces as the part, most of them far from it.
  Mesh large;
  for (const auto& [c, r] : {std::pair<Vec3, double>{Vec3(44, 0, 0), 12.0}, std::pair<Vec3, double>{Vec3(-10, 0, 0), 15.0}}) {
    const Mesh sph = detail::uv_sphere(c, r, 64, 128);
    const auto base = static_cast<std::int32_t>(large.vertices.size());
    large.vertices.insert(large.vertices.end(), sph.vertices.begin(), sph.vertices.end());
    for (const Tri& t : sph.triangles) large.triangles.push_back({t[0] + base, t[1] + base, t[2] + base});
  }
  REQUIRE(8 * large.triangles.size() > part.triangles.size());
  said.clear();
  set_log_sink([&](LogLevel, const std::string& s) { said.push_back(s); }, LogLevel::Debug);
  for (const BooleanOp op : {BooleanOp::Difference, BooleanOp::Union, BooleanOp::Intersection})
    same(detail::boolean(part, large, op, "a large mesh"), detail::boolean(part, large, op, "a large mesh", false));
  set_log_sink({});
  CHECK(std::count_if(said.begin(), said.end(), [](const std::string& s) { return s.find("locally") != std::string::npos; }) == 3);
}

namespace {

//! A slab `size` × `size` × `thick` mm with square sides, its top and bottom a grid of 1 mm cells.
Mesh grid_slab(int size, double thick) {
  Mesh m;
  const int n = size + 1;
  for (double z : {thick, 0.0})
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) m.vertices.emplace_back(i, j, z);
  auto t = [&](int i, int j) { return static_cast<std::int32_t>(i * n + j); };
  auto b = [&](int i, int j) { return static_cast<std::int32_t>(n * n + i * n + j); };
  for (int i = 0; i < size; ++i)
    for (int j = 0; j < size; ++j) {
      m.triangles.push_back({t(i, j), t(i + 1, j), t(i + 1, j + 1)});
      m.triangles.push_back({t(i, j), t(i + 1, j + 1), t(i, j + 1)});
      m.triangles.push_back({b(i, j), b(i + 1, j + 1), b(i + 1, j)});
      m.triangles.push_back({b(i, j), b(i, j + 1), b(i + 1, j + 1)});
    }
  for (int k = 0; k < size; ++k) {
    m.triangles.push_back({b(k, 0), b(k + 1, 0), t(k + 1, 0)});  // y = 0
    m.triangles.push_back({b(k, 0), t(k + 1, 0), t(k, 0)});
    m.triangles.push_back({b(k, size), t(k + 1, size), b(k + 1, size)});  // y = size
    m.triangles.push_back({b(k, size), t(k, size), t(k + 1, size)});
    m.triangles.push_back({b(0, k), t(0, k + 1), b(0, k + 1)});  // x = 0
    m.triangles.push_back({b(0, k), t(0, k), t(0, k + 1)});
    m.triangles.push_back({b(size, k), b(size, k + 1), t(size, k + 1)});  // x = size
    m.triangles.push_back({b(size, k), t(size, k + 1), t(size, k)});
  }
  return m;
}

}  // namespace

TEST_CASE("part check: the thin samples at the cutting edge are counted, and still thin", "[print]") {
  // A slab 0.5 mm thick (every sample through its top or bottom is thin for the 1.0 mm resin
  // minimum), with the appliance's rim along its edge x = 0.
  const Mesh slab = grid_slab(40, 0.5);
  const MeshInfo info = measure(slab);
  REQUIRE(info.watertight);
  REQUIRE(*info.volume_mm3 == Approx(800));
  const PrinterProfile resin = *find_printer("resin");
  CuttingEdge edge{{}, 2.5};
  for (double y = 0; y <= 40; y += 0.25) edge.rim.emplace_back(0, y, 0.25);
  // Counted here from the mesh alone: faces of the slab's top and bottom are thin; those whose
  // centre (the sample's start) lies within 2.5 mm of the rim line are at the cutting edge.
  std::size_t thin = 0, at_edge = 0;
  for (const Tri& t : slab.triangles) {
    const Vec3 a = slab.vertices[t[0]], b = slab.vertices[t[1]], c = slab.vertices[t[2]];
    if (std::abs((b - a).cross(c - a).normalized().z()) < 0.9) continue;
    ++thin;
    const Vec3 g = (a + b + c) / 3.0;
    if (std::hypot(g.x(), g.z() - 0.25) <= 2.5 && g.y() >= -1e-9 && g.y() <= 40 + 1e-9) ++at_edge;
  }
  REQUIRE(at_edge > 20);
  REQUIRE(at_edge < thin / 4);
  const PartCheck with = check_part("slab", slab, resin, std::nullopt, &edge);
  CHECK(with.thin_samples == thin);
  CHECK(with.edge_samples == at_edge);
  CHECK(with.edge_zone_mm == 2.5);
  CHECK_FALSE(walls_ok(with));  // counted, not excused
  const PartCheck alone = check_part("slab", slab, resin);
  CHECK(alone.thin_samples == thin);
  CHECK(alone.edge_samples == 0);
  CHECK(alone.edge_zone_mm == 0);
}

TEST_CASE("wall map: each vertex coloured by the thinnest wall through the faces round it", "[print]") {
  const PrinterProfile resin = *find_printer("resin");  // 1.0 mm minimum wall, 0.05 mm layers
  const Vec3 grey(0.78, 0.78, 0.78), amber(0.95, 0.75, 0.1), red(0.9, 0.1, 0.1), magenta(0.8, 0.1, 0.8);
  // Slabs whose walls are their thickness, known by construction: 0.06 mm (under two layers, a
  // sliver), 0.5 mm (under the minimum), 1.5 mm (under twice it), 3 mm (enough). Every vertex
  // of a slab lies on its top or bottom, which the rays through the slab measure.
  for (const auto& [thick, colour] : {std::pair{0.06, magenta}, std::pair{0.5, red}, std::pair{1.5, amber}, std::pair{3.0, grey}}) {
    const Mesh slab = grid_slab(20, thick);
    const Mesh map = wall_map(slab, resin);
    REQUIRE(map.vertices.size() == slab.vertices.size());
    REQUIRE(map.triangles == slab.triangles);
    REQUIRE(map.colors.size() == slab.vertices.size());
    std::size_t right = 0;
    for (const Vec3& c : map.colors) right += (c - colour).norm() < 1e-9;
    INFO("slab " << thick << " mm");
    CHECK(right == map.vertices.size());
  }
  // The samples themselves: every face of the 0.5 mm slab's top and bottom measures 0.5 mm.
  const Mesh slab = grid_slab(10, 0.5);
  std::size_t faces = 0;
  for (const WallSample& s : wall_samples(slab)) {
    const Tri& t = slab.triangles[s.face];
    const Vec3 n = (slab.vertices[t[1]] - slab.vertices[t[0]]).cross(slab.vertices[t[2]] - slab.vertices[t[0]]);
    if (std::abs(n.normalized().z()) < 0.9) continue;
    ++faces;
    CHECK(s.mm == Approx(0.5).margin(1e-6));
  }
  CHECK(faces == 400);
}

TEST_CASE("part check: the thinnest wall outside the cutting edge", "[print]") {
  // Two slabs in one part: 2 × 2 × 0.5 mm along a rim at x = 0 (all of it within the 2.5 mm zone),
  // and 20 × 20 × 1.5 mm far from it. Their walls are their thicknesses, by construction.
  const PrinterProfile resin = *find_printer("resin");
  Mesh part = grid_slab(2, 0.5), far = grid_slab(20, 1.5);
  for (Vec3& v : far.vertices) v.x() += 100;
  append(part, far);
  CuttingEdge edge{{}, 2.5};
  for (double y = 0; y <= 2; y += 0.1) edge.rim.emplace_back(0, y, 0.25);
  const PartCheck with = check_part("two", part, resin, std::nullopt, &edge);
  CHECK(with.min_wall_mm == Approx(0.5).margin(1e-6));
  CHECK(with.min_wall_off_edge_mm == Approx(1.5).margin(1e-6));
  CHECK(with.edge_samples == with.thin_samples);  // every thin sample is at the rim
  const PartCheck alone = check_part("two", part, resin);  // no rim known: the same as the least
  CHECK(alone.min_wall_off_edge_mm == alone.min_wall_mm);
  // A rim nowhere near: no sample is at it.
  CuttingEdge away{{Vec3(-500, 0, 0)}, 2.5};
  CHECK(check_part("two", part, resin, std::nullopt, &away).min_wall_off_edge_mm == Approx(0.5).margin(1e-6));
}

TEST_CASE("part check: a tab under two layers high is a sliver, though its rays across run 0.4 mm; a fin as thin and 5 mm high is a thin wall",
          "[print]") {
  // A tab 0.4 mm wide (x), 20 mm long and 0.05 mm high, like the steps the parting surface leaves
  // beside an appliance's rim, and a fin of the same width 5 mm high: in each, the rays from the
  // sides x = 0 and x = 0.4 cross it in 0.4 mm, under the resin printer's 1.0 mm minimum wall.
  const PrinterProfile resin = *find_printer("resin");  // 0.05 mm layers: slivers under 0.1 mm
  const auto narrowed = [](Mesh m) {
    for (Vec3& v : m.vertices) v.x() *= 0.02;
    return m;
  };
  const auto flat = [](const Mesh& m, int axis) {  // faces square to an axis, counted from the mesh
    std::size_t n = 0;
    for (const Tri& t : m.triangles)
      n += std::abs(m.vertices[t[0]][axis] - m.vertices[t[1]][axis]) < 1e-12 && std::abs(m.vertices[t[1]][axis] - m.vertices[t[2]][axis]) < 1e-12;
    return n;
  };
  const auto sides = [&](const Mesh& m) { return flat(m, 0); };  // on x = 0 or x = 0.4
  const Mesh tab = narrowed(grid_slab(20, 0.05)), fin = narrowed(grid_slab(20, 5.0));
  std::size_t across = 0;
  for (const WallSample& s : wall_samples(tab)) across += std::abs(s.mm - 0.4) < 1e-6;
  CHECK(across == sides(tab));  // the rays alone measure the tab's sides as a 0.4 mm wall
  const PartCheck t = check_part("tab", tab, resin);
  CHECK(t.thin_samples == 0);
  CHECK(t.sliver_samples + flat(tab, 1) == t.wall_samples);  // all but the ends' rays along its 20 mm
  CHECK(walls_ok(t));
  const PartCheck f = check_part("fin", fin, resin);
  CHECK(f.thin_samples == sides(fin));
  CHECK(f.min_wall_mm == Approx(0.4).margin(1e-6));
  CHECK_FALSE(walls_ok(f));
}
