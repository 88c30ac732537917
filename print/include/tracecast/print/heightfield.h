// Height fields over a regular grid: the mold's parting surface and its parts' walls are built
// on them. A grid's cells are split into two triangles along alternating diagonals (the diagonal
// from node (i, j) to (i+1, j+1) where i + j is even, else from (i+1, j) to (i, j+1)); every
// solid and every interpolation here uses that one triangulation, except in cells given points of
// their own (CellPoints).
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <unordered_map>
#include <vector>

#include "tracecast/mesh/mesh.h"

namespace tracecast::print {

//! A scalar field on a regular grid of nodes over a rectangle (x, y), NaN where undefined.
struct Grid {
  double x0 = 0, y0 = 0, h = 1;
  int nx = 0, ny = 0;
  std::vector<double> v;
  Grid() = default;
  Grid(double x0_, double y0_, double h_, int nx_, int ny_)
      : x0(x0_), y0(y0_), h(h_), nx(nx_), ny(ny_), v(static_cast<std::size_t>(nx_) * ny_, std::numeric_limits<double>::quiet_NaN()) {}
  double& at(int i, int j) { return v[index(i, j)]; }
  double at(int i, int j) const { return v[index(i, j)]; }
  std::size_t index(int i, int j) const { return static_cast<std::size_t>(j) * nx + i; }
  double X(int i) const { return x0 + i * h; }
  double Y(int j) const { return y0 + j * h; }
  //! The node nearest to (x, y), clamped to the grid.
  std::size_t nearest(double x, double y) const;
};

//! The cell (its lower-left node's index) holding (x, y), clamped to the grid.
std::size_t cell_of(const Grid& g, double x, double y);
//! The three nodes of the grid triangle over (x, y) and their barycentric weights; false outside
//! the grid.
struct GridCorners {
  std::array<std::size_t, 3> node{};
  std::array<double, 3> weight{};
};
bool corners(const Grid& g, double x, double y, GridCorners& out);
//! The field's value at (x, y), linear on the grid's triangles; NaN outside or where a corner is.
double sample(const Grid& g, double x, double y);

//! Front-most z of the triangles over each node (largest z), for the triangles selected; with a
//! ceiling, the largest z below the ceiling's value at the node.
void rasterize_top(Grid& g, const std::vector<Vec3>& P, const std::vector<Tri>& tris, const std::vector<char>* use = nullptr,
                   const Grid* ceiling = nullptr);
//! Exact Euclidean distance (mm) from every node to the nearest node where `inside` is true
//! (Felzenszwalb–Huttenlocher, separable).
std::vector<double> distance_to(const Grid& g, const std::vector<char>& inside);

//! Points a height field's surface passes through besides its nodes, where a line it must follow
//! crosses cells that a cell's two triangles cannot follow (the parting line along an appliance's
//! rim on a steep wall). In a cell holding such points (on its edges or inside it) the surface
//! is the Delaunay triangulation of the cell's corners and its points, each at its own height; a
//! point on an edge between two cells is listed in both, so their triangles meet.
struct CellPoints {
  std::vector<Vec3> points;
  std::unordered_map<std::size_t, std::vector<std::int32_t>> cells;  //!< cell (its lower-left node's index) → its points
};
//! The triangles over cell (i, j) of `g` through its points, counter-clockwise seen from +z:
//! indices under nx·ny are the grid's nodes, the others nx·ny + a point's index in `cp`.
std::vector<Tri> cell_triangles(const Grid& g, int i, int j, const CellPoints& cp);
//! Cells' triangulations made once and kept (cell → triangles), for repeated lookups.
using CellTriangles = std::unordered_map<std::size_t, std::vector<Tri>>;
//! Where (x, y) lies on the surface through the cell points: its triangle's three vertices
//! (numbered as cell_triangles numbers them) and their barycentric weights. False outside the grid.
bool locate(const Grid& g, const CellPoints& cp, double x, double y, std::array<std::int32_t, 3>& v, std::array<double, 3>& w,
            CellTriangles* cache = nullptr);
//! The field's value at (x, y) on the surface through its cell points; NaN outside or where a
//! corner is.
double sample(const Grid& g, const CellPoints& cp, double x, double y, CellTriangles* cache = nullptr);
//! A closed solid between a height field (over the whole grid, no NaN) and the plane z = base:
//! below the field if base is under it, above it otherwise; through its cell points if given.
//! Outward-oriented.
Mesh heightfield_solid(const Grid& g, double base, const CellPoints* points = nullptr);
//! A closed solid between two height fields over the same grid (no NaN), `bottom` under `top`
//! at every node, each surface through its cell points if given. Outward-oriented.
Mesh heightfield_slab(const Grid& top, const Grid& bottom, const CellPoints* top_points = nullptr,
                      const CellPoints* bottom_points = nullptr);
//! The lowest field over `g`, equal to it at the `fixed` nodes, in which no other node lies more
//! than `slope` times the step under any of its 8 neighbours: nowhere does it fall steeper than
//! `slope` (along 8-neighbour steps; across them up to 8 % less steep), except between fixed nodes.
void limit_fall(Grid& g, const std::vector<char>& fixed, double slope);
//! A closing, then an opening, of the field by a square of (2r + 1)² nodes (max then min filters,
//! then min then max), kept at the `free` nodes only: valleys and ridges narrower than the square
//! are filled and planed. A crease in a parting surface is a knife edge on the part whose material
//! fills it.
void plane_creases(Grid& g, const std::vector<char>& free, int r);
//! Level across a band `band` nodes wide along the grid's border: each node there takes the value
//! of the nearest node inside the band. A parting surface sloping into the border meets the
//! parts' outer walls at its slope's complement, a knife edge on one part (30° on a 60° slope).
void level_border(Grid& g, int band);
//! Fills the field's holes — NaN regions (4-connected) that do not reach the grid's border — with
//! the smoothest surface over them that meets their rims (Laplace's equation, solved by sweeps).
//! Returns the nodes filled.
std::size_t fill_enclosed_holes(Grid& g);
//! Extends the field over up to `rings` nodes of the NaN regions along its edges, ring by ring:
//! each NaN node beside a known one (of its 8 neighbours) takes the mean of its known neighbours.
//! Returns the nodes filled.
std::size_t extend_edges(Grid& g, int rings);
//! Rolling-ball offset of a height field (no NaN): `above`, the upper envelope of balls of
//! radius w centred on the field; else the lower one. Every point of the field is then at least
//! w from the offset surface in any direction, so a wall between them is w thick everywhere.
Grid ball_offset(const Grid& g, double w, bool above);

}  // namespace tracecast::print
