// The companion scanner: blind detection of the tile mark in a scan of a cast.
#include <fmt/format.h>
#include <open3d/geometry/KDTreeFlann.h>
#include <open3d/geometry/PointCloud.h>
#include <tbb/parallel_for.h>

#include <unsupported/Eigen/FFT>
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <unordered_map>
#include <map>
#include <numeric>

#include "tile.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/face.h"
#include "tracecast/mesh/random.h"
#include "tracecast/mesh/step_timer.h"
#include "tracecast/watermark/mark.h"
#include "tracecast/watermark/payload.h"

namespace tracecast::watermark {

using namespace detail;

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::found: return "found";
    case Outcome::no_mark: return "no mark found";
    case Outcome::insufficient_surface: return "insufficient surface";
  }
  return "?";
}

namespace {

using Complex = std::complex<double>;

//! In-place 2D FFT of an n × n row-major array (inverse unscaled: Eigen scales by 1/n per pass).
void fft2(std::vector<Complex>& a, int n, bool inverse) {
  Eigen::FFT<double> fft;
  std::vector<Complex> in(static_cast<std::size_t>(n)), out;
  for (int pass = 0; pass < 2; ++pass) {
    for (int r = 0; r < n; ++r) {
      for (int c = 0; c < n; ++c) in[static_cast<std::size_t>(c)] = pass == 0 ? a[static_cast<std::size_t>(r * n + c)] : a[static_cast<std::size_t>(c * n + r)];
      if (inverse)
        fft.inv(out, in);
      else
        fft.fwd(out, in);
      for (int c = 0; c < n; ++c) (pass == 0 ? a[static_cast<std::size_t>(r * n + c)] : a[static_cast<std::size_t>(c * n + r)]) = out[static_cast<std::size_t>(c)];
    }
  }
}

int fft_size(int n) {
  int best = 1 << 30;
  for (int p2 = 1; p2 <= 8192; p2 *= 2)
    for (int p3 = 1; p2 * p3 <= 8192; p3 *= 3)
      if (p2 * p3 >= n) best = std::min(best, p2 * p3);
  return best;
}

void frame_of(const Vec3& d, Vec3& e1, Vec3& e2) {
  e1 = (std::abs(d.x()) < 0.9 ? Vec3::UnitX() : Vec3::UnitY()).cross(d).normalized();
  e2 = d.cross(e1);
}

//! The samples seen along d, in the chart of frame_of(d): their chart coordinates (u, v), their
//! height h along d, and which lie in the front layer (heights within `tol` of the highest in their
//! pixel). Only valid samples are projected.
struct FrontView {
  std::vector<double> u, v, h;
  std::vector<char> front;
};

//! A dense raster of the pixels when the scan's extent allows (the search calls this hundreds of
//! times), a hash of the occupied pixels otherwise; the same pixels and samples either way.
FrontView front_view(const Residuals& r, const Vec3& d, double pixel, double tol) {
  Vec3 e1, e2;
  frame_of(d, e1, e2);
  const std::size_t n = r.points.size();
  FrontView out;
  out.u.resize(n);
  out.v.resize(n);
  out.h.resize(n);
  std::vector<std::int64_t> pi(n), pj(n);
  std::int64_t i0 = std::numeric_limits<std::int64_t>::max(), j0 = i0, i1 = std::numeric_limits<std::int64_t>::min(), j1 = i1;
  for (std::size_t k = 0; k < n; ++k) {
    if (!r.valid[k]) continue;
    out.u[k] = r.points[k].dot(e1);
    out.v[k] = r.points[k].dot(e2);
    out.h[k] = r.points[k].dot(d);
    pi[k] = floor_int(out.u[k] / pixel);
    pj[k] = floor_int(out.v[k] / pixel);
    i0 = std::min(i0, pi[k]), i1 = std::max(i1, pi[k]), j0 = std::min(j0, pj[k]), j1 = std::max(j1, pj[k]);
  }
  std::vector<char>& keep = out.front;
  keep.assign(n, 0);
  if (i0 > i1) return out;
  const double cells = static_cast<double>(i1 - i0 + 1) * static_cast<double>(j1 - j0 + 1);
  if (cells <= 16.0e6) {
    const auto w = static_cast<std::size_t>(i1 - i0 + 1);
    std::vector<double> top(static_cast<std::size_t>(cells), -std::numeric_limits<double>::infinity());
    auto at = [&](std::size_t k) -> double& { return top[static_cast<std::size_t>(pj[k] - j0) * w + static_cast<std::size_t>(pi[k] - i0)]; };
    for (std::size_t k = 0; k < n; ++k)
      if (r.valid[k]) at(k) = std::max(at(k), out.h[k]);
    for (std::size_t k = 0; k < n; ++k)
      if (r.valid[k]) keep[k] = out.h[k] >= at(k) - tol;
    return out;
  }
  std::unordered_map<std::uint64_t, double> top;
  auto key = [&](std::size_t k) { return (static_cast<std::uint64_t>(pi[k] & 0xFFFFFFFF) << 32) | static_cast<std::uint64_t>(pj[k] & 0xFFFFFFFF); };
  for (std::size_t k = 0; k < n; ++k) {
    if (!r.valid[k]) continue;
    auto [it, fresh] = top.try_emplace(key(k), out.h[k]);
    if (!fresh) it->second = std::max(it->second, out.h[k]);
  }
  for (std::size_t k = 0; k < n; ++k)
    if (r.valid[k]) keep[k] = out.h[k] >= top[key(k)] - tol;
  return out;
}

//! Samples in the front layer seen along d.
std::vector<char> front_layer(const Residuals& r, const Vec3& d, double pixel, double tol) { return front_view(r, d, pixel, tol).front; }

//! Evens out the residual so that rough relief does not outweigh the mark: values are clipped at
//! 2.5 robust standard deviations (a crease or a scan's spike is not a cell of the mark), and in
//! each block of 4 mm (at the working scale) rougher than the median block they are scaled down
//! to its level. The mark's amplitude varies little across the piece, the relief's a lot.
void equalize(Residuals& r, double scale) {
  std::vector<double> mag;
  const std::size_t stride = std::max<std::size_t>(1, r.valid_count / 200000);
  for (std::size_t i = 0, k = 0; i < r.points.size(); ++i)
    if (r.valid[i] && k++ % stride == 0) mag.push_back(std::abs(r.value[i]));
  if (mag.size() < 100) return;
  std::nth_element(mag.begin(), mag.begin() + static_cast<std::ptrdiff_t>(mag.size() / 2), mag.end());
  const double clip = 2.5 * 1.4826 * mag[mag.size() / 2];
  for (std::size_t i = 0; i < r.points.size(); ++i)
    if (r.valid[i]) r.value[i] = std::clamp(r.value[i], -clip, clip);
  const double side = 4.0 * scale;
  std::unordered_map<std::uint64_t, std::pair<double, double>> blocks;  // Σ value², count
  blocks.reserve(r.valid_count / 64 + 16);
  std::vector<std::uint64_t> key(r.points.size(), 0);
  for (std::size_t i = 0; i < r.points.size(); ++i)
    if (r.valid[i]) {
      key[i] = voxel_key(r.points[i], side);
      auto& b = blocks[key[i]];
      b.first += r.value[i] * r.value[i];
      b.second += 1;
    }
  std::vector<double> rms;
  for (const auto& [k, b] : blocks)
    if (b.second >= 10) rms.push_back(std::sqrt(b.first / b.second));
  if (rms.empty()) return;
  std::nth_element(rms.begin(), rms.begin() + static_cast<std::ptrdiff_t>(rms.size() / 2), rms.end());
  const double level = rms[rms.size() / 2];
  for (std::size_t i = 0; i < r.points.size(); ++i)
    if (r.valid[i]) {
      const auto& b = blocks[key[i]];
      const double local = std::sqrt(b.first / b.second);
      if (local > level) r.value[i] *= level / local;
    }
}

//! The high-pass residual of the samples at `scale`, evened out.
Residuals equalized_residuals(const std::vector<Vec3>& pts, double scale, const Vec3* front) {
  Residuals r = residuals(pts, kCellMm * scale, front);
  equalize(r, scale);
  return r;
}

//! Keeps the points within `radius` of their mean; true if any were dropped.
bool keep_near_centre(std::vector<Vec3>& pts, double radius) {
  if (pts.empty()) return false;
  Vec3 c = Vec3::Zero();
  for (const Vec3& p : pts) c += p;
  c /= static_cast<double>(pts.size());
  const std::size_t n = pts.size();
  pts.erase(std::remove_if(pts.begin(), pts.end(), [&](const Vec3& p) { return (p - c).squaredNorm() > radius * radius; }), pts.end());
  return pts.size() < n;
}

struct ChartLattice {
  bool ok = false;
  Eigen::Vector2d a = Eigen::Vector2d::Zero(), b = Eigen::Vector2d::Zero();  // mm in the chart (e1, e2 of frame_of(d))
  double score = 0;
};

//! The tile lattice in an orthographic chart along d, from the autocorrelation of the residual
//! (its spectrum's magnitude only: strong narrow-band relief such as wrinkles does not dominate).
ChartLattice chart_lattice(const Residuals& r, const FrontView& view, const Vec3& d, const Vec3& centre, double half, double pixel,
                           double min_period, double max_period) {
  Vec3 e1, e2;
  frame_of(d, e1, e2);
  const std::vector<char>& use = view.front;
  const int w = static_cast<int>(std::ceil(2 * half / pixel));
  const int n = fft_size(w + static_cast<int>(std::ceil(max_period * 1.2 / pixel)));
  std::vector<double> sum(static_cast<std::size_t>(n * n), 0.0), cnt(static_cast<std::size_t>(n * n), 0.0);
  const double u0 = centre.dot(e1) - half, v0 = centre.dot(e2) - half;
  for (std::size_t i = 0; i < r.points.size(); ++i) {
    if (!use[i]) continue;
    const auto x = floor_int((view.u[i] - u0) / pixel), y = floor_int((view.v[i] - v0) / pixel);
    if (x < 0 || y < 0 || x >= w || y >= w) continue;
    sum[static_cast<std::size_t>(y * n + x)] += r.normals[i].dot(d) < 0 ? -r.value[i] : r.value[i];  // height towards d
    cnt[static_cast<std::size_t>(y * n + x)] += 1;
  }
  std::vector<Complex> f(static_cast<std::size_t>(n * n), 0.0);
  double mean = 0, filled = 0;
  for (std::size_t k = 0; k < f.size(); ++k)
    if (cnt[k] > 0) {
      mean += sum[k] / cnt[k];
      filled += 1;
    }
  if (filled < 100) return {};
  mean /= filled;
  for (std::size_t k = 0; k < f.size(); ++k)
    if (cnt[k] > 0) f[k] = sum[k] / cnt[k] - mean;
  fft2(f, n, false);
  // Whitened power: each frequency's power over the mean power around it, capped, so that a few
  // strong lines of the relief (wrinkles) cannot outweigh the many weak lines of the lattice.
  {
    std::vector<double> p(f.size());
    for (std::size_t k = 0; k < f.size(); ++k) p[k] = std::norm(f[k]);
    constexpr int kr = 4;
    std::vector<double> rows(f.size(), 0.0), local(f.size(), 0.0);
    std::vector<std::size_t> wrap(static_cast<std::size_t>(n + 2 * kr));  // wrap[t] = (t − kr) mod n
    for (int t = 0; t < n + 2 * kr; ++t) wrap[static_cast<std::size_t>(t)] = static_cast<std::size_t>(((t - kr) % n + n) % n);
    const auto un = static_cast<std::size_t>(n);
    for (std::size_t y = 0; y < un; ++y)
      for (std::size_t x = 0; x < un; ++x) {
        double acc = 0;
        for (std::size_t k = 0; k <= 2 * kr; ++k) acc += p[y * un + wrap[x + k]];
        rows[y * un + x] = acc;
      }
    for (std::size_t y = 0; y < un; ++y)
      for (std::size_t x = 0; x < un; ++x) {
        double acc = 0;
        for (std::size_t k = 0; k <= 2 * kr; ++k) acc += rows[wrap[y + k] * un + x];
        local[y * un + x] = acc / ((2 * kr + 1) * (2 * kr + 1));
      }
    double mean_p = 0;
    for (double v : p) mean_p += v;
    mean_p /= static_cast<double>(p.size());
    for (std::size_t k = 0; k < f.size(); ++k) f[k] = std::min(p[k] / (local[k] + 1e-3 * mean_p + 1e-300), 4.0);
  }
  fft2(f, n, true);
  auto at = [&](int dx, int dy) { return f[static_cast<std::size_t>(((dy % n + n) % n) * n + (dx % n + n) % n)].real(); };

  // Local maxima in the annulus of possible periods, half-plane.
  const int rmax = static_cast<int>(std::ceil(max_period / pixel)), rmin = static_cast<int>(std::floor(min_period / pixel));
  std::vector<double> ring;
  struct Cand {
    double x, y, v;
  };
  std::vector<Cand> cands;
  for (int dy = 0; dy <= rmax; ++dy)
    for (int dx = -rmax; dx <= rmax; ++dx) {
      if (dy == 0 && dx <= 0) continue;
      const double rr = std::hypot(dx, dy);
      if (rr < rmin || rr > rmax) continue;
      const double v = at(dx, dy);
      ring.push_back(v);
      bool peak = true;
      for (int j = -1; j <= 1 && peak; ++j)
        for (int i = -1; i <= 1; ++i)
          if ((i || j) && at(dx + i, dy + j) > v) {
            peak = false;
            break;
          }
      if (!peak) continue;
      // Sub-pixel: a parabola through each axis's neighbours.
      const double l = at(dx - 1, dy), rr1 = at(dx + 1, dy), dn = at(dx, dy - 1), up = at(dx, dy + 1);
      const double ox = (l - rr1) / (2 * (l - 2 * v + rr1) - 1e-300), oy = (dn - up) / (2 * (dn - 2 * v + up) - 1e-300);
      cands.push_back({(dx + std::clamp(ox, -0.5, 0.5)) * pixel, (dy + std::clamp(oy, -0.5, 0.5)) * pixel, v});
    }
  if (ring.size() < 50 || cands.size() < 2) return {};
  // Robust spread of the annulus.
  std::vector<double> dev = ring;
  std::nth_element(dev.begin(), dev.begin() + static_cast<std::ptrdiff_t>(dev.size() / 2), dev.end());
  const double med = dev[dev.size() / 2];
  for (double& x : dev) x = std::abs(x - med);
  std::nth_element(dev.begin(), dev.begin() + static_cast<std::ptrdiff_t>(dev.size() / 2), dev.end());
  const double spread = 1.4826 * dev[dev.size() / 2] + 1e-300;
  std::sort(cands.begin(), cands.end(), [](const Cand& p, const Cand& q) { return p.v > q.v; });
  if (cands.size() > 16) cands.resize(16);
  // Height of the autocorrelation (in spreads) near an offset: the best of its 3 × 3 pixels.
  auto z_at = [&](const Eigen::Vector2d& v) {
    const int x = static_cast<int>(std::lround(v.x() / pixel)), y = static_cast<int>(std::lround(v.y() / pixel));
    double m = -1e300;
    for (int j = -1; j <= 1; ++j)
      for (int i = -1; i <= 1; ++i) m = std::max(m, at(x + i, y + j));
    return (m - med) / spread;
  };
  ChartLattice best;
  double best_len = 0;
  std::vector<std::pair<double, std::pair<Cand, Cand>>> pairs;
  for (std::size_t i = 0; i < cands.size(); ++i)
    for (std::size_t j = i + 1; j < cands.size(); ++j) {
      const Eigen::Vector2d p(cands[i].x, cands[i].y), q(cands[j].x, cands[j].y);
      const double ratio = p.norm() / q.norm(), cosang = std::abs(p.dot(q)) / (p.norm() * q.norm());
      if (ratio < 0.87 || ratio > 1.15 || cosang > 0.26) continue;
      // The lattice is square where the chart is along the stamp's front: a stretched or sheared
      // pair means a tilted chart, and scores less.
      const double tol = 0.01 + 0.7 * pixel / std::min(p.norm(), q.norm());  // sub-pixel peaks: ≈ 0.3 px
      const double prior = std::exp(-0.5 * std::pow((ratio - 1) / tol, 2) - 0.5 * std::pow(cosang / tol, 2));
      // A tiled pattern correlates with itself at every lattice offset, the diagonals p ± q too;
      // two unrelated sets of stripes (tessellation, print layers, a grid) do only along each one.
      const double diagonal = std::min(z_at(p + q), z_at(p - q));
      const double z = std::min((std::min(cands[i].v, cands[j].v) - med) / spread, 1.5 * diagonal);
      pairs.push_back({prior * z, {cands[i], cands[j]}});
    }
  double top = 0;
  for (const auto& pr : pairs) top = std::max(top, pr.first);
  for (const auto& [score, pq] : pairs) {
    if (score < 0.6 * top) continue;
    const double len = std::hypot(pq.first.x, pq.first.y) + std::hypot(pq.second.x, pq.second.y);
    if (!best.ok || len < best_len - 1e-9) {
      best.ok = true;
      best.a = {pq.first.x, pq.first.y};
      best.b = {pq.second.x, pq.second.y};
      best.score = score;
      best_len = len;
    }
  }
  if (best.ok) best.score = top;
  // The lattice's shortest vectors: a pair at twice or three times the period also scores.
  if (best.ok)
    for (int k : {3, 2}) {
      const Eigen::Vector2d a = best.a / k, b = best.b / k;
      if (a.norm() < min_period || b.norm() < min_period) continue;
      log_debug("detect:   sub {}: z {:.1f} {:.1f}", k, z_at(a), z_at(b));
      if (std::min(z_at(a), z_at(b)) > std::max(4.0, 0.3 * best.score)) {
        best.a = a;
        best.b = b;
        break;
      }
    }
  if (log_enabled(LogLevel::Debug)) {
    std::string line = fmt::format("detect: chart d=({:.3f} {:.3f} {:.3f}) px {:.2f} spread {:.3g}:", d.x(), d.y(), d.z(), pixel, spread);
    for (std::size_t i = 0; i < std::min<std::size_t>(cands.size(), 6); ++i)
      line += fmt::format(" [{:.1f},{:.1f} |{:.1f}| z{:.1f}]", cands[i].x, cands[i].y, std::hypot(cands[i].x, cands[i].y), (cands[i].v - med) / spread);
    log_message(LogLevel::Debug, line + fmt::format(" -> {} a=({:.2f} {:.2f}) b=({:.2f} {:.2f}) score {:.1f}", best.ok, best.a.x(), best.a.y(),
                                                     best.b.x(), best.b.y(), best.score));
  }
  return best;
}

Eigen::Matrix3d rotation_about(const Vec3& axis, double angle) { return Eigen::AngleAxisd(angle, axis.normalized()).toRotationMatrix(); }

struct Pose {
  Eigen::Matrix3d r = Eigen::Matrix3d::Identity();  // columns: lattice x̂, ŷ, and the front
  double scale = 1;
  Lattice lattice() const {
    Lattice l;
    l.a = kTileMm * scale * r.col(0);
    l.b = kTileMm * scale * r.col(1);
    return l;
  }
};

//! Maximises the folded energy over rotation and scale by coordinate search, over growing regions.
Pose refine(const Residuals& res, const std::vector<char>& use, Pose pose, const Vec3& centre, bool coarse_scan) {
  const double s0 = pose.scale;
  if (coarse_scan) {
    // The chart's estimate can be a few per cent and degrees off (a tilted chart shrinks one
    // axis): scan each parameter over a wide range on a small region first.
    std::vector<std::size_t> subset;
    for (std::size_t i = 0; i < res.points.size(); ++i)
      if (use[i] && (res.points[i] - centre).norm() < 25.0 * s0) subset.push_back(i);
    if (subset.size() > 40000) {
      const std::size_t step = subset.size() / 40000 + 1;
      std::vector<std::size_t> thin;
      for (std::size_t k = 0; k < subset.size(); k += step) thin.push_back(subset[k]);
      subset.swap(thin);
    }
    const FoldSamples packed = subset.size() >= 2000 ? pack(res, subset) : FoldSamples{};
    if (subset.size() >= 2000)
      for (int round = 0; round < 2; ++round)
        for (int param : {3, 2, 0, 1}) {
          const int n = param == 3 ? 8 : 6;
          const double step = param == 3 ? 0.01 : (param == 2 ? 0.5 : 1.5) * kPi / 180;
          // Every step of the scan at once (in parallel), the best taken in order as before.
          std::vector<Pose> ps(static_cast<std::size_t>(2 * n + 1), pose);
          std::vector<double> es(ps.size());
          for (int k = -n; k <= n; ++k) {
            Pose& p = ps[static_cast<std::size_t>(k + n)];
            if (param < 3)
              p.r = rotation_about(pose.r.col(param), k * step) * pose.r;
            else
              p.scale = pose.scale * std::exp(k * step);
          }
          tbb::parallel_for(std::size_t(0), ps.size(), [&](std::size_t k) { es[k] = energy(fold(packed, ps[k].lattice())); });
          Pose best_p = pose;
          double best_e = -1;
          for (std::size_t k = 0; k < ps.size(); ++k)
            if (es[k] > best_e) best_e = es[k], best_p = ps[k];
          pose = best_p;
        }
  }
  for (double radius : {30.0, 50.0, 80.0, 130.0, 1e9}) {
    std::vector<std::size_t> subset;
    for (std::size_t i = 0; i < res.points.size(); ++i)
      if (use[i] && (res.points[i] - centre).norm() < radius * s0) subset.push_back(i);
    if (subset.size() > 120000) {
      const std::size_t step = subset.size() / 120000 + 1;
      std::vector<std::size_t> thin;
      for (std::size_t k = 0; k < subset.size(); k += step) thin.push_back(subset[k]);
      subset.swap(thin);
    }
    if (subset.size() < 2000) continue;
    const FoldSamples packed = pack(res, subset);
    auto score = [&](const Pose& p) { return energy(fold(packed, p.lattice())); };
    double best = score(pose);
    double step_rot = 0.6 * kPi / 180, step_scale = 0.004;
    const double min_rot = 0.01 * kPi / 180, min_scale = 0.0001;
    int evals = 0;
    while ((step_rot > min_rot || step_scale > min_scale) && evals < 400) {
      bool improved = false;
      for (int param = 0; param < 4; ++param) {
        // Both directions of a parameter are scored together (in parallel); the first that
        // improves is taken, + before −, as a one-at-a-time search would.
        Pose p[2] = {pose, pose};
        double e[2];
        for (int k = 0; k < 2; ++k) {
          const double sgn = k == 0 ? 1.0 : -1.0;
          if (param < 3)
            p[k].r = rotation_about(pose.r.col(param), sgn * step_rot) * pose.r;
          else
            p[k].scale = pose.scale * std::exp(sgn * step_scale);
        }
        tbb::parallel_for(0, 2, [&](int k) { e[k] = score(p[k]); });
        for (int k = 0; k < 2; ++k) {
          ++evals;
          if (e[k] > best) {
            best = e[k];
            pose = p[k];
            improved = true;
            break;
          }
        }
      }
      if (!improved) {
        step_rot *= 0.5;
        step_scale *= 0.5;
      }
    }
  }
  return pose;
}

//! The 8 symmetries of the square tile acting on bin indices.
Eigen::Vector2i apply_symmetry(int g, int x, int y) {
  switch (g) {
    case 0: return {x, y};
    case 1: return {y, x};
    case 2: return {-x, y};
    case 3: return {x, -y};
    case 4: return {-x, -y};
    case 5: return {-y, x};
    case 6: return {y, -x};
    default: return {-y, -x};
  }
}

//! The samples of the blocks (cubes of `side`) that carry the lattice's pattern: each block is
//! compared with the fold of all the others, and kept when its samples correlate with it (z > 1).
//! Unmarked surface beside the mark (a mold's parting surface and walls, a scan's background)
//! would only add its relief to the fold. Key-independent. All samples when too few carry it.
std::vector<std::size_t> carrier_samples(const Residuals& res, const std::vector<std::size_t>& used, const Lattice& lattice, double side) {
  const Folded all = fold(pack(res, used), lattice);
  std::unordered_map<std::uint64_t, std::vector<std::size_t>> blocks;
  std::vector<std::uint64_t> order;
  double r2 = 0;
  for (std::size_t i : used) {
    auto [it, fresh] = blocks.try_emplace(voxel_key(res.points[i], side));
    if (fresh) order.push_back(it->first);
    it->second.push_back(i);
    r2 += res.value[i] * res.value[i];
  }
  const double sd = std::sqrt(r2 / std::max<double>(static_cast<double>(used.size()), 1.0)) + 1e-300;
  std::vector<double> own_sum(all.sum.size(), 0.0), own_count(all.sum.size(), 0.0);
  std::vector<std::size_t> kept, bins;
  for (std::uint64_t k : order) {
    const std::vector<std::size_t>& members = blocks[k];
    if (members.size() < 30) continue;
    bins.clear();
    for (std::size_t i : members) {
      const std::size_t b = bin_of(lattice, res.points[i]);
      bins.push_back(b);
      own_sum[b] += res.value[i];
      own_count[b] += 1;
    }
    double num = 0, mm = 0;
    for (std::size_t n = 0; n < members.size(); ++n) {
      const std::size_t b = bins[n];
      const double others = all.count[b] - own_count[b];
      if (others <= 0) continue;
      const double m = (all.sum[b] - own_sum[b]) / others;  // the fold without this block
      num += res.value[members[n]] * m;
      mm += m * m;
    }
    for (std::size_t b : bins) own_sum[b] = own_count[b] = 0;
    if (mm > 0 && num / (sd * std::sqrt(mm)) > 1.0) kept.insert(kept.end(), members.begin(), members.end());
  }
  if (kept.size() < std::max<std::size_t>(2000, used.size() / 20)) return used;
  std::sort(kept.begin(), kept.end());
  return kept;
}

struct Sampled {
  std::vector<Vec3> points;  // in mm (after the unit guess)
  double area_mm2 = 0;
};

std::vector<Vec3> voxel_thin(const std::vector<Vec3>& pts, double h) {
  struct Acc {
    Vec3 s = Vec3::Zero();
    int n = 0;
  };
  std::unordered_map<std::uint64_t, Acc> grid;
  grid.reserve(pts.size() / 2 + 16);
  std::vector<std::uint64_t> order;
  for (const Vec3& p : pts) {
    const std::uint64_t k = voxel_key(p, h);
    auto [it, fresh] = grid.try_emplace(k);
    if (fresh) order.push_back(k);
    it->second.s += p;
    ++it->second.n;
  }
  std::vector<Vec3> out;
  out.reserve(order.size());
  for (std::uint64_t k : order) out.push_back(grid[k].s / grid[k].n);
  return out;
}

//! Sparsity: the median distance from about 2000 evenly picked points to their nearest
//! neighbour. Up to `limit` it is found exactly by one pass over the points, against a grid of
//! `limit` cells around the picked ones (any neighbour that close lies in the 27 cells around);
//! beyond, by a k-d tree, built only then (a sparse scan): building one over a million points
//! would cost more than the rest of this check.
double median_spacing(const std::vector<Vec3>& pts, double limit) {
  const std::size_t step = std::max<std::size_t>(1, pts.size() / 2000);
  std::vector<std::size_t> picked;
  for (std::size_t i = 0; i < pts.size(); i += step) picked.push_back(i);
  auto cell = [&](const Vec3& p) {
    return Eigen::Matrix<std::int64_t, 3, 1>(static_cast<std::int64_t>(std::floor(p.x() / limit)), static_cast<std::int64_t>(std::floor(p.y() / limit)),
                                             static_cast<std::int64_t>(std::floor(p.z() / limit)));
  };
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> near;  // cell -> picked points it neighbours
  for (std::size_t q = 0; q < picked.size(); ++q) {
    const auto c = cell(pts[picked[q]]);
    for (int dz = -1; dz <= 1; ++dz)
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) near[voxel_key(c.x() + dx, c.y() + dy, c.z() + dz)].push_back(static_cast<std::uint32_t>(q));
  }
  std::vector<double> best(picked.size(), std::numeric_limits<double>::infinity());
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const auto it = near.find(voxel_key(pts[i], limit));
    if (it == near.end()) continue;
    for (const std::uint32_t q : it->second)
      if (picked[q] != i) best[q] = std::min(best[q], (pts[i] - pts[picked[q]]).squaredNorm());
  }
  std::vector<double> nnd;
  for (double b : best) nnd.push_back(std::sqrt(b));
  std::nth_element(nnd.begin(), nnd.begin() + static_cast<std::ptrdiff_t>(nnd.size() / 2), nnd.end());
  if (nnd[nnd.size() / 2] <= limit) return nnd[nnd.size() / 2];
  open3d::geometry::PointCloud pc;
  pc.points_ = pts;
  const open3d::geometry::KDTreeFlann tree(pc);
  nnd.clear();
  std::vector<int> idx;
  std::vector<double> d2;
  for (const std::size_t i : picked)
    if (tree.SearchKNN(pts[i], 2, idx, d2) == 2) nnd.push_back(std::sqrt(d2[1]));
  std::nth_element(nnd.begin(), nnd.begin() + static_cast<std::ptrdiff_t>(nnd.size() / 2), nnd.end());
  return nnd[nnd.size() / 2];
}

