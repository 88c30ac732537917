// The synthetic head, the level-set mesher and the ear prosthesis, measured against the head's
// own field (the exact ground truth), not against the ear's report.
#include <catch2/catch.hpp>

#include <cmath>

#include "cli_run.h"
#include "fixtures.h"
#include "solid_checks.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/level_set.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/scan/synthetic_head.h"
#include "tracecast/sculpt/ear.h"

using namespace tracecast;


TEST_CASE("level set: a sphere's surface is closed, manifold and within 5 % of the grid step of it", "[ear]") {
  const double r = 10, h = 0.7;
  const auto sphere = [&](const std::vector<Vec3>& pts) {
    std::vector<double> v;
    for (const Vec3& p : pts) v.push_back(p.norm() - r);
    return v;
  };
  Aabb box;
  box.add(Vec3::Constant(-12));
  box.add(Vec3::Constant(12));
  const Mesh m = level_set_surface(sphere, box, h);
  const MeshInfo info = test::check_solid(m);
  REQUIRE(info.volume_mm3);
  CHECK(*info.volume_mm3 == Approx(4.0 / 3.0 * 3.14159265358979 * r * r * r).epsilon(0.02));  // chords cut inside
  double worst = 0;
  for (const Vec3& v : m.vertices) worst = std::max(worst, std::abs(v.norm() - r));
  CHECK(worst < 0.05 * h);  // on grid edges, placed by linear interpolation of the field along them
}

TEST_CASE("synth head: closed, one piece, and each ear can be left off", "[ear]") {
  scan::HeadParams both, right;
  right.ears = "right";
  const scan::SyntheticHead full(both), lacking(right);
  const MeshInfo info = test::check_solid(full.mesh(1.5));
  CHECK(info.genus == 0);
  // The ear on the left (+x) stands out of the earless head; the right one is the same in both.
  const std::vector<double> left = lacking.field({Vec3(0.46 * both.width_mm + 8, 5, -25)});
  CHECK(left[0] > 3);
  CHECK(full.ear(Vec3(-(0.46 * both.width_mm + 8), 5, -25), -1) == Approx(full.ear(Vec3(0.46 * both.width_mm + 8, 5, -25), 1)));
  CHECK_THROWS_AS(scan::SyntheticHead(scan::HeadParams{150, 195, 62, 25, "three"}), InputError);
}

TEST_CASE("ear: the mirrored ear lies within 1 mm RMS of the one removed, as a valid solid", "[ear][slow]") {
  scan::HeadParams both, right;
  right.ears = "right";
  const scan::SyntheticHead full(both), lacking(right);
  const Mesh patient = lacking.mesh(0.8);
  sculpt::EarOptions o;
  sculpt::EarReport r;
  const Mesh ear = sculpt::make_ear(patient, o, &r);
  CHECK(r.side == "left");  // the head's +x is the wearer's left
  const MeshInfo info = test::check_solid(ear);
  // Ground truth: the full head's surface where it stands out of the earless one (the removed ear).
  Aabb left_ear;  // the removed ear's surface, finely: the head's field around it
  left_ear.add(Vec3(0.3 * both.width_mm, -50, -70));
  left_ear.add(Vec3(0.46 * both.width_mm + 30, 50, 20));
  const Mesh truth_head = level_set_surface([&](const std::vector<Vec3>& p) { return full.field(p); }, left_ear, 0.4);
  const std::vector<double> out = lacking.field(truth_head.vertices);
  std::vector<Vec3> removed;
  for (std::size_t i = 0; i < out.size(); ++i)
    if (out[i] > o.protrusion_mm && truth_head.vertices[i].x() > 0) removed.push_back(truth_head.vertices[i]);
  REQUIRE(removed.size() > 1000);
  const DistanceStats to_ear = summarize(SurfaceQuery(ear).distances(removed));
  INFO("removed ear to prosthesis: RMS " << to_ear.rms << " mm, p95 " << to_ear.p95 << ", max " << to_ear.max);
  CHECK(to_ear.rms < 1.0);
  // Every point of the prosthesis lies on the ear or on the skin it sits on.
  const std::vector<double> on_ear = full.field(ear.vertices), on_skin = lacking.field(ear.vertices);
  std::vector<double> off(ear.vertices.size());
  for (std::size_t i = 0; i < off.size(); ++i) off[i] = std::min(std::abs(on_ear[i]), std::abs(on_skin[i]));
  const DistanceStats stray = summarize(off);
  INFO("prosthesis off the ear and the skin: RMS " << stray.rms << " mm, max " << stray.max);
  CHECK(stray.rms < 0.3);
  // Its volume: the removed ear's, less what the margin's edge leaves off.
  CHECK(r.solid.volume_ml == Approx(*info.volume_mm3 / 1000.0));
}

TEST_CASE("cli: ear refuses an open surface (3) and a head with both ears (4), writing nothing", "[ear][cli]") {
  const auto dir = test::temp_dir("cli-ear");
  const std::string face = (dir / "face.ply").string(), head = (dir / "head.ply").string(), out = (dir / "ear.ply").string();
  REQUIRE(test::run("synth face -q -o " + face + " --spacing 2").code == 0);
  auto r = test::run("ear " + face + " -o " + out);
  CHECK(r.code == 3);
  CHECK(r.err.find("closed surface") != std::string::npos);
  REQUIRE(test::run("synth head -q -o " + head + " --spacing 2").code == 0);
  r = test::run("ear " + head + " -o " + out);
  CHECK(r.code == 4);
  CHECK(r.err.find("no ear is missing") != std::string::npos);
  r = test::run("ear " + head + " -o " + out + " --edge 0.2 --resolution 0.5");
  CHECK(r.code == 2);
  CHECK(!std::filesystem::exists(out));
}

TEST_CASE("ear: real busts with both ears are refused, not given an ear", "[ear][shared]") {
  // nefertiti: her headdress and shoulders are not mirror images (large, low differences); the Max
  // Planck bust: its ears are set differently (a difference beside each); igea: small differences.
  for (const char* name : {"nefertiti.obj", "decimated-max.obj", "igea.ply"}) {
    INFO(name);
    const io::Geometry g = io::read_mesh(*test::shared_scans() / name);
    try {
      sculpt::make_ear(g.mesh, {});
      FAIL("an ear was made");
    } catch (const ProcessingError& e) {
      CHECK(std::string(e.what()).find("no ear is missing") != std::string::npos);
    }
  }
}
