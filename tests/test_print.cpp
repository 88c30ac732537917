#include <catch2/catch.hpp>

#include "fixtures.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/print/casting.h"
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