double unit_factor_of(const Aabb& box) {
  const double diag = box.extent().norm();
  if (diag < 5.0) return 1000.0;     // metres
  if (diag > 20000.0) return 0.001;  // micrometres
  return 1.0;
}

//! The 3D lattice of a chart's lattice vectors (a, b in the chart along d).
Pose pose_from(const ChartLattice& lat, const Vec3& d) {
  Vec3 e1, e2;
  frame_of(d, e1, e2);
  const Vec3 a3 = lat.a.x() * e1 + lat.a.y() * e2, b3 = lat.b.x() * e1 + lat.b.y() * e2;
  Pose pose;
  pose.scale = 0.5 * (a3.norm() + b3.norm()) / kTileMm;
  const Vec3 x = a3.normalized();
  Vec3 y = (b3 - b3.dot(x) * x).normalized();
  if (x.cross(y).dot(d) < 0) y = -y;  // right-handed with the front as third axis
  pose.r.col(0) = x;
  pose.r.col(1) = y;
  pose.r.col(2) = x.cross(y);
  return pose;
}

//! The used sample nearest to the centroid of the used samples.
Vec3 centre_of(const Residuals& res, const std::vector<char>& use) {
  Vec3 c = Vec3::Zero(), best = Vec3::Zero();
  double n = 0;
  for (std::size_t i = 0; i < res.points.size(); ++i)
    if (use[i]) c += res.points[i], n += 1;
  c /= std::max(n, 1.0);
  double bd = 1e300;
  for (std::size_t i = 0; i < res.points.size(); ++i)
    if (use[i] && (res.points[i] - c).squaredNorm() < bd) bd = (res.points[i] - c).squaredNorm(), best = res.points[i];
  return best;
}

