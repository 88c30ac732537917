// Pictures of meshes: an orthographic, shaded view written as PNG (for reports and documents).
#pragma once

#include <filesystem>

#include "tracecast/mesh/mesh.h"
#include "tracecast/mesh/options.h"

namespace tracecast {

struct RenderOptions {
  int width_px = 800;        //!< image width; the height follows the object's aspect
  double yaw_deg = 0;        //!< view direction around the vertical (y) axis; 0 looks along -z
  double pitch_deg = 0;      //!< up (+) or down (-) from the horizontal
  double margin = 0.05;      //!< empty border, as a share of the object's size
};

//! Renders `mesh` seen from the given direction (grey Lambert shading, lit from the upper left of
//! the viewer, vertex colours if it has them) and writes a PNG atomically.
//! Throws InputError for a mesh without faces, ProcessingError if the file cannot be written.
void render_png(const Mesh& mesh, const std::filesystem::path& png, const RenderOptions& options = {});

//! The picture's options (`tracecast render`).
const OptionTable<RenderOptions>& render_option_table();

}  // namespace tracecast
