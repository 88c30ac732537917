// The attack suite does what it says: measured against generated surfaces.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>

#include "fixtures.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/repair.h"
#include "tracecast/scan/synthetic_face.h"
#include "tracecast/watermark/attacks.h"

using namespace tracecast;
using namespace tracecast::watermark;

namespace {
constexpr double kPi = 3.14159265358979323846;
double area(const Mesh& m) { return measure(m, {false}).area_mm2; }
}  // namespace

TEST_CASE("attacks: similarity, noise and smoothing change the surface by the stated amounts", "[attacks][slow]") {
  const Mesh face = scan::SyntheticFace().mesh(0.5);
  // Similarity: distances scale, shapes do not.
  const Similarity s = random_similarity(3);
  CHECK(s.scale >= 0.5);
  CHECK(s.scale <= 2.0);
  CHECK((s.rotation * s.rotation.transpose() - Eigen::Matrix3d::Identity()).norm() < 1e-12);
  CHECK(s.rotation.determinant() == Approx(1.0));
  const Mesh moved = transformed(face, s);
  CHECK(area(moved) == Approx(area(face) * s.scale * s.scale).epsilon(1e-9));
  // Normal noise: RMS distance to the original surface is σ.
  const Mesh noisy = normal_noise(face, 0.02, 7);
  const DistanceStats n = summarize(SurfaceQuery(face).distances(noisy.vertices));
  std::printf("noise σ 0.020 mm: RMS %.4f mm\n", n.rms);
  CHECK(n.rms == Approx(0.02).epsilon(0.1));
  // Smoothing by physical width: a 1 mm ripple of 0.05 mm loses exp(-2π²σ²/λ²) of its amplitude.
  const scan::SyntheticFace plain(scan::FaceParams{150, 210, 80, 24, 0.0, 4, 0, false});
  Mesh rippled = plain.mesh(0.2);
  const Mesh flat = rippled;
  for (Vec3& v : rippled.vertices) v.z() += 0.05 * std::sin(2 * M_PI * v.x() / 2.0);
  const Mesh smoothed = gaussian_smooth(rippled, 0.25);
  double before = 0, after = 0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < rippled.vertices.size(); ++i) {
    const Vec3& p = flat.vertices[i];
    if (std::abs(p.x()) > 20 || p.y() < 50 || p.y() > 75) continue;  // the forehead: gently curved, no features
    const Vec3 across = plain.normal(p.x(), p.y());  // the ripple's part across the surface is what smoothing acts on
    before += std::pow((rippled.vertices[i] - p).dot(across), 2);
    after += std::pow((smoothed.vertices[i] - p).dot(across), 2);
    ++count;
  }
  // The filter is a Gaussian sampled at the mesh's 0.2 mm grid within 3σ: its response to the
  // ripple is that sum (the continuous Gaussian's would be exp(-2π²σ²/λ²) = 0.735).
  double num = 0, den = 0;
  for (int i = -4; i <= 4; ++i)
    for (int j = -4; j <= 4; ++j) {
      const double x = 0.2 * i, y = 0.2 * j, r2 = x * x + y * y;
      if (r2 > 0.75 * 0.75) continue;
      const double w = std::exp(-0.5 * r2 / (0.25 * 0.25));
      num += w * std::cos(2 * M_PI * x / 2.0);
      den += w;
    }
  const double ratio = std::sqrt(after / before), expected = num / den;
  std::printf("smoothing σ 0.25 mm of a 2 mm ripple: amplitude x %.3f (the sampled Gaussian's response: x %.3f)\n", ratio, expected);
  CHECK(count > 1000);
  CHECK(ratio == Approx(expected).margin(0.02));
}

