// The keyed tile, the residual and folding (see tile.h).
#include "tile.h"

#include <tbb/parallel_for.h>

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <limits>
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

namespace {

//! Points binned in cubes of side `cell`, each cube's points side by side. The neighbours of a
//! point within `cell` lie in the 27 cubes around its own; queries are made a cube at a time (the
//! candidates of all the points in a cube gathered once). For the residual's hundreds of thousands
//! of fixed-radius queries this is several times cheaper than a k-d tree, and it answers the same:
//! the points closer than the radius (squared distances summed x, y, z in that order, as the tree
//! does), sorted by distance, so that the fits sum them in the same order.
class PointGrid {
 public:
  struct Cell {
    std::int64_t i, j, k;
    std::uint32_t begin, end;  // range of order()
  };
  PointGrid(const std::vector<Vec3>& pts, double cell) : pts_(pts) {
    std::vector<std::pair<std::uint64_t, std::uint32_t>> keyed(pts.size());
    for (std::size_t i = 0; i < pts.size(); ++i) keyed[i] = {voxel_key(pts[i], cell), static_cast<std::uint32_t>(i)};
    std::sort(keyed.begin(), keyed.end());
    order_.resize(pts.size());
    ranges_.reserve(pts.size() / 8 + 16);
    for (std::size_t i = 0; i < keyed.size();) {
      std::size_t j = i;
      while (j < keyed.size() && keyed[j].first == keyed[i].first) {
        order_[j] = keyed[j].second;
        ++j;
      }
      const Vec3& p = pts[keyed[i].second];
      cells_.push_back({static_cast<std::int64_t>(std::floor(p.x() / cell)), static_cast<std::int64_t>(std::floor(p.y() / cell)),
                        static_cast<std::int64_t>(std::floor(p.z() / cell)), static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j)});
      ranges_.emplace(keyed[i].first, std::make_pair(static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j)));
      i = j;
    }
  }
  const std::vector<Cell>& cells() const { return cells_; }
  std::uint32_t point(std::uint32_t k) const { return order_[k]; }
  //! The points of the 27 cubes around cube (i, j, k) of a grid of the same side.
  void around(const Cell& c, std::vector<std::pair<Vec3, std::uint32_t>>& out) const {
    out.clear();
    for (std::int64_t dk = -1; dk <= 1; ++dk)
      for (std::int64_t dj = -1; dj <= 1; ++dj)
        for (std::int64_t di = -1; di <= 1; ++di) {
          const auto it = ranges_.find(voxel_key(c.i + di, c.j + dj, c.k + dk));
          if (it == ranges_.end()) continue;
          for (std::uint32_t k = it->second.first; k < it->second.second; ++k) out.emplace_back(pts_[order_[k]], order_[k]);
        }
  }

 private:
  const std::vector<Vec3>& pts_;
  std::vector<std::uint32_t> order_;
  std::vector<Cell> cells_;
  std::unordered_map<std::uint64_t, std::pair<std::uint32_t, std::uint32_t>> ranges_;
};

//! The candidates at squared distance below r2 from q, nearest first.
void nearest(const Vec3& q, double r2, const std::vector<std::pair<Vec3, std::uint32_t>>& candidates, std::vector<std::pair<double, std::uint32_t>>& out) {
  out.clear();
  for (const auto& [p, index] : candidates) {
    const double dx = q.x() - p.x(), dy = q.y() - p.y(), dz = q.z() - p.z();
    double d2 = dx * dx;
    d2 += dy * dy;
    d2 += dz * dz;
    if (d2 < r2) out.emplace_back(d2, index);
  }
  std::sort(out.begin(), out.end());
}

//! Anchors: one sample per voxel of σ (the first), each to carry a fit of its own sheet.
std::vector<Anchor> place_anchors(const std::vector<Vec3>& samples, double sigma) {
  std::vector<Anchor> anchors;
  std::unordered_map<std::uint64_t, char> seen;
  seen.reserve(samples.size() / 8 + 16);
  for (const Vec3& p : samples) {
    const std::uint64_t k = voxel_key(p, sigma);
    if (seen.emplace(k, 1).second) anchors.push_back(Anchor{p});
  }
  return anchors;
}

