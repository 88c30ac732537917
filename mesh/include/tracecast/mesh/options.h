// Option tables: one definition for each option of an options struct — its key, kind, unit,
// range, allowed values and help — and where it lives in the struct. Everything that names or
// checks an option reads it from here: the CLI's flags, the recipe's sections, the reports' and
// the ledger's records of how a piece was made, the docs (`tracecast options`) and any front end.
//
// The default is the struct's own member initialiser, read from a default-constructed struct,
// so it too is written once. Keys carry their unit as a suffix (`flash_land_mm`); the CLI flag
// is the key without that suffix, with dashes (`--flash-land`).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tracecast/mesh/mesh.h"

namespace tracecast {

enum class OptionKind {
  Number,     //!< a real number in [min, max] (or (min, max] when min_exclusive)
  Integer,    //!< a whole number in [min, max]
  Flag,       //!< true or false
  Choice,     //!< one of `choices`
  Direction,  //!< a non-zero [x, y, z], normalised; null when unset (found by the tool)
  Text,       //!< free text, checked by the table's own parser where it has one
};

const char* kind_name(OptionKind kind);  //!< "number", "integer", "flag", "choice", "direction", "text"

//! What a front end needs to show, check and document one option without knowing its struct.
struct OptionInfo {
  std::string key;                   //!< recipe, report and ledger key, unit suffix included
  OptionKind kind = OptionKind::Number;
  std::string unit;                  //!< "mm", "deg", "g/ml", "fraction", or "" for none
  double min = 0, max = 0;           //!< Number and Integer
  bool min_exclusive = false;        //!< Number: the range is (min, max]
  std::vector<std::string> choices;  //!< Choice: the allowed values
  std::string help;                  //!< one line; what 0 or null means, if anything
  std::function<std::string(const std::string&)> parse_text;  //!< Text: "" if valid, else what is wrong

  //! The command-line flag: "--" + the key without its unit suffix, '_' -> '-'.
  std::string flag() const;
  //! What is wrong with `value` for this option ("" if nothing), in the recipe's wording:
  //! `"wall_mm" = 1 is out of range [2, 100] mm`, `"keys" must be a whole number`.
  std::string problem(const nlohmann::json& value) const;
  //! A command-line text as the JSON value this option takes (numbers, "X,Y,Z", true/false);
  //! the text itself as a string when it does not parse, for problem() to name.
  nlohmann::json from_text(const std::string& text) const;
  //! The range as the docs and help show it: "[0.5, 10] mm", "(0, 30] mm", "one of resin, fdm".
  std::string range_text() const;
};

//! The suffix a key carries for its unit: "_mm", "_g_ml" for g/ml, "_um" for µm.
std::string unit_suffix(const std::string& unit);

//! A value as the docs and help show it: 2.5, true, "resin", [0, 0, 1], or "found" for null.
std::string option_value_text(const nlohmann::json& value);

//! The non-template half of a table: the options' descriptions and defaults, in order.
class OptionSchema {
 public:
  explicit OptionSchema(std::string name, std::string title = "") : name_(std::move(name)), title_(std::move(title)) {
    if (title_.empty()) title_ = name_;
  }
  const std::string& name() const { return name_; }   //!< the recipe section: "mold", "appliance"
  const std::string& title() const { return title_; } //!< what the table is of: "mold", "casting sheet"
  const std::vector<OptionInfo>& options() const { return options_; }
  const nlohmann::json& defaults() const { return defaults_; }  //!< key -> default value
  const OptionInfo* find(const std::string& key) const;
  std::vector<std::string> keys() const;
  //! The flag the command line takes: flag(), or `--no-…` for a flag whose default is on.
  std::string cli_flag(const OptionInfo& o) const;
  //! Every option as an object: key, flag, kind, unit, default, min, max, choices, help
  //! (docs/formats.md#option-tables): what `tracecast options --json` prints.
  nlohmann::json describe() const;
  //! The table as the docs show it (Markdown: key, flag, default, range, meaning).
  std::string markdown() const;

 protected:
  std::string name_, title_;
  std::vector<OptionInfo> options_;
  nlohmann::json defaults_ = nlohmann::json::object();
};

//! Keys of `section` that none of `schemas` and none of `extra` know, as problems
//! (`where: unknown key "x" (known: …)`).
std::vector<std::string> unknown_keys(const nlohmann::json& section, const std::string& where,
                                      const std::vector<const OptionSchema*>& schemas, const std::vector<std::string>& extra = {});

//! "where: problem 1\n  problem 2 …" as one InputError; nothing if `problems` is empty.
void throw_problems(const std::string& where, const std::vector<std::string>& problems);

template <class T>
class OptionTable : public OptionSchema {
 public:
  using Get = std::function<nlohmann::json(const T&)>;
  using Set = std::function<void(T&, const nlohmann::json&)>;
  using Rule = std::function<std::string(const T&)>;  //!< "" when the struct is fine

  explicit OptionTable(std::string name, std::string title = "") : OptionSchema(std::move(name), std::move(title)) {}