TEST_CASE("attacks: crops keep the stated share, print steps stay within half a layer, resampling lies on the surface", "[attacks]") {
  const Mesh face = scan::SyntheticFace().mesh(0.5);
  const double a = area(face);
  const Mesh half = planar_crop(face, Vec3(1, 0.3, 0), 0.5);
  CHECK(area(half) / a == Approx(0.5).margin(0.01));
  // A closed sphere seen from one side: about half of it is visible.
  const Mesh sphere = test::uv_sphere(30, 60, 120);
  const Mesh seen = visibility_crop(sphere, Vec3(0, 0, 1));
  CHECK(area(seen) / area(sphere) == Approx(0.5).margin(0.03));
  for (const Vec3& v : seen.vertices) CHECK(v.z() > -0.5);
  // Print: every vertex moves at most half a layer along the build direction and half a pixel
  // (diagonal) across it.
  const Vec3 dir = Vec3(0.3, -0.2, 1).normalized();
  const Mesh printed = print_simulation(face, dir, 0.05, 0.035);
  double along = 0, across = 0;
  for (std::size_t i = 0; i < face.vertices.size(); ++i) {
    const Vec3 d = printed.vertices[i] - face.vertices[i];
    along = std::max(along, std::abs(d.dot(dir)));
    across = std::max(across, (d - d.dot(dir) * dir).norm());
  }
  CHECK(along <= 0.025 + 1e-9);
  CHECK(across <= 0.035 * std::sqrt(0.5) + 1e-9);
  // Resampling: on the surface, about the asked spacing on average, uneven.
  const PointCloud pts = resample_points(face, 0.2, 1.0, 5);
  CHECK(static_cast<double>(pts.size()) == Approx(a / 0.04).epsilon(0.01));
  const DistanceStats on = summarize(SurfaceQuery(face).distances(pts.points));
  CHECK(on.max < 1e-4);  // Embree's single precision
}

TEST_CASE("attacks: SDF re-extraction gives a new closed surface within half a voxel of the old", "[attacks]") {
  const Mesh sphere = test::uv_sphere(10.0, 60, 120);
  const Mesh re = sdf_resample(sphere, 0.2);
  const MeshInfo i = measure(re, {false});
  CHECK(i.watertight);
  REQUIRE(i.volume_mm3);
  CHECK(*i.volume_mm3 == Approx(*measure(sphere, {false}).volume_mm3).epsilon(0.01));
  const DistanceStats d = summarize(SurfaceQuery(sphere).distances(re.vertices));
  std::printf("SDF 0.2 mm: %zu faces, distance to the original max %.4f mm, RMS %.4f mm\n", re.triangles.size(), d.max, d.rms);
  CHECK(d.max < 0.1);
}

TEST_CASE("attacks: SDF re-extraction of a knife-edged rim adds no surface away from it", "[attacks]") {
  // 2 mm thick in the middle, thinner than the 0.2 mm grid over its outer 2 mm: the shape of a
  // feathered appliance's rim, where the closest face's own normal points the wrong way.
  const Mesh knife = test::bipyramid(20.0, 1.0, 48);
  const MeshInfo before = measure(knife, {false});
  const Mesh re = sdf_resample(knife, 0.2);
  const MeshInfo after = measure(re, {false});
  const DistanceStats d = summarize(SurfaceQuery(knife).distances(re.vertices));
  std::printf("SDF 0.2 mm of a knife edge: area %.1f → %.1f mm², volume %.1f → %.1f mm³, %zu components, distance to the original max %.4f mm, RMS %.4f mm\n",
              before.area_mm2, after.area_mm2, *before.volume_mm3, after.volume_mm3 ? *after.volume_mm3 : 0.0, after.components, d.max, d.rms);
  CHECK(after.watertight);
  CHECK(after.components == 1);
  // Nothing added; what goes is the rim thinner than a voxel (radius 18…20 mm: 2π (20² − 18²)
  // ≈ 478 mm² of surface on both sides, ≈ 23 mm³ = 2.8 % of the volume), no more.
  CHECK(after.area_mm2 < before.area_mm2);
  CHECK(after.area_mm2 > before.area_mm2 - 2 * kPi * (20 * 20 - 18 * 18));
  REQUIRE(after.volume_mm3);
  CHECK(*after.volume_mm3 == Approx(*before.volume_mm3).epsilon(0.04));
  CHECK(d.max < 0.1);
}
