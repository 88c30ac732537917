// What every report shares, serialised once: points and directions, the unit a file was read in,
// seconds per step. Result types serialise themselves with a `to_json` beside their declaration
// (nlohmann's convention: `json j = report;`), built from these.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "tracecast/mesh/mesh.h"
#include "tracecast/mesh/step_timer.h"
#include "tracecast/mesh/units.h"

namespace tracecast {

//! A point or a direction: [x, y, z].
nlohmann::json vec_json(const Vec3& v);
//! The point or direction vec_json() wrote.
Vec3 json_vec(const nlohmann::json& j);
//! The `units` object of every report: {unit, source, reason, to_mm}.
void to_json(nlohmann::json& j, const UnitGuess& u);
//! The `timings_s` object of every report: {step: seconds}, a step run more than once summed,
//! and `total`, the sum of every step.
nlohmann::json timings_json(const Timings& t);

}  // namespace tracecast
