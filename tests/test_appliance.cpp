// The face frame, the appliance and mirroring, against generated faces with exact ground truth.
// Every solid is checked independently of the builder's own report: closedness and
// manifoldness by measure(), crossings by the exact-predicate test, thickness by casting rays
// from the true skin surface through the solid.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>

#include "fixtures.h"
#include "tracecast/mesh/random.h"
#include "tracecast/mesh/appliance.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/face.h"
#include "tracecast/mesh/geodesic.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/scan/synthetic_face.h"

using namespace tracecast;

namespace {

struct Pose {
  Eigen::Matrix3d R = Eigen::Matrix3d::Identity();
  Vec3 t = Vec3::Zero();
  Vec3 operator()(const Vec3& p) const { return R * p + t; }
};

Pose random_pose(std::uint64_t seed, double max_deg) {
  SplitMix64 rng{seed};
  auto u = [&rng] { return 2.0 * rng.uniform() - 1.0; };
  Pose p;
  const Vec3 axis = Vec3(u(), u(), u()).normalized();
  p.R = Eigen::AngleAxisd(max_deg * M_PI / 180 * u(), axis).toRotationMatrix();
  p.t = Vec3(40 * u(), 40 * u(), 40 * u());
  return p;
}

Mesh posed(Mesh m, const Pose& p) {
  for (Vec3& v : m.vertices) v = p(v);
  for (Vec3& n : m.normals) n = p.R * n;
  return m;
}

double angle_deg(const Vec3& a, const Vec3& b) {
  return std::acos(std::clamp(std::abs(a.normalized().dot(b.normalized())), 0.0, 1.0)) * 180 / M_PI;
}

//! The solid is closed, manifold, outward and free of crossings (exact predicates).
void check_solid(const Mesh& solid) {
  const MeshInfo i = measure(solid, {false});
  CHECK(i.watertight);
  CHECK(i.edge_manifold);
  CHECK(i.vertex_manifold);
  REQUIRE(i.volume_mm3);
  CHECK(*i.volume_mm3 > 0);
  CHECK(count_self_intersections(solid) == 0);
}

//! Thickness of the solid along the true normal at face points (x, y): the distance between
//! the first two crossings of a ray started 0.2 mm under the skin; NaN where the ray misses, or
//! where the solid's underside is farther than `skin_gap` from the skin.
std::vector<double> thickness_at(const Mesh& solid, const scan::SyntheticFace& face, const std::vector<Vec2>& xy, bool say_misses = true,
                                 double skin_gap = 0.1) {
  const SurfaceQuery q(solid);
  std::vector<Vec3> o, d;
  for (const Vec2& p : xy) {
    const Vec3 n = face.normal(p.x(), p.y());
    o.push_back(face.point(p.x(), p.y()) - 0.2 * n);  // below the skin and any chord of it
    d.push_back(n);
  }
  const auto first = q.cast(o, d);
  std::vector<Vec3> o2;
  for (std::size_t i = 0; i < o.size(); ++i) o2.push_back(o[i] + (first[i].hit ? first[i].t + 1e-4 : 0.0) * d[i]);
  const auto second = q.cast(o2, d);
  std::vector<double> t;
  for (std::size_t i = 0; i < o.size() && say_misses; ++i)
    if (!(first[i].hit && first[i].t < 0.2 + skin_gap && second[i].hit))
      std::printf("  ray at (%.1f, %.1f): first %d %.4f, second %d %.4f\n", xy[i].x(), xy[i].y(), first[i].hit, first[i].t, second[i].hit, second[i].t);
  for (std::size_t i = 0; i < o.size(); ++i)
    t.push_back(first[i].hit && first[i].t < 0.2 + skin_gap && second[i].hit ? second[i].t + 1e-4 : std::nan(""));
  return t;
}

}  // namespace

