// The keyed tile, the residual and folding (see tile.h).
#include "tile.h"

#include <open3d/geometry/KDTreeFlann.h>
#include <open3d/geometry/PointCloud.h>
#include <tbb/parallel_for.h>

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <numeric>
#include <unordered_map>

#include "tracecast/watermark/payload.h"

namespace tracecast::watermark::detail {

Layout make_layout(const Key& key) {
  // A keyed permutation of the 256 cells (Fisher–Yates on the key's stream), then keyed signs.
  const std::vector<std::uint8_t> bytes = key.stream("tile-layout", 0, 4 * kSlots + kSlots);
  std::array<int, kSlots> order;
  std::iota(order.begin(), order.end(), 0);
  for (int i = kSlots - 1; i > 0; --i) {
    const std::size_t o = static_cast<std::size_t>(4 * i);
    const std::uint32_t r = static_cast<std::uint32_t>(bytes[o]) | static_cast<std::uint32_t>(bytes[o + 1]) << 8 |
                            static_cast<std::uint32_t>(bytes[o + 2]) << 16 | static_cast<std::uint32_t>(bytes[o + 3]) << 24;
    std::swap(order[static_cast<std::size_t>(i)], order[r % static_cast<std::uint32_t>(i + 1)]);
  }
  Layout l;
  for (int k = 0; k < kSlots; ++k) {
    const auto slot = static_cast<std::size_t>(order[static_cast<std::size_t>(k)]);
    // Payload cells carry the first two outputs of each trellis step (3t, 3t+1).
    l.bit[slot] = k < kPayloadCells ? 3 * (k / 2) + (k % 2) : -1;
    l.sign[slot] = (bytes[static_cast<std::size_t>(4 * kSlots + k)] & 1) ? 1.0 : -1.0;
  }
  return l;
}

std::array<double, kSlots> cell_values(const Layout& l, const std::vector<std::uint8_t>& coded) {
  std::array<double, kSlots> v{};
  for (std::size_t s = 0; s < static_cast<std::size_t>(kSlots); ++s)
    v[s] = l.bit[s] < 0 ? l.sign[s] : l.sign[s] * (coded[static_cast<std::size_t>(l.bit[s])] ? 1.0 : -1.0);
  return v;
}

std::array<double, kSlots> sync_values(const Layout& l) {
  std::array<double, kSlots> v{};
  for (std::size_t s = 0; s < static_cast<std::size_t>(kSlots); ++s) v[s] = l.bit[s] < 0 ? l.sign[s] : 0.0;
  return v;
}

double pattern(const std::array<double, kSlots>& cells, double x, double y) {
  const double fx = std::floor(x), fy = std::floor(y);
  double out = 0;
  for (int di = 0; di < 2; ++di)
    for (int dj = 0; dj < 2; ++dj) {
      const double kx = kernel(x - (fx + di)), ky = kernel(y - (fy + dj));
      if (kx == 0 || ky == 0) continue;
      const int i = ((static_cast<int>(fx) + di) % kCells + kCells) % kCells;
      const int j = ((static_cast<int>(fy) + dj) % kCells + kCells) % kCells;
      out += cells[static_cast<std::size_t>(i * kCells + j)] * kx * ky;
    }
  return out;
}

namespace {

struct Anchor {
  Vec3 centre = Vec3::Zero();
  Vec3 t1 = Vec3::UnitX(), t2 = Vec3::UnitY(), n = Vec3::UnitZ();
  Eigen::Matrix<double, 6, 1> q = Eigen::Matrix<double, 6, 1>::Zero();  // z = q0 + q1 x + q2 y + q3 x² + q4 xy + q5 y²
  double weight = 0;
  bool ok = false;
  double height(const Vec3& p) const {
    const Vec3 d = p - centre;
    const double x = d.dot(t1), y = d.dot(t2);
    return d.dot(n) - (q[0] + q[1] * x + q[2] * y + q[3] * x * x + q[4] * x * y + q[5] * y * y);
  }
};

}  // namespace

namespace {

//! An anchor's neighbourhood, gathered once for its two fits: positions and Gaussian weights.
struct Neighbourhood {
  std::vector<Vec3> q;
  std::vector<double> g;  // exp(−d²/2σ²)
  std::vector<double> w;  // weights of the fit (0: gated out), scratch
};

//! Weighted plane + quadric fit of the neighbours of `an` that lie within `gate` of the current
//! estimate (of the plane through the anchor at first): one sheet, not the far side of a thin shell.
bool fit_sheet(Anchor& an, Neighbourhood& nb, double sigma, double gate, bool use_quadric) {
  Eigen::Matrix<double, 6, 6> ata = Eigen::Matrix<double, 6, 6>::Zero();
  Eigen::Matrix<double, 6, 1> atb = Eigen::Matrix<double, 6, 1>::Zero();
  Vec3 m = Vec3::Zero();
  double wsum = 0;
  const std::size_t count = nb.q.size();
  nb.w.assign(count, 0.0);
  std::vector<double>& w = nb.w;
  for (std::size_t k = 0; k < count; ++k) {
    const Vec3& q = nb.q[k];
    const double h = use_quadric ? an.height(q) : (q - an.centre).dot(an.n);
    if (std::abs(h) > gate) continue;
    w[k] = nb.g[k];
    m += w[k] * q;
    wsum += w[k];
  }
  if (!(wsum > 0)) return false;
  m /= wsum;
  Eigen::Matrix3d cov = Eigen::Matrix3d::Zero();
  int used = 0;
  for (std::size_t k = 0; k < count; ++k)
    if (w[k] > 0) {
      const Vec3 d = nb.q[k] - m;
      cov += w[k] * d * d.transpose();
      ++used;
    }
  if (used < 20) return false;
  const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es(cov);
  const Vec3 n = es.eigenvectors().col(0);
  an.n = n.dot(an.n) < 0 ? Vec3(-n) : n;
  an.t1 = es.eigenvectors().col(2);
  an.t2 = an.n.cross(an.t1);
  an.weight = wsum;
  // One-sided neighbourhoods (the scan's border) extrapolate: leave them out.
  const Vec3 off = m - an.centre;
  if ((off - off.dot(an.n) * an.n).norm() > 0.3 * sigma) return false;
  // Normal equations of the quadric: only the lower triangle, which is all the LDLT reads.
  for (std::size_t k = 0; k < count; ++k) {
    if (w[k] <= 0) continue;
    const Vec3 d = nb.q[k] - an.centre;
    const double x = d.dot(an.t1), y = d.dot(an.t2), z = d.dot(an.n);
    const double row[6] = {1, x, y, x * x, x * y, y * y};
    for (int i = 0; i < 6; ++i) {
      const double wi = w[k] * row[i];
      for (int j = 0; j <= i; ++j) ata(i, j) += wi * row[j];
      atb[i] += w[k] * z * row[i];
    }
  }
  an.q = ata.ldlt().solve(atb);
  return an.q.allFinite();
}

}  // namespace

Residuals residuals(const std::vector<Vec3>& samples, double sigma, const Vec3* front) {
  Residuals out;
  out.points = samples;
  out.normals.assign(samples.size(), Vec3::Zero());
  out.value.assign(samples.size(), 0.0);
  out.valid.assign(samples.size(), 0);
  if (samples.size() < 50) return out;

  open3d::geometry::PointCloud cloud;
  cloud.points_ = samples;
  const open3d::geometry::KDTreeFlann tree(cloud);
  // Anchors: one sample per voxel of σ (the first), each with a fit of its own sheet.
  std::vector<Anchor> anchors;
  {
    const double h = sigma;
    std::unordered_map<std::uint64_t, char> seen;
    seen.reserve(samples.size() / 8 + 16);
    for (const Vec3& p : samples) {
      const std::uint64_t k = voxel_key(p, h);
      if (seen.emplace(k, 1).second) anchors.push_back(Anchor{p});
    }
  }
  const double radius = 2.5 * sigma, inv2s2 = 0.5 / (sigma * sigma), fit_sigma = std::sqrt(0.5 / inv2s2);
  const double gate = 0.35 * sigma;  // sheets of a shell thinner than ≈ 2 gates merge (only at feathered rims)
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, anchors.size(), 256), [&](const auto& range) {
    std::vector<int> idx;
    std::vector<double> d2;
    Neighbourhood nb;
    for (std::size_t a = range.begin(); a < range.end(); ++a) {
      Anchor& an = anchors[a];
      // The local plane from the nearest samples (one sheet), then the gated fits.
      if (tree.SearchKNN(an.centre, 12, idx, d2) < 12) continue;
      Vec3 m = Vec3::Zero();
      for (int i : idx) m += samples[static_cast<std::size_t>(i)];
      m /= static_cast<double>(idx.size());
      Eigen::Matrix3d cov = Eigen::Matrix3d::Zero();
      for (int i : idx) cov += (samples[static_cast<std::size_t>(i)] - m) * (samples[static_cast<std::size_t>(i)] - m).transpose();
      an.n = Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d>(cov).eigenvectors().col(0);
      if (tree.SearchRadius(an.centre, radius, idx, d2) < 20) continue;
      nb.q.resize(idx.size());
      nb.g.resize(idx.size());
      for (std::size_t k = 0; k < idx.size(); ++k) {
        nb.q[k] = samples[static_cast<std::size_t>(idx[k])];
        nb.g[k] = std::exp(-d2[k] * inv2s2);
      }
      if (!fit_sheet(an, nb, fit_sigma, gate, false)) continue;
      an.ok = fit_sheet(an, nb, fit_sigma, 0.1 * sigma + 0.05, true);
    }
  });

  // The principal normal axis, and a consistent orientation towards it. The second axis is where
  // a half face's front can lie (curved like half a cylinder, its principal axis is across it).
  Eigen::Matrix3d nn = Eigen::Matrix3d::Zero();
  for (const Anchor& a : anchors)
    if (a.ok) nn += a.n * a.n.transpose();
  const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es(nn);
  out.axis = es.eigenvectors().col(2);
  out.second_axis = es.eigenvectors().col(1);
  out.second_weight = es.eigenvalues()(1) / std::max(es.eigenvalues()(2), 1e-300);
  if (front && out.axis.dot(*front) < 0) out.axis = -out.axis;
  const Vec3 orient = front ? *front : out.axis;
  for (Anchor& a : anchors)
    if (a.n.dot(orient) < 0) {
      a.n = -a.n;  // heights change sign, the fit with them
      a.q = -a.q;
    }

  open3d::geometry::PointCloud acloud;
  std::vector<std::size_t> amap;
  for (std::size_t a = 0; a < anchors.size(); ++a)
    if (anchors[a].ok) {
      acloud.points_.push_back(anchors[a].centre);
      amap.push_back(a);
    }
  if (acloud.points_.size() < 3) return out;
  const open3d::geometry::KDTreeFlann atree(acloud);
  const double reach2 = 2.25 * sigma * sigma, inv2b = 0.5 / (0.36 * sigma * sigma);
  const double limit = 0.1 * sigma + 0.05;  // larger heights belong to another sheet, or to a crease
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, samples.size(), 4096), [&](const auto& range) {
    std::vector<int> idx;
    std::vector<double> d2;
    for (std::size_t i = range.begin(); i < range.end(); ++i) {
      atree.SearchKNN(samples[i], 4, idx, d2);
      double v = 0, w = 0;
      Vec3 n = Vec3::Zero();
      for (std::size_t k = 0; k < idx.size(); ++k) {
        if (d2[k] > reach2) continue;
        const Anchor& an = anchors[amap[static_cast<std::size_t>(idx[k])]];
        const double h = an.height(samples[i]);
        if (std::abs(h) > limit) continue;
        const double wk = std::exp(-d2[k] * inv2b);
        v += wk * h;
        n += wk * an.n;
        w += wk;
      }
      if (!(w > 1e-12)) continue;
      out.value[i] = v / w;
      out.normals[i] = n.normalized();
      out.valid[i] = 1;
    }
  });
  out.valid_count = static_cast<std::size_t>(std::count(out.valid.begin(), out.valid.end(), 1));
  return out;
}

