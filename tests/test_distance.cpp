// SurfaceQuery's signed distance: its sign says inside or outside also next to sharp edges and
// thin rims, where the closest face's own normal points the wrong way.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>

#include "fixtures.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/random.h"
#include "tracecast/scan/synthetic_face.h"

using namespace tracecast;

namespace {
constexpr double kPi = 3.14159265358979323846;

//! Exactly inside a convex closed mesh with outward faces: behind every face's plane.
bool inside_convex(const Mesh& m, const Vec3& p) {
  for (const Tri& t : m.triangles) {
    const Vec3 n = (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]);
    if (n.dot(p - m.vertices[t[0]]) > 0) return false;
  }
  return true;
}
}  // namespace

TEST_CASE("signed distance: right side of a knife edge, its corners and its faces", "[distance]") {
  // Rim angle 2·atan(0.5/20) ≈ 2.9°: beyond the rim, half the points lie behind either face's
  // plane although they are outside.
  const Mesh knife = test::bipyramid(20.0, 0.5, 24);
  REQUIRE(measure(knife, {false}).watertight);
  REQUIRE(*measure(knife, {false}).volume_mm3 > 0);
  const SurfaceQuery q(knife);
  SplitMix64 r{11};
  std::vector<Vec3> pts;
  for (int i = 0; i < 20000; ++i) {
    // Around the rim (where the closest feature is an edge or a corner), and anywhere near.
    const double a = 2 * kPi * r.uniform(), rho = (i % 2 ? 19.0 + 3.0 * r.uniform() : 22.0 * r.uniform());
    pts.emplace_back(rho * std::cos(a), rho * std::sin(a), (r.uniform() - 0.5) * (i % 2 ? 2.0 : 3.0));
  }
  const std::vector<double> sd = q.signed_distances(pts), ud = q.distances(pts);
  int wrong = 0, near_rim = 0;
  double worst = 0;
  for (std::size_t i = 0; i < pts.size(); ++i) {
    worst = std::max(worst, std::abs(std::abs(sd[i]) - ud[i]));
    if (ud[i] < 1e-4) continue;  // on the surface: either sign
    near_rim += std::hypot(pts[i].x(), pts[i].y()) > 19.0;
    wrong += (sd[i] < 0) != inside_convex(knife, pts[i]);
  }
  std::printf("knife edge: %d of %zu signs wrong (%d points around the rim), |sd| vs distance off by %.2g mm at most\n", wrong, pts.size(), near_rim,
              worst);
  CHECK(near_rim > 9000);
  CHECK(wrong == 0);
  CHECK(worst < 1e-4);
}

TEST_CASE("signed distance: negative inside a sphere, positive outside, equal to the radial gap", "[distance]") {
  const Mesh sphere = test::uv_sphere(10.0, 60, 120);
  const SurfaceQuery q(sphere);
  SplitMix64 r{5};
  std::vector<Vec3> pts;
  for (int i = 0; i < 5000; ++i) pts.push_back(Vec3(r.normal(), r.normal(), r.normal()).normalized() * (7.0 + 6.0 * r.uniform()));
  const std::vector<double> sd = q.signed_distances(pts);
  double worst = 0;
  for (std::size_t i = 0; i < pts.size(); ++i) worst = std::max(worst, std::abs(sd[i] - (pts[i].norm() - 10.0)));
  std::printf("sphere: signed distance vs radial gap off by %.4f mm at most (faceting)\n", worst);
  CHECK(worst < 0.02);  // the 60 × 120 faceting lies up to ≈ 0.007 mm inside the true sphere
}

