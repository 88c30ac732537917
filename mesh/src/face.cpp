// Symmetry plane, face frame and landmarks (see face.h).
#include "tracecast/mesh/face.h"

#include <fmt/format.h>
#include <omp.h>
#include <open3d/geometry/PointCloud.h>
#include <open3d/pipelines/registration/Registration.h>
#include <open3d/pipelines/registration/RobustKernel.h>
#include <open3d/pipelines/registration/TransformationEstimation.h>
#include <open3d/utility/Logging.h>

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/open3d.h"
#include "tracecast/mesh/random.h"

namespace tracecast {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Eigen::Matrix4d reflection(const Vec3& n, double d) {
  Eigen::Matrix4d S = Eigen::Matrix4d::Identity();
  S.block<3, 3>(0, 0) -= 2.0 * n * n.transpose();
  S.block<3, 1>(0, 3) = 2.0 * d * n;
  return S;
}

//! The plane of the reflection closest to an improper rigid map M (4×4).
void plane_of(const Eigen::Matrix4d& M, Vec3& n, double& d) {
  const Eigen::Matrix3d A = M.block<3, 3>(0, 0);
  const Eigen::Matrix3d B = 0.25 * (2.0 * Eigen::Matrix3d::Identity() - A - A.transpose());
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es(B);
  Vec3 m = es.eigenvectors().col(2);
  if (m.dot(n) < 0) m = -m;
  n = m.normalized();
  d = 0.5 * n.dot(Vec3(M.block<3, 1>(0, 3)));
}

//! Normalized Gaussian blur of a map with missing (NaN) pixels; σ in pixels.
std::vector<double> blur(const DepthMap& m, double sigma) {
  const int r = static_cast<int>(std::ceil(3 * sigma));
  std::vector<double> k(2 * r + 1);
  for (int i = -r; i <= r; ++i) k[i + r] = std::exp(-0.5 * i * i / (sigma * sigma));
  const int W = m.width, H = m.height;
  std::vector<double> num(m.z.size(), 0), den(m.z.size(), 0), num2(m.z.size(), 0), den2(m.z.size(), 0);
  for (int j = 0; j < H; ++j)
    for (int i = 0; i < W; ++i) {
      double a = 0, b = 0;
      for (int t = std::max(0, i - r); t <= std::min(W - 1, i + r); ++t) {
        const double z = m.at(t, j);
        if (std::isnan(z)) continue;
        a += k[t - i + r] * z;
        b += k[t - i + r];
      }
      num[static_cast<std::size_t>(j) * W + i] = a;
      den[static_cast<std::size_t>(j) * W + i] = b;
    }
  for (int j = 0; j < H; ++j)
    for (int i = 0; i < W; ++i) {
      double a = 0, b = 0;
      for (int t = std::max(0, j - r); t <= std::min(H - 1, j + r); ++t) {
        a += k[t - j + r] * num[static_cast<std::size_t>(t) * W + i];
        b += k[t - j + r] * den[static_cast<std::size_t>(t) * W + i];
      }
      num2[static_cast<std::size_t>(j) * W + i] = a;
      den2[static_cast<std::size_t>(j) * W + i] = b;
    }
  std::vector<double> out(m.z.size(), kNaN);
  for (std::size_t p = 0; p < out.size(); ++p)
    if (!std::isnan(m.z[p]) && den2[p] > 0) out[p] = num2[p] / den2[p];
  return out;
}

//! Normalized 1-D Gaussian blur along x (axis 0) or y (axis 1); σ in pixels.
std::vector<double> blur_1d(const DepthMap& m, double sigma, int axis) {
  const int r = static_cast<int>(std::ceil(3 * sigma));
  std::vector<double> k(2 * r + 1);
  for (int i = -r; i <= r; ++i) k[i + r] = std::exp(-0.5 * i * i / (sigma * sigma));
  std::vector<double> out(m.z.size(), kNaN);
  for (int j = 0; j < m.height; ++j)
    for (int i = 0; i < m.width; ++i) {
      if (std::isnan(m.at(i, j))) continue;
      double a = 0, b = 0;
      for (int t = -r; t <= r; ++t) {
        const int ii = axis == 0 ? i + t : i, jj = axis == 0 ? j : j + t;
        if (ii < 0 || jj < 0 || ii >= m.width || jj >= m.height) continue;
        const double z = m.at(ii, jj);
        if (std::isnan(z)) continue;
        a += k[t + r] * z;
        b += k[t + r];
      }
      out[static_cast<std::size_t>(j) * m.width + i] = a / b;
    }
  return out;
}

//! Pixels at least `r` pixels away from any missing pixel (so high-pass values are not edge effects).
std::vector<char> interior(const DepthMap& m, int r) {
  const int W = m.width, H = m.height;
  std::vector<char> in(m.z.size());
  for (std::size_t p = 0; p < in.size(); ++p) in[p] = !std::isnan(m.z[p]);
  for (int it = 0; it < r; ++it) {
    std::vector<char> next = in;
    for (int j = 0; j < H; ++j)
      for (int i = 0; i < W; ++i) {
        const std::size_t p = static_cast<std::size_t>(j) * W + i;
        if (!in[p]) continue;
        if (i == 0 || j == 0 || i == W - 1 || j == H - 1 || !in[p - 1] || !in[p + 1] || !in[p - W] || !in[p + W])
          next[p] = 0;
      }
    in.swap(next);
  }
  return in;
}

struct Found {
  bool ok = false;
  double score = -std::numeric_limits<double>::infinity();
  bool flip = false;  // y (and x) reversed
  Landmarks lm;
};

//! The depth map and the filtered copies the landmark search reads: D10 and D4, the height over
//! the surface blurred at 10 and 4 mm (negative in hollows), and the pixels 6 mm clear of holes.
struct DepthSearch {
  const DepthMap& m;
  double k;  //!< the face's size relative to an adult's: every length below is k × adult mm
  int W, H;
  std::vector<double> b10, b4;
  std::vector<char> in;
  DepthSearch(const DepthMap& map, double scale)
      : m(map), k(scale), W(map.width), H(map.height), b10(blur(map, 10.0 * k / map.pixel)), b4(blur(map, 4.0 * k / map.pixel)),
        in(interior(map, static_cast<int>(std::ceil(6.0 * k / map.pixel)))) {}
  double X(int i) const { return m.x0 + i * m.pixel; }
  double Y(int j) const { return m.y0 + j * m.pixel; }
  std::size_t idx(int i, int j) const { return static_cast<std::size_t>(j) * W + i; }
  int col(std::size_t p) const { return static_cast<int>(p % W); }
  int row(std::size_t p) const { return static_cast<int>(p / W); }
  double D10(std::size_t p) const { return m.z[p] - b10[p]; }
  double D4(std::size_t p) const { return m.z[p] - b4[p]; }
  //! The pixel in the corrected frame, (x, y) -> (s x, s y).
  Vec3 at(std::size_t p, int s) const { return Vec3(s * X(col(p)), s * Y(row(p)), m.z[p]); }
};

//! Nose tip candidates: the strongest protrusions near the midline, on surface facing the viewer
//! (the steep flanks near a silhouette, a neck's for one, look like protrusions too), strongest
//! first, no two within 15 face-mm of each other in height (a protruding chin or upper lip can
//! outdo a small nose, so the arrangement around each decides).
std::vector<std::size_t> nose_candidates(const DepthSearch& d, std::size_t count) {
  const DepthMap& m = d.m;
  const std::vector<char> deep = interior(m, static_cast<int>(std::ceil(12.0 * d.k / m.pixel)));
  auto facing = [&](int i, int j) {
    const double gx = (m.at(i + 1, j) - m.at(i - 1, j)) / (2 * m.pixel), gy = (m.at(i, j + 1) - m.at(i, j - 1)) / (2 * m.pixel);
    return gx * gx + gy * gy < 0.5;  // slope under about 35°
  };
  // A peak, not a ridge: it must stand out both across (x) and along (y) the face, which a
  // diadem's rim or a chin's edge does not.
  const std::vector<double> bx = blur_1d(m, 8.0 * d.k / m.pixel, 0), by = blur_1d(m, 8.0 * d.k / m.pixel, 1);
  std::vector<std::pair<double, std::size_t>> peaks;
  for (int j = 1; j + 1 < d.H; ++j)
    for (int i = 1; i + 1 < d.W; ++i) {
      const std::size_t p = d.idx(i, j);
      if (deep[p] && std::abs(d.X(i)) <= 4.0 * d.k && facing(i, j)) peaks.emplace_back(std::min(m.z[p] - bx[p], m.z[p] - by[p]), p);
    }
  std::sort(peaks.begin(), peaks.end(), std::greater<>());
  std::vector<std::size_t> out;
  for (const auto& [h, p] : peaks) {
    const bool near = std::any_of(out.begin(), out.end(), [&](std::size_t q) { return std::abs(d.Y(d.row(p)) - d.Y(d.row(q))) < 15 * d.k; });
    if (!near) out.push_back(p);
    if (out.size() == count) break;
  }
  return out;
}

//! Eye sockets: the deepest hollows on each side, 10–70 mm above the nose tip (up is s·y);
//! false if a side has none.
bool find_eye_sockets(const DepthSearch& d, std::size_t nose, int s, std::size_t eye[2]) {
  const double nx = d.X(d.col(nose)), ny = d.Y(d.row(nose)), k = d.k;
  eye[0] = eye[1] = SIZE_MAX;
  for (int j = 0; j < d.H; ++j)
    for (int i = 0; i < d.W; ++i) {
      const std::size_t p = d.idx(i, j);
      const double dx = d.X(i) - nx, up = s * (d.Y(j) - ny);
      if (!d.in[p] || std::abs(dx) < 12 * k || std::abs(dx) > 45 * k || up < 10 * k || up > 60 * k || d.m.z[p] < d.m.z[nose] - 50 * k)
        continue;
      const int side = dx > 0 ? 0 : 1;
      if (eye[side] == SIZE_MAX || d.D10(p) < d.D10(eye[side])) eye[side] = p;
    }
  return eye[0] != SIZE_MAX && eye[1] != SIZE_MAX;
}

//! A socket is the hollow around its deepest point `e` (D10 under half the deepest value, within
//! 25 mm): its centre is the hollow's depth-weighted centroid, its inner corner the hollow's point
//! nearest the midline.
void socket_landmarks(const DepthSearch& d, std::size_t nose, int s, std::size_t e, Landmarks& lm) {
  const double nx = d.X(d.col(nose));
  const double ex = d.X(d.col(e)), eyy = d.Y(d.row(e));
  std::vector<char> seen(d.m.z.size(), 0);
  std::vector<std::size_t> todo{e};
  seen[e] = 1;
  double wx = 0, wy = 0, ws = 0;
  std::size_t inner = e;
  while (!todo.empty()) {
    const std::size_t p = todo.back();
    todo.pop_back();
    const int pi = d.col(p), pj = d.row(p);
    const double w = -d.D10(p);
    wx += w * d.X(pi), wy += w * d.Y(pj), ws += w;
    if (std::abs(d.X(pi) - nx) < std::abs(d.X(d.col(inner)) - nx)) inner = p;
    const int nb[4][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}};
    for (const auto& o : nb) {
      const int qi = pi + o[0], qj = pj + o[1];
      if (qi < 0 || qj < 0 || qi >= d.W || qj >= d.H) continue;
      const std::size_t q = d.idx(qi, qj);
      if (seen[q] || !d.in[q] || d.D10(q) >= 0.5 * d.D10(e) || std::hypot(d.X(qi) - ex, d.Y(qj) - eyy) > 25 * d.k) continue;
      if ((d.X(qi) - nx) * (ex - nx) <= 0) continue;  // stay on this side of the midline
      seen[q] = 1;
      todo.push_back(q);
    }
  }
  const DepthMap& m = d.m;
  const int ci = std::clamp(static_cast<int>(std::lround((wx / ws - m.x0) / m.pixel)), 0, d.W - 1);
  const int cj = std::clamp(static_cast<int>(std::lround((wy / ws - m.y0) / m.pixel)), 0, d.H - 1);
  const double cz = std::isnan(m.at(ci, cj)) ? m.z[e] : m.at(ci, cj);
  const Vec3 centre(s * wx / ws, s * wy / ws, cz);
  const bool left = s * (ex - nx) > 0;
  (left ? lm.eye_left : lm.eye_right) = centre;
  (left ? lm.inner_eye_left : lm.inner_eye_right) = d.at(inner, s);
}

