#include "tracecast/scan/simulator.h"

#include <cmath>

#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/random.h"

namespace tracecast::scan {

namespace {

constexpr double kPi = 3.14159265358979323846;

//! The project's generator (random.h), with the simulator's own normal draw (Box–Muller on
//! 1 − u1 and u2: the simulated scans of the tests and benchmarks were made with it).
struct Rng : SplitMix64 {
  double normal() {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * kPi * u2);
  }
};

Eigen::Matrix3d random_rotation(Rng& rng) {
  Eigen::Quaterniond q(rng.normal(), rng.normal(), rng.normal(), rng.normal());
  q.normalize();
  return q.toRotationMatrix();
}

}  // namespace

std::vector<ScanView> views_around(const Aabb& box, const std::vector<double>& yaw_deg, double distance) {
  const Vec3 c = 0.5 * (box.min + box.max);
  std::vector<ScanView> v;
  for (double yaw : yaw_deg) {
    const double a = yaw * kPi / 180.0;
    v.push_back({c + distance * Vec3(std::sin(a), 0, std::cos(a)), c, Vec3::UnitY()});
  }
  return v;
}

namespace {

//! Uneven density: a smooth random field of a few Gaussian blobs over the object's box.
class Thinning {
 public:
  Thinning(const Aabb& box, Rng& rng) {
    for (int i = 0; i < 6; ++i)
      blobs_.push_back({box.min + Vec3(rng.uniform(), rng.uniform(), rng.uniform()).cwiseProduct(box.extent()),
                        0.15 * box.extent().norm() * (0.5 + rng.uniform())});
  }
  //! 0 … 1: how strongly the density falls at p.
  double operator()(const Vec3& p) const {
    double f = 0;
    for (const Blob& b : blobs_) f = std::max(f, std::exp(-0.5 * (p - b.c).squaredNorm() / (b.r * b.r)));
    return f;
  }

