#include "tracecast/mesh/report_json.h"

#include <nlohmann/json.hpp>

namespace tracecast {

nlohmann::json vec_json(const Vec3& v) { return nlohmann::json::array({v.x(), v.y(), v.z()}); }

Vec3 json_vec(const nlohmann::json& j) { return Vec3(j.at(0).get<double>(), j.at(1).get<double>(), j.at(2).get<double>()); }

void to_json(nlohmann::json& j, const UnitGuess& u) {
  j = {{"unit", unit_name(u.unit)}, {"source", u.source}, {"reason", u.reason}, {"to_mm", u.to_mm}};
}

nlohmann::json timings_json(const Timings& t) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [step, s] : t) j[step] = j.value(step, 0.0) + s;
  j["total"] = total_seconds(t);
  return j;
}

}  // namespace tracecast