//! Mouth: the deepest fine-scale hollow on the midline 20–65 mm below the nose tip; SIZE_MAX if none.
std::size_t find_mouth(const DepthSearch& d, std::size_t nose, int s) {
  const double nx = d.X(d.col(nose)), ny = d.Y(d.row(nose)), k = d.k;
  std::size_t mouth = SIZE_MAX;
  for (int j = 0; j < d.H; ++j)
    for (int i = 0; i < d.W; ++i) {
      const std::size_t p = d.idx(i, j);
      const double down = -s * (d.Y(j) - ny);
      if (!d.in[p] || std::abs(d.X(i) - nx) > 3 * k || down < 20 * k || down > 65 * k || d.m.z[p] < d.m.z[nose] - 50 * k) continue;
      if (mouth == SIZE_MAX || d.D4(p) < d.D4(mouth)) mouth = p;
    }
  return mouth;
}

//! The mouth's corners: along its row, as far as the hollow stays over half its depth (≤ 45 mm
//! from the midline).
void mouth_corners(const DepthSearch& d, std::size_t nose, int s, std::size_t mouth, Landmarks& lm) {
  const double nx = d.X(d.col(nose));
  const int mj = d.row(mouth), mi = d.col(mouth);
  const double depth = d.D4(mouth);
  for (int dir : {1, -1}) {
    int i = mi;
    while (i + dir >= 0 && i + dir < d.W && d.in[d.idx(i + dir, mj)] && d.D4(d.idx(i + dir, mj)) < 0.5 * depth && std::abs(d.X(i + dir) - nx) < 45 * d.k)
      i += dir;
    (dir * s > 0 ? lm.mouth_left : lm.mouth_right) = d.at(d.idx(i, mj), s);
  }
}

