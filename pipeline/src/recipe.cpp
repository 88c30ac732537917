#include "tracecast/pipeline/recipe.h"

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/render.h"
#include "tracecast/mesh/repair.h"
#include "tracecast/scan/rgbd.h"
#include "tracecast/scan/simulator.h"
#include "tracecast/scan/synthetic_face.h"
#include "tracecast/scan/synthetic_head.h"
#include "tracecast/sculpt/ear.h"
#include "tracecast/sculpt/mask.h"
#include "tracecast/watermark/mark.h"
#include "tracecast/mesh/units.h"
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
    for (std::string& p : unknown_keys(*j_, where_, {}, known)) problems_.push_back(std::move(p));
  }
  bool has(const char* key) const { return j_ && j_->contains(key); }
  const json* get(const char* key) const { return has(key) ? &j_->at(key) : nullptr; }

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
  void problem(const std::string& what) { problems_.push_back(fmt::format("{}: {}", where_, what)); }
  const std::string& where() const { return where_; }
  json echo = json::object();

 private:
  const json* j_;
  std::string where_;
  std::vector<std::string>& problems_;
};

// Keys of the mold section renamed to the option tables' names: named in the refusal.
const std::pair<const char*, const char*> kRenamedMoldKeys[] = {
    {"sprue_mm", "sprue_diameter_mm"}, {"vent_mm", "vent_diameter_mm"}, {"waste", "waste_fraction"}};

void read_mold_section(const json* j, const std::string& where, Recipe& r, std::vector<std::string>& problems) {
  const auto& mold = print::mold_option_table();
  const auto& silicone = print::silicone_option_table();
  if (j) {
    for (std::string p : unknown_keys(*j, where, {&mold, &silicone})) {
      for (const auto& [old_key, new_key] : kRenamedMoldKeys)
        if (p.find(fmt::format("unknown key \"{}\"", old_key)) != std::string::npos)
          p = fmt::format("{}: \"{}\" is now \"{}\"", where, old_key, new_key);
      problems.push_back(p);
    }
    mold.read(*j, r.mold, where, problems);
    silicone.read(*j, r.silicone, where, problems);
  }
  r.mold_options = mold.to_json(r.mold);
  r.mold_options.update(silicone.to_json(r.silicone));
}

std::string env_or(const char* var) {
  const char* v = std::getenv(var);
  return v ? v : "";
}

}  // namespace

std::vector<const OptionSchema*> recipe_option_schemas() {
  return {&scan::reconstruct_option_table(), &appliance_option_table(), &sculpt::mask_option_table(), &sculpt::ear_option_table(),
          &print::mold_option_table(), &print::silicone_option_table()};
}

std::vector<const OptionSchema*> option_schemas() {
  std::vector<const OptionSchema*> all = recipe_option_schemas();
  for (const OptionSchema* s : std::initializer_list<const OptionSchema*>{
           &repair_option_table(), &mirror_option_table(), &watermark::stamp_option_table(), &watermark::detect_option_table(), &render_option_table(),
           &scan::synth_face_option_table(), &scan::synth_head_option_table(), &scan::synth_scan_option_table(), &scan::rgbd_sim_option_table()})
    all.push_back(s);
  return all;
}

namespace {

json parse_recipe_file(const std::filesystem::path& file) {
  std::ifstream f(file, std::ios::binary);
  if (!f) throw InputError(file, "cannot open the recipe");
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    throw InputError(file, fmt::format("not valid JSON: {}", e.what()));
  }
}

//! A path the recipe gives, relative to the recipe's folder (empty stays empty).
std::filesystem::path recipe_path(const std::filesystem::path& dir, const std::string& p) {
  return p.empty() ? std::filesystem::path() : (dir / p).lexically_normal();
}

//! "scan": its inputs (files that exist), units and reconstruction options.
void read_scan_section(Section& top, const std::string& name, const std::filesystem::path& dir, Recipe& r, std::vector<std::string>& problems) {
  if (!top.has("scan")) problems.push_back(name + ": \"scan\" is missing (at least its \"inputs\")");
  std::vector<std::string> scan_keys = scan::reconstruct_option_table().keys();
  scan_keys.insert(scan_keys.begin(), {"inputs", "units"});
  Section sc(top.get("scan"), name + ": scan", problems, scan_keys);
  if (const json* in = sc.get("inputs")) {
    json list = in->is_string() ? json::array({*in}) : *in;
    if (!list.is_array() || list.empty()) sc.problem("\"inputs\" must be a file or a non-empty list of files");
    else
      for (const auto& x : list) {
        if (!x.is_string()) {
          sc.problem("\"inputs\" must hold file names");
          continue;
        }
        const auto p = recipe_path(dir, x.get<std::string>());
        if (!std::filesystem::is_regular_file(p)) sc.problem(fmt::format("input {} does not exist", p.string()));
        r.scans.push_back(p);
      }
    sc.echo["inputs"] = list;
  } else if (top.has("scan")) {
    sc.problem("\"inputs\" is missing");
  }
  r.units = sc.text("units", "auto", unit_names());
  if (const json* s = top.get("scan"); s && s->is_object()) scan::reconstruct_option_table().read(*s, r.reconstruct, sc.where(), problems);
  sc.echo.update(scan::reconstruct_option_table().to_json(r.reconstruct));
  r.scan_options = sc.echo;
}