TEST_CASE("face analysis finds the symmetry plane, frame and landmarks of a posed generated face", "[appliance]") {
  for (std::uint64_t seed : {0u, 7u}) {
    scan::FaceParams fp;
    fp.seed = seed;
    fp.symmetric = true;
    const scan::SyntheticFace face(fp);
    const Pose pose = random_pose(seed + 11, 30);
    const FaceAnalysis a = analyze_face(posed(face.mesh(0.8), pose));
    const Vec3 true_normal = pose.R * Vec3::UnitX();
    const Vec3 on_plane = pose(Vec3(0, 0, 60));
    const double angle = angle_deg(a.plane.normal, true_normal);
    const double offset = std::abs(a.plane.normal.dot(on_plane) - a.plane.offset);
    std::printf("seed %llu: plane off by %.4f° and %.4f mm; fit %.4f mm RMS\n", static_cast<unsigned long long>(seed), angle,
                offset, a.plane.rms_mm);
    CHECK(angle < 0.5);
    CHECK(offset < 0.5);
    // The frame: forward is the face's +z, up its +y, x to the wearer's left.
    CHECK(angle_deg(a.frame.axes.col(2), pose.R * Vec3::UnitZ()) < 10);
    CHECK(a.frame.axes.col(1).dot(pose.R * Vec3::UnitY()) > 0.98);
    CHECK(a.frame.axes.col(0).dot(pose.R * Vec3::UnitX()) > 0.98);
    // Landmarks against the generator's features (world positions, within a few mm).
    auto world = [&](const Vec3& local) { return a.frame.to_world(local); };
    const Vec3 tip = world(a.landmarks.nose_tip);
    const Vec3 tip_local = pose.R.transpose() * (tip - pose.t);
    std::printf("  nose tip at (%.1f, %.1f); eyes (%.1f, %.1f) (%.1f, %.1f); mouth y %.1f; chin y %.1f\n", tip_local.x(),
                tip_local.y(), (pose.R.transpose() * (world(a.landmarks.eye_left) - pose.t)).x(),
                (pose.R.transpose() * (world(a.landmarks.eye_left) - pose.t)).y(),
                (pose.R.transpose() * (world(a.landmarks.eye_right) - pose.t)).x(),
                (pose.R.transpose() * (world(a.landmarks.eye_right) - pose.t)).y(),
                (pose.R.transpose() * (world(a.landmarks.mouth_center) - pose.t)).y(),
                (pose.R.transpose() * (world(a.landmarks.chin) - pose.t)).y());
    CHECK(std::abs(tip_local.x()) < 2);
    CHECK(tip_local.y() == Approx(-10).margin(5));  // the tip bump (-12) sits on the bridge's slope
    const Vec3 el = pose.R.transpose() * (world(a.landmarks.eye_left) - pose.t);
    const Vec3 er = pose.R.transpose() * (world(a.landmarks.eye_right) - pose.t);
    CHECK(el.x() == Approx(31).margin(6));
    CHECK(er.x() == Approx(-31).margin(6));
    CHECK(el.y() == Approx(22).margin(5));
    CHECK((pose.R.transpose() * (world(a.landmarks.mouth_center) - pose.t)).y() == Approx(-42.5).margin(4));
    CHECK((pose.R.transpose() * (world(a.landmarks.chin) - pose.t)).y() == Approx(-76).margin(6));
  }
}

TEST_CASE("face analysis: what a report writes reads back exactly, nostrils found or not", "[appliance]") {
  const scan::SyntheticFace face{scan::FaceParams{}};
  FaceAnalysis a = analyze_face(face.mesh(1.0));
  for (bool nostrils : {true, false}) {
    a.landmarks.nostrils_found = nostrils;
    const FaceAnalysis b = nlohmann::json(a).get<FaceAnalysis>();
    CHECK(b.frame.origin == a.frame.origin);
    CHECK(b.frame.axes == a.frame.axes);
    CHECK(b.plane.normal == a.plane.normal);
    CHECK(b.plane.offset == a.plane.offset);
    CHECK(b.scale == a.scale);
    CHECK(b.front_source == a.front_source);
    CHECK(b.landmarks.eye_left == a.landmarks.eye_left);
    CHECK(b.landmarks.mouth_right == a.landmarks.mouth_right);
    CHECK(b.landmarks.chin == a.landmarks.chin);
    CHECK(b.landmarks.nostrils_found == nostrils);
    if (nostrils) CHECK(b.landmarks.nostril_left == a.landmarks.nostril_left);
    CHECK(nlohmann::json(b) == nlohmann::json(a));
  }
}

TEST_CASE("a miniature face (a statuette at 0.45 of life size): the landmarks scale with it, the appliance builds", "[appliance]") {
  const scan::SyntheticFace face(scan::FaceParams{});
  const Mesh life = face.mesh(0.8);
  Mesh small = life;
  for (Vec3& v : small.vertices) v *= 0.45;
  Aabb box;
  for (const Vec3& v : small.vertices) box.add(v);
  const FaceAnalysis a = analyze_face(life), m = analyze_face(small);
  CHECK(a.scale == 1.0);
  CHECK(m.scale == Approx((box.max - box.min).maxCoeff() / kAdultHeadHeightMm).epsilon(1e-9));
  // Found independently at each size, the landmarks agree within 2.5 mm of life size (the
  // mouth's corners, where the groove fades out, within 4 mm).
  const Landmarks &L = a.landmarks, &S = m.landmarks;
  for (const auto& [name, life_p, small_p, tolerance] : std::vector<std::tuple<const char*, Vec3, Vec3, double>>{
           {"eye left", L.eye_left, S.eye_left, 2.5}, {"eye right", L.eye_right, S.eye_right, 2.5},
           {"mouth", L.mouth_center, S.mouth_center, 2.5}, {"chin", L.chin, S.chin, 2.5}, {"mouth left", L.mouth_left, S.mouth_left, 4.0},
           {"mouth right", L.mouth_right, S.mouth_right, 4.0}}) {
    INFO(name << ": life size " << life_p.transpose() << ", miniature / 0.45 " << (small_p / 0.45).transpose());
    CHECK((small_p / 0.45 - life_p).norm() < tolerance);
  }
  ApplianceSpec spec;
  spec.resolution_mm = 0.4;
  ApplianceReport r;
  const Mesh solid = make_appliance(small, spec, nullptr, &r);
  check_solid(solid);
  CHECK(r.boundary_loops >= 5);  // the outline, eyes, mouth and the nostrils (merged at this size by the 2 mm margin)
  CHECK(r.interior_thickness.within_5_percent >= 0.95);
}