//! Nostrils: the deepest fine-scale hollows beside the midline, between the nose tip and a third
//! of the way to the mouth, if they are real holes (over 1.5 mm deep at 4 mm scale).
void find_nostrils(const DepthSearch& d, std::size_t nose, int s, std::size_t mouth, Landmarks& lm) {
  const double nx = d.X(d.col(nose)), ny = d.Y(d.row(nose));
  const double gap = std::abs(d.Y(d.row(mouth)) - ny);
  std::size_t hole[2] = {SIZE_MAX, SIZE_MAX};
  for (int j = 0; j < d.H; ++j)
    for (int i = 0; i < d.W; ++i) {
      const std::size_t p = d.idx(i, j);
      const double dx = d.X(i) - nx, down = -s * (d.Y(j) - ny);
      if (!d.in[p] || std::abs(dx) < 1.5 * d.k || std::abs(dx) > 18 * d.k || down < 0 || down > 0.45 * gap) continue;
      const int side = s * dx > 0 ? 0 : 1;
      if (hole[side] == SIZE_MAX || d.D4(p) < d.D4(hole[side])) hole[side] = p;
    }
  if (hole[0] == SIZE_MAX || hole[1] == SIZE_MAX || !(d.D4(hole[0]) < -1.5 * d.k && d.D4(hole[1]) < -1.5 * d.k)) return;
  // Made symmetric about the nose tip (one nostril's deepest point is often deeper in).
  const Vec3 a = d.at(hole[0], s), b = d.at(hole[1], s), tip = d.at(nose, s);
  const double half = 0.5 * (std::abs(a.x() - tip.x()) + std::abs(b.x() - tip.x()));
  const double y = 0.5 * (a.y() + b.y()), z = 0.5 * (a.z() + b.z());
  lm.nostrils_found = true;
  lm.nostril_left = Vec3(tip.x() + half, y, z);
  lm.nostril_right = Vec3(tip.x() - half, y, z);
}

