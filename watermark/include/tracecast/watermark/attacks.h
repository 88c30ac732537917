// What happens to a marked surface between the mold and the companion scanner, as functions:
// the attack suite the mark must survive (../shared/docs/WATERMARK.md), used by the tests and the
// watermark benchmark. Every attack is deterministic for a given seed; lengths in mm.
#pragma once

#include <cstdint>
#include <vector>

#include "tracecast/mesh/mesh.h"

namespace tracecast::watermark {

//! x ↦ scale · R x + t.
struct Similarity {
  Eigen::Matrix3d rotation = Eigen::Matrix3d::Identity();
  Vec3 translation = Vec3::Zero();
  double scale = 1.0;
  Vec3 operator()(const Vec3& p) const { return scale * (rotation * p) + translation; }
};

//! A uniformly random rotation, a translation up to ±`max_shift` per axis and a scale drawn
//! log-uniformly in [min_scale, max_scale].
Similarity random_similarity(std::uint64_t seed, double max_shift = 200.0, double min_scale = 0.5, double max_scale = 2.0);
Mesh transformed(const Mesh& mesh, const Similarity& s);
PointCloud transformed(const PointCloud& cloud, const Similarity& s);

//! Gaussian noise of σ along each vertex's normal.
Mesh normal_noise(const Mesh& mesh, double sigma_mm, std::uint64_t seed);

//! Low-pass by physical width: every vertex becomes the Gaussian-weighted (σ) mean of the
//! vertices within 3σ, weighted by their area, moved along its normal only (no tangential drift).
Mesh gaussian_smooth(const Mesh& mesh, double sigma_mm);

//! Keeps the side of a plane across `direction` that holds `keep_fraction` of the area (faces
//! by their centroid).
Mesh planar_crop(const Mesh& mesh, const Vec3& direction, double keep_fraction);
//! The faces planar_crop() keeps (1 per kept face of `mesh`).
std::vector<char> planar_crop_faces(const Mesh& mesh, const Vec3& direction, double keep_fraction);

//! Keeps the faces a viewer looking along -`toward_viewer` sees first (a single scanner view).
Mesh visibility_crop(const Mesh& mesh, const Vec3& toward_viewer);

//! A resin print: every vertex's height along `build_direction` rounded to the layer, its
//! position across rounded to the XY pixel (vertex quantisation of a fine mesh; remesh first so
//! that edges are shorter than the layer steps matter for).
Mesh print_simulation(const Mesh& mesh, const Vec3& build_direction, double layer_mm, double pixel_mm);

//! Re-fits the surface as a signed distance field sampled on a grid of `voxel_mm` and extracts its
//! zero level again (marching tetrahedra on the cells the surface crosses, followed across cell
//! faces until the extracted surface closes): every vertex new, detail finer than the grid gone.
Mesh sdf_resample(const Mesh& mesh, double voxel_mm);

//! Points sampled on the surface at about `spacing_mm`, with a density that varies smoothly by
//! a factor up to (1 + unevenness) across the surface (as a scanner's does), no normals.
PointCloud resample_points(const Mesh& mesh, double spacing_mm, double unevenness, std::uint64_t seed);

}  // namespace tracecast::watermark