TEST_CASE("an appliance built again with the cut skin kept from the build before is the one built afresh; a new region cuts again",
          "[appliance][slow]") {
  const scan::SyntheticFace generated(scan::FaceParams{});
  const Mesh face = generated.mesh(1.0);
  ApplianceSpec spec;
  spec.region = {"upper_face", {}, {}};
  spec.openings = {{"eyes", {}, {}}};
  ApplianceCache cache;
  make_appliance(face, spec, nullptr, nullptr, nullptr, &cache);
  REQUIRE(cache.patch);
  const std::string first_key = cache.key;
  // A thickness edit and a zone: the cut skin is the same, the solid the one built without the cache.
  spec.thickness_mm = 1.5;
  spec.zones.push_back({{"", {{-10, 30}, {10, 30}, {10, 45}, {-10, 45}}, {}}, 0.8, 4.0});
  ApplianceReport kept_report;
  const Mesh kept = make_appliance(face, spec, nullptr, &kept_report, nullptr, &cache);
  CHECK(cache.key == first_key);
  const Mesh fresh = make_appliance(face, spec);
  CHECK(kept.triangles == fresh.triangles);
  CHECK(kept.vertices == fresh.vertices);
  // Another region: cut again, and again the same as built afresh.
  spec.region = {"forehead", {}, {}};
  const Mesh other = make_appliance(face, spec, nullptr, nullptr, nullptr, &cache);
  CHECK(cache.key != first_key);
  CHECK(other.vertices == make_appliance(face, spec).vertices);
}

TEST_CASE("full-face appliance on a generated face: uniform thickness, feathered edges, openings, valid solid", "[appliance][slow]") {
  const scan::SyntheticFace face;
  const Pose pose = random_pose(5, 20);
  const Mesh input = posed(face.mesh(0.8), pose);
  ApplianceSpec spec;  // defaults: full face, eyes/nostrils/mouth, 2 mm, 6 mm band, 0.05 mm edge
  ApplianceReport r;
  Mesh solid = make_appliance(input, spec, nullptr, &r);
  std::printf("appliance: %zu faces, %.0f mm², %.2f ml; interior thickness %.4f..%.4f mm (%.1f %% within 5 %%); edge %.3f mm; "
              "%zu loops; timings:", r.faces, r.inner_area_mm2, r.volume_mm3 / 1000, r.interior_thickness.min,
              r.interior_thickness.max, 100 * r.interior_thickness.within_5_percent, r.rim_max_mm, r.boundary_loops);
  for (const auto& [k, v] : r.timings) std::printf(" %s %.2f s", k.c_str(), v);
  std::printf("\n");
  check_solid(solid);
  CHECK(r.boundary_loops == 6);  // outline, two eyes, two nostrils, mouth
  CHECK(r.interior_thickness.min >= 0.95 * 2.0);
  CHECK(r.interior_thickness.max <= 1.05 * 2.0);
  CHECK(r.rim_max_mm <= 0.1);
  CHECK(r.band_end_max_mm <= 0.1);
  // Independent thickness: rays along the true normals at cheek, forehead and chin points.
  for (Vec3& v : solid.vertices) v = pose.R.transpose() * (v - pose.t);  // back to the generator's frame
  const std::vector<Vec2> interior = {{45, -20}, {-45, -20}, {0, 55}, {20, 50}, {-20, 50}, {0, -70}, {30, -55}, {-30, -55}};
  for (double t : thickness_at(solid, face, interior)) {
    REQUIRE(std::isfinite(t));
    CHECK(t == Approx(2.0).margin(0.1));
  }
  // The openings are open: rays through the eye and mouth centres do not meet the solid.
  const SurfaceQuery q(solid);
  const auto through = q.cast({Vec3(31, 22, 0), Vec3(-31, 22, 0), Vec3(0, -42.5, 0)}, {Vec3::UnitZ(), Vec3::UnitZ(), Vec3::UnitZ()});
  for (const RayHit& h : through) CHECK_FALSE(h.hit);
  // Feathering: the thickness rises smoothly from the edge: thin near it, full past the band.
  // Up the midline from the forehead: the outline's top edge is the last point over the solid
  // (where it lies depends on the landmarks found in this pose); 1 mm inside it the piece is thin.
  std::vector<Vec2> up;
  for (double y = 40; y <= 100; y += 0.25) up.emplace_back(0, y);
  const std::vector<double> along = thickness_at(solid, face, up, false);
  std::size_t edge = 0;
  for (std::size_t i = 0; i < along.size(); ++i)
    if (std::isfinite(along[i])) edge = i;
  INFO("top edge at y = " << up[edge].y());
  REQUIRE(up[edge].y() > 50);
  REQUIRE(up[edge].y() < 95);
  const double inside = along[edge - 4];  // 1 mm below the edge
  REQUIRE(std::isfinite(inside));
  CHECK(inside < 0.5);
  CHECK(along[edge - 40] > inside);  // 10 mm below: thicker, past most of the 6 mm band
}