//! Chin: the strongest protrusion on the midline 10–60 mm below the mouth; SIZE_MAX if none.
std::size_t find_chin(const DepthSearch& d, std::size_t nose, int s, std::size_t mouth) {
  const double nx = d.X(d.col(nose)), k = d.k;
  std::size_t chin = SIZE_MAX;
  const double my = d.Y(d.row(mouth));
  for (int j = 0; j < d.H; ++j)
    for (int i = 0; i < d.W; ++i) {
      const std::size_t p = d.idx(i, j);
      const double down = -s * (d.Y(j) - my);
      if (!d.in[p] || std::abs(d.X(i) - nx) > 4 * k || down < 10 * k || down > 60 * k || d.m.z[p] < d.m.z[nose] - 70 * k) continue;
      if (chin == SIZE_MAX || d.D10(p) > d.D10(chin)) chin = p;
    }
  return chin;
}

//! A face's arrangement: eyes level and symmetric, 25–90 mm apart (the deepest point of a socket
//! lies near its inner corner), sockets and mouth behind the nose tip, the chin not in front of it.
//! Anything else (the back of a head, a neck under a headdress) is not a face seen from the front.
bool plausible_face(const Landmarks& lm, double e0, double e1, double k) {
  const double tipz = lm.nose_tip.z();
  const double eye_gap = (lm.eye_left - lm.eye_right).norm();
  return std::abs(lm.eye_left.y() - lm.eye_right.y()) < 10 * k && std::abs(lm.eye_left.x() + lm.eye_right.x() - 2 * lm.nose_tip.x()) < 12 * k &&
         eye_gap > 25 * k && eye_gap < 90 * k && lm.eye_left.z() < tipz - 8 * k && lm.eye_right.z() < tipz - 8 * k &&
         lm.mouth_center.z() < tipz - 3 * k && lm.chin.z() < tipz && e0 > -30 * k && e1 > -30 * k;
}

