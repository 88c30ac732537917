// Option tables: one definition per option, and every place that names an option agrees with it —
// the CLI's help and flags, the recipe reader, the ledger's record and docs/formats.md.
#include <catch2/catch.hpp>

#include <set>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "fixtures.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/pipeline/recipe.h"
#include "tracecast/pipeline/traceable.h"

using namespace tracecast;
using nlohmann::json;

namespace {

// The subcommand whose flags a table's options are.

// A valid value other than the default, for each kind.
json other_value(const OptionInfo& o, const json& def) {
  switch (o.kind) {
    case OptionKind::Number: return def.get<double>() == o.max ? o.min + 0.5 * (o.max - o.min) : o.max;
    case OptionKind::Integer: return def.get<int>() == int(o.max) ? int(o.min) : int(o.max);
    case OptionKind::Flag: return !def.get<bool>();
    case OptionKind::Choice: return o.choices.back() == def.get<std::string>() ? o.choices.front() : o.choices.back();
    case OptionKind::Direction: return json::array({0.0, 0.0, 1.0});
    case OptionKind::Text: return o.key == "build_volume_mm" ? "300,200,150" : "none";  // the two texts: a build volume, a crop
  }
  return def;
}

std::string read_docs_block() {
  const std::string md = test::read_bytes(std::filesystem::path(TRACECAST_SOURCE_DIR) / "docs" / "formats.md");
  const auto b = md.find("<!-- options:begin"), e = md.find("<!-- options:end -->");
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  const auto first = md.find('\n', b) + 1;
  return md.substr(first, e - first);
}

}  // namespace

TEST_CASE("options: flags, ranges and problems come from the table's one definition", "[options]") {
  const auto& mold = print::mold_option_table();
  const OptionInfo& wall = *mold.find("wall_mm");
  CHECK(wall.flag() == "--wall");
  CHECK(mold.find("sprue_diameter_mm")->flag() == "--sprue-diameter");
  CHECK(mold.find("max_pull_tilt_deg")->flag() == "--max-pull-tilt");
  CHECK(print::silicone_option_table().find("density_g_ml")->flag() == "--density");
  CHECK(print::silicone_option_table().find("waste_fraction")->flag() == "--waste");
  CHECK(wall.problem(1.0) == "\"wall_mm\" = 1.0 is out of range [2, 100] mm");
  CHECK(wall.problem("ten") == "\"wall_mm\" must be a number (mm)");
  CHECK(wall.problem(2.0).empty());
  CHECK(wall.problem(100.0).empty());
  CHECK_FALSE(wall.problem(100.0001).empty());
  CHECK(mold.find("keys")->problem(3.5) == "\"keys\" must be a whole number");
  CHECK(mold.find("printer")->problem("laser").find("is not one of resin") != std::string::npos);
  CHECK(mold.find("pull")->problem(json::array({0, 0, 0})) == "\"pull\" must be a non-zero direction");
  CHECK(mold.find("pull")->problem(json()).empty());
  // An exclusive lower bound.
  const OptionInfo& t = *appliance_option_table().find("thickness_mm");
  CHECK(t.range_text() == "(0, 30] mm");
  CHECK_FALSE(t.problem(0.0).empty());
  CHECK(t.problem(0.01).empty());
  // Command-line text to values, strictly.
  CHECK(wall.from_text("12.5") == json(12.5));
  CHECK(wall.from_text("12.5mm") == json("12.5mm"));
  CHECK(mold.find("keys")->from_text("3") == json(3));
  CHECK(mold.find("pull")->from_text("0,0,2") == json::array({0.0, 0.0, 2.0}));
  CHECK(mold.find("pull")->from_text("0,0") == json("0,0"));
}

TEST_CASE("options: check() lists every problem of a struct filled in by code, rules included", "[options]") {
  print::MoldOptions o;
  CHECK(print::mold_option_table().check(o).empty());
  o.style = "block";  // hollowing is for blocks: only the range of hollow_mm and the walls are at fault below
  o.wall_mm = 1;
  o.keys = 2;
  o.hollow_mm = 1;
  o.resolution_mm = 0;
  const auto problems = print::mold_option_table().check(o);
  REQUIRE(problems.size() == 5);
  CHECK(problems[0].find("wall_mm") != std::string::npos);
  CHECK(problems[1].find("resolution_mm") != std::string::npos);
  CHECK(problems[2] == "\"keys\" must be 0, or 3 to 6");
  CHECK(problems[3].find("hollow_mm") != std::string::npos);
  CHECK(problems[4].find("needs \"wall_mm\" of at least 4 mm") != std::string::npos);
  // The library refuses the same struct with all of them in one error.
  try {
    print::check_mold_inputs(Mesh{}, Mesh{}, o);
    FAIL("not refused");
  } catch (const InputError& e) {
    for (const auto& p : problems) CHECK(std::string(e.what()).find(p) != std::string::npos);
  }
  ApplianceSpec s;
  s.edge_thickness_mm = 0.1;
  s.thickness_mm = 0.08;
  CHECK(appliance_option_table().check(s) ==
        std::vector<std::string>{"\"edge_thickness_mm\" = 0.1 must be below the thickness (0.08 mm)"});
}