//! Each anchor's local plane from the 12 nearest samples (one sheet), then its gated quadric fits
//! over the samples within 2.5 σ (Gaussian weights of σ); `ok` where both fits hold.
void fit_anchors(std::vector<Anchor>& anchors, const std::vector<Vec3>& samples, double sigma) {
  const double radius = 2.5 * sigma, inv2s2 = 0.5 / (sigma * sigma), fit_sigma = std::sqrt(0.5 / inv2s2);
  const double gate = 0.35 * sigma;  // sheets of a shell thinner than ≈ 2 gates merge (only at feathered rims)
  // Cubes a little wider than the radius: rounding at a cube's face.
  const double cube = 1.001 * radius;
  const PointGrid grid(samples, cube);
  std::vector<Vec3> acentre(anchors.size());
  for (std::size_t a = 0; a < anchors.size(); ++a) acentre[a] = anchors[a].centre;
  const PointGrid by_cube(acentre, cube);  // the anchors, a cube at a time
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, by_cube.cells().size(), 16), [&](const auto& range) {
    std::vector<std::pair<Vec3, std::uint32_t>> candidates;
    std::vector<std::pair<double, std::uint32_t>> near;
    Neighbourhood nb;
    for (std::size_t c = range.begin(); c < range.end(); ++c) {
      const PointGrid::Cell& cell = by_cube.cells()[c];
      grid.around(cell, candidates);
      for (std::uint32_t k = cell.begin; k < cell.end; ++k) {
        Anchor& an = anchors[by_cube.point(k)];
        nearest(an.centre, radius * radius, candidates, near);
        if (near.size() < 20) continue;
        Vec3 m = Vec3::Zero();
        for (std::size_t q = 0; q < 12; ++q) m += samples[near[q].second];
        m /= 12.0;
        Eigen::Matrix3d cov = Eigen::Matrix3d::Zero();
        for (std::size_t q = 0; q < 12; ++q) cov += (samples[near[q].second] - m) * (samples[near[q].second] - m).transpose();
        an.n = Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d>(cov).eigenvectors().col(0);
        nb.q.resize(near.size());
        nb.g.resize(near.size());
        for (std::size_t q = 0; q < near.size(); ++q) {
          nb.q[q] = samples[near[q].second];
          nb.g[q] = std::exp(-near[q].first * inv2s2);
        }
        if (!fit_sheet(an, nb, fit_sigma, gate, false)) continue;
        an.ok = fit_sheet(an, nb, fit_sigma, 0.1 * sigma + 0.05, true);
      }
    }
  });
}

//! The principal normal axis, and a consistent orientation of the fits towards it (or `front`).
//! The second axis is where a half face's front can lie (curved like half a cylinder, its
//! principal axis is across it).
void orient_anchors(std::vector<Anchor>& anchors, const Vec3* front, Residuals& out) {
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
}