//! The face arranged round one nose tip, with up along s·y; ok = false if there is none.
Found arrangement(const DepthSearch& d, std::size_t nose, int s) {
  Found f;
  const double k = d.k, nx = d.X(d.col(nose));
  std::size_t eye[2];
  if (!find_eye_sockets(d, nose, s, eye)) return f;
  const double e0 = d.D10(eye[0]), e1 = d.D10(eye[1]);
  if (!(e0 < 0 && e1 < 0)) return f;
  const double asym = std::abs(d.Y(d.row(eye[0])) - d.Y(d.row(eye[1]))) + std::abs(d.X(d.col(eye[0])) + d.X(d.col(eye[1])) - 2 * nx);
  f.flip = s < 0;
  Landmarks& lm = f.lm;  // in the corrected frame from here
  lm.nose_tip = d.at(nose, s);
  for (int side = 0; side < 2; ++side) socket_landmarks(d, nose, s, eye[side], lm);
  const std::size_t mouth = find_mouth(d, nose, s);
  if (mouth == SIZE_MAX) return f;
  // A mouth line below the nose is what tells up from down (eye sockets alone are matched by
  // hollows beside the chin).
  f.score = (d.D10(nose) - 0.5 * (e0 + e1) - 0.1 * asym - 2.0 * std::min(0.0, d.D4(mouth))) / k;
  lm.mouth_center = d.at(mouth, s);
  lm.mouth_center.x() = lm.nose_tip.x();  // the lip line is flat across: keep its centre on the midline
  mouth_corners(d, nose, s, mouth, lm);
  find_nostrils(d, nose, s, mouth, lm);
  const std::size_t chin = find_chin(d, nose, s, mouth);
  lm.chin = chin == SIZE_MAX ? lm.mouth_center - Vec3(0, 25 * k, 0) : d.at(chin, s);
  f.ok = plausible_face(lm, e0, e1, k);
  log_debug("landmarks: nose tip ({:.1f}, {:.1f}) up {}: score {:.1f}, eyes ({:.1f}, {:.1f}) and ({:.1f}, {:.1f}), mouth {:.1f} below{}", d.X(d.col(nose)),
            d.Y(d.row(nose)), s > 0 ? "+y" : "-y", f.score, lm.eye_left.x(), lm.eye_left.y(), lm.eye_right.x(), lm.eye_right.y(),
            lm.nose_tip.y() - lm.mouth_center.y(), f.ok ? "" : " (not a face's arrangement)");
  return f;
}

//! Landmarks on a depth map taken in a frame whose y sign may be wrong (then flip = true and
//! the landmarks are given in the corrected frame: x and y negated).
Found find_landmarks(const DepthMap& m, double k, const std::optional<Eigen::Vector2d>& near = std::nullopt) {
  Found best;
  const DepthSearch d(m, k);
  for (std::size_t nose : nose_candidates(d, 4)) {
    if (near && std::hypot(d.X(d.col(nose)) - near->x(), d.Y(d.row(nose)) - near->y()) > 15 * k) continue;
    for (int s : {1, -1}) {
      const Found f = arrangement(d, nose, s);
      if (f.ok && f.score > best.score) best = f;
    }
    if (best.ok) break;  // the strongest peak that has a face round it
  }
  return best;
}

Eigen::Matrix3d frame_axes(const Vec3& x_axis, const Vec3& front) {
  const Vec3 z = (front - front.dot(x_axis) * x_axis).normalized();
  const Vec3 y = z.cross(x_axis).normalized();
  Eigen::Matrix3d A;
  A.col(0) = y.cross(z);
  A.col(1) = y;
  A.col(2) = z;
  return A;
}

}  // namespace

std::vector<Vec3> vertex_normals(const Mesh& mesh) {
  std::vector<Vec3> n(mesh.vertices.size(), Vec3::Zero());
  for (const Tri& t : mesh.triangles) {
    const Vec3 a = (mesh.vertices[t[1]] - mesh.vertices[t[0]]).cross(mesh.vertices[t[2]] - mesh.vertices[t[0]]);
    for (std::int32_t v : t) n[static_cast<std::size_t>(v)] += a;
  }
  for (Vec3& v : n) {
    const double l = v.norm();
    if (l > 0) v /= l;
  }
  return n;
}

PointCloud sample_surface(const Mesh& mesh, std::size_t count, std::uint64_t seed) {
  PointCloud out;
  std::vector<double> cdf;
  cdf.reserve(mesh.triangles.size());
  double total = 0;
  for (const Tri& t : mesh.triangles) {
    total += 0.5 * (mesh.vertices[t[1]] - mesh.vertices[t[0]]).cross(mesh.vertices[t[2]] - mesh.vertices[t[0]]).norm();
    cdf.push_back(total);
  }
  if (!(total > 0)) return out;
  SplitMix64 r{seed};
  out.points.reserve(count);
  out.normals.reserve(count);
  for (std::size_t k = 0; k < count; ++k) {
    const double u = r.uniform() * total;
    const std::size_t f = std::min<std::size_t>(static_cast<std::size_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin()),
                                                 cdf.size() - 1);
    const Tri& t = mesh.triangles[f];
    double a = r.uniform(), b = r.uniform();
    if (a + b > 1) {
      a = 1 - a;
      b = 1 - b;
    }
    const Vec3 &p0 = mesh.vertices[t[0]], &p1 = mesh.vertices[t[1]], &p2 = mesh.vertices[t[2]];
    out.points.push_back(p0 + a * (p1 - p0) + b * (p2 - p0));
    out.normals.push_back((p1 - p0).cross(p2 - p0).normalized());
  }
  return out;
}