TEST_CASE("options: a table reads what it writes, and a default is the struct's own", "[options]") {
  for (const OptionSchema* s : pipeline::option_schemas()) {
    INFO(s->name());
    for (const OptionInfo& o : s->options()) {
      INFO(o.key);
      CHECK(o.problem(s->defaults().at(o.key)).empty());  // every default is in its own range
      CHECK_FALSE(o.help.empty());
    }
  }
  print::MoldOptions o;
  CHECK(print::mold_option_table().defaults()["wall_mm"] == o.wall_mm);
  o.wall_mm = 12;
  o.pull = Vec3(0, 0, 2);
  o.printer = *print::find_printer("fdm");
  const json j = print::mold_option_table().to_json(o);
  const print::MoldOptions back = print::mold_option_table().from_json(j, "test");
  CHECK(back.wall_mm == 12);
  CHECK(back.pull->isApprox(Vec3::UnitZ()));
  CHECK(back.printer.name == "fdm");
  CHECK(back.printer.key_clearance_mm == o.printer.key_clearance_mm);
  CHECK(print::mold_option_table().to_json(back) == json(print::mold_option_table().to_json(o)).patch(json::array(
                                                         {{{"op", "replace"}, {"path", "/pull"}, {"value", {0.0, 0.0, 1.0}}}})));
  // Unknown keys and every refused value, in one error.
  try {
    print::mold_option_table().from_json({{"wal_mm", 3}, {"keys", 9}, {"top_pour", "yes"}}, "m.json");
    FAIL("not refused");
  } catch (const InputError& e) {
    const std::string w = e.what();
    CHECK(w.find("3 problems") != std::string::npos);
    CHECK(w.find("unknown key \"wal_mm\"") != std::string::npos);
    CHECK(w.find("\"keys\" = 9 is out of range [0, 6]") != std::string::npos);
    CHECK(w.find("\"top_pour\" must be true or false") != std::string::npos);
  }
}

TEST_CASE("options: the mold's ledger record holds every mold option, and the printer profile it names", "[options]") {
  print::MoldOptions o;
  o.keys = 3;
  const json rec = pipeline::mold_options_json(o);
  for (const std::string& k : print::mold_option_table().keys()) {
    INFO(k);
    REQUIRE(rec.contains(k));
    CHECK(rec[k] == (k == "keys" ? json(3) : print::mold_option_table().defaults()[k]));
  }
  CHECK(rec["printer_profile"]["key_clearance_mm"] == o.printer.key_clearance_mm);
  CHECK(rec.contains("max_pull_tilt_deg"));
  CHECK(rec.contains("rigid_undercut_mm"));
}

TEST_CASE("options: every option appears in its subcommand's help with its default, and docs/formats.md is the table", "[options][cli]") {
  for (const OptionSchema* s : pipeline::option_schemas()) {
    const test::Run help = test::run(s->name() + " --help");  // a table is named for its subcommand
    REQUIRE(help.code == 0);
    for (const OptionInfo& o : s->options()) {
      INFO(s->name() << " " << o.key);
      const json& def = s->defaults().at(o.key);
      if (o.kind == OptionKind::Flag) {
        CHECK(help.out.find(s->cli_flag(o)) != std::string::npos);
        CHECK(s->cli_flag(o) == (def.get<bool>() ? "--no-" + o.flag().substr(2) : o.flag()));
        continue;
      }
      const auto at = help.out.find(o.flag() + " ");
      REQUIRE(at != std::string::npos);
      const std::string line = help.out.substr(at, help.out.find('\n', at) - at);
      CHECK(line.find("=" + option_value_text(def)) != std::string::npos);
    }
  }
  // The docs' tables are what `tracecast options --markdown` prints.
  const test::Run md = test::run("options --markdown");
  REQUIRE(md.code == 0);
  const auto trimmed = [](std::string t) { return t.erase(t.find_last_not_of("\n") + 1); };
  CHECK(trimmed(read_docs_block()) == trimmed(md.out));
  for (const OptionSchema* s : pipeline::option_schemas())
    for (const OptionInfo& o : s->options()) CHECK(md.out.find("| `" + o.key + "` | `" + s->cli_flag(o) + "` | " +
                                                               option_value_text(s->defaults().at(o.key))) != std::string::npos);
  // The JSON for front ends carries the same.
  const json all = json::parse(test::run("options --json").out);
  REQUIRE(all.size() == pipeline::option_schemas().size() + 1);  // and the registry server's
  const auto mold = std::find_if(all.begin(), all.end(), [](const json& t) { return t["section"] == "mold"; });
  REQUIRE(mold != all.end());
  CHECK((*mold)["options"][0]["key"] == "printer");
  CHECK((*mold)["options"][0]["choices"].size() == print::printer_profiles().size());
}