//! Each sample's height over the (up to) 4 nearest good fits within 1.5 σ, weighted by distance.
void heights_over_fits(const std::vector<Anchor>& anchors, const std::vector<Vec3>& samples, double sigma, Residuals& out) {
  std::vector<Vec3> acentres;
  std::vector<std::size_t> amap;
  for (std::size_t a = 0; a < anchors.size(); ++a)
    if (anchors[a].ok) {
      acentres.push_back(anchors[a].centre);
      amap.push_back(a);
    }
  if (acentres.size() < 3) return;
  const double reach2 = 2.25 * sigma * sigma, inv2b = 0.5 / (0.36 * sigma * sigma);
  const double acube = 1.501 * sigma;
  const PointGrid agrid(acentres, acube);
  const PointGrid sgrid(samples, acube);  // the samples, a cube at a time
  const double limit = 0.1 * sigma + 0.05;  // larger heights belong to another sheet, or to a crease
  const double within2 = std::nextafter(reach2, std::numeric_limits<double>::infinity());  // d² ≤ reach²
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, sgrid.cells().size(), 64), [&](const auto& range) {
    std::vector<std::pair<Vec3, std::uint32_t>> candidates;
    std::vector<std::pair<double, std::uint32_t>> near;
    for (std::size_t c = range.begin(); c < range.end(); ++c) {
      const PointGrid::Cell& cell = sgrid.cells()[c];
      agrid.around(cell, candidates);
      for (std::uint32_t k = cell.begin; k < cell.end; ++k) {
        const std::size_t i = sgrid.point(k);
        nearest(samples[i], within2, candidates, near);
        double v = 0, w = 0;
        Vec3 n = Vec3::Zero();
        for (std::size_t q = 0; q < std::min<std::size_t>(near.size(), 4); ++q) {
          const Anchor& an = anchors[amap[near[q].second]];
          const double h = an.height(samples[i]);
          if (std::abs(h) > limit) continue;
          const double wk = std::exp(-near[q].first * inv2b);
          v += wk * h;
          n += wk * an.n;
          w += wk;
        }
        if (!(w > 1e-12)) continue;
        out.value[i] = v / w;
        out.normals[i] = n.normalized();
        out.valid[i] = 1;
      }
    }
  });
  out.valid_count = static_cast<std::size_t>(std::count(out.valid.begin(), out.valid.end(), 1));
}

}  // namespace

Residuals residuals(const std::vector<Vec3>& samples, double sigma, const Vec3* front) {
  Residuals out;
  out.points = samples;
  out.normals.assign(samples.size(), Vec3::Zero());
  out.value.assign(samples.size(), 0.0);
  out.valid.assign(samples.size(), 0);
  if (samples.size() < 50) return out;
  std::vector<Anchor> anchors = place_anchors(samples, sigma);
  fit_anchors(anchors, samples, sigma);
  orient_anchors(anchors, front, out);
  heights_over_fits(anchors, samples, sigma, out);
  return out;
}

namespace {

//! bin_of() with the lattice's constants taken once: the same arithmetic, so the same bins.
//! Rounding inline (round_half_away, the same integers as llround), and the modulo of the
//! power-of-two kBins by a mask (two's complement: the same as ((i % kBins) + kBins) % kBins).
struct BinMap {
  static_assert((kBins & (kBins - 1)) == 0, "kBins must be a power of two");
  Vec3 origin, a, b;
  double a2, b2;
  explicit BinMap(const Lattice& l) : origin(l.origin), a(l.a), b(l.b), a2(l.a.squaredNorm()), b2(l.b.squaredNorm()) {}
  std::size_t operator()(const Vec3& p) const {
    const Vec3 d = p - origin;
    const double cx = kCells * d.dot(a) / a2, cy = kCells * d.dot(b) / b2;
    const std::int64_t bx = round_half_away(kBinsPerCell * cx), by = round_half_away(kBinsPerCell * cy);
    return static_cast<std::size_t>(bx & (kBins - 1)) * kBins + static_cast<std::size_t>(by & (kBins - 1));
  }
};

}  // namespace

std::size_t bin_of(const Lattice& lattice, const Vec3& p) { return BinMap(lattice)(p); }

FoldSamples pack(const Residuals& r, const std::vector<std::size_t>& subset) {
  FoldSamples out;
  out.reserve(subset.size());
  for (std::size_t i : subset)
    if (r.valid[i]) out.push_back({r.points[i], r.normals[i], r.value[i]});
  return out;
}

Folded fold(const FoldSamples& samples, const Lattice& lattice) {
  Folded f;
  const BinMap bin(lattice);
  // Heights along the normal oriented towards the lattice's front (a × b): the residual's own
  // orientation follows the principal axis, which can lie across the front of a partial scan.
  const Vec3 front = lattice.a.cross(lattice.b);
  for (const FoldSample& s : samples) {
    const std::size_t b = bin(s.p);
    f.sum[b] += s.n.dot(front) < 0 ? -s.value : s.value;
    f.count[b] += 1;
  }
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