SymmetryPlane estimate_symmetry_plane(const Mesh& mesh, const SymmetryOptions& o) {
  namespace reg = open3d::pipelines::registration;
  if (mesh.triangles.size() < 100) throw InputError("symmetry plane: the surface has fewer than 100 triangles");
  open3d_ready();
  const OpenMPSingleThread one_thread;
  const PointCloud samples = sample_surface(mesh, o.samples, o.seed);
  if (samples.size() < 100) throw InputError("symmetry plane: the surface has no area");
  auto target = to_open3d(samples);
  PointCloud few;
  for (std::size_t i = 0; i < samples.size() && i < std::max<std::size_t>(300, samples.size() / 10); ++i) {
    few.points.push_back(samples.points[i]);
    few.normals.push_back(samples.normals[i]);
  }
  auto coarse = to_open3d(few);
  Vec3 c = Vec3::Zero();
  for (const Vec3& p : samples.points) c += p;
  c /= static_cast<double>(samples.size());
  Eigen::Matrix3d cov = Eigen::Matrix3d::Zero();
  for (const Vec3& p : samples.points) cov += (p - c) * (p - c).transpose();
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es(cov);
  const double size = std::sqrt(es.eigenvalues().maxCoeff() / static_cast<double>(samples.size()));
  const SurfaceQuery surface(mesh);

  auto icp = [&](const std::shared_ptr<open3d::geometry::PointCloud>& cloud, double reach, Vec3& n, double& d) {
    open3d::geometry::PointCloud source = *cloud;
    const Eigen::Matrix4d S = reflection(n, d);
    source.Transform(S);
    const auto result = reg::RegistrationICP(source, *cloud, reach, Eigen::Matrix4d::Identity(),
                                             reg::TransformationEstimationPointToPlane(std::make_shared<reg::TukeyLoss>(0.5 * reach)),
                                             reg::ICPConvergenceCriteria(1e-8, 1e-8, 30));
    plane_of(result.transformation_ * S, n, d);
    return result;
  };
  // Each principal plane is refined coarse to fine (correspondence distance and Tukey scale
  // shrinking together) on a random tenth of the samples; the one its mirror image fits best
  // is refined on all of them.
  Vec3 n_best = es.eigenvectors().col(0);
  double d_best = 0, fit_best = -1, rmse_best = 0;
  for (int axis = 0; axis < 3; ++axis) {
    Vec3 n = es.eigenvectors().col(axis).normalized();
    double d = n.dot(c);
    open3d::pipelines::registration::RegistrationResult last;
    for (double reach : {0.3 * size, 10.0, 4.0}) last = icp(coarse, reach, n, d);
    if (last.fitness_ > fit_best + 1e-3 || (std::abs(last.fitness_ - fit_best) <= 1e-3 && last.inlier_rmse_ < rmse_best)) {
      n_best = n;
      d_best = d;
      fit_best = last.fitness_;
      rmse_best = last.inlier_rmse_;
    }
  }
  for (double reach : {1.5, 1.0}) icp(target, reach, n_best, d_best);
  SymmetryPlane best;
  best.normal = n_best;
  best.offset = d_best;
  std::vector<Vec3> mirrored(samples.points.size());
  for (std::size_t i = 0; i < mirrored.size(); ++i) mirrored[i] = best.reflect(samples.points[i]);
  const std::vector<double> dist = surface.distances(mirrored);
  std::size_t inliers = 0;
  double sq = 0;
  for (double x : dist)
    if (x < 1.0) {
      ++inliers;
      sq += x * x;
    }
  best.inlier_fraction = static_cast<double>(inliers) / static_cast<double>(dist.size());
  best.rms_mm = inliers ? std::sqrt(sq / static_cast<double>(inliers)) : 0.0;
  return best;
}

double DepthMap::sample(double x, double y) const {
  const double fi = (x - x0) / pixel, fj = (y - y0) / pixel;
  const int i = static_cast<int>(std::floor(fi)), j = static_cast<int>(std::floor(fj));
  if (i < 0 || j < 0 || i + 1 >= width || j + 1 >= height) return kNaN;
  const double a = fi - i, b = fj - j;
  return (1 - a) * (1 - b) * at(i, j) + a * (1 - b) * at(i + 1, j) + (1 - a) * b * at(i, j + 1) + a * b * at(i + 1, j + 1);
}