//! A lattice unrelated to the pose's: `factor` of its scale, turned 0.3 rad. Its fold energy is
//! the floor a surface's relief gives without the mark, at that scale.
Pose unrelated(const Pose& pose, double factor) {
  Pose off = pose;
  off.scale = pose.scale * factor;
  off.r = rotation_about(pose.r.col(2), 0.3) * pose.r;
  return off;
}

//! Fold energy at the pose over that at an unrelated lattice of about the same scale, turned
//! 0.3 rad (1: no lattice there). The relief's fold energy grows with the lattice's scale, so the
//! floor is taken at the pose's own: a coarse lattice does not stand out for its size alone.
double contrast_of(const Residuals& res, const std::vector<char>& use, const Pose& pose) {
  std::vector<std::size_t> used;
  for (std::size_t i = 0; i < res.points.size(); ++i)
    if (use[i]) used.push_back(i);
  const FoldSamples packed = pack(res, used);
  const Lattice l[2] = {pose.lattice(), unrelated(pose, 1.07).lattice()};
  double e[2];
  tbb::parallel_for(0, 2, [&](int k) { e[k] = energy(fold(packed, l[k])); });
  return e[0] / std::max(e[1], 1e-300);
}

//! A lattice found at a multiple of the true one (two or three times the period, the diagonal
//! one (a ± b), or the index-5 one 2a ± b, all of which a chart can take for the lattice when their
//! peaks are the stronger) folds as well as the true one; the true one is among its sub-lattices,
//! and refined it folds as well again, while a wrong fraction mixes cells. Repeated while one is
//! taken, so that a multiple of a multiple comes down too.
Pose settle_sublattice(const Residuals& res, const std::vector<char>& use, Pose pose, const Vec3& centre) {
  std::vector<std::size_t> used;
  for (std::size_t i = 0; i < res.points.size(); ++i)
    if (use[i]) used.push_back(i);
  const FoldSamples packed = pack(res, used);
  struct Fraction {
    double divide, turn;  // scale ÷ divide, rotated by turn about the front
  };
  const double kAtanHalf = std::atan(0.5);
  const Fraction fractions[5] = {{3, 0}, {2, 0}, {std::sqrt(2.0), kPi / 4}, {std::sqrt(5.0), kAtanHalf}, {std::sqrt(5.0), -kAtanHalf}};
  for (int round = 0; round < 3; ++round) {
    // The pose, an unrelated lattice (the floor) and the five fractions, folded in parallel.
    // The floor at √2 − 1 of the scale: below every fraction's.
    Pose poses[7] = {pose, unrelated(pose, 0.4142), pose, pose, pose, pose, pose};
    for (int k = 0; k < 5; ++k) {
      Pose& p = poses[k + 2];
      p.scale = pose.scale / fractions[k].divide;
      if (fractions[k].turn != 0) p.r = rotation_about(pose.r.col(2), fractions[k].turn) * pose.r;
    }
    double energies[7];
    tbb::parallel_for(0, 7, [&](int k) { energies[k] = raw_energy(fold(packed, poses[k].lattice())); });
    const double e = energies[0], floor = energies[1];
    bool taken = false;
    for (int k = 0; k < 5; ++k) {
      const Fraction& fr = fractions[k];
      const Pose& p = poses[k + 2];
      const double ek = energies[k + 2];
      log_debug("detect: fraction 1/{:.3f} turned {:.1f}°: energy {:.4g} vs {:.4g} (floor {:.4g})", fr.divide, fr.turn * 180 / kPi, ek, e, floor);
      if (ek > 0.5 * e && ek > 1.5 * floor) {
        const Pose q = refine(res, use, p, centre, false);
        const double eq = raw_energy(fold(packed, q.lattice()));
        log_debug("detect:   refined fraction: {:.4g}", eq);
        if (eq > 0.85 * e) {
          pose = q;
          taken = true;
          break;
        }
      }
    }
    if (!taken) break;
  }
  return pose;
}

