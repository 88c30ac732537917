#include "common.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include <cstdlib>
#include <sstream>

#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/units.h"

namespace tracecast::cli {

CLI::Option* add_units_option(CLI::App& sub, std::string& units, const std::string& whose) {
  return sub.add_option("--units", units, "Unit of " + whose + " coordinates, or auto (guess from a head's size)")
      ->check(CLI::IsMember(unit_names()))
      ->capture_default_str();
}

bool finish_report(const nlohmann::json& j, const std::string& report_file, const GlobalOptions& g, Progress& progress) {
  if (!report_file.empty()) write_file_atomically(report_file, j.dump(2) + "\n");
  progress.done();
  if (g.json) print_json(j);
  return !g.json && !g.quiet;
}

namespace {

// `"thickness_mm" = -1.0 is out of range …` as the command line says it after CLI11's "--thickness: "
// prefix: `-1 is out of range …` (the text as typed), `must be [x, y, z]`.
std::string as_typed(const OptionInfo& o, const std::string& text) {
  const nlohmann::json value = o.from_text(text);
  std::string p = o.problem(value);
  if (p.empty()) return p;
  const std::string quoted = "\"" + o.key + "\"", with_value = quoted + " = " + value.dump();
  if (p.compare(0, with_value.size(), with_value) == 0) return text + p.substr(with_value.size());
  if (p.compare(0, quoted.size() + 1, quoted + " ") == 0) return p.substr(quoted.size() + 1);
  return p;
}

std::string type_name(const OptionInfo& o) {
  switch (o.kind) {
    case OptionKind::Number: {
      std::string t = o.unit.empty() ? "X" : unit_suffix(o.unit).substr(1);
      for (char& c : t) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      return t;
    }
    case OptionKind::Integer: return "N";
    case OptionKind::Direction: return "X,Y,Z";
    case OptionKind::Choice: return "NAME";
    default: return "TEXT";
  }
}

std::string capitalised(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

}  // namespace

void add_option_flags(CLI::App& sub, const OptionSchema& schema, nlohmann::json& given, const std::vector<std::string>& skip) {
  for (const OptionInfo& o : schema.options()) {
    if (std::find(skip.begin(), skip.end(), o.key) != skip.end()) continue;
    const nlohmann::json& def = schema.defaults().at(o.key);
    std::string help = capitalised(o.help);
    if (o.kind == OptionKind::Number || o.kind == OptionKind::Integer) help += fmt::format("; {}", o.range_text());
    if (o.kind == OptionKind::Choice) help += fmt::format(": {}", fmt::join(o.choices, ", "));
    if (o.kind == OptionKind::Flag) {
      const bool on = !def.get<bool>();
      const std::string name = schema.cli_flag(o);
      sub.add_flag_function(name, [&given, key = o.key, on](std::int64_t) { given[key] = on; }, help + (on ? "" : " (default: on)"));
      continue;
    }
    const std::string shown = option_value_text(def);
    sub.add_option_function<std::string>(o.flag(), [&given, o](const std::string& text) { given[o.key] = o.from_text(text); }, help)
        ->check(CLI::Validator([o](std::string& text) { return as_typed(o, text); }, "", o.key))
        ->type_name(type_name(o))
        ->default_str(shown);
  }
}


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


void print_symmetry(const SymmetryPlane& p) {
  fmt::print("  symmetry     plane fit {:.3f} mm RMS over {:.0f} % of the surface\n", p.rms_mm, 100 * p.inlier_fraction);
}

}  // namespace tracecast::cli