DepthMap depth_map(const Mesh& mesh, const FaceFrame& frame, double pixel) {
  DepthMap m;
  m.pixel = pixel;
  std::vector<Vec3> local(mesh.vertices.size());
  Aabb box;
  for (std::size_t i = 0; i < local.size(); ++i) {
    local[i] = frame.to_local(mesh.vertices[i]);
    box.add(local[i]);
  }
  if (box.empty()) return m;
  m.x0 = box.min.x() - pixel;
  m.y0 = box.min.y() - pixel;
  m.width = static_cast<int>(std::ceil((box.max.x() - m.x0) / pixel)) + 2;
  m.height = static_cast<int>(std::ceil((box.max.y() - m.y0) / pixel)) + 2;
  if (static_cast<double>(m.width) * m.height > 1e8) throw InputError("depth map: surface too large for its pixel size");
  m.z.assign(static_cast<std::size_t>(m.width) * m.height, kNaN);
  for (const Tri& t : mesh.triangles) {
    const Vec3 &a = local[t[0]], &b = local[t[1]], &c = local[t[2]];
    const double area = (b.x() - a.x()) * (c.y() - a.y()) - (c.x() - a.x()) * (b.y() - a.y());
    if (area <= 0) continue;  // facing away: the inside of an open scan or the back of a head
    const int i0 = std::max(0, static_cast<int>(std::ceil((std::min({a.x(), b.x(), c.x()}) - m.x0) / pixel)));
    const int i1 = std::min(m.width - 1, static_cast<int>(std::floor((std::max({a.x(), b.x(), c.x()}) - m.x0) / pixel)));
    const int j0 = std::max(0, static_cast<int>(std::ceil((std::min({a.y(), b.y(), c.y()}) - m.y0) / pixel)));
    const int j1 = std::min(m.height - 1, static_cast<int>(std::floor((std::max({a.y(), b.y(), c.y()}) - m.y0) / pixel)));
    for (int j = j0; j <= j1; ++j)
      for (int i = i0; i <= i1; ++i) {
        const double x = m.x0 + i * pixel, y = m.y0 + j * pixel;
        const double wa = ((b.x() - x) * (c.y() - y) - (c.x() - x) * (b.y() - y)) / area;
        const double wb = ((c.x() - x) * (a.y() - y) - (a.x() - x) * (c.y() - y)) / area;
        const double wc = 1 - wa - wb;
        if (wa < -1e-12 || wb < -1e-12 || wc < -1e-12) continue;
        const double z = wa * a.z() + wb * b.z() + wc * c.z();
        double& cur = m.z[static_cast<std::size_t>(j) * m.width + i];
        if (std::isnan(cur) || z > cur) cur = z;
      }
  }
  return m;
}