  //! Any option, reached through `get` and `set` (`set` is given only values problem() accepts).
  OptionTable& add(OptionInfo info, Get get, Set set) {
    defaults_[info.key] = get(T{});
    options_.push_back(std::move(info));
    access_.push_back({std::move(get), std::move(set)});
    return *this;
  }
  OptionTable& number(const char* key, double T::*m, const char* unit, double min, double max, const char* help,
                      bool min_exclusive = false) {
    OptionInfo i{key, OptionKind::Number, unit, min, max, min_exclusive, {}, help, {}};
    return add(std::move(i), [m](const T& t) { return nlohmann::json(t.*m); },
               [m](T& t, const nlohmann::json& v) { t.*m = v.get<double>(); });
  }
  //! A whole number of any integer type (a count, a seed).
  template <class I>
  OptionTable& integer(const char* key, I T::*m, double min, double max, const char* help, const char* unit = "") {
    OptionInfo i{key, OptionKind::Integer, unit, min, max, false, {}, help, {}};
    return add(std::move(i), [m](const T& t) { return nlohmann::json(t.*m); },
               [m](T& t, const nlohmann::json& v) { t.*m = v.get<I>(); });
  }
  //! A random seed: a whole number in [0, 2³² − 1].
  OptionTable& seed(const char* key, std::uint64_t T::*m, const char* help) { return integer(key, m, 0, 4294967295.0, help); }
  OptionTable& flag(const char* key, bool T::*m, const char* help) {
    OptionInfo i{key, OptionKind::Flag, "", 0, 0, false, {}, help, {}};
    return add(std::move(i), [m](const T& t) { return nlohmann::json(t.*m); },
               [m](T& t, const nlohmann::json& v) { t.*m = v.get<bool>(); });
  }
  OptionTable& choice(const char* key, std::string T::*m, std::vector<std::string> choices, const char* help) {
    OptionInfo i{key, OptionKind::Choice, "", 0, 0, false, std::move(choices), help, {}};
    return add(std::move(i), [m](const T& t) { return nlohmann::json(t.*m); },
               [m](T& t, const nlohmann::json& v) { t.*m = v.get<std::string>(); });
  }
  OptionTable& direction(const char* key, std::optional<Vec3> T::*m, const char* help) {
    OptionInfo i{key, OptionKind::Direction, "", 0, 0, false, {}, help, {}};
    return add(std::move(i), [m](const T& t) { return direction_json(t.*m); },
               [m](T& t, const nlohmann::json& v) { t.*m = direction_of(v); });
  }
  //! A whole-struct rule beyond one option's range, such as "0, or 3 to 6 keys".
  OptionTable& rule(Rule r) {
    rules_.push_back(std::move(r));
    return *this;
  }

  //! Every option's value, keyed: what reports and the ledger record.
  nlohmann::json to_json(const T& t) const {
    nlohmann::json j = nlohmann::json::object();
    for (std::size_t i = 0; i < options_.size(); ++i) j[options_[i].key] = access_[i].get(t);
    return j;
  }
  //! Every problem of a struct however it was filled in: values out of range, broken rules.
  std::vector<std::string> check(const T& t) const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < options_.size(); ++i)
      if (std::string p = options_[i].problem(access_[i].get(t)); !p.empty()) out.push_back(std::move(p));
    for (const Rule& r : rules_)
      if (std::string p = r(t); !p.empty()) out.push_back(std::move(p));
    return out;
  }
  //! Sets every option `j` (an object keyed as to_json) holds on `t`, adding "where: problem"
  //! for each value refused (it leaves the member unchanged) and each rule the result breaks.
  //! Keys the table does not know are left to unknown_keys(). An empty `where` adds no prefix.
  void read(const nlohmann::json& j, T& t, const std::string& where, std::vector<std::string>& problems) const {
    const std::string at = where.empty() ? "" : where + ": ";
    if (!j.is_object()) return problems.push_back(at + "must be an object");
    bool refused = false;
    for (std::size_t i = 0; i < options_.size(); ++i) {
      const auto it = j.find(options_[i].key);
      if (it == j.end()) continue;
      if (std::string p = options_[i].problem(*it); !p.empty()) {
        problems.push_back(at + p);
        refused = true;
      } else {
        access_[i].set(t, *it);
      }
    }
    if (refused) return;  // a rule over a half-read struct would only repeat the problem
    for (const Rule& r : rules_)
      if (std::string p = r(t); !p.empty()) problems.push_back(at + p);
  }
  //! read() onto `t`, throwing one InputError with every problem (unknown keys included).
  T from_json(const nlohmann::json& j, const std::string& where, T t = T{}) const {
    std::vector<std::string> problems = unknown_keys(j, where, {this});
    read(j, t, where, problems);
    throw_problems(where, problems);
    return t;
  }

 private:
  static nlohmann::json direction_json(const std::optional<Vec3>& v) {
    return v ? nlohmann::json::array({v->x(), v->y(), v->z()}) : nlohmann::json();
  }
  static std::optional<Vec3> direction_of(const nlohmann::json& v) {
    if (v.is_null()) return std::nullopt;
    return Vec3(v[0].get<double>(), v[1].get<double>(), v[2].get<double>()).normalized();
  }
  struct Access {
    Get get;
    Set set;
  };
  std::vector<Access> access_;
  std::vector<Rule> rules_;
};

}  // namespace tracecast
