// scan/: the simulator and the reconstruction, measured against exact ground truth.
#include <catch2/catch.hpp>

#include "tracecast/mesh/open3d.h"

#include <cstdio>

#include "fixtures.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/scan/reconstruct.h"
#include "tracecast/scan/register.h"
#include "tracecast/scan/rgbd.h"
#include "tracecast/scan/simulator.h"
#include "tracecast/scan/synthetic_face.h"

using namespace tracecast;
using namespace tracecast::scan;

namespace {
const Mesh& truth() {
  static const Mesh m = SyntheticFace().mesh(0.25);
  return m;
}
}  // namespace

TEST_CASE("simulator: points lie on the truth within the noise, in the given pose and unit", "[scan][simulator]") {
  SimulatorOptions o;
  o.spacing_mm = 1.0;
  o.noise_mm = 0.05;
  o.random_pose = true;
  o.unit = Unit::Metre;
  o.seed = 5;
  const SimulatedScan s = simulate_scan(truth(), o);
  REQUIRE(s.cloud.size() > 10000);
  CHECK(s.to_mm == 1000.0);
  CHECK(bounding_box(s.cloud).extent().maxCoeff() < 1.0);  // metres
  std::vector<Vec3> back;
  for (const Vec3& p : s.cloud.points) back.push_back(s.to_face(p));
  const DistanceStats d = summarize(SurfaceQuery(truth()).distances(back));
  // Noise |N(0, σ)| is along the ray (mean σ·√(2/π) ≈ 0.040 mm); the distance to the surface is
  // that times the cosine of the incidence angle (≥ cos 75°).
  const double along = 0.05 * std::sqrt(2 / 3.14159265);
  CHECK(d.mean < along);
  CHECK(d.mean > 0.4 * along);
  CHECK(d.p95 < 1.96 * 0.05 + 0.005);
  // Without noise every point is on the surface (to float precision of the distance query).
  o.noise_mm = 0;
  const SimulatedScan exact = simulate_scan(truth(), o);
  back.clear();
  for (const Vec3& p : exact.cloud.points) back.push_back(exact.to_face(p));
  CHECK(summarize(SurfaceQuery(truth()).distances(back)).max < 1e-3);
}

TEST_CASE("ray casting hits the nearest face with its normal", "[scan][simulator]") {
  const Mesh c = test::cube(10);
  const SurfaceQuery q(c);
  const auto hits = q.cast({Vec3(5, 5, 50), Vec3(5, 5, -50), Vec3(50, 50, 50), Vec3(5, 5, 5)},
                           {Vec3(0, 0, -1), Vec3(0, 0, 1), Vec3(0, 0, -1), Vec3(1, 0, 0)});
  REQUIRE(hits[0].hit);
  CHECK(hits[0].t == Approx(40));
  CHECK(hits[0].normal.z() == Approx(1));
  REQUIRE(hits[1].hit);
  CHECK(hits[1].t == Approx(50));
  CHECK_FALSE(hits[2].hit);
  REQUIRE(hits[3].hit);  // from inside
  CHECK(hits[3].t == Approx(5));
  CHECK(q.distances({Vec3(5, 5, 13)})[0] == Approx(3).margin(1e-5));
}

TEST_CASE("simulator: outliers, holes and grazing cut-off", "[scan][simulator]") {
  SimulatorOptions o;
  o.spacing_mm = 1.0;
  o.outlier_fraction = 0.01;
  o.holes = 3;
  o.hole_radius_mm = 6;
  const SimulatedScan s = simulate_scan(truth(), o);
  const auto outliers = static_cast<std::size_t>(std::count(s.outlier.begin(), s.outlier.end(), 1));
  CHECK(outliers == static_cast<std::size_t>(std::llround(0.01 * (s.cloud.size() - outliers))));
  SimulatorOptions plain = o;
  plain.holes = 0;
  plain.outlier_fraction = 0;
  const std::size_t full = simulate_scan(truth(), plain).cloud.size();
  CHECK(s.cloud.size() - outliers < full);  // holes removed points
  CHECK(s.cloud.size() - outliers > full - 3 * 3.2 * 36 / (1.0 * 1.0) - 100);
}