TEST_CASE("options: a value set on the command line reaches the piece's ledger record; a refused one exits 2", "[options][cli]") {
  const auto dir = test::temp_dir("options-cli");
  const std::string face = std::string(TRACECAST_SOURCE_DIR) + "/assets/example-face.ply";
  const test::Run bad = test::run("mold " + face + " --face " + face + " -o " + (dir / "m.3mf").string() + " --wall 1");
  CHECK(bad.code == 2);
  CHECK(bad.err.find("--wall: 1 is out of range [2, 100] mm") != std::string::npos);
  const test::Run keys = test::run("mold " + face + " --face " + face + " -o " + (dir / "m.3mf").string() + " --keys 2");
  CHECK(keys.code == 2);
  CHECK(keys.err.find("\"keys\" must be 0, or 3 to 6") != std::string::npos);
  const test::Run thick = test::run("appliance " + face + " -o " + (dir / "a.ply").string() + " --thickness -1");
  CHECK(thick.code == 2);
  CHECK(thick.err.find("--thickness: -1 is out of range (0, 30] mm") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "a.ply"));
  CHECK_FALSE(std::filesystem::exists(dir / "m.3mf"));
  // Every subcommand's own table the same way: its first number past its maximum exits 2 naming
  // the flag and the range, and writes nothing.
  const std::string out = (dir / "out.ply").string();
  const std::map<std::string, std::string> inputs = {{"repair", face + " -o " + out},
                                                     {"mirror", face + " -o " + out},
                                                     {"render", face + " -o " + out},
                                                     {"stamp", face + " --id 1 --key " + face + " -o " + out},
                                                     {"detect", face + " --key " + face},
                                                     {"mask", face + " -o " + out},
                                                     {"ear", face + " -o " + out}};
  for (const OptionSchema* s : pipeline::option_schemas()) {
    if (s->name() == "scan" || s->name() == "appliance" || s->name() == "mold") continue;  // above
    const auto o = std::find_if(s->options().begin(), s->options().end(), [](const OptionInfo& i) { return i.kind == OptionKind::Number; });
    REQUIRE(o != s->options().end());
    INFO(s->name() << " " << o->key);
    const std::string value = option_value_text(o->max + 1);
    const auto in = inputs.find(s->name());
    const test::Run r = test::run(s->name() + " " + (in == inputs.end() ? " -o " + out : in->second) + " " + o->flag() + " " + value);
    CHECK(r.code == 2);
    CHECK(r.err.find(o->flag() + ": " + value + " is out of range " + o->range_text()) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(out));
  }
}

TEST_CASE("options: the recipe reads every option by its table's key and echoes it; renamed keys are named", "[options]") {
  const auto dir = test::temp_dir("options-recipe");
  const std::string assets = std::string(TRACECAST_SOURCE_DIR) + "/assets/";
  json recipe = {{"scan", {{"inputs", assets + "example-scan.ply"}}},
                 {"appliance", json::object()},
                 {"mold", json::object()},
                 {"production", {{"ledger", assets + "example-scan.ply"}, {"signing_key", assets + "example-scan.ply"},
                                 {"mark_key", assets + "example-scan.ply"}, {"run", 1}, {"subject", "S"}}}};
  // Each option set to a value other than its default, in its section; a recipe has one piece
  // section (appliance, mask or ear), so each is read in a recipe of its own.
  const std::set<std::string> pieces = {"appliance", "mask", "ear"};
  for (const OptionSchema* s : pipeline::recipe_option_schemas())
    for (const OptionInfo& o : s->options()) recipe[s->name()][o.key] = other_value(o, s->defaults().at(o.key));
  recipe["appliance"]["edge_thickness_mm"] = 0.05;  // below the thickness (a rule between two options)
  for (const std::string& piece : pieces) {
    json one = recipe;
    for (const std::string& other : pieces)
      if (other != piece) one.erase(other);
    test::write_bytes(dir / "r.json", one.dump());
    const pipeline::Recipe r = pipeline::read_recipe(dir / "r.json");
    CHECK(r.piece == piece);
    for (const OptionSchema* s : pipeline::recipe_option_schemas()) {
      if (pieces.count(s->name()) && s->name() != piece) continue;
      for (const OptionInfo& o : s->options()) {
        INFO(s->name() << " " << o.key);
        json want = recipe[s->name()][o.key];
        if (o.kind == OptionKind::Direction) want = json::array({0.0, 0.0, 1.0});
        CHECK(r.echo[s->name()][o.key] == want);
      }
    }
    CHECK(r.mold.printer.name == recipe["mold"]["printer"]);
    CHECK(r.reconstruct.crop.kind == scan::CropKind::None);
  }
  recipe.erase("mask");
  recipe.erase("ear");
  // The old names of renamed keys are refused with the new name.
  recipe["mold"]["sprue_mm"] = 8;
  test::write_bytes(dir / "r.json", recipe.dump());
  CHECK_THROWS_WITH(pipeline::read_recipe(dir / "r.json"), Catch::Contains("\"sprue_mm\" is now \"sprue_diameter_mm\""));
}
