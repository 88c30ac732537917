#include "tracecast/pipeline/recipe.h"

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tracecast/mesh/errors.h"
#include "tracecast/print/printer.h"

namespace tracecast::pipeline {

namespace {

using nlohmann::json;

//! One object of the recipe: reads its fields with their defaults, notes every problem (unknown
//! key, wrong type, value out of range) instead of stopping at the first, and echoes what it used.
class Section {
 public:
  Section(const json* j, std::string where, std::vector<std::string>& problems, std::vector<std::string> known)
      : j_(j), where_(std::move(where)), problems_(problems) {
    if (!j_) return;
    if (!j_->is_object()) {
      problem("must be an object");
      j_ = nullptr;
      return;
    }
    for (const auto& [k, v] : j_->items())
      if (std::find(known.begin(), known.end(), k) == known.end())
        problems_.push_back(fmt::format("{}: unknown key \"{}\" (known: {})", where_, k, fmt::join(known, ", ")));
  }
  bool has(const char* key) const { return j_ && j_->contains(key); }
  const json* get(const char* key) const { return has(key) ? &j_->at(key) : nullptr; }

  double number(const char* key, double def, double lo, double hi, const char* unit = "") {
    double v = def;
    if (const json* x = get(key)) {
      if (!x->is_number()) problem(fmt::format("\"{}\" must be a number{}", key, *unit ? fmt::format(" ({})", unit) : ""));
      else if (!(x->get<double>() >= lo && x->get<double>() <= hi))
        problem(fmt::format("\"{}\" = {} is out of range [{}, {}]{}", key, x->dump(), lo, hi, *unit ? fmt::format(" {}", unit) : ""));
      else v = x->get<double>();
    }
    echo[key] = v;
    return v;
  }
  int integer(const char* key, int def, int lo, int hi) {
    int v = def;
    if (const json* x = get(key)) {
      if (!x->is_number_integer()) problem(fmt::format("\"{}\" must be a whole number", key));
      else if (x->get<long long>() < lo || x->get<long long>() > hi) problem(fmt::format("\"{}\" = {} is out of range [{}, {}]", key, x->dump(), lo, hi));
      else v = x->get<int>();
    }
    echo[key] = v;
    return v;
  }
  bool boolean(const char* key, bool def) {
    bool v = def;
    if (const json* x = get(key)) {
      if (!x->is_boolean()) problem(fmt::format("\"{}\" must be true or false", key));
      else v = x->get<bool>();
    }
    echo[key] = v;
    return v;
  }
  std::string text(const char* key, const std::string& def, std::vector<std::string> allowed = {}) {
    std::string v = def;
    if (const json* x = get(key)) {
      if (!x->is_string()) problem(fmt::format("\"{}\" must be a string", key));
      else if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), x->get<std::string>()) == allowed.end())
        problem(fmt::format("\"{}\" = \"{}\" is not one of {}", key, x->get<std::string>(), fmt::join(allowed, ", ")));
      else v = x->get<std::string>();
    }
    echo[key] = v;
    return v;
  }
  std::optional<Vec3> direction(const char* key) {
    std::optional<Vec3> v;
    if (const json* x = get(key); x && !x->is_null()) {
      if (!x->is_array() || x->size() != 3 || !(*x)[0].is_number() || !(*x)[1].is_number() || !(*x)[2].is_number())
        problem(fmt::format("\"{}\" must be [x, y, z]", key));
      else if (const Vec3 d((*x)[0].get<double>(), (*x)[1].get<double>(), (*x)[2].get<double>()); !(d.norm() > 0) || !d.allFinite())
        problem(fmt::format("\"{}\" must be a non-zero direction", key));
      else v = d.normalized();
    }
    echo[key] = v ? json::array({v->x(), v->y(), v->z()}) : json();
    return v;
  }
  void problem(const std::string& what) { problems_.push_back(fmt::format("{}: {}", where_, what)); }
  const std::string& where() const { return where_; }
  json echo = json::object();

 private:
  const json* j_;
  std::string where_;
  std::vector<std::string>& problems_;
};

std::string env_or(const char* var) {
  const char* v = std::getenv(var);
  return v ? v : "";
}

}  // namespace