constexpr double kClearContrast = 2.5;  // a fold this much above an unrelated lattice's: no other candidate tried
constexpr double kSureContrast = 6.0;   // … and no other cone of directions either (a mark read whole: 10–25)

struct LatticeFound {
  bool ok = false;
  Pose pose;                 // refined, brought down to the true lattice from a multiple
  Vec3 d = Vec3::UnitZ();    // the chart's direction
  double contrast = -1;      // fold contrast after a first refinement
  double working_scale = 1;  // s0 of the search
};

//! The forward direction and the lattice in a residual high-passed at the working scale s0: a
//! coarse search over directions around the normals' axis (both ways: on a closed cast only the
//! outer layer carries the mark), then a finer one around the best few.
LatticeFound search_lattice(const Residuals& res, double s0) {
  Vec3 centre = Vec3::Zero();
  for (std::size_t i = 0; i < res.points.size(); ++i)
    if (res.valid[i]) centre += res.points[i];
  centre /= static_cast<double>(res.valid_count);
  const double min_p = 0.45 * kTileMm * s0, max_p = 2.3 * kTileMm * s0;
  struct Cand {
    ChartLattice lat;
    Vec3 d = Vec3::UnitZ();
  };
  // Candidates are scored in parallel, ranked in order (deterministic).
  auto search_all = [&](const std::vector<Vec3>& dirs, double pixel) {
    std::vector<ChartLattice> found(dirs.size());
    tbb::parallel_for(std::size_t(0), dirs.size(), [&](std::size_t k) {
      const FrontView view = front_view(res, dirs[k], 0.6 * s0, 1.3 * s0);
      found[k] = chart_lattice(res, view, dirs[k], centre, 60.0 * s0, pixel * s0, min_p, max_p);
    });
    std::vector<Cand> out;
    for (std::size_t k = 0; k < dirs.size(); ++k)
      if (found[k].ok) out.push_back({found[k], dirs[k]});
    std::stable_sort(out.begin(), out.end(), [](const Cand& a, const Cand& b) { return a.lat.score > b.lat.score; });
    return out;
  };
  LatticeFound best;
  best.working_scale = s0;
  const auto search_cone = [&](const Vec3& around) {
    Vec3 e1, e2;
    std::vector<Vec3> coarse;
    for (const Vec3& axis : {around, Vec3(-around)}) {
      frame_of(axis, e1, e2);
      // A partial scan's normal axis can be 30° off the stamp's front (half a face).
      for (int i = -6; i <= 6; ++i)
        for (int j = -6; j <= 6; ++j)
          if (i * i + j * j <= 37) coarse.push_back((rotation_about(e1, i * 6.0 * kPi / 180) * rotation_about(e2, j * 6.0 * kPi / 180) * axis).normalized());
    }
    const std::vector<Cand> ranked = search_all(coarse, 1.0);
    // The best few distinct directions, refined at a finer pixel; when the first does not fold
    // clearly, the others are tried and the one whose fold stands out most is kept.
    std::vector<Cand> picks;
    for (const Cand& b : ranked) {
      bool distinct = true;
      for (const Cand& q : picks) distinct = distinct && std::abs(q.d.dot(b.d)) < std::cos(10 * kPi / 180);
      if (distinct) picks.push_back(b);
      if (picks.size() == 3) break;
    }
    for (const Cand& c : picks) {
      frame_of(c.d, e1, e2);
      std::vector<Vec3> fine;
      for (int i = -2; i <= 2; ++i)
        for (int j = -2; j <= 2; ++j) fine.push_back((rotation_about(e1, i * 1.8 * kPi / 180) * rotation_about(e2, j * 1.8 * kPi / 180) * c.d).normalized());
      const std::vector<Cand> f = search_all(fine, 0.6);
      if (f.empty()) continue;
      const Pose p0 = pose_from(f[0].lat, f[0].d);
      const std::vector<char> use = front_layer(res, f[0].d, 0.5 * p0.scale, 1.0 * p0.scale);
      const Vec3 c0 = centre_of(res, use);
      const Pose p = settle_sublattice(res, use, refine(res, use, p0, c0, true), c0);
      const double contrast = contrast_of(res, use, p);
      log_debug("detect: candidate {:.3f} {:.3f} {:.3f}: score {:.1f}, scale {:.3f}, contrast {:.2f}", f[0].d.x(), f[0].d.y(), f[0].d.z(),
                f[0].lat.score, p.scale, contrast);
      if (contrast > best.contrast) {
        best.ok = true;
        best.contrast = contrast;
        best.pose = p;
        best.d = f[0].d;
      }
      if (contrast > kClearContrast) break;
    }
  };
  // Around the normals' principal axis first; a half face's front can lie along the second axis
  // instead, looked at when the first finds no sure lattice and enough surface faces that way. A
  // one-sided scan of a round shape (a mask on a head, seen from the front) has its normals spread
  // nearly evenly, so the principal axis can lie 50° or more off the mark's front: there a weak
  // lattice of the mark seen aslant (contrast 3) was taken, and the reading failed.
  log_debug("detect: normals' axes ({:.3f} {:.3f} {:.3f}), ({:.3f} {:.3f} {:.3f}) weight {:.2f}", res.axis.x(), res.axis.y(), res.axis.z(),
            res.second_axis.x(), res.second_axis.y(), res.second_axis.z(), res.second_weight);
  search_cone(res.axis);
  if (best.contrast < kSureContrast && res.second_weight >= 0.25) search_cone(res.second_axis);
  return best;
}

}  // namespace