TEST_CASE("deep creases (nasolabial folds, mouth corners): a valid solid, thinner only in the creases, and said so", "[appliance][slow]") {
  scan::FaceParams fp;
  fp.crease_mm = 4.0;  // a deep nasolabial fold: 4 mm deep, walls up to 64° steep within 2.4 mm
  const scan::SyntheticFace face(fp);
  ApplianceReport r;
  const Mesh solid = make_appliance(face.mesh(0.8), ApplianceSpec{}, nullptr, &r);
  std::printf("creases: thinned %zu vertices, %.1f mm², by up to %.3f mm; skin smoothed %.1f mm²; outline turn %.1f°\n", r.thinned.vertices,
              r.thinned.area_mm2, r.thinned.max_mm, r.skin_smoothed.area_mm2, r.outline.max_turn_deg);
  check_solid(solid);
  // Away from the creases the design holds (rays along the true normals)...
  for (double t : thickness_at(solid, face, {{45, -20}, {-45, -20}, {0, 55}, {0, -70}})) CHECK(t == Approx(2.0).margin(0.1));
  // ... in them there is still material over the skin, thinner than designed, and the report
  // says where: some area, not the whole face, no more than the design's thickness.
  // The underside stands off the true crease floor by no more than what the report says was
  // smoothed plus the input grid's own chord across the floor (0.8 mm steps over a floor curved
  // at 2.8/mm: about 0.25 mm).
  const std::vector<Vec2> floor = {{23.5, -31.5}, {-23.5, -31.5}};
  for (double t : thickness_at(solid, face, floor, true, r.skin_smoothed.max_mm + 0.3)) {
    CHECK(t > 0.2);
    CHECK(t < 2.0);
  }
  CHECK(r.thinned.area_mm2 > 20);
  CHECK(r.thinned.area_mm2 < 0.05 * r.inner_area_mm2);
  CHECK(r.thinned.max_mm <= 2.0);
  CHECK(r.outline.max_turn_deg < 20);
}

TEST_CASE("a region past the scan's border: the edge is a smooth curve kept the margin inside the border", "[appliance][slow]") {
  const scan::SyntheticFace face;  // an open face: its border is the 150 × 210 mm ellipse
  ApplianceSpec spec;
  spec.region = RegionShape{"", {{-90, -40}, {90, -40}, {90, 130}, {-90, 130}}, {}};  // runs off the top and sides
  spec.openings = {RegionShape{"eyes", {}, {}}};
  ApplianceReport r;
  const Mesh solid = make_appliance(face.mesh(0.8), spec, nullptr, &r);
  check_solid(solid);
  std::printf("border: outline %.0f mm, %.0f mm of it held by the border, largest turn %.1f°\n", r.outline.length_mm, r.outline.border_mm,
              r.outline.max_turn_deg);
  // Independently: every point of the solid lies at least the margin (less a millimetre for the
  // grid's staircase and the smoothing) from the face's true rim, in space.
  std::vector<Vec3> rim;
  for (int k = 0; k < 4000; ++k) {
    const double a = 2 * M_PI * k / 4000, x = 75 * std::cos(a), y = 105 * std::sin(a);
    rim.push_back(face.point(x, y));
  }
  double closest = 1e9;
  for (const Vec3& v : solid.vertices)
    for (const Vec3& q : rim) closest = std::min(closest, (v - q).squaredNorm());
  closest = std::sqrt(closest);
  std::printf("border: closest point of the solid %.2f mm from the face's rim\n", closest);
  CHECK(closest > spec.border_margin_mm - 1.0);
  CHECK(r.outline.border_mm > 200);
  CHECK(r.outline.max_turn_deg < 40);  // the corners where the region meets the border, rounded (a staircase turns 90°)
}

TEST_CASE("thickness map: a thinner zone around the eyes, blended into the base thickness", "[appliance][slow]") {
  const scan::SyntheticFace face;
  ApplianceSpec spec;
  spec.region = RegionShape{"upper_face", {}, {}};
  spec.openings = {RegionShape{"eyes", {}, {}}};
  spec.zones.push_back(ThicknessZone{RegionShape{"eyes", {}, {}}, 1.0, 4.0});
  ApplianceReport r;
  const Mesh solid = make_appliance(face.mesh(0.8), spec, nullptr, &r);
  check_solid(solid);
  const auto t = thickness_at(solid, face, {{28, 36.5}, {-28, 36.5}, {0, 50}, {45, -5}});
  std::printf("zones: above the eyes %.3f %.3f mm, forehead %.3f mm, cheek %.3f mm\n", t[0], t[1], t[2], t[3]);
  CHECK(t[0] == Approx(1.0).margin(0.08));
  CHECK(t[1] == Approx(1.0).margin(0.08));
  CHECK(t[2] == Approx(2.0).margin(0.1));
  CHECK(t[3] == Approx(2.0).margin(0.1));
}

