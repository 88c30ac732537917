// What the stamp and the detector share: the keyed tile, the pattern, the high-pass residual of a
// surface and the folding of samples into one tile. Internal to the watermark library.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tracecast/mesh/mesh.h"
#include "tracecast/mesh/rounding.h"
#include "tracecast/watermark/key.h"

namespace tracecast::watermark::detail {

constexpr int kCells = 16;                     // cells per tile side
constexpr int kSlots = kCells * kCells;        // 256
constexpr int kPayloadCells = 204;             // coded bits 3t and 3t+1 (generators 133, 171: rate 1/2)
constexpr int kSyncCells = kSlots - kPayloadCells;
constexpr double kCellMm = 1.2;                // cell pitch on the stamped piece
constexpr double kTileMm = kCells * kCellMm;   // 19.2 mm
// Marked tiles under which stamping warns that the mark may not be read back. In the benchmark's
// piece-size sweep (docs/methods/watermark.md) every cut of 15 tiles or more read on both hosts;
// on the real scan, cuts of 9–10 tiles read 8 times in 12.
constexpr double kReadableTiles = 15.0;
constexpr int kBinsPerCell = 4;
constexpr int kBins = kCells * kBinsPerCell;   // folded tile raster, 64 × 64
constexpr double kPi = 3.14159265358979323846;

struct Layout {
  std::array<int, kSlots> bit{};      // coded bit index carried by the cell, -1 for a sync cell
  std::array<double, kSlots> sign{};  // keyed ±1: scrambling of a payload cell, value of a sync cell
};
Layout make_layout(const Key& key);

//! Cell values (±1) of the tile for a codeword of kCodedBits bits.
std::array<double, kSlots> cell_values(const Layout& layout, const std::vector<std::uint8_t>& coded);
//! The sync cells only (payload cells 0).
std::array<double, kSlots> sync_values(const Layout& layout);

//! A voxel's hash key: the cell of side `h` holding p, three 21-bit integer coordinates packed
//! (unique within ±10⁶ cells of the origin).
inline std::uint64_t voxel_key(std::int64_t i, std::int64_t j, std::int64_t k) {
  return (static_cast<std::uint64_t>(i & 0x1FFFFF) << 42) | (static_cast<std::uint64_t>(j & 0x1FFFFF) << 21) | static_cast<std::uint64_t>(k & 0x1FFFFF);
}
inline std::uint64_t voxel_key(const Vec3& p, double h) {
  return voxel_key(static_cast<std::int64_t>(std::floor(p.x() / h)), static_cast<std::int64_t>(std::floor(p.y() / h)),
                   static_cast<std::int64_t>(std::floor(p.z() / h)));
}
using tracecast::floor_int;
using tracecast::round_half_away;

//! cos²(πt/2) on |t| < 1: shifted copies at unit spacing sum to one.
inline double kernel(double t) {
  t = std::abs(t);
  if (t >= 1) return 0;
  const double c = std::cos(0.5 * kPi * t);
  return c * c;
}

//! Pattern value in [-1, 1] at tile coordinates (x, y) in cells (periodic; cell (i, j) centred on (i, j)).
double pattern(const std::array<double, kSlots>& cells, double x, double y);

//! The lattice of the pattern in 3D: tile coordinates of p are 16·((p − origin)·a/|a|², (p − origin)·b/|b|²).
struct Lattice {
  Vec3 origin = Vec3::Zero();
  Vec3 a = Vec3::UnitX() * kTileMm, b = Vec3::UnitY() * kTileMm;
  Eigen::Vector2d coords(const Vec3& p) const {
    const Vec3 d = p - origin;
    return {kCells * d.dot(a) / a.squaredNorm(), kCells * d.dot(b) / b.squaredNorm()};
  }
};

//! High-pass residual of a sampled surface: the height of each sample above a Gaussian-weighted
//! quadric fitted around it (σ = `sigma`), along the fit's normal oriented towards `front`.
struct Residuals {
  std::vector<Vec3> points;
  std::vector<Vec3> normals;
  std::vector<double> value;
  std::vector<char> valid;
  Vec3 axis = Vec3::UnitZ();  // principal normal axis (sign: towards `front` if given)
  Vec3 second_axis = Vec3::UnitX();  // the normals' second principal axis
  double second_weight = 0;          // its eigenvalue over the principal one's
  std::size_t valid_count = 0;
};
Residuals residuals(const std::vector<Vec3>& samples, double sigma, const Vec3* front);

//! Samples folded into one tile: sums and counts per bin of the kBins × kBins raster.
struct Folded {
  std::vector<double> sum = std::vector<double>(kBins * kBins, 0.0);
  std::vector<double> count = std::vector<double>(kBins * kBins, 0.0);
};
//! The samples to fold, gathered side by side (the valid ones of a subset, in order): a search
//! folds the same samples under hundreds of lattices, and reading them through an index list from
//! three arrays costs more than the folding.
struct FoldSample {
  Vec3 p, n;
  double value;
};
using FoldSamples = std::vector<FoldSample>;
FoldSamples pack(const Residuals& r, const std::vector<std::size_t>& subset);
Folded fold(const FoldSamples& samples, const Lattice& lattice);
//! The bin of the folded tile that p falls in.
std::size_t bin_of(const Lattice& lattice, const Vec3& p);
//! Energy of the folded tile smoothed by the cell's kernel (Σ count·mean² / Σ count): largest
//! when the lattice is exact.
double energy(const Folded& f);
//! Energy of the folded tile as it is (Σ sum²/count / Σ count): comparable across lattices of
//! different scales, which energy() is not (its kernel scales with the tile).
double raw_energy(const Folded& f);

}  // namespace tracecast::watermark::detail

namespace tracecast::watermark {

//! What analyze() leaves for read(): the folded tile, and the samples behind it (to locate the
//! carrier area); an analysis read from data (analysis_from_json) has the tile only.
struct AnalysisState {
  detail::Residuals res;
  std::vector<std::size_t> used;  // front-layer samples with a residual
  detail::Lattice lattice;
  detail::Folded folded;
  double unit = 1, scale = 1, area_mm2 = 0;
};

}  // namespace tracecast::watermark
