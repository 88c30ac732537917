#include "common.h"

#include <fmt/format.h>

#include <cstdlib>
#include <sstream>

#include "tracecast/mesh/errors.h"

namespace tracecast::cli {

CLI::Option* add_units_option(CLI::App& sub, std::string& units, const std::string& whose) {
  return sub.add_option("--units", units, "Unit of " + whose + " coordinates: mm, cm, m, in, or auto (guess from a head's size)")
      ->check(CLI::IsMember({"auto", "mm", "cm", "m", "in"}))
      ->capture_default_str();
}

nlohmann::json json_vec(const Vec3& v) { return nlohmann::json::array({v.x(), v.y(), v.z()}); }

Vec3 parse_direction(const std::string& text, const char* option) {
  std::stringstream ss(text);
  Vec3 v;
  char c1 = 0, c2 = 0;
  if (!(ss >> v.x() >> c1 >> v.y() >> c2 >> v.z()) || c1 != ',' || c2 != ',' || !(v.norm() > 0) || !v.allFinite())
    throw InputError(fmt::format("{} must be three numbers X,Y,Z, not all zero (got '{}')", option, text));
  return v.normalized();
}

std::string from_env(const std::string& given, const char* var) {
  if (!given.empty()) return given;
  const char* v = std::getenv(var);
  return v ? v : "";
}

std::string ledger_file(const std::string& given) {
  const std::string p = from_env(given, "TRACECAST_LEDGER");
  if (p.empty()) throw InputError("no ledger given: use --ledger FILE or set TRACECAST_LEDGER");
  return p;
}

ledger::SigningKey workshop_signing_key(const std::string& given) {
  const std::string p = from_env(given, "TRACECAST_SIGNING_KEY");
  if (p.empty()) throw InputError("writing to the ledger needs the workshop's signing key: use --signing-key FILE or set TRACECAST_SIGNING_KEY");
  return ledger::read_signing_key(p);
}

nlohmann::json distance_stats_json(const DistanceStats& s) {
  return {{"count", s.count}, {"mean", s.mean}, {"rms", s.rms}, {"median", s.median}, {"p95", s.p95}, {"max", s.max}};
}

}  // namespace tracecast::cli