//! "appliance": the appliance file's fields.
void read_appliance_section(const json& a, const std::string& name, Recipe& r, std::vector<std::string>& problems) {
  try {
    r.appliance = parse_appliance_spec(a, name + ": appliance");
    validate(r.appliance);
  } catch (const InputError& e) {
    problems.push_back(e.what());
  }
  r.appliance_options = a;
  if (a.is_object()) r.appliance_options.update(appliance_option_table().to_json(r.appliance));
}

//! "mask": the mask table's options and "likeness", another head's scan (relative to the recipe).
void read_mask_section(const json& m, const std::string& name, const std::filesystem::path& dir, Recipe& r, std::vector<std::string>& problems) {
  const auto& table = sculpt::mask_option_table();
  std::vector<std::string> keys = table.keys();
  keys.push_back("likeness");
  Section sec(&m, name + ": mask", problems, keys);
  if (!m.is_object()) return;
  table.read(m, r.mask, sec.where(), problems);
  sec.echo.update(table.to_json(r.mask));
  if (sec.has("likeness")) {
    r.likeness_scan = recipe_path(dir, sec.text("likeness", ""));
    if (!std::filesystem::is_regular_file(r.likeness_scan)) sec.problem(fmt::format("likeness {} does not exist", r.likeness_scan.string()));
  }
  r.appliance_options = sec.echo;
}

//! "ear": the ear table's options.
void read_ear_section(const json& e, const std::string& name, Recipe& r, std::vector<std::string>& problems) {
  const auto& table = sculpt::ear_option_table();
  Section sec(&e, name + ": ear", problems, table.keys());
  if (!e.is_object()) return;
  table.read(e, r.ear, sec.where(), problems);
  r.appliance_options = table.to_json(r.ear);
}

//! The one piece section (appliance, mask or ear; none: an appliance with its defaults).
void read_piece_section(const Section& top, const std::string& name, const std::filesystem::path& dir, Recipe& r,
                        std::vector<std::string>& problems) {
  std::vector<std::string> given;
  for (const char* k : {"appliance", "mask", "ear"})
    if (top.has(k)) given.push_back(k);
  r.appliance_options = json::object();
  if (given.size() > 1) {
    problems.push_back(fmt::format("{}: a recipe makes one piece: give one of \"appliance\", \"mask\" or \"ear\", not {}", name,
                                   fmt::join(given, " and ")));
    return;
  }
  r.piece = given.empty() ? "appliance" : given.front();
  if (r.piece == "appliance" && !given.empty()) read_appliance_section(*top.get("appliance"), name, r, problems);
  if (r.piece == "mask") read_mask_section(*top.get("mask"), name, dir, r, problems);
  if (r.piece == "ear") read_ear_section(*top.get("ear"), name, r, problems);
}

//! "production": "create": the workshop, operator, subject, consent and run a new ledger starts with.
Setup read_create_section(const json* c, const std::string& name, const std::filesystem::path& dir, const Production& p, json& echo,
                          std::vector<std::string>& problems) {
  Section cr(c, name + ": production: create", problems,
             {"maker", "workshop", "use", "client", "prescriber", "operator", "operator_name", "consent_document", "consent_valid_until",
              "consent_given_by"});
  Setup s;
  s.maker = static_cast<std::uint32_t>(cr.integer("maker", -1, 0, 65535));
  if (!cr.has("maker")) cr.problem("\"maker\" is missing (the workshop's maker number)");
  s.workshop = cr.text("workshop", "");
  s.use = cr.text("use", "film", {"film", "medical", "other"});
  s.client = cr.text("client", "");
  s.prescriber = cr.text("prescriber", "");
  s.operator_code = cr.text("operator", "");
  s.operator_name = cr.text("operator_name", "");
  s.consent_document = recipe_path(dir, cr.text("consent_document", ""));
  s.consent_valid_until = cr.text("consent_valid_until", "");
  s.consent_given_by = cr.text("consent_given_by", "");
  for (const char* k : {"workshop", "client", "consent_document", "consent_valid_until", "consent_given_by"})
    if (!cr.has(k)) cr.problem(fmt::format("\"{}\" is missing", k));
  if (s.use == "medical" && s.prescriber.empty()) cr.problem("a medical run needs its \"prescriber\"");
  if (cr.has("consent_document") && !std::filesystem::is_regular_file(s.consent_document))
    cr.problem(fmt::format("consent document {} does not exist", s.consent_document.string()));
  if (p.run > 1) cr.problem("a ledger created here opens run 1: \"run\" must be 1");
  echo = cr.echo;
  return s;
}

