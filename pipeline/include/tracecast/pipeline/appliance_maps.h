// The appliance's colour maps, as report.html's 3D view and the studio show them.
#pragma once

#include <nlohmann/json.hpp>

#include "tracecast/mesh/mesh.h"

namespace tracecast::pipeline {

//! Per vertex of `appliance`: "thickness" (distance to the skin `face`, mm; ramp "heat", from 0 to
//! its 99th percentile) and "draft" towards `pull` (the cosine, negated on the skin side; ramp
//! "diverging", −1 to 1; below 0 an undercut). Each {values: base64 float32, label, unit, min, max, ramp}.
nlohmann::json appliance_fields(const Mesh& appliance, const Mesh& face, const Vec3& pull);

//! The colour ramps the previews and both pages use: {name: [[r, g, b], …]}, equally spaced stops.
nlohmann::json colour_ramps();

}  // namespace tracecast::pipeline