TEST_CASE("thickness paint: dabs move the thickness towards theirs by their strength, nothing beyond their radius", "[appliance][slow]") {
  const scan::SyntheticFace face;
  ApplianceSpec spec;
  spec.region = RegionShape{"upper_face", {}, {}};
  spec.openings = {RegionShape{"eyes", {}, {}}};
  // A stroke across the cheek (four dabs 4 mm apart, full strength) and one half-strength dab on
  // the forehead, given as the studio gives them: points on the face, in its coordinates.
  for (double x : {38.0, 42.0, 46.0, 50.0}) spec.paint.push_back({face.point(x, -5), Vec2::Zero(), 8.0, 3.5, 1.0});
  spec.paint.push_back({face.point(0, 50), Vec2::Zero(), 8.0, 3.0, 0.5});
  ApplianceReport r;
  const Mesh solid = make_appliance(face.mesh(0.8), spec, nullptr, &r);
  check_solid(solid);
  const auto t = thickness_at(solid, face, {{44, -5}, {0, 50}, {-28, 50}, {-40, 10}});
  std::printf("paint: cheek stroke %.3f mm (3.5 painted), forehead dab %.3f mm (2 → 3 at half strength), away %.3f %.3f mm\n", t[0], t[1], t[2],
              t[3]);
  CHECK(t[0] == Approx(3.5).margin(0.1));
  CHECK(t[1] == Approx(2.5).margin(0.1));
  CHECK(t[2] == Approx(2.0).margin(0.1));
  CHECK(t[3] == Approx(2.0).margin(0.1));
  spec.paint.back().strength = 0;
  CHECK_THROWS_WITH(make_appliance(face.mesh(0.8), spec), Catch::Contains("strength in (0, 1]"));
}

TEST_CASE("sculpt target: the appliance fills the space between face and sculpt, feathered at the edge", "[appliance][slow]") {
  const scan::SyntheticFace face;
  // The sculpt: the skin raised 1.5 mm everywhere plus a 5 mm brow ridge.
  Mesh sculpt = face.mesh(0.8);
  for (std::size_t i = 0; i < sculpt.vertices.size(); ++i) {
    const Vec3 p = sculpt.vertices[i];
    const double brow = 5.0 * std::exp(-0.5 * (std::pow(p.x() / 30, 2) + std::pow((p.y() - 40) / 6, 2)));
    sculpt.vertices[i] = p + (1.5 + brow) * face.normal(p.x(), p.y());
  }
  ApplianceSpec spec;
  spec.region = RegionShape{"upper_face", {}, {}};
  spec.openings = {RegionShape{"eyes", {}, {}}};
  ApplianceReport r;
  const Mesh solid = make_appliance(face.mesh(0.8), spec, &sculpt, &r);
  check_solid(solid);
  const auto t = thickness_at(solid, face, {{0, 40}, {30, 5}, {-30, 5}});
  std::printf("sculpt: brow %.3f mm (want 6.5), cheeks %.3f %.3f mm (want 1.5)\n", t[0], t[1], t[2]);
  CHECK(t[0] == Approx(6.5).margin(0.2));
  CHECK(t[1] == Approx(1.5).margin(0.08));
  CHECK(t[2] == Approx(1.5).margin(0.08));
  CHECK(r.rim_max_mm <= 0.1);
}