namespace {

Analysis analyze_impl(const std::function<std::vector<Vec3>(double spacing)>& sample, double area_hint, double unit, const DetectOptions& o,
                      Detection det) {
  Analysis out;
  StepTimer timer(det.timings);
  det.unit_factor = unit;
  std::vector<Vec3> pts = sample(o.spacing_mm);
  det.samples = pts.size();
  det.area_mm2 = area_hint > 0 ? area_hint : static_cast<double>(pts.size()) * o.spacing_mm * o.spacing_mm / 1.5;
  constexpr double kMinArea = 2.0 * kTileMm * kTileMm;
  if (det.area_mm2 < kMinArea) {
    det.outcome = Outcome::insufficient_surface;
    det.reason = fmt::format("{:.0f} mm² of surface; a mark needs at least {:.0f} mm²", det.area_mm2, kMinArea);
    return Analysis{det, nullptr};
  }
  // The lattice is searched for at a working scale s0: the high-pass, the chart's pixel and extent
  // and the periods looked for all scale with it. A scan at the stamp's own size is found at
  // s0 = 1; one scaled down or up (an unknown unit, a scaled copy) loses the pattern to the chart's
  // pixel or to the high-pass there, and is looked for again at 0.6 and 1.7 when s0 = 1 finds no
  // clear lattice. Each pass covers about 0.45–2.3 × s0 for the period, so they overlap.
  // Below s0 = 1 the samples are denser than at the stamp's size while the charts reach only 60 s0
  // (85 s0 at their corners) from the centre: only the samples within 85 s0 of it are high-passed
  // for that search (on an unmarked full-face appliance, 25 s → 12 s at s0 = 0.6), and a lattice
  // found there is high-passed again over the whole scan.
  Residuals res;
  LatticeFound best;
  bool best_cropped = false;
  for (const double s0 : {1.0, 0.6, 1.7}) {
    bool cropped = false;
    if (s0 != 1.0) {
      if (best.contrast > kClearContrast) break;
      pts = sample(o.spacing_mm * s0);
      if (s0 < 1.0) cropped = keep_near_centre(pts, 85.0 * s0);
      log_debug("detect: working scale {:.2f}: {} samples", s0, pts.size());
    }
    Residuals r = equalized_residuals(pts, s0, nullptr);
    timer.lap(s0 == 1.0 ? "residual" : "residual_other_scale");
    if (r.valid_count < 2000) {
      if (s0 != 1.0) continue;
      det.outcome = Outcome::insufficient_surface;
      det.reason = "too few samples with a surface around them";
      return Analysis{det, nullptr};
    }
    LatticeFound f = search_lattice(r, s0);
    timer.lap(s0 == 1.0 ? "lattice" : "lattice_other_scale");
    log_debug("detect: working scale {:.2f}: contrast {:.2f}", s0, f.contrast);
    if (f.ok && f.contrast > best.contrast) {
      best = f;
      best_cropped = cropped;
      res = std::move(r);
    }
  }
  if (!best.ok) {
    det.outcome = Outcome::no_mark;
    det.reason = "no tile lattice in the surface's relief";
    return Analysis{det, nullptr};
  }
  det.front = best.d;
  Pose pose = best.pose;
  // At another scale than the search's, sample and high-pass again at the pattern's own size.
  if (best_cropped || std::abs(pose.scale / best.working_scale - 1) > 0.1) {
    pts = sample(o.spacing_mm * pose.scale);
    det.samples = pts.size();
    const Vec3 f = best.d;
    res = equalized_residuals(pts, pose.scale, &f);
    timer.lap("residual_rescaled");
  }
  // Heights along normals oriented towards the front found, as the folds take them.
  for (std::size_t i = 0; i < res.points.size(); ++i)
    if (res.normals[i].dot(best.d) < 0) {
      res.normals[i] = -res.normals[i];
      res.value[i] = -res.value[i];
    }
  const std::vector<char> use = front_layer(res, best.d, 0.5 * pose.scale, 1.0 * pose.scale);
  const Vec3 centre = centre_of(res, use);  // centre of the refinement
  log_debug("detect: lattice: scale {:.4f} front {:.3f} {:.3f} {:.3f}", pose.scale, best.d.x(), best.d.y(), best.d.z());
  pose = refine(res, use, pose, centre, true);
  // Settled again on the residual at the pattern's own scale, then measured against the floor.
  pose = settle_sublattice(res, use, pose, centre);
  const double fold_contrast = contrast_of(res, use, pose);
  det.lattice_contrast = fold_contrast;
  log_debug("detect: fold contrast {:.2f} scale {:.4f}", fold_contrast, pose.scale);
  if (fold_contrast < 1.15) {
    det.outcome = Outcome::no_mark;
    det.reason = fmt::format("no tile lattice in the surface's relief (fold contrast {:.2f})", fold_contrast);
    return Analysis{det, nullptr};
  }
  log_debug("detect: refined: scale {:.4f}", pose.scale);
  det.scale = pose.scale;
  timer.lap("refine");

  // Fold everything into one tile.
  auto state = std::make_shared<AnalysisState>();
  state->lattice = pose.lattice();
  for (std::size_t i = 0; i < res.points.size(); ++i)
    if (use[i]) state->used.push_back(i);
  const std::vector<std::size_t> carriers = carrier_samples(res, state->used, state->lattice, 10.0 * pose.scale);
  log_debug("detect: carrier samples: {} of {}", carriers.size(), state->used.size());
  state->folded = fold(pack(res, carriers), state->lattice);
  state->unit = unit;
  state->scale = pose.scale;
  state->area_mm2 = det.area_mm2;
  state->res = std::move(res);
  timer.lap("fold");
  out.base = det;
  out.state = state;
  return out;
}

}  // namespace

