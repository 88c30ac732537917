// The mark: stamped into an appliance, read back blind from attacked copies with the exact ID.
#include <catch2/catch.hpp>

#include <cstdio>

#include "tracecast/mesh/appliance.h"
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

void print(const char* what, const Detection& d) {
  std::printf("%-28s %-22s conf %.3f ber %.3f sync %.1f scale %.3f area %.0f carrier %.0f |", what, outcome_name(d.outcome), d.confidence,
              d.bit_error_rate, d.sync_z, d.scale, d.area_mm2, d.carrier_area_mm2);
  for (const auto& [k, t] : d.timings) std::printf(" %s %.2f", k.c_str(), t);
  std::printf("\n");
}

}  // namespace

TEST_CASE("mark: stamp and detect on a generated appliance", "[mark]") {
  const Key key = key_of(1);
  const std::uint64_t id = pack({0x2a, 0x101, 7});
  const Stamped st = stamp(generated_appliance(), id, key);
  std::printf("stamp: max %.1f µm rms %.1f µm hausdorff %.4f mm area %.0f tiles %.1f vertices %zu -> %zu\n", st.report.max_displacement_um,
              st.report.rms_displacement_um, st.report.hausdorff_mm, st.report.marked_area_mm2, st.report.tiles, st.report.vertices_before,
              st.report.vertices_after);
  for (const auto& [k, t] : st.report.timings) std::printf(" %s %.2f", k.c_str(), t);
  std::printf("\n");
  CHECK(st.report.max_displacement_um <= 40.0 + 1e-9);
  const Detection d = detect(st.mesh, key);
  print("none", d);
  CHECK(d.outcome == Outcome::found);
  CHECK(d.id == id);
  const Detection w = detect(st.mesh, key_of(2));
  print("wrong key", w);
  CHECK(w.outcome == Outcome::no_mark);
  const Similarity sim = random_similarity(5);
  const Detection ds = detect(transformed(st.mesh, sim), key);
  print("similarity", ds);
  CHECK(ds.id == id);
}

#include "../watermark/src/tile.h"
#include "tracecast/mesh/face.h"
TEST_CASE("mark debug: residual folded with the known lattice", "[.markdebug]") {
  using namespace tracecast::watermark::detail;
  const Key key = key_of(1);
  const std::uint64_t id = pack({0x2a, 0x101, 7});
  const Stamped st = stamp(generated_appliance(), id, key);
  const Vec3 front = st.report.front;
  std::printf("front %.3f %.3f %.3f\n", front.x(), front.y(), front.z());
  for (double sig : {1.2, 1.8, 2.5})
  for (int marked = 0; marked < 2; ++marked) {
    const Mesh& m = marked ? st.mesh : generated_appliance();
    std::vector<Vec3> pts = sample_surface(m, 1000000, 3).points;
    const Residuals r = residuals(pts, sig, &front);
    const Vec3 e1 = (std::abs(front.x()) < 0.9 ? Vec3::UnitX() : Vec3::UnitY()).cross(front).normalized(), e2 = front.cross(e1);
    Lattice l;
    l.a = kTileMm * e1;
    l.b = kTileMm * e2;
    const auto cells = cell_values(make_layout(key), encode(id));
    double rp = 0, pp = 0, rr = 0;
    std::size_t n = 0;
    for (std::size_t i = 0; i < r.points.size(); ++i) {
      if (!r.valid[i]) continue;
      if (r.normals[i].dot(front) < 0.3) continue;
      const auto c = l.coords(r.points[i]);
      const double p = pattern(cells, c.x(), c.y());
      rp += r.value[i] * p, pp += p * p, rr += r.value[i] * r.value[i];
      ++n;
    }
    std::printf("marked %d: n %zu corr %.3f sigma %.1f  residual rms %.1f µm  fit gain %.1f µm/unit\n", marked, n, rp / std::sqrt(pp * rr), sig, 1000 * std::sqrt(rr / n), 1000 * rp / pp);
    (void)sig;
  }
}
TEST_CASE("mark debug 2: scale and rotation separately", "[.markdebug2]") {
  const Key key = key_of(1);
  const std::uint64_t id = pack({0x2a, 0x101, 7});
  const Stamped st = stamp(generated_appliance(), id, key);
  const Similarity sim = random_similarity(5);
  std::printf("sim scale %.3f\n", sim.scale);
  Similarity only_scale;
  only_scale.scale = sim.scale;
  Similarity only_rot;
  only_rot.rotation = sim.rotation;
  print("scale only", detect(transformed(st.mesh, only_scale), key));
  print("rotation only", detect(transformed(st.mesh, only_rot), key));
  only_scale.scale = 0.8;
  print("scale 0.8", detect(transformed(st.mesh, only_scale), key));
  only_scale.scale = 1.6;
  print("scale 1.6", detect(transformed(st.mesh, only_scale), key));
}
TEST_CASE("mark debug 3: fold energy at L and 2L", "[.markdebug3]") {
  using namespace tracecast::watermark::detail;
  const Key key = key_of(1);
  const std::uint64_t id = pack({0x2a, 0x101, 7});
  const Stamped st = stamp(generated_appliance(), id, key);
  const Vec3 front = st.report.front;
  for (double sc : {1.0, 0.6}) {
    Similarity s;
    s.scale = sc;
    const Mesh m = transformed(st.mesh, s);
    std::vector<Vec3> pts = sample_surface(m, 1000000, 3).points;
    const Residuals r = residuals(pts, kCellMm * sc, &front);
    const Vec3 e1 = (std::abs(front.x()) < 0.9 ? Vec3::UnitX() : Vec3::UnitY()).cross(front).normalized(), e2 = front.cross(e1);
    for (double mult : {1.0, 2.0, 0.5}) {
      Lattice l;
      l.a = kTileMm * sc * mult * e1;
      l.b = kTileMm * sc * mult * e2;
      std::printf("scale %.1f mult %.1f energy %.4g\n", sc, mult, energy(fold(r, l)));
    }
  }
}
TEST_CASE("mark debug 4: crops", "[.markdebug4]") {
  const Key key = key_of(1);
  const std::uint64_t id = pack({0x2a, 0x101, 7});
  const Stamped st = stamp(generated_appliance(), id, key);
  for (int k = 0; k < 8; ++k) {
    const double phi = k * 3.14159265 / 4;
    const Vec3 dir(std::cos(phi), std::sin(phi), 0);
    const Mesh c = planar_crop(st.mesh, dir, 0.5);
    const Detection d = detect(c, key);
    std::printf("phi %d: ", k * 45);
    print("crop", d);
    std::printf("   front %.3f %.3f %.3f\n", d.front.x(), d.front.y(), d.front.z());
  }
}