TEST_CASE("single-view scan, 0.05 mm noise, 1 % outliers: within 0.1 mm of the truth at p95", "[scan][reconstruct][slow]") {
  SimulatorOptions o;
  o.spacing_mm = 0.5;
  o.noise_mm = 0.05;
  o.outlier_fraction = 0.01;
  o.seed = 11;
  const SimulatedScan s = simulate_scan(truth(), o);
  ReconstructOptions ro;
  ScanReport r;
  const Mesh surface = reconstruct_surface(s.cloud, ro, &r);
  const DistanceStats to_truth = summarize(SurfaceQuery(truth()).distances(surface.vertices));
  std::printf("single view: %zu points (%zu outliers removed: %zu statistical, %zu radius, %zu crop), spacing %.3f mm, "
              "depth %d; surface %zu faces; to truth mean %.4f p95 %.4f max %.4f mm; input to surface p95 %.4f mm; "
              "invented %.2f of %.0f mm2\n",
              r.points_in, r.removed_statistical + r.removed_radius + r.removed_crop, r.removed_statistical,
              r.removed_radius, r.removed_crop, r.median_spacing_mm, r.poisson_depth, r.faces, to_truth.mean,
              to_truth.p95, to_truth.max, r.accuracy.p95, r.invented_area_mm2, r.area_mm2);
  CHECK(to_truth.p95 <= 0.1);
  CHECK(r.invented_area_mm2 <= 0.01 * r.area_mm2);
  const MeshInfo info = measure(surface, {false});
  CHECK(info.edge_manifold);
  CHECK(info.components == 1);
  // The same scan gives the same surface, exactly, again and on one thread (the run's cache and
  // the batch's outputs rely on it).
  const Mesh again = reconstruct_surface(s.cloud, ro);
  Mesh one_thread;
  {
    const OpenMPSingleThread one;
    one_thread = reconstruct_surface(s.cloud, ro);
  }
  for (const Mesh* m : {&again, static_cast<const Mesh*>(&one_thread)}) {
    CHECK(m->vertices == surface.vertices);
    CHECK(m->triangles == surface.triangles);
  }
}

TEST_CASE("bad scans are clear input errors", "[scan][reconstruct]") {
  PointCloud empty;
  CHECK_THROWS_AS(reconstruct_surface(empty, {}), InputError);
  PointCloud one;
  one.points = {Vec3(1, 2, 3)};
  CHECK_THROWS_WITH(reconstruct_surface(one, {}), Catch::Contains("too few points"));
  PointCloud nan;
  for (int i = 0; i < 200; ++i) nan.points.push_back(Vec3::Constant(std::nan("")));
  CHECK_THROWS_AS(reconstruct_surface(nan, {}), InputError);
  // A tiny object (a 5 mm blob) is no face.
  SimulatorOptions o;
  o.spacing_mm = 0.05;
  const Mesh pebble = test::uv_sphere(2.5, 16, 32);
  const SimulatedScan s = simulate_scan(pebble, o);
  CHECK_THROWS_WITH(reconstruct_surface(s.cloud, {}), Catch::Contains("no face-sized structure"));
}

TEST_CASE("crop specifications parse", "[scan]") {
  CHECK(parse_crop("auto")->kind == CropKind::Auto);
  CHECK(parse_crop("none")->kind == CropKind::None);
  const auto b = parse_crop("box:10,0,0,-10,5,5");
  REQUIRE(b);
  CHECK(b->a == Vec3(-10, 0, 0));
  CHECK(parse_crop("sphere:0,0,0,100")->radius_mm == 100);
  CHECK(parse_crop("plane:0,0,0,0,0,2")->b == Vec3(0, 0, 1));
  CHECK_FALSE(parse_crop("sphere:0,0,0,-1"));
  CHECK_FALSE(parse_crop("box:1,2,3"));
  CHECK_FALSE(parse_crop("box:1,2,3,4,5,x"));
  CHECK_FALSE(parse_crop("cylinder:1"));
}