TEST_CASE("mirroring restores a defect side and finds the symmetry plane despite it", "[appliance][slow]") {
  scan::FaceParams fp;
  fp.seed = 3;
  fp.symmetric = true;
  const scan::SyntheticFace face(fp);
  const Pose pose = random_pose(21, 25);
  const Mesh truth = posed(face.mesh(0.6), pose);
  // The defect: a 6 mm deep hollow on the left cheek, with a 7 mm hole at its centre.
  const Vec2 c(42, -12);
  Mesh damaged = face.mesh(0.6);
  for (Vec3& v : damaged.vertices) {
    const double r2 = (Vec2(v.x(), v.y()) - c).squaredNorm();
    v -= 6.0 * std::exp(-0.5 * r2 / (11.0 * 11.0)) * face.normal(v.x(), v.y());
  }
  Mesh holed = damaged;
  holed.normals.clear();
  holed.triangles.clear();
  for (const Tri& t : damaged.triangles) {
    bool keep = true;
    for (std::int32_t v : t) keep = keep && (Vec2(damaged.vertices[v].x(), damaged.vertices[v].y()) - c).norm() > 7;
    if (keep) holed.triangles.push_back(t);
  }
  MirrorReport rep;
  const MirrorResult m = mirror_restore(posed(holed, pose), {}, &rep);
  const Vec3 true_normal = pose.R * Vec3::UnitX();
  const double angle = angle_deg(rep.face.plane.normal, true_normal);
  const double offset = std::abs(rep.face.plane.normal.dot(pose(Vec3(0, 0, 60))) - rep.face.plane.offset);
  // Error of the restored surface over the damaged area (where the hollow was deeper than 0.05 mm).
  const SurfaceQuery to_truth(truth);
  std::vector<Vec3> region;
  for (const Vec3& v : m.restored.vertices) {
    const Vec3 l = pose.R.transpose() * (v - pose.t);
    if ((Vec2(l.x(), l.y()) - c).norm() < 11.0 * std::sqrt(2 * std::log(6.0 / 0.05))) region.push_back(v);
  }
  const DistanceStats err = summarize(to_truth.distances(region));
  std::printf("mirror: plane off by %.4f° and %.4f mm; defect %.0f mm² (%zu vertices), %zu holes filled; restored side RMS %.4f mm, "
              "max %.4f mm over %zu vertices\n",
              angle, offset, rep.defect_area_mm2, rep.defect_vertices, rep.filled_holes, err.rms, err.max, err.count);
  CHECK(angle < 0.5);
  CHECK(offset < 0.5);
  CHECK(rep.filled_holes >= 1);
  CHECK(err.rms <= 0.2);
  // The healthy side is left alone.
  std::size_t moved_right = 0;
  for (std::size_t i = 0; i < m.face.vertices.size(); ++i) {
    const Vec3 l = pose.R.transpose() * (m.face.vertices[i] - pose.t);
    if (l.x() < -5 && (m.restored.vertices[i] - m.face.vertices[i]).norm() > 1e-9) ++moved_right;
  }
  CHECK(moved_right == 0);
  // The prosthesis: the volume between the defect bed and the restored surface.
  ApplianceSpec spec;
  ApplianceReport ar;
  const Mesh prosthesis = make_prosthesis(m, 8.0, spec, &ar);
  check_solid(prosthesis);
  double hollow_ml = 0;  // volume between the true and the damaged skin (same grid: tetrahedra sums)
  {
    const Mesh fine = face.mesh(0.3);
    Mesh dented = fine;
    for (Vec3& v : dented.vertices)
      v -= 6.0 * std::exp(-0.5 * (Vec2(v.x(), v.y()) - c).squaredNorm() / (11.0 * 11.0)) * face.normal(v.x(), v.y());
    for (const Tri& t : fine.triangles) {
      if ((Vec2(fine.vertices[t[0]].x(), fine.vertices[t[0]].y()) - c).norm() > 60) continue;
      auto six_v = [&](const Mesh& s) { return s.vertices[t[0]].dot(s.vertices[t[1]].cross(s.vertices[t[2]])); };
      hollow_ml += (six_v(fine) - six_v(dented)) / 6.0 / 1000;
    }
  }
  std::printf("prosthesis: %.3f ml (hollow %.3f ml), edge %.3f mm\n", ar.volume_mm3 / 1000, hollow_ml, ar.rim_max_mm);
  CHECK(ar.volume_mm3 / 1000 == Approx(hollow_ml).epsilon(0.05));
  CHECK(ar.rim_max_mm <= 0.1);
}

TEST_CASE("appliance refuses specs that do not fit: thickness, region, sculpt", "[appliance][slow]") {
  const scan::SyntheticFace face;
  const Mesh m = face.mesh(1.0);
  ApplianceSpec spec;
  spec.thickness_mm = 0;
  CHECK_THROWS_AS(make_appliance(m, spec), InputError);
  spec.thickness_mm = -1;
  CHECK_THROWS_AS(make_appliance(m, spec), InputError);
  spec = ApplianceSpec{};
  spec.edge_thickness_mm = 0.5;
  CHECK_THROWS_AS(make_appliance(m, spec), InputError);
  spec = ApplianceSpec{};
  spec.region = RegionShape{"", {{400, 400}, {450, 400}, {450, 450}, {400, 450}}, {}};
  CHECK_THROWS_WITH(make_appliance(m, spec), Catch::Contains("does not cover"));
  spec = ApplianceSpec{};
  spec.region = RegionShape{"elbow", {}, {}};
  CHECK_THROWS_WITH(make_appliance(m, spec), Catch::Contains("unknown region"));
  Mesh far = m;
  for (Vec3& v : far.vertices) v += Vec3(500, 0, 0);
  CHECK_THROWS_WITH(make_appliance(m, ApplianceSpec{}, &far), Catch::Contains("does not overlap"));
}