namespace {

std::size_t tile_bin(int x, int y) { return static_cast<std::size_t>(((x % kBins + kBins) % kBins) * kBins + (y % kBins + kBins) % kBins); }

//! How the folded tile lies against the keyed sync cells: the best of 8 symmetries × all shifts,
//! its correlation's z-score over all of them, and its sign.
struct SyncAlignment {
  int g = 0, tx = 0, ty = 0;
  double z = 0, polarity = 1;
  std::size_t bin(int x, int y) const {
    const Eigen::Vector2i q = apply_symmetry(g, x + tx, y + ty);
    return tile_bin(q.x(), q.y());
  }
};

SyncAlignment align_sync(const Folded& folded, const Layout& layout) {
  const auto sync = sync_values(layout);
  std::vector<Complex> S(static_cast<std::size_t>(kBins * kBins));
  for (int x = 0; x < kBins; ++x)
    for (int y = 0; y < kBins; ++y) S[static_cast<std::size_t>(x * kBins + y)] = pattern(sync, x / double(kBinsPerCell), y / double(kBinsPerCell));
  fft2(S, kBins, false);
  std::vector<double> mean(static_cast<std::size_t>(kBins * kBins), 0.0);
  for (std::size_t b = 0; b < mean.size(); ++b)
    if (folded.count[b] > 0) mean[b] = folded.sum[b] / folded.count[b];
  SyncAlignment a;
  double best_c = 0, s1 = 0, s2 = 0, nc = 0;
  for (int g = 0; g < 8; ++g) {
    std::vector<Complex> M(mean.size());
    for (int x = 0; x < kBins; ++x)
      for (int y = 0; y < kBins; ++y) {
        const Eigen::Vector2i q = apply_symmetry(g, x, y);
        M[static_cast<std::size_t>(x * kBins + y)] = mean[tile_bin(q.x(), q.y())];
      }
    fft2(M, kBins, false);
    for (std::size_t k = 0; k < M.size(); ++k) M[k] *= std::conj(S[k]);
    fft2(M, kBins, true);  // C(t) = Σ_x M(x + t) S(x)
    for (int x = 0; x < kBins; ++x)
      for (int y = 0; y < kBins; ++y) {
        const double c = M[static_cast<std::size_t>(x * kBins + y)].real();
        s1 += c, s2 += c * c, nc += 1;
        if (std::abs(c) > std::abs(best_c)) best_c = c, a.g = g, a.tx = x, a.ty = y;
      }
  }
  const double cmean = s1 / nc, csd = std::sqrt(std::max(s2 / nc - cmean * cmean, 1e-300));
  a.z = std::abs(best_c - cmean) / csd;
  a.polarity = best_c > 0 ? 1.0 : -1.0;
  return a;
}

//! Soft cell values: kernel-weighted means over each cell's footprint in the aligned tile.
std::array<double, kSlots> cell_means(const Folded& folded, const SyncAlignment& a) {
  std::array<double, kSlots> cellv{};
  for (int i = 0; i < kCells; ++i)
    for (int j = 0; j < kCells; ++j) {
      double num = 0, den = 0;
      for (int dx = -kBinsPerCell + 1; dx < kBinsPerCell; ++dx)
        for (int dy = -kBinsPerCell + 1; dy < kBinsPerCell; ++dy) {
          const double w = kernel(dx / double(kBinsPerCell)) * kernel(dy / double(kBinsPerCell));
          const std::size_t b = a.bin(kBinsPerCell * i + dx, kBinsPerCell * j + dy);
          num += w * folded.sum[b];
          den += w * folded.count[b];
        }
      cellv[static_cast<std::size_t>(i * kCells + j)] = den > 0 ? a.polarity * num / den : 0.0;
    }
  return cellv;
}

//! The coded bits' soft values: each slot's cell value, signed by the layout, over the cells' RMS.
std::vector<double> soft_bits(const std::array<double, kSlots>& cellv, const Layout& layout) {
  double rms = 0;
  for (double v : cellv) rms += v * v;
  rms = std::sqrt(rms / kSlots) + 1e-300;
  std::vector<double> soft(static_cast<std::size_t>(kCodedBits), 0.0);
  for (std::size_t s = 0; s < static_cast<std::size_t>(kSlots); ++s)
    if (layout.bit[s] >= 0) soft[static_cast<std::size_t>(layout.bit[s])] += layout.sign[s] * cellv[s] / rms;
  return soft;
}

//! Confidence and bit error rate: how the cells agree with the decoded identifier's code.
void agreement(const std::array<double, kSlots>& cellv, const Layout& layout, const std::vector<std::uint8_t>& code, Detection& det) {
  double agree = 0, total = 0;
  int wrong = 0;
  for (std::size_t s = 0; s < static_cast<std::size_t>(kSlots); ++s) {
    if (layout.bit[s] < 0) continue;
    const double c = code[static_cast<std::size_t>(layout.bit[s])] ? 1.0 : -1.0;
    const double v = layout.sign[s] * cellv[s];
    agree += c * v;
    total += std::abs(v);
    wrong += c * v < 0;
  }
  det.confidence = total > 0 ? std::max(0.0, agree / total) : 0.0;
  det.bit_error_rate = static_cast<double>(wrong) / kPayloadCells;
  det.false_positive_bound = std::ldexp(1.0, -kCrcBits);
}

//! Where the mark is: 10 mm blocks whose samples correlate with the decoded pattern (z > 2); their
//! share of the samples gives the carrier's area, their corners its box (in the input's unit).
void locate_carrier(const AnalysisState& st, const Layout& layout, const std::vector<std::uint8_t>& code, const SyncAlignment& a, Detection& det) {
  const Residuals& res = st.res;
  const auto cells = cell_values(layout, code);
  std::map<std::array<std::int64_t, 3>, std::array<double, 3>> blocks;  // Σ r·p, Σ p², count
  const double bs = 10.0 * st.scale;
  // apply_symmetry is an involution for g ∈ {0..4, 7}; 5 and 6 are each other's inverse.
  const int ginv = a.g == 5 ? 6 : a.g == 6 ? 5 : a.g;
  for (std::size_t i : st.used) {
    const Eigen::Vector2d c = st.lattice.coords(res.points[i]);
    const std::array<std::int64_t, 3> k{static_cast<std::int64_t>(std::floor(res.points[i].x() / bs)), static_cast<std::int64_t>(std::floor(res.points[i].y() / bs)),
                                        static_cast<std::int64_t>(std::floor(res.points[i].z() / bs))};
    auto& blk = blocks[k];
    // Predicted value: the aligned tile's cell pattern at this sample (the alignment inverted).
    const long xb = std::lround(kBinsPerCell * c.x()), yb = std::lround(kBinsPerCell * c.y());
    Eigen::Vector2i q = apply_symmetry(ginv, static_cast<int>(xb), static_cast<int>(yb));
    q.x() -= a.tx;
    q.y() -= a.ty;
    const double p = a.polarity * pattern(cells, q.x() / double(kBinsPerCell), q.y() / double(kBinsPerCell));
    blk[0] += res.value[i] * p;
    blk[1] += p * p;
    blk[2] += 1;
  }
  double carrier = 0;
  std::vector<std::array<std::int64_t, 3>> carriers;
  double noise2 = 0, nn = 0;
  for (std::size_t i : st.used) noise2 += res.value[i] * res.value[i], nn += 1;
  const double sd = std::sqrt(noise2 / std::max(nn, 1.0));
  for (const auto& [k, blk] : blocks) {
    if (blk[2] < 30 || blk[1] <= 0) continue;
    const double z = blk[0] / (sd * std::sqrt(blk[1]));
    if (z > 2.0) {
      carrier += blk[2];
      carriers.push_back(k);
    }
  }
  det.carrier_area_mm2 = carrier * det.area_mm2 / std::max<double>(static_cast<double>(res.points.size()), 1.0);
  for (const auto& k : carriers)
    for (int c = 0; c < 8; ++c) {
      const Vec3 p((k[0] + (c & 1)) * bs, (k[1] + ((c >> 1) & 1)) * bs, (k[2] + ((c >> 2) & 1)) * bs);
      det.carrier_box.add(p / st.unit);
    }
}

}  // namespace