namespace {
//! Three views of the truth from yaw -40°, 0°, +40°, each kept to a band across the face so that
//! neighbours overlap by about 30 %, each in its own random pose. Returns the views (in their
//! poses) and each view's ground-truth pose (face → view).
std::vector<PointCloud> three_views(std::vector<Eigen::Isometry3d>& truth_pose, std::uint64_t seed) {
  const double bands[3][2] = {{-75, -12}, {-32, 32}, {12, 75}};
  const double yaw[3] = {-40, 0, 40};
  std::vector<PointCloud> views;
  truth_pose.clear();
  for (int v = 0; v < 3; ++v) {
    SimulatorOptions o;
    o.spacing_mm = 0.6;
    o.noise_mm = 0.03;
    o.views = views_around(bounding_box(truth()), {yaw[v]});
    o.seed = seed + static_cast<std::uint64_t>(v);
    const SimulatedScan s = simulate_scan(truth(), o);
    PointCloud band;
    for (const Vec3& p : s.cloud.points)
      if (p.x() >= bands[v][0] && p.x() <= bands[v][1]) band.points.push_back(p);
    // A random pose per view (a deterministic function of the seed).
    Eigen::Isometry3d pose = Eigen::Isometry3d::Identity();
    pose.linear() = (Eigen::AngleAxisd(0.7 * (v + 1) + 0.1 * double(seed), Vec3(1, 2, 3).normalized()) *
                     Eigen::AngleAxisd(-0.4 * v, Vec3::UnitY()))
                        .toRotationMatrix();
    pose.translation() = Vec3(100.0 * v - 50, 30.0 * v, -200.0 * v);
    for (Vec3& p : band.points) p = pose * p;
    views.push_back(band);
    truth_pose.push_back(pose);
  }
  return views;
}
}  // namespace

TEST_CASE("three partial views in random poses register to 0.1 mm and merge without a seam", "[scan][register][slow]") {
  std::vector<Eigen::Isometry3d> truth_pose;
  const std::vector<PointCloud> views = three_views(truth_pose, 3);
  const Registration reg = register_views(views);
  REQUIRE(reg.poses.size() == 3);
  double worst_rms = 0, worst_max = 0;
  for (std::size_t v = 1; v < 3; ++v) {
    // True map from view v's frame to view 0's frame.
    const Eigen::Isometry3d expected = truth_pose[0] * truth_pose[v].inverse();
    double sq = 0, mx = 0;
    for (const Vec3& p : views[v].points) {
      const Vec3 got = reg.poses[v].topLeftCorner<3, 3>() * p + reg.poses[v].topRightCorner<3, 1>();
      const double e = (got - expected * p).norm();
      sq += e * e;
      mx = std::max(mx, e);
    }
    worst_rms = std::max(worst_rms, std::sqrt(sq / views[v].size()));
    worst_max = std::max(worst_max, mx);
  }
  for (const auto& p : reg.pairs)
    std::printf("register: views %zu-%zu overlap %.0f %%, rms %.3f mm%s\n", p.source + 1, p.target + 1, 100 * p.fitness,
                p.rms_mm, p.used ? "" : " (not used)");
  std::printf("register: worst view error against the true poses: rms %.4f mm, max %.4f mm\n", worst_rms, worst_max);
  CHECK(worst_rms <= 0.1);
  CHECK(worst_max <= 0.2);  // the overlaps are inside the views: no seam above 0.2 mm

  // The merged scan reconstructs to the truth like a single view does.
  const PointCloud merged = merge_views(views, reg);
  ScanReport r;
  const Mesh surface = reconstruct_surface(merged, {}, &r);
  std::vector<Vec3> in_face;
  for (const Vec3& p : surface.vertices) in_face.push_back(truth_pose[0].inverse() * p);
  const DistanceStats d = summarize(SurfaceQuery(truth()).distances(in_face));
  std::printf("register: merged surface to truth p95 %.4f mm\n", d.p95);
  CHECK(d.p95 <= 0.1);
}