TEST_CASE("appliance files: fields, presets and outlines are read, mistakes named", "[appliance]") {
  const auto dir = test::temp_dir("appliance-spec");
  test::write_bytes(dir / "a.json", R"({"region": {"outline": [[-30, 0], [30, 0], [30, 40], [-30, 40]]},
    "openings": [], "thickness_mm": 1.5, "feather_band_mm": 8, "thickness_zones": [{"zone": "nose", "thickness_mm": 1.0}]})");
  const ApplianceSpec s = read_appliance_spec((dir / "a.json").string());
  CHECK(s.region.outline.size() == 4);
  CHECK(s.openings.empty());
  CHECK(s.thickness_mm == 1.5);
  CHECK(s.feather_band_mm == 8);
  REQUIRE(s.zones.size() == 1);
  CHECK(s.zones[0].shape.preset == "nose");
  test::write_bytes(dir / "p.json", R"({"thickness_paint": [{"at": [1, 2, 3], "radius_mm": 5, "thickness_mm": 3, "strength": 0.25}, {"at": [4, 5]}]})");
  const ApplianceSpec painted = read_appliance_spec((dir / "p.json").string());
  REQUIRE(painted.paint.size() == 2);
  CHECK(painted.paint[0].point == std::optional<Vec3>(Vec3(1, 2, 3)));
  CHECK(painted.paint[0].radius_mm == 5);
  CHECK(painted.paint[0].strength == 0.25);
  CHECK_FALSE(painted.paint[1].point);
  CHECK(painted.paint[1].at == Vec2(4, 5));
  CHECK(painted.paint[1].thickness_mm == 1.0);
  test::write_bytes(dir / "q.json", R"({"thickness_paint": [{"at": [1, 2, 3], "size": 5}]})");
  CHECK_THROWS_WITH(read_appliance_spec((dir / "q.json").string()), Catch::Contains("unknown key \"size\" in a dab"));
  test::write_bytes(dir / "r.json", R"({"thickness_paint": [{"at": [1]}]})");
  CHECK_THROWS_WITH(read_appliance_spec((dir / "r.json").string()), Catch::Contains("thickness_paint: every dab needs \"at\""));
  test::write_bytes(dir / "b.json", R"({"thickness": 2})");
  CHECK_THROWS_WITH(read_appliance_spec((dir / "b.json").string()), Catch::Contains("unknown key \"thickness\""));
  test::write_bytes(dir / "c.json", R"({"region": {"outline": [[0, 0], [1, 1]]}})");
  CHECK_THROWS_WITH(read_appliance_spec((dir / "c.json").string()), Catch::Contains("at least 3 points"));
  test::write_bytes(dir / "d.json", "{not json");
  CHECK_THROWS_WITH(read_appliance_spec((dir / "d.json").string()), Catch::Contains("not a JSON object"));
  // A user outline on the generated face: the piece lies within it.
  const scan::SyntheticFace face;
  ApplianceReport r;
  const Mesh solid = make_appliance(face.mesh(0.8), s, nullptr, &r);
  check_solid(solid);
  const Aabb box = bounding_box(solid);
  const Vec3 tip = r.face.frame.origin;
  CHECK(box.min.x() >= tip.x() - 30.5);
  CHECK(box.max.x() <= tip.x() + 30.5);
  CHECK(r.boundary_loops == 1);
}

TEST_CASE("full-face appliance on nefertiti.obj with default options", "[shared][appliance]") {
  const auto dir = test::shared_scans();
  if (!dir) return;
  const io::Geometry g = io::read_mesh((*dir / "nefertiti.obj").string());
  ApplianceReport r;
  const Mesh solid = make_appliance(g.mesh, ApplianceSpec{}, nullptr, &r);
  std::printf("nefertiti appliance: %zu faces, %.0f mm², %.2f ml; interior thickness p05 %.3f p95 %.3f (%.1f %% within 5 %%); "
              "edge %.3f mm; %zu loops; %zu thinned under overhangs\n",
              r.faces, r.inner_area_mm2, r.volume_mm3 / 1000, r.interior_thickness.p05, r.interior_thickness.p95,
              100 * r.interior_thickness.within_5_percent, r.rim_max_mm, r.boundary_loops, r.thinned.vertices);
  check_solid(solid);
  CHECK(r.boundary_loops >= 6);
  CHECK(r.interior_thickness.within_5_percent >= 0.95);
  CHECK(r.interior_thickness.p05 >= 0.95 * 2.0);
  CHECK(r.rim_max_mm <= 0.1);
  CHECK(r.inner_area_mm2 > 15000);
}

