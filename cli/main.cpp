// tracecast: one binary, a table of subcommands, each a thin parse-then-call over the libraries.
#include <fmt/format.h>
#include <unistd.h>

#include <iostream>
#include <new>

#include "common.h"
#include "tracecast/registry/registry.h"
#include "tracecast/version.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/log.h"

namespace tracecast::cli {

std::vector<Command> commands() {
  return {
      {"run", "The main job: a recipe from scan to stamped, recorded mold, with report.html (cached stages)", setup_run},
      {"batch", "Many recipes from a CSV manifest, in parallel with bounded memory, with a summary", setup_batch},
      {"repair", "Make a scanned mesh manifold and oriented, fill small holes, optionally remesh and smooth", setup_repair},
      {"appliance", "Sculpt the appliance on a face: region, openings, thickness map, feathered edges, sculpt or mirror", setup_appliance},
      {"mold", "Design the casting mold for an appliance, mask or ear: core and shell part(s), keys, sprue, vents; 3MF and STL", setup_mold},
      {"check", "Check mold parts for printing: closed, manifold, walls, build volume", setup_check},
      {"mirror", "Restore a defect side of a face from its healthy side (medical prostheses)", setup_mirror},
      {"mask", "Full-head pull-over mask: the wearer's head inside, a likeness (or the wearer's own face) outside", setup_mask},
      {"ear", "Ear prosthesis: the healthy ear of a closed head scan mirrored onto the side that lacks it", setup_ear},
      {"landmarks", "Find a face's symmetry plane, frame and landmarks", setup_landmarks},
      {"info", "Describe a mesh or point cloud: counts, size, units, closedness, manifoldness, genus, area, volume",
       setup_info},
      {"scan", "Turn a raw scan into a clean surface in mm, with an accuracy report", setup_scan},
      {"render", "Draw a mesh as a shaded PNG picture", setup_render},
      {"convert", "Convert between mesh and point-cloud formats (and units)", setup_convert},
      {"compare", "Distances between a mesh or point cloud and a reference surface (mean, p95, Hausdorff)", setup_compare},
      synth_group(),
      {"stamp", "Stamp a hidden, keyed identifier into an appliance's outer surface (≤ 40 µm)", setup_stamp},
      {"detect", "Read the hidden identifier back from a scan of a cast (any pose, unit, sampling; partial)", setup_detect},
      {"trace", "From a scan of a piece to its ledger record: run, subject, consent, operator, files", setup_trace},
      key_group(),
      ledger_group(),
      registry_group(),
      {"studio", "The browser studio on this machine: open a scan, shape the appliance, take the files away", setup_studio},
      {"options", "Every option of the recipe sections and the subcommands: key, flag, unit, default, range, help", setup_options},
  };
}

Progress::Progress(const GlobalOptions& g, int stages)
    : enabled_(!g.quiet && !g.json && ::isatty(STDERR_FILENO)), stages_(stages), start_(std::chrono::steady_clock::now()) {}
Progress::~Progress() { done(); }
void Progress::stage(const std::string& name) {
  if (!enabled_) return;
  ++current_;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int width = 20, filled = stages_ ? width * (current_ - 1) / stages_ : 0;
  fmt::print(stderr, "\r\x1b[2K[{}{}] {}/{} {} ({:.1f} s)", std::string(static_cast<std::size_t>(filled), '#'),
             std::string(static_cast<std::size_t>(width - filled), '.'), current_, stages_, name, s);
  std::fflush(stderr);
}
void Progress::done() {
  if (enabled_ && current_ > 0) fmt::print(stderr, "\r\x1b[2K");
  current_ = 0;
}

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << "\n"; }

namespace {

//! Registers `c` under `parent`: a group's children, or a leaf's options and action.
void add_command(CLI::App& parent, const Command& c, GlobalOptions& global, std::function<int()>& action) {
  CLI::App* sub = parent.add_subcommand(c.name, c.summary);
  if (!c.footer.empty()) sub->footer(c.footer);
  if (!c.setup) {
    sub->require_subcommand(1);
    for (const Command& child : c.children) add_command(*sub, child, global, action);
    return;
  }
  sub->add_flag("--json", global.json, "Machine-readable JSON on stdout");
  sub->add_flag("-q,--quiet", global.quiet, "No output on stdout except --json; errors still go to stderr");
  sub->add_flag("--verbose", global.verbose, "The libraries' debug log on stderr (what each step found)");
  auto run = c.setup(*sub, global);
  sub->callback([&action, run] { action = run; });
}

}  // namespace

}  // namespace tracecast::cli

int main(int argc, char** argv) {
  using namespace tracecast::cli;
  CLI::App app{"tracecast: from a 3D face scan to a printable, traceable silicone-casting mold."};
  app.set_version_flag("--version", tracecast::kSoftware);
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok, 2 bad command line, 3 bad input file, 4 processing or writing failed;\n"
      "detect, trace: 5 no mark found, 6 too little surface to carry one; trace: 7 not in the ledger.\n"
      "Examples:\n"
      "  tracecast info scan.ply\n"
      "  tracecast info face.obj --units cm --json\n"
      "  tracecast scan raw.ply -o face.ply --report scan.json\n"
      "  tracecast convert scan.stl scan.ply\n"
      "  tracecast synth face -o face.ply --spacing 0.8\n"
      "Run 'tracecast SUBCOMMAND --help' for a subcommand's options.");
  GlobalOptions global;
  std::function<int()> action;
  for (const Command& c : commands()) add_command(app, c, global, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kUsage;
  }
  if (global.verbose)
    tracecast::set_log_sink([](tracecast::LogLevel, const std::string& text) { fmt::print(stderr, "{}\n", text); },
                            tracecast::LogLevel::Debug);
  try {
    return action ? action() : kUsage;
  } catch (const UsageError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return kUsage;
  } catch (const tracecast::registry::Refusal& e) {
    fmt::print(stderr, "error: the registry refused (HTTP {}): {}\n", e.status(), e.what());
    return kRefused;
  } catch (const tracecast::InputError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return kBadInput;
  } catch (const tracecast::ProcessingError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return kFailed;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "error: out of memory\n");
    return kFailed;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: internal: {}\n", e.what());
    return kFailed;
  }
}
