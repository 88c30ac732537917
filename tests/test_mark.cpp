// The mark: stamped into an appliance, read back blind from attacked copies with the exact ID.
#include <catch2/catch.hpp>

#include <cstdio>

#include "tracecast/mesh/rounding.h"
#include "tracecast/mesh/appliance.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/face.h"
#include "tracecast/mesh/measure.h"
#include "mold_fixtures.h"
#include "tracecast/print/mold.h"
#include "tracecast/mesh/random.h"
#include "tracecast/mesh/repair.h"
#include "tracecast/scan/synthetic_face.h"
#include "tracecast/watermark/attacks.h"
#include "tracecast/watermark/mark.h"
#include "tracecast/watermark/payload.h"

using namespace tracecast;
using namespace tracecast::watermark;

namespace {

const Mesh& generated_appliance() {
  static const Mesh m = make_appliance(scan::SyntheticFace().mesh(0.8), ApplianceSpec{});
  return m;
}

Key key_of(std::uint64_t seed) {
  std::array<std::uint8_t, 32> s{};
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::uint8_t>((seed * 2654435761u + i * 97) >> (i % 8));
  return Key::from_secret(s);
}

void show(const char* what, const Detection& d) {
  std::printf("%-28s %-22s conf %.3f ber %.3f sync %.1f scale %.3f area %.0f carrier %.0f |", what, outcome_name(d.outcome), d.confidence,
              d.bit_error_rate, d.sync_z, d.scale, d.area_mm2, d.carrier_area_mm2);
  for (const auto& [k, t] : d.timings) std::printf(" %s %.2f", k.c_str(), t);
  std::printf("\n");
}

}  // namespace

TEST_CASE("the detector's inline rounding gives the same integers as std::floor and std::llround", "[watermark]") {
  // Ties, integers, signed zeros, the doubles either side of ±0.5 and of ±1, and random values of
  // the magnitudes the charts and folds see.
  std::vector<double> xs = {0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 1.0, -1.0, 3.0, -3.0, 1e6 + 0.5, -1e6 - 0.5,
                            std::nextafter(0.5, 0.0), std::nextafter(-0.5, 0.0), std::nextafter(0.5, 1.0), std::nextafter(-0.5, -1.0),
                            std::nextafter(1.0, 0.0), std::nextafter(-1.0, 0.0), std::nextafter(1.0, 2.0), std::nextafter(-1.0, -2.0),
                            4503599627370495.5, -4503599627370495.5, 1e-300, -1e-300};
  SplitMix64 r{7};
  for (int k = 0; k < 100000; ++k) xs.push_back((r.uniform() - 0.5) * std::pow(10.0, 6 * r.uniform()));
  int floor_wrong = 0, round_wrong = 0;
  for (const double x : xs) {
    floor_wrong += floor_int(x) != static_cast<std::int64_t>(std::floor(x));
    round_wrong += round_half_away(x) != std::llround(x);
  }
  CHECK(floor_wrong == 0);
  CHECK(round_wrong == 0);
}