std::size_t bin_of(const Lattice& lattice, const Vec3& p) {
  const Eigen::Vector2d c = lattice.coords(p);
  const auto bx = static_cast<std::int64_t>(std::lround(kBinsPerCell * c.x())), by = static_cast<std::int64_t>(std::lround(kBinsPerCell * c.y()));
  return static_cast<std::size_t>(((bx % kBins) + kBins) % kBins) * kBins + static_cast<std::size_t>(((by % kBins) + kBins) % kBins);
}

Folded fold(const Residuals& r, const Lattice& lattice, const std::vector<std::size_t>* subset) {
  Folded f;
  // Heights along the normal oriented towards the lattice's front (a × b): the residual's own
  // orientation follows the principal axis, which can lie across the front of a partial scan.
  const Vec3 front = lattice.a.cross(lattice.b);
  auto add = [&](std::size_t i) {
    if (!r.valid[i]) return;
    const std::size_t b = bin_of(lattice, r.points[i]);
    f.sum[b] += r.normals[i].dot(front) < 0 ? -r.value[i] : r.value[i];
    f.count[b] += 1;
  };
  if (subset)
    for (std::size_t i : *subset) add(i);
  else
    for (std::size_t i = 0; i < r.points.size(); ++i) add(i);
  return f;
}