Recipe read_recipe(const std::filesystem::path& file) {
  Recipe r;
  r.file = file;
  std::ifstream f(file, std::ios::binary);
  if (!f) throw InputError(file, "cannot open the recipe");
  std::stringstream ss;
  ss << f.rdbuf();
  json j;
  try {
    j = json::parse(ss.str());
  } catch (const json::exception& e) {
    throw InputError(file, fmt::format("not valid JSON: {}", e.what()));
  }
  const std::filesystem::path dir = file.parent_path();
  auto path_of = [&](const std::string& p) { return p.empty() ? std::filesystem::path() : (dir / p).lexically_normal(); };
  std::vector<std::string> problems;
  const std::string name = file.filename().string();
  Section top(&j, name, problems, {"scan", "appliance", "mold", "production", "output"});

  // scan
  if (!top.has("scan")) problems.push_back(name + ": \"scan\" is missing (at least its \"inputs\")");
  Section sc(top.get("scan"), name + ": scan", problems, {"inputs", "units", "resolution_mm", "crop", "voxel_mm", "poisson_depth"});
  if (const json* in = sc.get("inputs")) {
    json list = in->is_string() ? json::array({*in}) : *in;
    if (!list.is_array() || list.empty()) sc.problem("\"inputs\" must be a file or a non-empty list of files");
    else
      for (const auto& x : list) {
        if (!x.is_string()) {
          sc.problem("\"inputs\" must hold file names");
          continue;
        }
        const auto p = path_of(x.get<std::string>());
        if (!std::filesystem::is_regular_file(p)) sc.problem(fmt::format("input {} does not exist", p.string()));
        r.scans.push_back(p);
      }
    sc.echo["inputs"] = list;
  } else if (top.has("scan")) {
    sc.problem("\"inputs\" is missing");
  }
  r.units = sc.text("units", "auto", {"auto", "mm", "cm", "m", "in"});
  r.reconstruct.resolution_mm = sc.number("resolution_mm", 0, 0, 20, "mm");
  const std::string crop = sc.text("crop", "auto");
  if (const auto c = scan::parse_crop(crop)) r.reconstruct.crop = *c;
  else sc.problem(fmt::format("\"crop\" = \"{}\" is not auto, none, box:…, sphere:… or plane:…", crop));
  r.reconstruct.voxel_mm = sc.number("voxel_mm", 0, 0, 20, "mm");
  r.reconstruct.poisson_depth = sc.integer("poisson_depth", 0, 0, 12);
  r.scan_options = sc.echo;

  // appliance: the appliance file's fields
  if (const json* a = top.get("appliance")) {
    try {
      r.appliance = parse_appliance_spec(*a, name + ": appliance");
      validate(r.appliance);
    } catch (const InputError& e) {
      problems.push_back(e.what());
    }
    r.appliance_options = *a;
  } else {
    r.appliance_options = json::object();
  }

  // mold
  Section mo(top.get("mold"), name + ": mold", problems,
             {"printer", "pull", "front", "flash_land_mm", "gutter_width_mm", "gutter_depth_mm", "wall_mm", "keys", "key_radius_mm",
              "sprue_mm", "top_pour", "vent_mm", "max_vents", "pry_slot_mm", "hollow_mm", "resolution_mm", "density_g_ml", "waste"});
  print::MoldOptions& m = r.mold;
  const std::string printer = mo.text("printer", "resin", {"resin", "resin-small", "fdm"});
  if (const auto p = print::find_printer(printer)) m.printer = *p;
  m.pull = mo.direction("pull");
  m.front = mo.direction("front");
  m.flash_land_mm = mo.number("flash_land_mm", m.flash_land_mm, 0.5, 10, "mm");
  m.gutter_width_mm = mo.number("gutter_width_mm", m.gutter_width_mm, 0, 20, "mm");
  m.gutter_depth_mm = mo.number("gutter_depth_mm", m.gutter_depth_mm, 0, 10, "mm");
  m.wall_mm = mo.number("wall_mm", m.wall_mm, 2, 100, "mm");
  m.keys = mo.integer("keys", m.keys, 0, 6);
  if (m.keys == 1 || m.keys == 2) mo.problem("\"keys\" must be 0, or 3 to 6");
  m.key_radius_mm = mo.number("key_radius_mm", m.key_radius_mm, 1, 20, "mm");
  m.sprue_diameter_mm = mo.number("sprue_mm", m.sprue_diameter_mm, 0, 40, "mm");
  m.top_pour = mo.boolean("top_pour", m.top_pour);
  m.vent_diameter_mm = mo.number("vent_mm", m.vent_diameter_mm, 0, 5, "mm");
  m.max_vents = mo.integer("max_vents", m.max_vents, 0, 30);
  m.pry_slot_mm = mo.number("pry_slot_mm", m.pry_slot_mm, 0, 20, "mm");
  m.hollow_mm = mo.number("hollow_mm", m.hollow_mm, 0, 20, "mm");
  if (m.hollow_mm > 0 && m.hollow_mm < 1.5) mo.problem("\"hollow_mm\" must be 0 (solid) or at least 1.5 mm");
  m.resolution_mm = mo.number("resolution_mm", m.resolution_mm, 0.1, 5, "mm");
  r.density_g_ml = mo.number("density_g_ml", r.density_g_ml, 0.5, 3, "g/ml");
  r.waste = mo.number("waste", r.waste, 0, 1);
  r.mold_options = mo.echo;

  // production
  if (!top.has("production")) problems.push_back(name + ": \"production\" is missing (ledger, run, subject, keys)");
  Section pr(top.get("production"), name + ": production", problems,
             {"ledger", "signing_key", "mark_key", "run", "subject", "create"});
  Production& p = r.production;
  p.ledger = path_of(pr.text("ledger", env_or("TRACECAST_LEDGER")));
  p.signing_key = path_of(pr.text("signing_key", env_or("TRACECAST_SIGNING_KEY")));
  p.mark_key = path_of(pr.text("mark_key", env_or("TRACECAST_MARK_KEY")));
  p.run = static_cast<std::uint32_t>(pr.integer("run", 0, 0, (1 << 24) - 1));
  p.subject = pr.text("subject", "");
  if (top.has("production")) {
    if (p.ledger.empty()) pr.problem("\"ledger\" is missing (or set TRACECAST_LEDGER)");
    if (p.signing_key.empty()) pr.problem("\"signing_key\" is missing (or set TRACECAST_SIGNING_KEY)");
    if (p.mark_key.empty()) pr.problem("\"mark_key\" is missing (or set TRACECAST_MARK_KEY)");
    if (p.run == 0) pr.problem("\"run\" is missing (an open run's number, 1 or more)");
    if (p.subject.empty()) pr.problem("\"subject\" is missing (the subject's code)");
  }
  if (const json* c = pr.get("create")) {
    Section cr(c, name + ": production: create", problems,
               {"maker", "workshop", "use", "client", "prescriber", "operator", "operator_name", "consent_document",
                "consent_valid_until", "consent_given_by"});
    Setup s;
    s.maker = static_cast<std::uint32_t>(cr.integer("maker", -1, 0, 65535));
    if (!cr.has("maker")) cr.problem("\"maker\" is missing (the workshop's maker number)");
    s.workshop = cr.text("workshop", "");
    s.use = cr.text("use", "film", {"film", "medical", "other"});
    s.client = cr.text("client", "");
    s.prescriber = cr.text("prescriber", "");
    s.operator_code = cr.text("operator", "");
    s.operator_name = cr.text("operator_name", "");
    s.consent_document = path_of(cr.text("consent_document", ""));
    s.consent_valid_until = cr.text("consent_valid_until", "");
    s.consent_given_by = cr.text("consent_given_by", "");
    for (const char* k : {"workshop", "client", "consent_document", "consent_valid_until", "consent_given_by"})
      if (!cr.has(k)) cr.problem(fmt::format("\"{}\" is missing", k));
    if (s.use == "medical" && s.prescriber.empty()) cr.problem("a medical run needs its \"prescriber\"");
    if (cr.has("consent_document") && !std::filesystem::is_regular_file(s.consent_document))
      cr.problem(fmt::format("consent document {} does not exist", s.consent_document.string()));
    if (p.run > 1) cr.problem("a ledger created here opens run 1: \"run\" must be 1");
    r.setup = s;
    pr.echo["create"] = cr.echo;
  }
  // Files that must exist unless the recipe creates them.
  const bool creates = r.setup.has_value() && !p.ledger.empty() && !std::filesystem::exists(p.ledger);
  if (!creates) {
    for (const auto& [what, path] : {std::pair<const char*, std::filesystem::path>{"ledger", p.ledger}, {"signing_key", p.signing_key},
                                     {"mark_key", p.mark_key}})
      if (!path.empty() && !std::filesystem::is_regular_file(path))
        pr.problem(fmt::format("\"{}\": {} does not exist{}", what, path.string(), r.setup ? "" : " (add \"create\" to make a new workshop)"));
  }

  r.output = path_of(top.text("output", file.stem().string() + "-out"));
  if (!problems.empty()) throw InputError(file, fmt::format("the recipe has {} problem{}:\n  {}", problems.size(), problems.size() > 1 ? "s" : "",
                                                            fmt::join(problems, "\n  ")));
  r.echo = {{"scan", r.scan_options}, {"appliance", r.appliance_options}, {"mold", r.mold_options}, {"production", pr.echo},
            {"output", top.echo["output"]}};
  return r;
}

}  // namespace tracecast::pipeline
