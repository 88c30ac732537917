// tracecast options: every option table the recipe sections and the subcommands' flags come from,
// as text, Markdown (the tables in docs/formats.md) or JSON (for front ends).
#include <fmt/format.h>

#include <algorithm>

#include "common.h"
#include "tracecast/pipeline/recipe.h"
#include "tracecast/registry/registry.h"

namespace tracecast::cli {

namespace {

//! The pipeline's tables, then the servers' (which the pipeline does not know).
std::vector<const OptionSchema*> schemas() {
  std::vector<const OptionSchema*> all = pipeline::option_schemas();
  all.push_back(&registry::serve_option_table());
  return all;
}

std::string heading(const OptionSchema& s) {
  const auto recipe = pipeline::recipe_option_schemas();
  if (std::find(recipe.begin(), recipe.end(), &s) == recipe.end()) return fmt::format("`tracecast {}` (not in recipes)", s.name());
  if (s.title() != s.name()) return fmt::format("Recipe section `{}`, the {}", s.name(), s.title());
  return fmt::format("Recipe section `{}`", s.name());
}

//! "scan, appliance, mold, …": every table's name, once each.
std::string table_names() {
  std::vector<std::string> names;
  for (const OptionSchema* s : schemas())
    if (std::find(names.begin(), names.end(), s->name()) == names.end()) names.push_back(s->name());
  return fmt::format("{}", fmt::join(names, ", "));
}

struct OptionsArgs {
  std::string section;
  bool markdown = false;
};

int run_options(const OptionsArgs& a, const GlobalOptions& g) {
  nlohmann::json list = nlohmann::json::array();
  std::string md;
  bool found = false;
  for (const OptionSchema* s : schemas()) {
    if (!a.section.empty() && s->name() != a.section) continue;
    found = true;
    list.push_back(s->describe());
    md += fmt::format("{}:\n\n{}\n", heading(*s), s->markdown());
  }
  if (!found) throw UsageError(fmt::format("no option table for \"{}\" ({})", a.section, table_names()));
  if (g.json) {
    print_json(list);
  } else if (a.markdown) {
    fmt::print("{}", md);
  } else if (!g.quiet) {
    for (const OptionSchema* s : schemas()) {
      if (!a.section.empty() && s->name() != a.section) continue;
      for (const OptionInfo& o : s->options())
        fmt::print("{:<10} {:<20} {:<22} default {:<12} {:<22} {}\n", s->name(), o.key, s->cli_flag(o),
                   option_value_text(s->defaults().at(o.key)), o.range_text(), o.help);
    }
  }
  return kOk;
}

}  // namespace

std::function<int()> setup_options(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<OptionsArgs>();
  sub.add_option("SECTION", a->section, "Only this table: " + table_names() + " (the first three are recipe sections)");
  sub.add_flag("--markdown", a->markdown, "The tables as Markdown (as in docs/formats.md)");
  sub.footer("Examples:\n  tracecast options mold\n  tracecast options --json");
  return [a, &g] { return run_options(*a, g); };
}

}  // namespace tracecast::cli
