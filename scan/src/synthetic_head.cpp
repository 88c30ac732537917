// The synthetic head (see synthetic_head.h): ellipsoids for the skull, face and neck, hollows for
// the eyes and the mouth, and ears built from a rim (helix), a plate, a ridge (antihelix) and a
// lobe, joined by smooth unions so that the surface has no creases sharper than a real head's.
#include "tracecast/scan/synthetic_head.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>

#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/level_set.h"

namespace tracecast::scan {

namespace {

constexpr double kPi = 3.14159265358979323846;

//! About the distance to an ellipsoid (exact on a sphere; a bound that keeps its sign elsewhere).
double ellipsoid(const Vec3& p, const Vec3& c, const Vec3& r) {
  const Vec3 q = p - c;
  const double k0 = q.cwiseQuotient(r).norm(), k1 = q.cwiseQuotient(r.cwiseProduct(r)).norm();
  return k1 > 0 ? k0 * (k0 - 1) / k1 : -r.minCoeff();
}

//! About the distance, in a plane, from (u, v) to the ellipse of semi-axes (a, b) centred at the
//! origin: the elliptic radius's excess over its gradient (negative inside).
double ellipse(double u, double v, double a, double b) {
  const double e = std::hypot(u / a, v / b);
  const double g = std::hypot(u / (a * a), v / (b * b)) / std::max(e, 1e-9);
  return (e - 1) / std::max(g, 1e-9);
}

}  // namespace

SyntheticHead::SyntheticHead(const HeadParams& params) : p_(params) {
  if (p_.ears != "both" && p_.ears != "left" && p_.ears != "right" && p_.ears != "none")
    throw InputError("synthetic head: ears must be both, left, right or none (not \"" + p_.ears + "\")");
}

double SyntheticHead::skull(const Vec3& p) const {
  const double hw = 0.5 * p_.width_mm, hl = 0.5 * p_.length_mm;
  double f = ellipsoid(p, {0, 30, -10}, {hw, 105, hl});
  f = smooth_min(f, ellipsoid(p, {0, -35, 12}, {0.8 * hw, 78, 0.8 * hl}), 14);                         // face and jaw
  f = smooth_min(f, std::max({std::hypot(p.x(), p.z() + 15) - 0.35 * p_.width_mm, -(p.y() + 170), p.y()}), 12);  // neck, cut flat
  f = smooth_min(f, ellipsoid(p, {0, -18, 0.8 * hl + 12}, {12, 24, 16}), 4);                            // nose
  for (double s : {1.0, -1.0}) f = smooth_max(f, -ellipsoid(p, {s * 31, 10, 0.8 * hl + 3}, {15, 9, 9}), 4);  // eye sockets
  f = smooth_max(f, -ellipsoid(p, {0, -52, 0.8 * hl + 4}, {21, 2.2, 8}), 1.5);                          // mouth
  return f;
}

double SyntheticHead::ear(const Vec3& p, int side) const {
  const double s = side, th = p_.ear_protrusion_deg * kPi / 180, k = p_.ear_length_mm / 62.0;
  const Vec3 root(s * (0.46 * p_.width_mm), 0, -12);
  const Vec3 q = p - root;
  if (q.norm() > 70 * k) return q.norm() - 50 * k;
  const Vec3 U(0, 1, 0), V(s * std::sin(th), 0, -std::cos(th)), W(s * std::cos(th), 0, std::sin(th));
  const double u = q.dot(U) / k, v = q.dot(V) / k, w = q.dot(W) / k;  // in a 62 mm ear's units
  const double rim = ellipse(u - 3, v - 15, 29, 16);
  const double helix = std::hypot(rim, w - 1.5) - 3.0;
  const double plate = std::max(std::abs(w + 0.4) - 1.5, rim + 1.0);
  const double ridge = std::hypot(ellipse(u - 5, v - 13, 16, 8), w - 1.0) - 1.8;
  const double lobe = ellipsoid({u, v, w}, {-26, 9, 0}, {9, 8, 3.5});
  return k * smooth_min(smooth_min(helix, plate, 1.5), smooth_min(ridge, lobe, 2.0), 1.5);
}

double SyntheticHead::at(const Vec3& p) const {
  double f = skull(p);
  if (p_.ears == "both" || p_.ears == "left") f = smooth_min(f, ear(p, 1), 3);
  if (p_.ears == "both" || p_.ears == "right") f = smooth_min(f, ear(p, -1), 3);
  return f;
}

std::vector<double> SyntheticHead::field(const std::vector<Vec3>& points) const {
  std::vector<double> out(points.size());
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, points.size(), 4096), [&](const tbb::blocked_range<std::size_t>& r) {
    for (std::size_t i = r.begin(); i != r.end(); ++i) out[i] = at(points[i]);
  });
  return out;
}

Aabb SyntheticHead::bounds() const {
  const double reach = 0.46 * p_.width_mm + 45 * p_.ear_length_mm / 62.0;
  Aabb b;
  b.add(Vec3(-reach, -175, -0.5 * p_.length_mm - 20));
  b.add(Vec3(reach, 140, 0.5 * p_.length_mm + 45));
  return b;
}

Mesh SyntheticHead::mesh(double spacing_mm) const {
  return level_set_surface([this](const std::vector<Vec3>& pts) { return field(pts); }, bounds(), spacing_mm);
}

}  // namespace tracecast::scan