 private:
  struct Blob {
    Vec3 c;
    double r;
  };
  std::vector<Blob> blobs_;
};

//! The rays of one view: one a pixel of the image plane that covers the object's box.
void view_rays(const ScanView& v, const Aabb& box, double spacing_mm, std::vector<Vec3>& origins, std::vector<Vec3>& dirs) {
  const Vec3 fwd = (v.target_mm - v.eye_mm).normalized();
  const Vec3 right = fwd.cross(v.up).normalized();
  const Vec3 up = right.cross(fwd);
  const double dist = (v.target_mm - v.eye_mm).norm();
  // Image plane at unit distance; its pixel pitch maps to spacing_mm at the target.
  const double pitch = spacing_mm / dist;
  double umin = 1e9, umax = -1e9, vmin = 1e9, vmax = -1e9;
  for (int k = 0; k < 8; ++k) {
    const Vec3 corner((k & 1) ? box.max.x() : box.min.x(), (k & 2) ? box.max.y() : box.min.y(), (k & 4) ? box.max.z() : box.min.z());
    const Vec3 d = corner - v.eye_mm;
    const double z = d.dot(fwd);
    if (z <= 0) throw InputError("scan simulator: a view's camera is inside or behind the object");
    umin = std::min(umin, d.dot(right) / z);
    umax = std::max(umax, d.dot(right) / z);
    vmin = std::min(vmin, d.dot(up) / z);
    vmax = std::max(vmax, d.dot(up) / z);
  }
  const auto nu = static_cast<long>((umax - umin) / pitch) + 1, nv = static_cast<long>((vmax - vmin) / pitch) + 1;
  if (static_cast<double>(nu) * nv > 4e7) throw InputError("scan simulator: spacing too fine (over 40 M rays a view)");
  origins.assign(static_cast<std::size_t>(nu * nv), v.eye_mm);
  dirs.clear();
  dirs.reserve(static_cast<std::size_t>(nu * nv));
  for (long j = 0; j < nv; ++j)
    for (long i = 0; i < nu; ++i) dirs.push_back((fwd + (umin + i * pitch) * right + (vmin + j * pitch) * up).normalized());
}

//! What view `vi` returns: its hits not too oblique, with noise along the ray, thinned.
void scan_view(const SurfaceQuery& query, const Aabb& box, std::size_t vi, const ScanView& v, const SimulatorOptions& o,
               const Thinning& thinning, SimulatedScan& out) {
  std::vector<Vec3> origins, dirs;
  view_rays(v, box, o.spacing_mm, origins, dirs);
  const double cos_max = std::cos(o.max_incidence_deg * kPi / 180.0);
  const std::vector<RayHit> hits = query.cast(origins, dirs);
  for (std::size_t r = 0; r < hits.size(); ++r) {
    if (!hits[r].hit) continue;
    const double c = std::abs(hits[r].normal.dot(dirs[r]));
    if (c < cos_max) continue;
    // Each ray's own draws (from the seed, the view and the ray): a ray that grazes an edge and
    // is kept or not by a hair changes no other point's noise.
    Rng ray{{o.seed ^ (static_cast<std::uint64_t>(vi + 1) << 40) ^ (static_cast<std::uint64_t>(r) * 0x9E3779B97F4A7C15ull)}};
    const Vec3 p = v.eye_mm + (hits[r].t + o.noise_mm * ray.normal()) * dirs[r];
    if (o.density_variation > 0 && ray.uniform() < o.density_variation * thinning(p)) continue;
    out.cloud.points.push_back(p);
    if (o.normals) {
      const Vec3 n = hits[r].normal.dot(dirs[r]) < 0 ? hits[r].normal : Vec3(-hits[r].normal);
      out.cloud.normals.push_back(n.normalized());
    }
    out.view.push_back(static_cast<std::uint16_t>(vi));
  }
}

//! Removes the points within `hole_radius_mm` of `holes` points drawn at random.
void cut_holes(SimulatedScan& out, const SimulatorOptions& o, Rng& rng) {
  std::vector<Vec3> centres;
  for (std::size_t h = 0; h < o.holes; ++h) centres.push_back(out.cloud.points[rng.next() % out.cloud.points.size()]);
  std::size_t w = 0;
  for (std::size_t i = 0; i < out.cloud.points.size(); ++i) {
    bool keep = true;
    for (const Vec3& c : centres) keep = keep && (out.cloud.points[i] - c).norm() > o.hole_radius_mm;
    if (!keep) continue;
    out.cloud.points[w] = out.cloud.points[i];
    if (o.normals) out.cloud.normals[w] = out.cloud.normals[i];
    out.view[w] = out.view[i];
    ++w;
  }
  out.cloud.points.resize(w);
  if (o.normals) out.cloud.normals.resize(w);
  out.view.resize(w);
}

//! Adds outliers scattered uniformly in the data's box grown by 30 %.
void add_outliers(SimulatedScan& out, const SimulatorOptions& o, Rng& rng) {
  const Aabb data = bounding_box(out.cloud.points);
  const Vec3 lo = data.min - 0.15 * data.extent(), size = 1.3 * data.extent();
  const auto n = static_cast<std::size_t>(std::llround(o.outlier_fraction * out.cloud.points.size()));
  for (std::size_t i = 0; i < n; ++i) {
    out.cloud.points.push_back(lo + Vec3(rng.uniform(), rng.uniform(), rng.uniform()).cwiseProduct(size));
    if (o.normals) out.cloud.normals.push_back(random_rotation(rng).col(0));
    out.outlier.push_back(1);
    out.view.push_back(0);
  }
}

}  // namespace

SimulatedScan simulate_scan(const Mesh& truth, const SimulatorOptions& o) {
  if (!(o.spacing_mm > 0) || !(o.noise_mm >= 0) || !(o.outlier_fraction >= 0 && o.outlier_fraction < 1) ||
      !(o.density_variation >= 0 && o.density_variation <= 1))
    throw InputError("scan simulator: spacing must be positive, noise non-negative, fractions within 0-1");
  const SurfaceQuery query(truth);
  const Aabb box = bounding_box(truth);
  std::vector<ScanView> views = o.views;
  if (views.empty()) views = views_around(box, {0.0});
  Rng rng{{o.seed}};
  const Thinning thinning(box, rng);
  SimulatedScan out;
  for (std::size_t vi = 0; vi < views.size(); ++vi) scan_view(query, box, vi, views[vi], o, thinning, out);
  if (out.cloud.points.empty()) throw InputError("scan simulator: no view sees the surface");
  if (o.holes > 0) cut_holes(out, o, rng);
  out.outlier.assign(out.cloud.points.size(), 0);
  if (o.outlier_fraction > 0) add_outliers(out, o, rng);
  if (o.random_pose) {
    const double size = box.extent().norm();
    out.pose.linear() = random_rotation(rng);
    out.pose.translation() = size * Vec3(2 * rng.uniform() - 1, 2 * rng.uniform() - 1, 2 * rng.uniform() - 1);
  }
  out.to_mm = millimetres_per(o.unit);
  for (Vec3& p : out.cloud.points) p = out.pose * p / out.to_mm;
  for (Vec3& n : out.cloud.normals) n = out.pose.linear() * n;
  return out;
}

}  // namespace tracecast::scan
