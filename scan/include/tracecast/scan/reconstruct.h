// From a scanner's points to a clean surface in millimetres, with a report of how accurate it is.
//
// Steps: point spacing → statistical and radius outlier removal → crop (automatic: the largest
// connected cluster; or a box, sphere or plane) → optional voxel downsampling → normals oriented
// outward → screened Poisson at the depth that matches the resolution → trimming of every part of
// the surface farther than 2 spacings from the data (Poisson closes and extends surfaces where
// there were no points; that surface is removed, not kept) → small pieces removed.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/mesh.h"
#include "tracecast/mesh/options.h"
#include "tracecast/mesh/step_timer.h"

namespace tracecast::scan {

enum class CropKind { Auto, None, Box, Sphere, Plane };

struct Crop {
  CropKind kind = CropKind::Auto;
  Vec3 a = Vec3::Zero();  //!< box: min corner; sphere: centre; plane: a point on it (mm)
  Vec3 b = Vec3::Zero();  //!< box: max corner; plane: normal towards the side kept
  double radius_mm = 0;   //!< sphere
};
//! "auto", "none", "box:x0,y0,z0,x1,y1,z1", "sphere:x,y,z,r", "plane:px,py,pz,nx,ny,nz" (mm).
std::optional<Crop> parse_crop(const std::string& text);
//! The crop as parse_crop() reads it back ("auto", "box:…").
std::string crop_text(const Crop& crop);

struct ReconstructOptions {
  double resolution_mm = 0;          //!< target edge length; 0: the median point spacing within 0.5–5 mm
  std::size_t outlier_neighbors = 20;   //!< statistical outlier removal: neighbours considered
  double outlier_std_ratio = 2.5;       //!< … and how many standard deviations are tolerated
  double radius_factor = 4.0;           //!< radius outlier removal: radius in point spacings
  std::size_t radius_min_points = 4;    //!< … and neighbours required within it
  double voxel_mm = 0;                  //!< voxel downsampling before reconstruction (0: off)
  Crop crop;
  double trim_factor = 2.0;             //!< surface farther than this × max(spacing, resolution / 2) from the data is removed
  int poisson_depth = 0;                //!< 0: from the object's size and the resolution
};

//! The options a user sets (resolution, crop, voxel, Poisson depth): `tracecast scan`'s flags
//! and a recipe's "scan" section.
const OptionTable<ReconstructOptions>& reconstruct_option_table();

struct ScanReport {
  std::size_t points_in = 0;
  std::size_t removed_statistical = 0;
  std::size_t removed_radius = 0;
  std::size_t removed_crop = 0;
  std::size_t removed_voxel = 0;
  std::size_t points_used = 0;
  double median_spacing_mm = 0;
  double resolution_mm = 0;
  double median_edge_mm = 0;       //!< of the surface produced (Poisson's cells set it; ≈ resolution)
  int poisson_depth = 0;
  bool normals_estimated = false;
  DistanceStats accuracy;          //!< distance from the points used to the surface (mm)
  double area_mm2 = 0;
  double invented_area_mm2 = 0;    //!< surface farther than 2 spacings from every point
  std::size_t boundary_loops = 0;  //!< outline(s) and holes of the surface
  std::size_t vertices = 0, faces = 0;
  Timings timings;
};
//! {points, reconstruction, accuracy_mm, surface, timings_s} (docs/formats.md#scan-report).
void to_json(nlohmann::json& j, const ScanReport& r);

//! `input_surface`: when the scan is a mesh, its triangles; support for the new surface (what is
//! trimmed, what counts as invented) is then the distance to those triangles, not to the vertices
//! (a decimated mesh has large triangles whose insides are far from any vertex).
//! Throws InputError for unusable input: fewer than 100 points, nothing left after cleaning or
//! cropping, no head-sized structure (largest cluster outside 40–1000 mm); ProcessingError if
//! reconstruction yields no surface.
Mesh reconstruct_surface(const PointCloud& cloud_mm, const ReconstructOptions& options, ScanReport* report = nullptr,
                         const Mesh* input_surface = nullptr);

//! Area-weighted vertex normals of a mesh, pointing outward for a closed mesh with positive
//! volume (flipped if its volume is negative).
std::vector<Vec3> outward_vertex_normals(const Mesh& mesh);

}  // namespace tracecast::scan
