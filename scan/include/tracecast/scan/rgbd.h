// RGB-D sequences: colour + depth frames of a face, fused into one surface with a TSDF volume
// sized for a face (voxels of about 0.75 mm, depth cut at 0.8 m), not a room.
//
// A sequence is described by a small JSON manifest (docs/formats.md#rgb-d-manifest): camera
// intrinsics, the depth images' unit, and the frames (colour and depth image paths relative to the
// manifest, and optionally each frame's camera-to-world pose, 4×4 row-major, mm). Frames without a
// pose are placed by RGB-D odometry from the previous frame.
#pragma once

#include <Eigen/Core>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tracecast/mesh/mesh.h"
#include "tracecast/mesh/options.h"
#include "tracecast/scan/reconstruct.h"

namespace tracecast::scan {

struct RgbdFrame {
  std::filesystem::path color, depth;       //!< absolute, resolved against the manifest's folder
  std::optional<Eigen::Matrix4d> pose;      //!< camera → world, mm
};

struct RgbdSequence {
  int width = 0, height = 0;
  double fx = 0, fy = 0, cx = 0, cy = 0;    //!< pixels
  double depth_units_per_metre = 1000.0;    //!< 1000: depth pixels are mm; 10000: 0.1 mm
  double depth_max_mm = 800.0;              //!< depth beyond this is ignored
  std::vector<RgbdFrame> frames;
};

//! Throws InputError naming the manifest and the problem (missing field, wrong type, missing image).
RgbdSequence read_rgbd_manifest(const std::filesystem::path& manifest);

struct RgbdOptions {
  double voxel_mm = 0.75;      //!< TSDF voxel
  double truncation_mm = 0;    //!< signed-distance truncation; 0: 4 voxels
};

struct RgbdReport {
  std::size_t frames = 0;
  std::size_t posed_frames = 0;        //!< poses from the manifest
  std::size_t odometry_frames = 0;     //!< poses from odometry
  std::size_t vertices = 0, faces = 0;
  double area_mm2 = 0;
  std::size_t boundary_loops = 0;
  Timings timings;
};

//! Throws InputError for unreadable or mismatched images, ProcessingError if odometry fails on a
//! frame without a pose or the volume yields no surface.
Mesh integrate_rgbd(const RgbdSequence& sequence, const RgbdOptions& options = {}, RgbdReport* report = nullptr);

//! A simulated RGB-D camera's sequence (`tracecast synth rgbd`).
struct RgbdSimOptions {
  int frames = 24;             //!< camera positions on the arc
  double sweep_deg = 60;       //!< the arc: yaw from -sweep/2 to +sweep/2 around the vertical axis
  double distance_mm = 450;    //!< from the box centre
  double noise_mm = 0.3;       //!< Gaussian depth noise (depth stored in 0.1 mm units)
  bool poses = true;           //!< write the poses into the manifest (else odometry must place the frames)
  std::uint64_t seed = 1;
};
const OptionTable<RgbdSimOptions>& rgbd_sim_option_table();

//! A simulated sequence of the given surface, shaded grey as colour, written as PNG files and a
//! manifest into `folder`. Returns the manifest's path.
std::filesystem::path write_simulated_rgbd(const Mesh& truth, const std::filesystem::path& folder, const RgbdSimOptions& options = {});

}  // namespace tracecast::scan