Detection read(const Analysis& analysis, const Key& key) {
  Detection det = analysis.base;
  if (!analysis.state) return det;
  StepTimer timer(det.timings);
  const AnalysisState& st = *analysis.state;
  const Layout layout = make_layout(key);
  const SyncAlignment a = align_sync(st.folded, layout);
  det.sync_z = a.z;
  const std::array<double, kSlots> cellv = cell_means(st.folded, a);
  const std::vector<double> soft = soft_bits(cellv, layout);
  const Decoded dec = decode(soft);
  det.soft = soft;
  timer.lap("decode");
  const auto code = encode(dec.id);
  agreement(cellv, layout, code, det);
  if (!dec.crc_ok) {
    det.outcome = Outcome::no_mark;
    det.reason = fmt::format("no mark under key {} (sync {:.1f} σ, {:.0f} % of cells inconsistent)", key.id(), det.sync_z, 100 * det.bit_error_rate);
    return det;
  }
  det.outcome = Outcome::found;
  det.id = dec.id;
  if (!st.used.empty()) locate_carrier(st, layout, code, a, det);  // not from an analysis read as data: it has no samples
  det.reason = fmt::format("identifier {} (sync {:.1f} σ, {:.1f} % of cells inconsistent)", format_id(det.id), det.sync_z, 100 * det.bit_error_rate);
  return det;
}