namespace {
//! The first triangle a ray meets, by trying every triangle in double precision (Möller–Trumbore).
RayHit brute_force_cast(const Mesh& m, const Vec3& o, const Vec3& d) {
  RayHit best;
  for (std::size_t f = 0; f < m.triangles.size(); ++f) {
    const Tri& t = m.triangles[f];
    const Vec3 &a = m.vertices[t[0]], e1 = m.vertices[t[1]] - a, e2 = m.vertices[t[2]] - a;
    const Vec3 p = d.cross(e2);
    const double det = e1.dot(p);
    if (std::abs(det) < 1e-15) continue;
    const Vec3 s = o - a;
    const double u = s.dot(p) / det;
    const Vec3 q = s.cross(e1);
    const double v = d.dot(q) / det, t_hit = e2.dot(q) / det;
    if (u < 0 || v < 0 || u + v > 1 || t_hit < 0) continue;
    if (!best.hit || t_hit < best.t) best = RayHit{true, t_hit, static_cast<std::int64_t>(f), e1.cross(e2).normalized()};
  }
  return best;
}
}  // namespace

TEST_CASE("ray casting: the same first hits as trying every triangle, from inside and outside, far from the origin", "[distance]") {
  // Far from the origin, so that single precision alone would be off by micrometres.
  Mesh sphere = test::uv_sphere(10.0, 24, 48);
  for (Vec3& v : sphere.vertices) v += Vec3(400, -300, 250);
  const SurfaceQuery q(sphere);
  SplitMix64 r{11};
  std::vector<Vec3> o, d;
  for (int i = 0; i < 2000; ++i) {
    const Vec3 dir = Vec3(r.normal(), r.normal(), r.normal()).normalized();
    const double from = i % 2 ? 3.0 * r.uniform() : 12.0 + 5.0 * r.uniform();  // inside, then outside
    o.push_back(Vec3(400, -300, 250) + from * Vec3(r.normal(), r.normal(), r.normal()).normalized());
    d.push_back(i % 4 == 2 ? Vec3(Vec3(400, -300, 250) - o.back()).normalized() : dir);
  }
  const std::vector<RayHit> hits = q.cast(o, d);
  int agree = 0, hit = 0;
  double worst = 0;
  for (std::size_t i = 0; i < o.size(); ++i) {
    const RayHit want = brute_force_cast(sphere, o[i], d[i]);
    hit += want.hit;
    if (hits[i].hit != want.hit) continue;
    if (!want.hit) { ++agree; continue; }
    worst = std::max(worst, std::abs(hits[i].t - want.t));
    agree += std::abs(hits[i].t - want.t) < 1e-9 && hits[i].normal.dot(want.normal) > 0.999999;
  }
  std::printf("rays: %d of %zu agree with trying every triangle (%d hit); worst distance error %.2e mm\n", agree, o.size(), hit, worst);
  CHECK(hit > 1200);  // every ray from inside, and those aimed at the centre from outside
  CHECK(agree == static_cast<int>(o.size()));
  CHECK(worst < 1e-9);
}

TEST_CASE("ray casting on a fine face from a camera: the same first hits as trying every triangle", "[distance]") {
  // What the scan simulator does: rays from an eye 400 mm away through a fine mesh (0.5 mm
  // triangles), many of them grazing the nose's and cheeks' sides.
  const Mesh face = scan::SyntheticFace().mesh(0.5);
  const SurfaceQuery q(face);
  const Vec3 eye(30, 20, 400);
  SplitMix64 r{17};
  std::vector<Vec3> o, d;
  for (int i = 0; i < 300; ++i) {
    const Vec3 target(-70 + 140 * r.uniform(), -90 + 180 * r.uniform(), 0);
    o.push_back(eye);
    d.push_back((target - eye).normalized());
  }
  const std::vector<RayHit> hits = q.cast(o, d);
  int agree = 0, hit = 0;
  for (std::size_t i = 0; i < o.size(); ++i) {
    const RayHit want = brute_force_cast(face, o[i], d[i]);
    hit += want.hit;
    agree += hits[i].hit == want.hit && (!want.hit || std::abs(hits[i].t - want.t) < 1e-9);
  }
  std::printf("face rays: %d of %zu agree with trying every triangle (%d hit)\n", agree, o.size(), hit);
  CHECK(hit > 100);
  CHECK(agree == static_cast<int>(o.size()));
}
