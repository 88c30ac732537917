// Core geometry types: one triangle mesh and one point cloud, double precision, millimetres.
//
// Plain value types with public arrays (the layout every algorithm and converter expects):
// vertices are #V positions in mm, triangles #F index triples into vertices (counter-clockwise
// seen from outside), optional per-vertex normals (unit length) and colours (RGB in [0,1]).
// An optional array is either empty or exactly as long as the array it annotates.
#pragma once

#include <Eigen/Core>
#include <Eigen/Geometry>

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace tracecast {

using Vec3 = Eigen::Vector3d;
using Tri = std::array<std::int32_t, 3>;

//! p rounded to single precision, as STL, 3MF and float PLY store it. Each coordinate goes through
//! memory: GCC 12 at -O2/-O3 vectorises a loop of plain double→float→double casts into one that
//! leaves two of the three coordinates unrounded.
inline Vec3 single_precision(const Vec3& p) {
  const volatile float x = static_cast<float>(p.x()), y = static_cast<float>(p.y()), z = static_cast<float>(p.z());
  return Vec3(x, y, z);
}

struct Aabb {
  Vec3 min = Vec3::Constant(std::numeric_limits<double>::infinity());
  Vec3 max = Vec3::Constant(-std::numeric_limits<double>::infinity());
  bool empty() const { return !(min.x() <= max.x()); }
  Vec3 extent() const { return empty() ? Vec3::Zero() : Vec3(max - min); }
  void add(const Vec3& p) {
    min = min.cwiseMin(p);
    max = max.cwiseMax(p);
  }
};

struct PointCloud {
  std::vector<Vec3> points;   //!< #P positions, mm
  std::vector<Vec3> normals;  //!< empty or #P unit normals
  std::vector<Vec3> colors;   //!< empty or #P RGB in [0,1]

  std::size_t size() const { return points.size(); }
  bool has_normals() const { return !normals.empty(); }
  bool has_colors() const { return !colors.empty(); }
};

struct Mesh {
  std::vector<Vec3> vertices;  //!< #V positions, mm
  std::vector<Tri> triangles;  //!< #F vertex index triples, CCW from outside
  std::vector<Vec3> normals;   //!< empty or #V unit vertex normals
  std::vector<Vec3> colors;    //!< empty or #V RGB in [0,1]

  bool has_normals() const { return !normals.empty(); }
  bool has_colors() const { return !colors.empty(); }
};

//! A mesh with a name: one object of a multi-object file (3MF, OBJ, GLB).
struct NamedMesh {
  std::string name;
  Mesh mesh;
};

Aabb bounding_box(const std::vector<Vec3>& points);
inline Aabb bounding_box(const Mesh& m) { return bounding_box(m.vertices); }
inline Aabb bounding_box(const PointCloud& c) { return bounding_box(c.points); }

//! Multiplies every position by `factor` (a unit change); normals are unchanged.
void scale(Mesh& mesh, double factor);
void scale(PointCloud& cloud, double factor);

//! Signed volume (mm³) enclosed by the triangles (divergence theorem): the volume of a closed,
//! outward-oriented mesh; meaningless for an open one. Summed about the box's centre, in the
//! triangles' order: the same mesh gives the same bits wherever it is measured.
double signed_volume(const Mesh& mesh);

//! The triangles' total area (mm²).
double surface_area(const Mesh& mesh);

//! Appends `b` to `a`, offsetting b's indices.
void append(Mesh& a, const Mesh& b);

//! Merges vertices with bit-identical positions (as STL and split glTF primitives need) and
//! drops vertices no triangle uses. Keeps first-seen order, so the result is deterministic.
//! Returns how many vertices were removed.
std::size_t weld_identical_vertices(Mesh& mesh);

//! Checks the invariants stated above; throws InputError naming `what` on the first breach
//! (non-finite coordinate, index out of range, attribute array of the wrong length).
void validate(const Mesh& mesh, const std::string& what);
void validate(const PointCloud& cloud, const std::string& what);

//! The vertices of a mesh as a point cloud (normals and colours carried over).
PointCloud to_point_cloud(const Mesh& mesh);

}  // namespace tracecast
