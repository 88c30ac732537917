// Surfaces as the zero level of a field sampled on a grid (marching tetrahedra): a synthetic
// head from its implicit definition, an ear prosthesis from signed distances, and the watermark
// attack that re-extracts a scan from its distance field. The surface a grid's tetrahedra give
// is closed, manifold and free of crossings by construction (each tetrahedron holds one flat
// piece that meets its neighbours' along shared edges).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tracecast/mesh/mesh.h"

namespace tracecast {

//! Vertices on grid edges, shared by the cells around each edge (key: the edge's two grid points).
struct GridEdgeHash {
  std::size_t operator()(const std::pair<std::uint64_t, std::uint64_t>& e) const {
    return std::hash<std::uint64_t>()(e.first * 0x9E3779B97F4A7C15ULL ^ e.second);
  }
};
using EdgeVertices = std::unordered_map<std::pair<std::uint64_t, std::uint64_t>, std::int32_t, GridEdgeHash>;

//! One grid cell's corners: corner c (0–7) has bits x, y, z; `key` names its grid point (so that
//! cells share the vertices on their common edges), `value` is negative inside.
struct LevelSetCell {
  std::array<std::uint64_t, 8> key;
  std::array<double, 8> value;
  std::array<Vec3, 8> point;
};

//! Appends the zero level inside one cell, split into six tetrahedra around its main diagonal
//! (the same split in every cell, so neighbours agree on shared faces); triangles face the
//! positive side.
void level_set_cell(const LevelSetCell& cell, EdgeVertices& shared, Mesh& out);

//! The smaller of a and b, rounded over a width k where they cross (a polynomial blend): fields
//! combined by sharp minima or maxima meet in creases, which a grid samples as a row of notches.
inline double smooth_min(double a, double b, double k) {
  const double h = std::clamp(0.5 + 0.5 * (b - a) / k, 0.0, 1.0);
  return b * (1 - h) + a * h - k * h * (1 - h);
}
//! The larger of a and b, rounded the same way.
inline double smooth_max(double a, double b, double k) { return -smooth_min(-a, -b, k); }

//! Values of a field at many points at once (a batch lets distance queries run in parallel).
using FieldFn = std::function<std::vector<double>(const std::vector<Vec3>&)>;

//! The surface where `field` is zero inside `box`, sampled every `h` mm (negative inside). The
//! field should be positive on the box's faces, or the surface is cut open there. The grid is
//! offset from the box by odd fractions of `h` so that its points do not fall on a surface's own
//! vertices (a zero value would pinch the extracted surface).
//!
//! With `lipschitz` > 0 (the field changes by at most that much per mm, as a distance does by 1),
//! the field is first sampled every 4 h, and the fine grid only inside the coarse cells whose
//! corners are near enough zero for the surface to pass through them: a narrow band, where a
//! head's shell needs a tenth of the points.
Mesh level_set_surface(const FieldFn& field, const Aabb& box, double h, double lipschitz = 0);

//! Several surfaces on one grid: `fields` gives `count` values per point (point-major: the values
//! of the first point, then of the second, …), and surface f is where value f is zero. The narrow
//! band is where any of them may pass, so that fields built from the same distances (the parts of
//! a mold) share one sampling; surfaces on one grid meet exactly where their fields agree.
std::vector<Mesh> level_set_surfaces(const FieldFn& fields, std::size_t count, const Aabb& box, double h, double lipschitz = 0);

}  // namespace tracecast