//! "production": ledger, keys, run and subject (or their environment variables), and "create";
//! the files must exist unless the recipe creates them. Returns the section's echo.
json read_production_section(const Section& top, const std::string& name, const std::filesystem::path& dir, Recipe& r,
                             std::vector<std::string>& problems) {
  if (!top.has("production")) problems.push_back(name + ": \"production\" is missing (ledger, run, subject, keys)");
  Section pr(top.get("production"), name + ": production", problems, {"ledger", "signing_key", "mark_key", "run", "subject", "likeness", "create"});
  Production& p = r.production;
  p.ledger = recipe_path(dir, pr.text("ledger", env_or("TRACECAST_LEDGER")));
  p.signing_key = recipe_path(dir, pr.text("signing_key", env_or("TRACECAST_SIGNING_KEY")));
  p.mark_key = recipe_path(dir, pr.text("mark_key", env_or("TRACECAST_MARK_KEY")));
  p.run = static_cast<std::uint32_t>(pr.integer("run", 0, 0, (1 << 24) - 1));
  p.subject = pr.text("subject", "");
  p.likeness = pr.text("likeness", "");
  if (top.has("production")) {
    if (p.ledger.empty()) pr.problem("\"ledger\" is missing (or set TRACECAST_LEDGER)");
    if (p.signing_key.empty()) pr.problem("\"signing_key\" is missing (or set TRACECAST_SIGNING_KEY)");
    if (p.mark_key.empty()) pr.problem("\"mark_key\" is missing (or set TRACECAST_MARK_KEY)");
    if (p.run == 0) pr.problem("\"run\" is missing (an open run's number, 1 or more)");
    if (p.subject.empty()) pr.problem("\"subject\" is missing (the subject's code)");
  }
  if (const json* c = pr.get("create")) r.setup = read_create_section(c, name, dir, p, pr.echo["create"], problems);
  const bool creates = r.setup.has_value() && !p.ledger.empty() && !std::filesystem::exists(p.ledger);
  if (!creates) {
    for (const auto& [what, path] :
         {std::pair<const char*, std::filesystem::path>{"ledger", p.ledger}, {"signing_key", p.signing_key}, {"mark_key", p.mark_key}})
      if (!path.empty() && !std::filesystem::is_regular_file(path))
        pr.problem(fmt::format("\"{}\": {} does not exist{}", what, path.string(), r.setup ? "" : " (add \"create\" to make a new workshop)"));
  }
  // A new workshop's ledger holds the subject's consent only: a likeness would be refused after
  // the workshop was made; say so before anything is written.
  if (creates && !p.likeness.empty())
    pr.problem(fmt::format("\"likeness\": a new workshop's ledger holds no consent of subject '{}': create the workshop, record "
                           "that consent (tracecast ledger subject, ledger consent), then run",
                           p.likeness));
  return pr.echo;
}

}  // namespace

Recipe read_recipe(const std::filesystem::path& file) {
  Recipe r;
  r.file = file;
  const json j = parse_recipe_file(file);
  const std::filesystem::path dir = file.parent_path();
  std::vector<std::string> problems;
  const std::string name = file.filename().string();
  Section top(&j, name, problems, {"scan", "appliance", "mask", "ear", "mold", "production", "output"});
  read_scan_section(top, name, dir, r, problems);
  read_piece_section(top, name, dir, r, problems);
  read_mold_section(top.get("mold"), name + ": mold", r, problems);
  const json production = read_production_section(top, name, dir, r, problems);
  r.output = recipe_path(dir, top.text("output", file.stem().string() + "-out"));
  if (!r.likeness_scan.empty() && r.production.likeness.empty())
    problems.push_back(name + ": production: a mask with a likeness copies another person's face: \"likeness\" (that person's subject "
                              "code, with a consent for the run's use) is missing");
  if (!problems.empty())
    throw InputError(file, fmt::format("the recipe has {} problem{}:\n  {}", problems.size(), problems.size() > 1 ? "s" : "", fmt::join(problems, "\n  ")));
  r.echo = {{"scan", r.scan_options}, {r.piece, r.appliance_options}, {"mold", r.mold_options}, {"production", production},
            {"output", top.echo["output"]}};
  return r;
}

}  // namespace tracecast::pipeline
