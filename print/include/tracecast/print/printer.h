// Printer profiles and the questions a mold part asks of them: does it fit, in which orientation.
//
// Defaults come from mold-making practice: resin (MSLA/SLA) prints skin detail at 25–50 µm
// layers and needs 0.1 mm clearance per side on registration keys; FDM needs 0.2 mm and prints
// 100–300 µm layer lines into the silicone.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "tracecast/mesh/mesh.h"

namespace tracecast::print {

enum class Technology { Resin, Fdm };

struct PrinterProfile {
  std::string name;
  Technology technology = Technology::Resin;
  Vec3 build_volume_mm = Vec3(218, 123, 250);  //!< x, y, z
  double layer_height_mm = 0.05;
  double key_clearance_mm = 0.1;  //!< per side, between male and female registration keys
  double min_wall_mm = 1.0;       //!< thinnest wall printed reliably
};

//! Built-in profiles, by build volume class: "resin" (218 × 123 × 250 mm, a common 9-inch MSLA,
//! the default), "resin-small" (145 × 145 × 185 mm), "resin-large" (335 × 200 × 300 mm), "fdm"
//! (250 × 210 × 220 mm), "fdm-256" (256 mm cube), "fdm-360" (360 mm cube).
const std::vector<PrinterProfile>& printer_profiles();
//! A built-in profile by name; nullopt if there is none.
std::optional<PrinterProfile> find_printer(const std::string& name);

struct BuildFit {
  bool fits = false;
  Vec3 size_mm = Vec3::Zero();   //!< the part's box in the chosen orientation (x, y, z)
  std::array<int, 3> axes{0, 1, 2};  //!< part axis placed along printer x, y, z
  double margin_mm = 0;          //!< smallest room left on any axis (negative: overhang)
};

//! Tries the 6 axis-aligned orientations of a box of `size` and keeps the one that leaves the
//! most room (or overhangs least).
BuildFit best_fit(const Vec3& size, const PrinterProfile& printer);
//! best_fit() of the part's bounding box.
BuildFit fit_in_build_volume(const Mesh& part, const PrinterProfile& printer);
//! The part as placed, its x, y, z along the printer's: what a slicer gets from the file.
BuildFit fit_as_placed(const Mesh& part, const PrinterProfile& printer);
//! Area (mm²) of the part's faces lying on its bounding box's lower and upper planes along `axis`
//! (within 0.01 mm): how flat it would stand on either.
std::array<double, 2> flat_area(const Mesh& part, int axis);
//! The direction a mold part's working side (the cavity) faces as written: along its thinnest
//! axis, away from the flat face it stands on (the side with more area on its bounding plane).
Vec3 open_side(const Mesh& part);
//! The rotation that turns a part into `fit`'s orientation: its axes permuted, and one of them
//! reversed when the permutation is odd, so that it is a rotation and not a mirror image.
Eigen::Matrix3d orientation_matrix(const BuildFit& fit);

}  // namespace tracecast::print