TEST_CASE("views that do not overlap cannot be registered: a clear processing error", "[scan][register][slow]") {
  std::vector<Eigen::Isometry3d> truth_pose;
  std::vector<PointCloud> views = three_views(truth_pose, 5);
  // Keep only the far left and far right bands' outer halves: no overlap.
  for (int v : {0, 2}) {
    PointCloud keep;
    for (const Vec3& p : views[static_cast<std::size_t>(v)].points) {
      const Vec3 f = truth_pose[static_cast<std::size_t>(v)].inverse() * p;
      if (std::abs(f.x()) > 45) keep.points.push_back(p);
    }
    views[static_cast<std::size_t>(v)] = keep;
  }
  views.erase(views.begin() + 1);
  CHECK_THROWS_AS(register_views(views), ProcessingError);
}

namespace {
//! The sequences of the RGB-D tests: the default camera, seed 9, with or without poses.
RgbdSimOptions rgbd_sim(bool poses) {
  RgbdSimOptions o;
  o.poses = poses;
  o.seed = 9;
  return o;
}
}  // namespace

TEST_CASE("RGB-D sequence with poses: TSDF surface within 0.5 mm of the truth at p95", "[scan][rgbd][slow]") {
  const auto dir = test::temp_dir("rgbd-posed");
  const auto manifest = write_simulated_rgbd(truth(), dir, rgbd_sim(true));
  const RgbdSequence seq = read_rgbd_manifest(manifest);
  REQUIRE(seq.frames.size() == 24);
  RgbdReport r;
  const Mesh surface = integrate_rgbd(seq, {}, &r);
  const DistanceStats d = summarize(SurfaceQuery(truth()).distances(surface.vertices));
  std::printf("rgbd (poses given): %zu frames, %zu faces, to truth mean %.3f p95 %.3f max %.3f mm\n", r.frames, r.faces,
              d.mean, d.p95, d.max);
  CHECK(r.posed_frames == 24);
  CHECK(d.p95 <= 0.5);
  CHECK(r.area_mm2 > 0.8 * measure(truth(), {false}).area_mm2);
}

TEST_CASE("RGB-D sequence without poses: odometry places the frames", "[scan][rgbd][slow]") {
  const auto dir = test::temp_dir("rgbd-odometry");
  const auto manifest = write_simulated_rgbd(truth(), dir, rgbd_sim(false));
  RgbdReport r;
  const Mesh surface = integrate_rgbd(read_rgbd_manifest(manifest), {}, &r);
  CHECK(r.odometry_frames == 23);
  // The result is in the first camera's frame: bring it back with that camera's true pose, read
  // from the same sequence generated with poses.
  const RgbdSequence with = read_rgbd_manifest(write_simulated_rgbd(truth(), test::temp_dir("rgbd-first"), rgbd_sim(true)));
  const Eigen::Matrix4d P = *with.frames[0].pose;
  std::vector<Vec3> world;
  for (const Vec3& v : surface.vertices) world.push_back(P.topLeftCorner<3, 3>() * v + P.topRightCorner<3, 1>());
  const DistanceStats d = summarize(SurfaceQuery(truth()).distances(world));
  std::printf("rgbd (odometry): %zu frames, %zu faces, to truth mean %.3f p95 %.3f max %.3f mm\n", r.frames, r.faces,
              d.mean, d.p95, d.max);
  CHECK(d.p95 <= 0.5);
}

TEST_CASE("RGB-D manifests: clear errors", "[scan][rgbd]") {
  const auto dir = test::temp_dir("rgbd-bad");
  test::write_bytes(dir / "a.json", "{\"frames\": []}");
  CHECK_THROWS_WITH(read_rgbd_manifest(dir / "a.json"), Catch::Contains("intrinsics"));
  test::write_bytes(dir / "b.json",
                    R"({"intrinsics":{"width":4,"height":4,"fx":1,"fy":1,"cx":1,"cy":1},"frames":[{"color":"c.png","depth":"d.png"}]})");
  const RgbdSequence s = read_rgbd_manifest(dir / "b.json");
  CHECK_THROWS_WITH(integrate_rgbd(s), Catch::Contains("image not found"));
  test::write_bytes(dir / "c.png", "not a png");
  test::write_bytes(dir / "d.png", "not a png");
  CHECK_THROWS_AS(integrate_rgbd(s), InputError);
  test::write_bytes(dir / "e.json", "[1,2]");
  CHECK_THROWS_WITH(read_rgbd_manifest(dir / "e.json"), Catch::Contains("not a JSON object"));
}
