// Registration of several partial views of one face (left, front, right…) into one frame.
//
// Each view is cleaned, given normals and FPFH features on a coarse voxel grid; every pair of
// views is aligned globally (RANSAC on feature matches) and refined (point-to-plane ICP, coarse
// then fine). Pairs that overlap enough become edges of a pose graph, initialised along the
// best-fitting spanning tree, checked for agreement and optimised jointly (Levenberg–Marquardt), so that errors do not
// accumulate around the head.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <optional>
#include <vector>

#include "tracecast/mesh/mesh.h"
#include "tracecast/scan/reconstruct.h"

namespace tracecast::scan {

struct RegistrationOptions {
  double feature_voxel_mm = 0;  //!< voxel of the feature grid; 0: 4 × the point spacing, at least 2.5 mm
  double min_fitness = 0.1;     //!< share of a view that must overlap another for the pair to count
  int ransac_iterations = 40000;   //!< per attempt
  int attempts = 6;               //!< global alignments tried per pair until one fits
  std::uint64_t seed = 1;       //!< RANSAC's random seed (same seed, same result)
};

struct PairRegistration {
  std::size_t source = 0, target = 0;
  double fitness = 0;     //!< share of the source's points with a partner in the target
  double rms_mm = 0;      //!< RMS point-to-plane distance of those partners after refinement
  bool used = false;      //!< an edge of the pose graph (false: too little overlap, or a false match
                          //!< that disagrees with the better pairs)
};

struct Registration {
  std::vector<Eigen::Matrix4d> poses;  //!< view i's coordinates → view 0's frame (mm)
  std::vector<PairRegistration> pairs;
  double spacing_mm = 0;               //!< median point spacing over the views
};
//! The pairs as reports list them, views named by `names` (index → name): [{views, overlap,
//! rms_mm, used}].
nlohmann::json registration_json(const Registration& r, const std::vector<std::string>& names);

//! Precondition: at least two views, in mm. Throws InputError for a view with fewer than 100
//! points and ProcessingError naming any view that overlaps no other (it cannot be registered).
Registration register_views(const std::vector<PointCloud>& views, const RegistrationOptions& options = {});

//! The views moved into view 0's frame and concatenated.
PointCloud merge_views(const std::vector<PointCloud>& views, const Registration& registration);

//! One surface from one scan or several partial views of one face (each a point cloud, or a mesh
//! whose faces give its points outward normals; in mm): views registered and merged when there
//! are several, then cleaned and reconstructed (reconstruct_surface; a single mesh view is also
//! the surface the result is trimmed against).
struct ViewsScan {
  Mesh surface;
  ScanReport report;
  std::optional<Registration> registration;  //!< with several views
};
ViewsScan scan_views(const std::vector<Mesh>& views, const ReconstructOptions& options);

}  // namespace tracecast::scan