TEST_CASE("mark: stamp and detect on a generated appliance", "[mark][slow]") {
  const Key key = key_of(1);
  const std::uint64_t id = pack({0x2a, 0x101, 7});
  const Stamped st = stamp(generated_appliance(), id, key);
  std::printf("stamp: max %.1f µm rms %.1f µm hausdorff %.4f mm area %.0f tiles %.1f vertices %zu -> %zu\n", st.report.max_displacement_um,
              st.report.rms_displacement_um, st.report.hausdorff_mm, st.report.marked_area_mm2, st.report.tiles, st.report.vertices_before,
              st.report.vertices_after);
  for (const auto& [k, t] : st.report.timings) std::printf(" %s %.2f", k.c_str(), t);
  std::printf("\n");
  CHECK(st.report.max_displacement_um <= 40.0 + 1e-9);
  CHECK(st.report.warnings.empty());
  const Detection d = detect(st.mesh, key);
  show("none", d);
  CHECK(d.outcome == Outcome::found);
  CHECK(d.id == id);
  const Detection w = detect(st.mesh, key_of(2));
  show("wrong key", w);
  CHECK(w.outcome == Outcome::no_mark);
  CHECK(st.report.hausdorff_mm <= 0.0401);
  CHECK(st.report.rms_displacement_um > 10);
  // Zero where the piece is thin (the feathered rim): every moved vertex has ≥ 0.4 mm of material under it.
  {
    const SurfaceQuery solid(generated_appliance());
    const std::vector<Vec3> n = vertex_normals(st.mesh);
    std::vector<Vec3> origins, dirs;
    std::vector<double> moved;
    for (std::size_t v = 0; v < st.mesh.vertices.size(); ++v)
      if (std::abs(st.displacement_mm[v]) > 1e-9) {
        origins.push_back(st.mesh.vertices[v] - 0.05 * n[v]);
        dirs.push_back(-n[v]);
        moved.push_back(std::abs(st.displacement_mm[v]));
      }
    REQUIRE(origins.size() > 1000);
    // Where less than 0.35 mm of material lies under a moved vertex, it moved by little (the mask
    // is interpolated between the vertices it was measured at).
    double thin_max = 0;
    const auto hits = solid.cast(origins, dirs);
    for (std::size_t i = 0; i < hits.size(); ++i)
      if (!hits[i].hit || hits[i].t < 0.3) thin_max = std::max(thin_max, moved[i]);
    std::printf("largest displacement over less than 0.35 mm of material: %.1f µm\n", 1000 * thin_max);
    CHECK(thin_max <= 0.010);
  }
  // Similarity and a unit change (the scan in metres).
  Mesh moved = transformed(st.mesh, random_similarity(5));
  scale(moved, 0.001);
  const Detection ds = detect(moved, key);
  show("similarity + metres", ds);
  CHECK(ds.outcome == Outcome::found);
  CHECK(ds.id == id);
  CHECK(ds.unit_factor == 1000.0);
  CHECK(ds.false_positive_bound < 1e-9);
}

TEST_CASE("mark: stamping a piece too small to be read back reliably warns", "[mark]") {
  ApplianceSpec spec;
  spec.region = RegionShape{"nose", {}, {}};
  const Mesh nose = make_appliance(scan::SyntheticFace().mesh(0.8), spec);
  const auto plan = plan_stamp(nose);
  const Stamped st = apply_stamp(*plan, pack({1, 2, 3}), key_of(3), false);
  std::printf("nose piece: %.0f mm² marked, %.1f tiles; warnings: %s\n", st.report.marked_area_mm2, st.report.tiles,
              st.report.warnings.empty() ? "none" : st.report.warnings[0].c_str());
  CHECK(st.report.tiles < 10.0);
  REQUIRE(st.report.warnings.size() == 1);
  CHECK(st.report.warnings[0].find("may not give it back") != std::string::npos);
}

TEST_CASE("mark: read back from a point cloud, a half crop and a noisy smoothed copy", "[mark][slow]") {
  const Key key = key_of(3);
  const std::uint64_t id = pack({0x1234, 0xabcdef, 0x42});
  const Stamped st = stamp(generated_appliance(), id, key);
  const Detection pc = detect(resample_points(st.mesh, 0.2, 1.0, 9).points, key);
  show("point cloud 0.2 mm", pc);
  CHECK(pc.id == id);
  const Detection half = detect(planar_crop(st.mesh, Vec3(1, 0.3, 0), 0.5), key);
  show("planar crop 50 %", half);
  CHECK(half.id == id);
  const Detection ns = detect(gaussian_smooth(normal_noise(st.mesh, 0.02, 4), 0.25), key);
  show("noise 20 µm + smoothing 0.25", ns);
  CHECK(ns.id == id);
}

TEST_CASE("mark: read from scans at half and at twice the stamped size", "[mark][slow]") {
  // A scan in an unknown unit or a scaled copy: the pattern's period is then 0.5–2 × the stamp's.
  const Key key = key_of(21);
  const std::uint64_t id = pack({0x77, 0x3030, 0x5});
  const Stamped st = stamp(generated_appliance(), id, key);
  Similarity half = random_similarity(31);
  half.scale = 0.5;
  const Detection h = detect(transformed(st.mesh, half), key);
  show("half size", h);
  CHECK(h.outcome == Outcome::found);
  CHECK(h.id == id);
  CHECK(h.scale == Approx(0.5).epsilon(0.01));
  // Twice the size, as a point cloud 0.4 mm apart (0.2 mm at the stamp's size).
  Similarity twice = random_similarity(32);
  twice.scale = 2.0;
  const Detection t = detect(resample_points(transformed(st.mesh, twice), 0.4, 0.5, 3).points, key);
  show("twice the size, points", t);
  CHECK(t.outcome == Outcome::found);
  CHECK(t.id == id);
  CHECK(t.scale == Approx(2.0).epsilon(0.01));
}

