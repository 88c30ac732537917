// Internal: the closed solids mold features are made of (primitives.cpp). Every one is closed and
// outward-oriented, ready for the booleans.
#pragma once

#include <vector>

#include "tracecast/mesh/mesh.h"

namespace tracecast::print::detail {

inline constexpr double kPi = 3.14159265358979323846;
using Vec2 = Eigen::Vector2d;

//! A sphere of latitude rings and longitude segments (its segments turned off the x axis).
Mesh uv_sphere(const Vec3& c, double r, int rings = 24, int segments = 48);
//! A closed tube through rings of equal size (each counter-clockwise seen from the end the
//! tube runs to), closed by fans to `start` and `end`.
Mesh tube(const std::vector<std::vector<Vec3>>& rings, const Vec3& start, const Vec3& end);
//! A closed solid of revolution about the vertical through (x, y): rings of `profile`'s
//! (radius > 0, z) from bottom to top, closed by flat caps.
Mesh lathe(double x, double y, const std::vector<Vec2>& profile, int segments);
//! Vertical cylinder (axis +z) from z0 to z1 around (x, y).
Mesh cylinder(double x, double y, double z0, double z1, double r, int segments = 32);
//! A cylinder of radius r from a to b (flat ends), in any direction.
Mesh rod(const Vec3& a, const Vec3& b, double r, int segments = 32);
//! Distance from q to the segment ab in the plane (to the point a when b == a).
double distance_to_segment(const Vec2& q, const Vec2& a, const Vec2& b);
//! The closed solid between a front surface and a flat back. `rows[j][k]` = (a, u, z): rows j at
//! increasing u (one u per row), levels k in increasing z (every row as many, the first and last level each at
//! one z across the rows); the back is the plane a = `back`. (a, u, z) is (x, y, z) for axis 0 and
//! (y, x, z) for axis 1.
Mesh front_block(const std::vector<std::vector<Vec3>>& rows, double back, int axis);
//! The axis-aligned box from lo to hi (its corner k has hi's x when k & 1, y when k & 2, z when k & 4).
Mesh box(const Vec3& lo, const Vec3& hi);
//! Closed solids gathered into as few meshes as possible, each of solids whose boxes do not meet
//! (one mesh for one boolean must not cross itself): a boolean of a part with millions of faces
//! costs seconds whatever the other mesh, so the small solids go in as few as can.
std::vector<Mesh> apart(const std::vector<Mesh>& solids);
//! Up to `want` of `pool`, each the farthest from `taken` and those chosen before it, while that is
//! at least `apart` (the first needs none when nothing is taken): points spread over a region.
std::vector<Vec3> farthest_first(const std::vector<Vec3>& pool, const std::vector<Vec3>& taken, std::size_t want, double apart);

}  // namespace tracecast::print::detail