Analysis analyze(const std::vector<Vec3>& points, const DetectOptions& o) {
  throw_problems("detect", detect_option_table().check(o));
  Detection det;
  for (const Vec3& p : points)
    if (!p.allFinite()) throw InputError("detect: the scan has a non-finite coordinate");
  if (points.size() < 100) {
    det.outcome = Outcome::insufficient_surface;
    det.reason = fmt::format("{} points; a mark needs a scan of thousands", points.size());
    return Analysis{det, nullptr};
  }
  const double unit = unit_factor_of(bounding_box(points));
  {
    std::vector<Vec3> scaled;
    scaled.reserve(points.size());
    for (const Vec3& p : points) scaled.push_back(p * unit);
    const double median = median_spacing(scaled, 0.6);
    if (median > 0.6) {
      det.outcome = Outcome::insufficient_surface;
      det.unit_factor = unit;
      det.reason = fmt::format("points {:.2f} mm apart (median); a mark needs 0.6 mm or closer", median);
      return Analysis{det, nullptr};
    }
    return analyze_impl([&](double spacing) { return voxel_thin(scaled, spacing); }, 0, unit, o, det);
  }
}

Analysis analyze(const Mesh& scan, const DetectOptions& o) {
  throw_problems("detect", detect_option_table().check(o));
  validate(scan, "scan");
  Detection det;
  if (scan.triangles.empty()) return analyze(scan.vertices, o);
  const double unit = unit_factor_of(bounding_box(scan));
  Mesh m = scan;
  scale(m, unit);
  double area = 0;
  std::vector<double> edges;
  for (const Tri& t : m.triangles) {
    area += 0.5 * (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).norm();
    if (edges.size() < 20000) edges.push_back((m.vertices[t[1]] - m.vertices[t[0]]).norm());
  }
  std::nth_element(edges.begin(), edges.begin() + static_cast<std::ptrdiff_t>(edges.size() / 2), edges.end());
  const double median_edge = edges[edges.size() / 2];
  if (median_edge > 1.0) {
    det.outcome = Outcome::insufficient_surface;
    det.unit_factor = unit;
    det.area_mm2 = area;
    det.reason = fmt::format("triangles {:.2f} mm long (median edge); a mark needs 1 mm or finer", median_edge);
    return Analysis{det, nullptr};
  }
  auto sample = [&](double spacing) {
    const auto count = static_cast<std::size_t>(std::min(4.0e6, 2.0 * area / (spacing * spacing)));
    return voxel_thin(sample_surface(m, count, o.seed).points, spacing);
  };
  return analyze_impl(sample, area, unit, o, det);
}

Detection detect(const std::vector<Vec3>& points, const Key& key, const DetectOptions& o) { return read(analyze(points, o), key); }
Detection detect(const Mesh& scan, const Key& key, const DetectOptions& o) { return read(analyze(scan, o), key); }

}  // namespace tracecast::watermark
