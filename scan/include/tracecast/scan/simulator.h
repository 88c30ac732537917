// A scanner simulator: what a structured-light scanner would return for a known surface.
//
// Each view is a pinhole camera whose pixel pitch, at the target, equals the requested point
// spacing. One ray per pixel is cast against the ground-truth mesh; hits seen at grazing angles are
// dropped (as scanners drop them), Gaussian noise is added along the ray, and optional outliers,
// holes, uneven density, a random pose and a unit change make it look like a real export.
#pragma once

#include <Eigen/Geometry>

#include <cstdint>
#include <vector>

#include "tracecast/mesh/mesh.h"
#include "tracecast/mesh/options.h"
#include "tracecast/mesh/units.h"

namespace tracecast::scan {

struct ScanView {
  Vec3 eye_mm = Vec3(0, 0, 500);
  Vec3 target_mm = Vec3::Zero();
  Vec3 up = Vec3::UnitY();
};

//! Views on a circle around the vertical (y) axis through the box centre, `distance_mm` away;
//! yaw 0 looks at the face from the front (+z), positive yaw from the face's left.
std::vector<ScanView> views_around(const Aabb& box, const std::vector<double>& yaw_deg, double distance_mm = 500);

struct SimulatorOptions {
  std::vector<ScanView> views;     //!< empty: one frontal view, 500 mm away
  double spacing_mm = 0.3;         //!< point spacing at the target (pixel pitch)
  double noise_mm = 0.05;          //!< standard deviation of the noise along each ray
  double outlier_fraction = 0.0;   //!< extra points scattered in the box around the data (+30 %)
  std::size_t holes = 0;           //!< circular holes cut out of the data
  double hole_radius_mm = 4.0;
  double density_variation = 0.0; //!< 0: uniform; towards 1, density falls to nothing in places
  double max_incidence_deg = 75.0; //!< hits more oblique than this are not returned
  bool random_pose = false;        //!< rotate at random and translate up to ± the object's size
  Unit unit = Unit::Millimetre;    //!< unit of the output coordinates
  bool normals = false;            //!< output scanner normals (towards the camera)
  std::uint64_t seed = 1;
};

//! A simulated scan of a synthetic face (`tracecast synth scan`): the scanner, and which face.
struct SynthScanOptions : SimulatorOptions {
  std::uint64_t face_seed = 0;
};
//! Its option table (every scanner setting but the views, a list the command line gives as yaw angles).
const OptionTable<SynthScanOptions>& synth_scan_option_table();

struct SimulatedScan {
  PointCloud cloud;                  //!< in the output pose and unit
  std::vector<std::uint8_t> outlier; //!< per point: 1 for an added outlier
  std::vector<std::uint16_t> view;   //!< per point: index of the view that saw it
  //! Ground truth: output = pose · face / to_mm, with pose in mm.
  Eigen::Isometry3d pose = Eigen::Isometry3d::Identity();
  double to_mm = 1.0;

  //! A point of the output, back in the face's frame and in mm.
  Vec3 to_face(const Vec3& p) const { return pose.inverse() * (p * to_mm); }
};

SimulatedScan simulate_scan(const Mesh& truth, const SimulatorOptions& options);

}  // namespace tracecast::scan