TEST_CASE("mark: no identifier from unmarked surfaces or wrong keys; small or sparse scans are insufficient", "[mark][slow]") {
  const Key key = key_of(5);
  const std::uint64_t id = pack({7, 8, 9});
  const Stamped st = stamp(generated_appliance(), id, key);
  // The analysis does not depend on the key: analyse once, read under many keys.
  const Analysis marked = analyze(st.mesh);
  const Analysis plain = analyze(generated_appliance());
  const Analysis face = analyze(scan::SyntheticFace(scan::FaceParams{150, 210, 80, 24, 0.12, 4, 3, false}).mesh(0.3));
  int found = 0;
  for (int k = 0; k < 300; ++k) {
    const Key wrong = key_of(1000 + static_cast<std::uint64_t>(k));
    for (const Analysis* a : {&marked, &plain, &face}) found += read(*a, wrong).outcome == Outcome::found;
  }
  CHECK(found == 0);
  CHECK(read(marked, key).id == id);
  // A 15 mm patch: too little surface, not "no mark".
  const Mesh patch = planar_crop(planar_crop(st.mesh, Vec3(1, 0, 0), 0.1), Vec3(0, 1, 0), 0.05);
  const Detection small = detect(patch, key);
  INFO(small.reason);
  CHECK(small.outcome == Outcome::insufficient_surface);
  // Points 1.5 mm apart cannot carry 1.2 mm cells.
  const Detection sparse = detect(resample_points(st.mesh, 1.5, 0.0, 2).points, key);
  INFO(sparse.reason);
  CHECK(sparse.outcome == Outcome::insufficient_surface);
}

TEST_CASE("mark end to end: face, appliance, stamp, mold; the cast (the cavity) printed and scanned gives the ID", "[mark][mold][slow]") {
  const Mesh face = scan::SyntheticFace().mesh(0.8);
  const Key key = key_of(11);
  const std::uint64_t id = pack({0x2a, 0x55, 0x101});
  const Stamped st = stamp(generated_appliance(), id, key);
  const print::Mold mold = print::design_mold(st.mesh, face, test::bare_mold());
  // The cast is what fills the cavity: the faces of core and shell that bound it (they lie on the
  // stamped appliance, in the mold frame).
  Mesh appliance_in_mold = st.mesh;
  for (Vec3& v : appliance_in_mold.vertices) v = mold.report.frame * v;
  const SurfaceQuery on(appliance_in_mold);
  Mesh cast;
  for (const NamedMesh& part : mold.parts) {
    std::vector<Vec3> centroids;
    for (const Tri& t : part.mesh.triangles)
      centroids.push_back((part.mesh.vertices[t[0]] + part.mesh.vertices[t[1]] + part.mesh.vertices[t[2]]) / 3.0);
    const std::vector<double> d = on.distances(centroids);
    Mesh keep;
    keep.vertices = part.mesh.vertices;
    for (std::size_t f = 0; f < d.size(); ++f)
      if (d[f] < 0.005) keep.triangles.push_back(part.mesh.triangles[f]);
    append(cast, keep);
  }
  REQUIRE(cast.triangles.size() > 10000);
  // Resin print of the cast's master, then a scan: pose, 70 % coverage, 20 µm noise, 0.2 mm points.
  SplitMix64 r{77};
  const Vec3 build = Vec3(r.normal(), r.normal(), r.normal()).normalized();
  Mesh printed = normal_noise(print_simulation(cast, build, 0.050, 0.035), 0.020, 5);
  printed = transformed(planar_crop(printed, Vec3(0.3, 1, 0.1), 0.7), random_similarity(8));
  const std::vector<Vec3> scan = resample_points(printed, 0.2, 0.5, 6).points;
  const Detection d = detect(scan, key);
  show("end to end", d);
  CHECK(d.outcome == Outcome::found);
  CHECK(d.id == id);
}
