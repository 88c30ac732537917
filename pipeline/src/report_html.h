// The run's pictures and its report page (internal to the pipeline).
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "tracecast/mesh/mesh.h"

namespace tracecast::pipeline {

//! From the run's meshes in `out` (face.ply, the piece PIECE.ply and PIECE-marked.ply, `piece` being
//! appliance, mask or ear, and the mold's
//! pieces mold-NAME.stl as `mold_result`'s parts list them): PNG previews (face; the piece,
//! preview-PIECE.png, coloured by thickness; mark coloured by displacement; core and shell put together, from their
//! working side) and viewer.json, the 3D view's data (decimated
//! meshes; per-vertex thickness, draft towards the pull, and the mark's displacement on a detail
//! at full resolution). Returns a summary of the colour maps' ranges.
//! `load(name)` gives the mesh of that file (from memory when this run made it); `up` is the
//! direction drawn upwards in the face's and the piece's pictures (the face frame's top of the head).
nlohmann::json make_previews(const std::filesystem::path& out, const nlohmann::json& mold_result,
                             const std::function<Mesh(const std::string&)>& load, const std::string& piece = "appliance",
                             const Vec3& up = Vec3::UnitY());

//! report.html: one self-contained page (three.js inlined, data embedded) with the 3D view, the
//! casting sheet, the ledger record, warnings and timings.
std::string report_html(const nlohmann::json& report, const nlohmann::json& viewer, const std::filesystem::path& out);

}  // namespace tracecast::pipeline