double raw_energy(const Folded& f) {
  double e = 0, n = 0;
  for (std::size_t b = 0; b < f.sum.size(); ++b)
    if (f.count[b] > 0) {
      e += f.sum[b] * f.sum[b] / f.count[b];
      n += f.count[b];
    }
  return n > 0 ? e / n : 0;
}

double energy(const Folded& f) {
  // The folded tile smoothed by the cell's kernel, separably (sums and counts alike): the mark's
  // fold is a sum of such bumps and keeps its energy; the relief's bin-to-bin scatter does not.
  constexpr int kTaps = kBinsPerCell - 1;
  std::array<double, 2 * kTaps + 1> w{};
  for (int t = -kTaps; t <= kTaps; ++t) w[static_cast<std::size_t>(t + kTaps)] = kernel(t / double(kBinsPerCell));
  auto wrap = [](int i) { return static_cast<std::size_t>((i % kBins + kBins) % kBins); };
  std::vector<double> s1(f.sum.size(), 0.0), c1(f.sum.size(), 0.0), s2(f.sum.size(), 0.0), c2(f.sum.size(), 0.0);
  for (int x = 0; x < kBins; ++x)
    for (int y = 0; y < kBins; ++y) {
      double s = 0, c = 0;
      for (int t = -kTaps; t <= kTaps; ++t) {
        const std::size_t b = wrap(x + t) * kBins + static_cast<std::size_t>(y);
        s += w[static_cast<std::size_t>(t + kTaps)] * f.sum[b];
        c += w[static_cast<std::size_t>(t + kTaps)] * f.count[b];
      }
      s1[static_cast<std::size_t>(x * kBins + y)] = s;
      c1[static_cast<std::size_t>(x * kBins + y)] = c;
    }
  for (int x = 0; x < kBins; ++x)
    for (int y = 0; y < kBins; ++y) {
      double s = 0, c = 0;
      for (int t = -kTaps; t <= kTaps; ++t) {
        const std::size_t b = static_cast<std::size_t>(x) * kBins + wrap(y + t);
        s += w[static_cast<std::size_t>(t + kTaps)] * s1[b];
        c += w[static_cast<std::size_t>(t + kTaps)] * c1[b];
      }
      s2[static_cast<std::size_t>(x * kBins + y)] = s;
      c2[static_cast<std::size_t>(x * kBins + y)] = c;
    }
  double e = 0, n = 0;
  for (std::size_t b = 0; b < f.sum.size(); ++b)
    if (f.count[b] > 0 && c2[b] > 0) {
      const double m = s2[b] / c2[b];
      e += f.count[b] * m * m;
      n += f.count[b];
    }
  return n > 0 ? e / n : 0;
}

}  // namespace tracecast::watermark::detail
