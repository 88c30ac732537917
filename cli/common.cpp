#include "common.h"

namespace tracecast::cli {

CLI::Option* add_units_option(CLI::App& sub, std::string& units, const std::string& whose) {
  return sub.add_option("--units", units, "Unit of " + whose + " coordinates: mm, cm, m, in, or auto (guess from a head's size)")
      ->check(CLI::IsMember({"auto", "mm", "cm", "m", "in"}))
      ->capture_default_str();
}

nlohmann::json distance_stats_json(const DistanceStats& s) {
  return {{"count", s.count}, {"mean", s.mean}, {"rms", s.rms}, {"median", s.median}, {"p95", s.p95}, {"max", s.max}};
}

}  // namespace tracecast::cli