TEST_CASE("nefertiti.obj's full face with eye openings only: its tightly folded nostrils leave no hole in the appliance", "[shared][appliance]") {
  const auto dir = test::shared_scans();
  if (!dir) return;
  const io::Geometry g = io::read_mesh((*dir / "nefertiti.obj").string());
  ApplianceSpec s;
  s.openings = {{"eyes", {}, {}}};
  ApplianceReport r;
  const Mesh solid = make_appliance(g.mesh, s, nullptr, &r);
  check_solid(solid);
  // The test's own count of the edges: a patch with an outline and k holes, thickened, is a closed
  // surface of genus k. The outline and two eyes: genus 2 (the two slits the fill closes in the
  // nostrils, holes the cut did not make, each added one).
  const MeshInfo i = measure(solid, {false});
  REQUIRE(i.genus);
  CHECK(*i.genus == 2);
  CHECK(r.boundary_loops == 3);
  CHECK(r.stray_loops_filled >= 2);
  std::printf("nefertiti, eyes only: genus %d, %zu loops, %zu stray loops filled, %.2f ml\n", *i.genus, r.boundary_loops,
              r.stray_loops_filled, r.volume_mm3 / 1000);
}

TEST_CASE("igea.ply, a statue head at 0.45 of life size: every preset builds with default options, and a wide outline whose cut pinches", "[shared][appliance]") {
  const auto dir = test::shared_scans();
  if (!dir) return;
  const io::Geometry g = io::read_mesh((*dir / "igea.ply").string());
  for (const char* preset : {"full_face", "upper_face", "nose", "forehead", "cheek_left", "cheek_right", "chin"}) {
    ApplianceSpec spec;
    spec.region.preset = preset;
    ApplianceReport r;
    const Mesh solid = make_appliance(g.mesh, spec, nullptr, &r);
    std::printf("igea %s: scale %.2f, %.0f mm², thickness p05 %.2f p95 %.2f (%zu samples inside the band)\n", preset, r.face.scale,
                r.inner_area_mm2, r.interior_thickness.p05, r.interior_thickness.p95, r.interior_thickness.samples);
    INFO(preset);
    CHECK(r.face.scale == Approx(0.45).margin(0.01));
    check_solid(solid);
    CHECK(r.rim_max_mm <= 0.1);
  }
  // An outline as wide as the face runs through the jaw's seam (a repaired crack) and the hair's
  // ragged edge, where the cut pinches the patch (two edges touching at a point): the point is
  // split between its two sides and the solid is valid.
  ApplianceSpec wide;
  wide.region.outline = {{-31, -38}, {31, -38}, {31, 40}, {-31, 40}};
  wide.openings = {RegionShape{"eyes", {}, {}}};
  ApplianceReport r;
  const Mesh solid = make_appliance(g.mesh, wide, nullptr, &r);
  std::printf("igea, wide outline: %.0f mm², %zu edge loops\n", r.inner_area_mm2, r.boundary_loops);
  check_solid(solid);
  CHECK(r.inner_area_mm2 > 7000);
}

TEST_CASE("distance along the surface: from an edge within a fifth of an edge length, from a point within 2 %, around a bend", "[appliance][geodesic]") {
  // A 50 × 50 mm plane on a 0.5 mm grid with alternating diagonals, folded by 90° along x = 25
  // (the fold does not change distances along the surface).
  const int n = 100;
  const double step = 0.5;
  Mesh m;
  auto at = [&](double u, double v) { return u <= 25 ? Vec3(u, v, 0) : Vec3(25, v, u - 25); };
  for (int j = 0; j <= n; ++j)
    for (int i = 0; i <= n; ++i) m.vertices.push_back(at(i * step, j * step));
  auto id = [&](int i, int j) { return static_cast<std::int32_t>(j * (n + 1) + i); };
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) {
      if ((i + j) % 2) {
        m.triangles.push_back({id(i, j), id(i + 1, j), id(i + 1, j + 1)});
        m.triangles.push_back({id(i, j), id(i + 1, j + 1), id(i, j + 1)});
      } else {
        m.triangles.push_back({id(i, j), id(i + 1, j), id(i, j + 1)});
        m.triangles.push_back({id(i + 1, j), id(i + 1, j + 1), id(i, j + 1)});
      }
    }
  std::vector<std::int32_t> edge;
  for (int j = 0; j <= n; ++j) edge.push_back(id(0, j));
  const std::vector<double> from_edge = geodesic_distance(m, edge);
  double worst_edge = 0;
  for (int j = 0; j <= n; ++j)
    for (int i = 0; i <= n; ++i) worst_edge = std::max(worst_edge, std::abs(from_edge[static_cast<std::size_t>(id(i, j))] - i * step));
  CHECK(worst_edge < 0.2 * step);
  const std::vector<double> from_point = geodesic_distance(m, {id(20, 50)});
  double worst_point = 0;
  for (int j = 0; j <= n; ++j)
    for (int i = 0; i <= n; ++i) {
      const double truth = std::hypot((i - 20) * step, (j - 50) * step);  // unfolded plane
      if (truth > 5) worst_point = std::max(worst_point, std::abs(from_point[static_cast<std::size_t>(id(i, j))] - truth) / truth);
    }
  std::printf("geodesic: from an edge, worst error %.3f mm; from a point, worst %.2f %% (an edge-graph search is up to 8 %%)\n", worst_edge,
              100 * worst_point);
  CHECK(worst_point < 0.02);
}