namespace {

//! The directions the face may look towards: the option's, else the surface's mean normal, else
//! (a closed or nearly closed surface) 24 directions round the symmetry plane's normal.
std::vector<Vec3> candidate_fronts(const Mesh& mesh, const Vec3& xn, const FaceOptions& o, std::string& source) {
  if (o.front) {
    if (std::abs(o.front->normalized().dot(xn)) > 0.9)
      throw InputError("--front lies across the face's symmetry plane: it must point out of the face");
    source = "option";
    return {o.front->normalized()};
  }
  Vec3 mean = Vec3::Zero();
  double area = 0;
  for (const Tri& t : mesh.triangles) {
    const Vec3 a = 0.5 * (mesh.vertices[t[1]] - mesh.vertices[t[0]]).cross(mesh.vertices[t[2]] - mesh.vertices[t[0]]);
    mean += a;
    area += a.norm();
  }
  const Vec3 in_plane = mean - mean.dot(xn) * xn;
  if (area > 0 && in_plane.norm() > 0.2 * area) {
    source = "mean normal";
    return {in_plane.normalized()};
  }
  source = "landmark search";
  const Vec3 a = (std::abs(xn.x()) < 0.9 ? Vec3::UnitX() : Vec3::UnitY()).cross(xn).normalized(), b = xn.cross(a);
  std::vector<Vec3> fronts;
  for (int k = 0; k < 24; ++k) fronts.push_back(std::cos(k * 2 * M_PI / 24) * a + std::sin(k * 2 * M_PI / 24) * b);
  return fronts;
}

//! The best arrangement over the candidate fronts, at 2 mm pixels (1 mm for a single front) in
//! face units; `axes` gets its frame, corrected for a flip.
Found search_fronts(const Mesh& mesh, const Vec3& xn, const Vec3& centre, const std::vector<Vec3>& fronts, const FaceOptions& o,
                    double k, Eigen::Matrix3d& axes) {
  Found best;
  for (const Vec3& front : fronts) {
    FaceFrame f;
    f.origin = centre;
    f.axes = frame_axes(xn, front);
    if (o.up && f.axes.col(1).dot(*o.up) < 0) f.axes.col(1) *= -1, f.axes.col(0) *= -1;
    const Found found = find_landmarks(depth_map(mesh, f, k * (fronts.size() > 1 ? 2.0 : 1.0)), k);
    if (!found.ok || (o.up && found.flip) || found.score <= best.score) continue;
    best = found;
    axes = f.axes;
    if (found.flip) axes.col(0) *= -1, axes.col(1) *= -1;
  }
  return best;
}

//! The front refined to the mean normal of the surface around the nose tip (skipped when the
//! front was given).
void refine_front(const Mesh& mesh, const Vec3& xn, const Landmarks& lm, double k, FaceFrame& f) {
  const Vec3 tip = f.to_world(lm.nose_tip);
  const double r = std::max(30.0 * k, 0.9 * lm.eye_distance());
  Vec3 mean = Vec3::Zero();
  for (const Tri& t : mesh.triangles) {
    const Vec3 c = (mesh.vertices[t[0]] + mesh.vertices[t[1]] + mesh.vertices[t[2]]) / 3.0;
    if ((c - tip).norm() > r) continue;
    const Vec3 a = (mesh.vertices[t[1]] - mesh.vertices[t[0]]).cross(mesh.vertices[t[2]] - mesh.vertices[t[0]]);
    if (a.dot(f.axes.col(2)) > 0) mean += a;
  }
  if (mean.norm() == 0) return;
  const Vec3 y = f.axes.col(1);
  f.axes = frame_axes(xn, mean);
  if (f.axes.col(1).dot(y) < 0) f.axes.col(1) *= -1, f.axes.col(0) *= -1;
}

}  // namespace

double face_scale(const Mesh& mesh) {
  const Aabb box = bounding_box(mesh);
  if (box.empty()) return 1.0;
  const double extent = (box.max - box.min).maxCoeff();
  return extent >= kLifeSizeMinExtentMm ? 1.0 : extent / kAdultHeadHeightMm;
}

FaceAnalysis analyze_face(const Mesh& mesh, const FaceOptions& o) {
  FaceAnalysis out;
  out.plane = estimate_symmetry_plane(mesh, o.symmetry);
  out.scale = face_scale(mesh);
  const double k = out.scale;
  const Vec3 xn = out.plane.normal;
  Vec3 centre = Vec3::Zero();
  for (const Vec3& p : mesh.vertices) centre += p;
  centre /= static_cast<double>(std::max<std::size_t>(1, mesh.vertices.size()));
  centre -= (xn.dot(centre) - out.plane.offset) * xn;  // onto the plane

  const std::vector<Vec3> fronts = candidate_fronts(mesh, xn, o, out.front_source);
  FaceFrame f;
  f.origin = centre;
  const Found best = search_fronts(mesh, xn, centre, fronts, o, k, f.axes);
  if (!best.ok)
    throw ProcessingError("no face found (no nose tip with an eye socket on each side): give the face's front direction with --front X,Y,Z");
  const FaceFrame coarse = f;
  if (!o.front) refine_front(mesh, xn, best.lm, k, f);
  // The landmarks again at 1 mm pixels (in face units) in the refined frame, round the same nose.
  const Vec3 tip = f.to_local(coarse.to_world(best.lm.nose_tip));
  const Found fine = find_landmarks(depth_map(mesh, f, k), k, Eigen::Vector2d(tip.x(), tip.y()));
  Landmarks lm = best.lm;
  if (fine.ok) {
    if (fine.flip) f.axes.col(0) *= -1, f.axes.col(1) *= -1;
    lm = fine.lm;
  } else {
    f = coarse;  // the coarse landmarks, in the frame they were found in
  }
  // Move the origin to the nose tip.
  const Vec3 tip_world = f.to_world(lm.nose_tip);
  for (Vec3* p : {&lm.nose_tip, &lm.eye_left, &lm.eye_right, &lm.inner_eye_left, &lm.inner_eye_right, &lm.mouth_center,
                  &lm.mouth_left, &lm.mouth_right, &lm.chin, &lm.nostril_left, &lm.nostril_right})
    *p = f.to_local(f.to_world(*p)) - f.to_local(tip_world);
  f.origin = tip_world;
  out.frame = f;
  out.landmarks = lm;
  return out;
}

}  // namespace tracecast
