#include "tracecast/mesh/options.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/report_json.h"

namespace tracecast {

namespace {

using nlohmann::json;

}  // namespace

std::string unit_suffix(const std::string& unit) {
  std::string s = "_" + (unit == "µm" ? std::string("um") : unit);
  std::replace(s.begin(), s.end(), '/', '_');
  return s;
}

namespace {

std::string with_unit(const std::string& unit) { return unit.empty() ? "" : " " + unit; }

// A number as people write it: 2.5, 10, 0.05, 1e-05 (shortest form that reads back the same).
std::string number_text(double v) { return fmt::format("{}", v); }

std::optional<double> parse_double(const std::string& t) {
  if (t.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  if (errno != 0 || end != t.c_str() + t.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::string number_problem(const OptionInfo& o, const json& v) {
  const std::string unit = o.unit.empty() ? "" : fmt::format(" ({})", o.unit);
  if (o.kind == OptionKind::Integer && !v.is_number_integer()) return fmt::format("\"{}\" must be a whole number", o.key);
  if (!v.is_number()) return fmt::format("\"{}\" must be a number{}", o.key, unit);
  const double x = v.get<double>();
  const bool low_ok = o.min_exclusive ? x > o.min : x >= o.min;
  if (!(low_ok && x <= o.max)) return fmt::format("\"{}\" = {} is out of range {}", o.key, v.dump(), o.range_text());
  return "";
}

std::string direction_problem(const OptionInfo& o, const json& v) {
  if (v.is_null()) return "";
  if (!v.is_array() || v.size() != 3 || !v[0].is_number() || !v[1].is_number() || !v[2].is_number())
    return fmt::format("\"{}\" must be [x, y, z]", o.key);
  const Vec3 d = json_vec(v);
  if (!d.allFinite() || !(d.norm() > 0)) return fmt::format("\"{}\" must be a non-zero direction", o.key);
  return "";
}

}  // namespace

const char* kind_name(OptionKind kind) {
  switch (kind) {
    case OptionKind::Number: return "number";
    case OptionKind::Integer: return "integer";
    case OptionKind::Flag: return "flag";
    case OptionKind::Choice: return "choice";
    case OptionKind::Direction: return "direction";
    case OptionKind::Text: return "text";
  }
  return "?";
}

std::string OptionInfo::flag() const {
  std::string k = key;
  const std::string suffix = unit_suffix(unit);
  if (!unit.empty() && k.size() > suffix.size() && k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0)
    k.resize(k.size() - suffix.size());
  std::replace(k.begin(), k.end(), '_', '-');
  return "--" + k;
}

std::string OptionInfo::problem(const json& v) const {
  switch (kind) {
    case OptionKind::Number:
    case OptionKind::Integer: return number_problem(*this, v);
    case OptionKind::Flag: return v.is_boolean() ? "" : fmt::format("\"{}\" must be true or false", key);
    case OptionKind::Choice:
      if (!v.is_string()) return fmt::format("\"{}\" must be a string", key);
      if (std::find(choices.begin(), choices.end(), v.get<std::string>()) == choices.end())
        return fmt::format("\"{}\" = \"{}\" is not one of {}", key, v.get<std::string>(), fmt::join(choices, ", "));
      return "";
    case OptionKind::Direction: return direction_problem(*this, v);
    case OptionKind::Text:
      if (!v.is_string()) return fmt::format("\"{}\" must be a string", key);
      if (parse_text)
        if (std::string p = parse_text(v.get<std::string>()); !p.empty()) return fmt::format("\"{}\" = \"{}\": {}", key, v.get<std::string>(), p);
      return "";
  }
  return "";
}

json OptionInfo::from_text(const std::string& text) const {
  switch (kind) {
    case OptionKind::Number:
      if (const auto v = parse_double(text)) return *v;
      break;
    case OptionKind::Integer:
      if (const auto v = parse_double(text); v && *v == std::floor(*v) && std::abs(*v) < 1e9) return static_cast<long long>(*v);
      break;
    case OptionKind::Flag:
      if (text == "true" || text == "1") return true;
      if (text == "false" || text == "0") return false;
      break;
    case OptionKind::Direction: {
      std::stringstream ss(text);
      std::string part;
      json a = json::array();
      while (std::getline(ss, part, ','))
        if (const auto v = parse_double(part)) a.push_back(*v);
        else return text;
      if (a.size() == 3) return a;
      break;
    }
    case OptionKind::Choice:
    case OptionKind::Text: break;
  }
  return text;
}

std::string OptionInfo::range_text() const {
  switch (kind) {
    case OptionKind::Number:
    case OptionKind::Integer:
      return fmt::format("{}{}, {}]{}", min_exclusive ? "(" : "[", number_text(min), number_text(max), with_unit(unit));
    case OptionKind::Flag: return "true or false";
    case OptionKind::Choice: return fmt::format("one of {}", fmt::join(choices, ", "));
    case OptionKind::Direction: return "[x, y, z] or null";
    case OptionKind::Text: return "text";
  }
  return "";
}

std::string option_value_text(const json& v) {
  if (v.is_null()) return "found";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return number_text(v.get<double>());
  return v.dump();
}

std::string OptionSchema::cli_flag(const OptionInfo& o) const {
  if (o.kind == OptionKind::Flag && defaults_.at(o.key).get<bool>()) return "--no-" + o.flag().substr(2);
  return o.flag();
}

const OptionInfo* OptionSchema::find(const std::string& key) const {
  for (const OptionInfo& o : options_)
    if (o.key == key) return &o;
  return nullptr;
}

std::vector<std::string> OptionSchema::keys() const {
  std::vector<std::string> k;
  for (const OptionInfo& o : options_) k.push_back(o.key);
  return k;
}

json OptionSchema::describe() const {
  json list = json::array();
  for (const OptionInfo& o : options_) {
    json j = {{"key", o.key}, {"flag", cli_flag(o)}, {"kind", kind_name(o.kind)}, {"unit", o.unit},
              {"default", defaults_.at(o.key)}, {"help", o.help}};
    if (o.kind == OptionKind::Number || o.kind == OptionKind::Integer) {
      j["min"] = o.min;
      j["max"] = o.max;
      j["min_exclusive"] = o.min_exclusive;
    }
    if (o.kind == OptionKind::Choice) j["choices"] = o.choices;
    list.push_back(std::move(j));
  }
  return {{"section", name_}, {"title", title_}, {"options", list}};
}

std::string OptionSchema::markdown() const {
  std::string md = "| key | flag | default | range | meaning |\n|---|---|---|---|---|\n";
  for (const OptionInfo& o : options_)
    md += fmt::format("| `{}` | `{}` | {}{} | {} | {} |\n", o.key, cli_flag(o), option_value_text(defaults_.at(o.key)),
                      defaults_.at(o.key).is_number() ? with_unit(o.unit) : "", o.range_text(), o.help);
  return md;
}

std::vector<std::string> unknown_keys(const json& section, const std::string& where, const std::vector<const OptionSchema*>& schemas,
                                      const std::vector<std::string>& extra) {
  std::vector<std::string> known = extra;
  for (const OptionSchema* s : schemas)
    for (const std::string& k : s->keys()) known.push_back(k);
  std::vector<std::string> out;
  if (!section.is_object()) return out;
  for (const auto& [k, v] : section.items())
    if (std::find(known.begin(), known.end(), k) == known.end())
      out.push_back(fmt::format("{}: unknown key \"{}\" (known: {})", where, k, fmt::join(known, ", ")));
  return out;
}

void throw_problems(const std::string& where, const std::vector<std::string>& problems) {
  if (problems.empty()) return;
  if (problems.size() == 1) throw InputError(problems.front());
  throw InputError(fmt::format("{} has {} problems:\n  {}", where, problems.size(), fmt::join(problems, "\n  ")));
}

}  // namespace tracecast
