#include "tracecast/scan/synthetic_face.h"

#include <cmath>

#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/random.h"

namespace tracecast::scan {

namespace {
constexpr double kPi = 3.14159265358979323846;

//! v varied by up to ±rel (uniform).
double vary(SplitMix64& r, double v, double rel) { return v * (1.0 + rel * (2.0 * r.uniform() - 1.0)); }

double smoothstep(double e0, double e1, double x) {
  const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
  return t * t * (3 - 2 * t);
}
}  // namespace

SyntheticFace::SyntheticFace(const FaceParams& params) : p_(params) {
  if (!(p_.width_mm > 0 && p_.height_mm > 0 && p_.depth_mm > 0 && p_.wrinkle_period_mm > 0))
    throw InputError("synthetic face: sizes must be positive");
  SplitMix64 r{p_.seed};
  const double rel = p_.seed == 0 ? 0.0 : 0.15;
  auto v = [&](double x) { return rel == 0.0 ? x : vary(r, x, rel); };
  // Features in units of the canonical 150 × 210 mm face, scaled to the requested size.
  const double sx = p_.width_mm / 150.0, sy = p_.height_mm / 210.0;
  const double nose = p_.nose_mm / 24.0;
  const double eye_x = v(31), eye_y = v(22);
  const std::vector<Bump> canonical = {
      {0, v(8), v(6.5), v(20), v(13) * nose},            // nose bridge
      {0, v(-12), v(8.5), v(8), v(13) * nose},           // nose tip
      {v(12.5), v(-17), v(5.5), v(5), v(5.5) * nose},    // left ala
      {-v(12.5), v(-17), v(5.5), v(5), v(5.5) * nose},   // right ala
      {eye_x, eye_y, v(13), v(8.5), -v(11)},             // eye sockets
      {-eye_x, eye_y, v(13), v(8.5), -v(11)},
      {v(31), v(36), v(17), v(4.5), v(5)},               // brow ridges
      {-v(31), v(36), v(17), v(4.5), v(5)},
      {v(42), v(-14), v(19), v(17), v(6)},               // cheekbones
      {-v(42), v(-14), v(19), v(17), v(6)},
      {0, v(-38), v(17), v(3.8), v(4.5)},                // upper lip
      {0, v(-47), v(14), v(3.8), v(4.5)},                // lower lip
      {0, v(-42.5), v(20), v(1.3), -v(2.0)},             // mouth line
      {0, v(-76), v(17), v(10), v(6)},                   // chin
      {0, v(-62), v(14), v(5), -v(2.5)},                 // chin crease
  };
  std::vector<Bump> features = canonical;
  if (p_.symmetric)  // the right-hand member of each pair mirrors the left-hand one
    for (std::size_t k : {3u, 5u, 7u, 9u}) features[k] = {-features[k - 1].x, features[k - 1].y, features[k - 1].sx, features[k - 1].sy, features[k - 1].h};
  for (Bump b : features) {
    b.x *= sx;
    b.sx *= sx;
    b.y *= sy;
    b.sy *= sy;
    bumps_.push_back(b);
  }
  forehead_y_ = 45.0 * sy;
  if (p_.crease_mm > 0)  // nasolabial folds from beside the nose's wings to past the mouth's corners; mouth corners
    for (double side : {1.0, -1.0}) {
      creases_.push_back({Eigen::Vector2d(side * 17 * sx, -13 * sy), Eigen::Vector2d(side * 30 * sx, -50 * sy)});
      creases_.push_back({Eigen::Vector2d(side * 19 * sx, -42.5 * sy), Eigen::Vector2d(side * 26 * sx, -45 * sy)});
    }
}

bool SyntheticFace::inside(double x, double y) const {
  const double a = 0.5 * p_.width_mm, b = 0.5 * p_.height_mm;
  return (x / a) * (x / a) + (y / b) * (y / b) <= 1.0;
}

double SyntheticFace::height(double x, double y) const {
  const double a = 0.5 * p_.width_mm, b = 0.5 * p_.height_mm;
  // Cap of an ellipsoid, flattened towards the rim so the outline meets the cap smoothly.
  const double r2 = std::min((x / a) * (x / a) + (y / b) * (y / b), 1.0);
  double z = p_.depth_mm * std::sqrt(1.0 - 0.85 * r2);
  for (const Bump& k : bumps_) {
    const double dx = (x - k.x) / k.sx, dy = (y - k.y) / k.sy;
    z += k.h * std::exp(-0.5 * (dx * dx + dy * dy));
  }
  for (const Crease& c : creases_) {
    const Eigen::Vector2d ab = c.b - c.a, q(x, y);
    const double t = std::clamp((q - c.a).dot(ab) / ab.squaredNorm(), 0.0, 1.0);
    const double d = (c.a + t * ab - q).norm() / p_.crease_width_mm;
    z -= p_.crease_mm * std::exp(-0.5 * d * d) * smoothstep(0.0, 0.2, t) * smoothstep(1.0, 0.8, t);
  }
  if (p_.wrinkle_mm > 0) {
    // Horizontal forehead wrinkles fading in above the brows and out towards the temples.
    const double fade = smoothstep(forehead_y_, forehead_y_ + 12, y) * (1.0 - smoothstep(0.25 * a, 0.55 * a, std::abs(x)));
    z += p_.wrinkle_mm * fade * std::sin(2 * kPi * y / p_.wrinkle_period_mm + (p_.symmetric ? 0.0 : 0.02 * x));
  }
  return z;
}

Vec3 SyntheticFace::normal(double x, double y) const {
  const double h = 1e-4;
  const double dzdx = (height(x + h, y) - height(x - h, y)) / (2 * h);
  const double dzdy = (height(x, y + h) - height(x, y - h)) / (2 * h);
  return Vec3(-dzdx, -dzdy, 1.0).normalized();
}

Mesh SyntheticFace::mesh(double spacing) const {
  if (!(spacing > 0.01)) throw InputError("synthetic face: grid spacing must be above 0.01 mm");
  const double a = 0.5 * p_.width_mm, b = 0.5 * p_.height_mm;
  const int nx = static_cast<int>(std::ceil(2 * a / spacing)), ny = static_cast<int>(std::ceil(2 * b / spacing));
  if (static_cast<double>(nx) * ny > 5e7) throw InputError("synthetic face: grid spacing too fine (over 50 M vertices)");
  Mesh m;
  std::vector<std::int32_t> index(static_cast<std::size_t>(nx + 1) * (ny + 1), -1);
  auto gx = [&](int i) { return -a + 2 * a * i / nx; };
  auto gy = [&](int j) { return -b + 2 * b * j / ny; };
  for (int j = 0; j <= ny; ++j)
    for (int i = 0; i <= nx; ++i)
      if (inside(gx(i), gy(j))) {
        index[static_cast<std::size_t>(j) * (nx + 1) + i] = static_cast<std::int32_t>(m.vertices.size());
        m.vertices.push_back(point(gx(i), gy(j)));
      }
  auto at = [&](int i, int j) { return index[static_cast<std::size_t>(j) * (nx + 1) + i]; };
  for (int j = 0; j < ny; ++j)
    for (int i = 0; i < nx; ++i) {
      const std::int32_t v00 = at(i, j), v10 = at(i + 1, j), v01 = at(i, j + 1), v11 = at(i + 1, j + 1);
      // Alternate the diagonal so the grid has no directional bias.
      if ((i + j) % 2 == 0) {
        if (v00 >= 0 && v10 >= 0 && v11 >= 0) m.triangles.push_back({v00, v10, v11});
        if (v00 >= 0 && v11 >= 0 && v01 >= 0) m.triangles.push_back({v00, v11, v01});
      } else {
        if (v00 >= 0 && v10 >= 0 && v01 >= 0) m.triangles.push_back({v00, v10, v01});
        if (v10 >= 0 && v11 >= 0 && v01 >= 0) m.triangles.push_back({v10, v11, v01});
      }
    }
  // Drop vertices no triangle uses (single grid points poking out of the outline).
  Mesh out;
  std::vector<std::int32_t> remap(m.vertices.size(), -1);
  for (Tri& t : m.triangles)
    for (std::int32_t& v : t) {
      if (remap[static_cast<std::size_t>(v)] < 0) {
        remap[static_cast<std::size_t>(v)] = static_cast<std::int32_t>(out.vertices.size());
        out.vertices.push_back(m.vertices[static_cast<std::size_t>(v)]);
      }
      v = remap[static_cast<std::size_t>(v)];
    }
  out.triangles = std::move(m.triangles);
  out.normals.reserve(out.vertices.size());
  for (const Vec3& p : out.vertices) out.normals.push_back(normal(p.x(), p.y()));
  return out;
}

}  // namespace tracecast::scan
