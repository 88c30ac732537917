// tracecast mold | check: the two-part mold from an appliance, and the printability check.
#include <tbb/parallel_invoke.h>

#include <fmt/format.h>

#include <filesystem>
#include <sstream>

#include "common.h"
#include "tracecast/ledger/ledger.h"
#include "tracecast/pipeline/traceable.h"
#include "tracecast/watermark/key.h"
#include "tracecast/watermark/mark.h"
#include "tracecast/watermark/payload.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"
#include "tracecast/print/casting.h"
#include "tracecast/print/mold.h"

namespace tracecast::cli {

namespace {

// `check --printer`: the mold table's own printer option, so that the names and the help are one.
const OptionInfo& printer_option() { return *print::mold_option_table().find("printer"); }

print::PrinterProfile printer_named(const std::string& name) {
  if (const std::string p = printer_option().problem(name); !p.empty()) throw UsageError(p);
  return *print::find_printer(name);
}


// ---- mold ----------------------------------------------------------------------------------

struct MoldArgs {
  std::string appliance, face, output, report, units = "auto";
  // Traceability: every mold is stamped with an identifier the ledger allocates and records.
  std::string ledger, signing_key, subject, likeness, mark_key;
  std::uint32_t run = 0;
  bool obj = false;
  nlohmann::json mold_flags = nlohmann::json::object(), silicone_flags = nlohmann::json::object();
};

int run_mold(const MoldArgs& a, const GlobalOptions& g) {
  std::filesystem::path out(a.output);
  if (out.extension() != ".3mf") throw InputError(fmt::format("{}: the mold is written as a .3mf file (plus one STL per part)", a.output));
  print::MoldOptions o;
  apply_flags(print::mold_option_table(), a.mold_flags, o);
  print::SiliconeOptions silicone;
  apply_flags(print::silicone_option_table(), a.silicone_flags, silicone);
  io::ReadOptions ro;
  ro.units = *parse_unit(a.units);
  // Everything the record needs, checked before any work: a mold never leaves unmarked or unrecorded.
  pipeline::Production prod;
  prod.ledger = from_env(a.ledger, "TRACECAST_LEDGER");
  prod.signing_key = from_env(a.signing_key, "TRACECAST_SIGNING_KEY");
  prod.mark_key = from_env(a.mark_key, "TRACECAST_MARK_KEY");
  prod.run = a.run;
  prod.subject = a.subject;
  prod.likeness = a.likeness;
  {
    std::vector<std::string> missing;
    if (prod.ledger.empty()) missing.push_back("--ledger (or TRACECAST_LEDGER)");
    if (prod.signing_key.empty()) missing.push_back("--signing-key (or TRACECAST_SIGNING_KEY)");
    if (a.run == 0) missing.push_back("--run");
    if (a.subject.empty()) missing.push_back("--subject");
    if (prod.mark_key.empty()) missing.push_back("--mark-key (or TRACECAST_MARK_KEY)");
    if (!missing.empty())
      throw InputError(fmt::format("a mold is made for a run and a consenting subject, stamped and recorded in the ledger; missing: {}",
                                   fmt::join(missing, ", ")));
  }
  pipeline::Workshop shop(prod);

  Progress progress(g, 4);
  progress.stage("reading");
  const io::Geometry appliance = io::read_mesh(a.appliance, ro);
  const io::Geometry face = io::read_mesh(a.face, ro);
  const nlohmann::json inputs = {{a.appliance, ledger::file_sha256(a.appliance)}, {a.face, ledger::file_sha256(a.face)}};
  const std::string stem = (out.parent_path() / out.stem()).string();
  std::vector<std::string> files;
  const pipeline::TraceableMold made = pipeline::make_traceable_mold(
      shop, appliance.mesh, face.mesh, o, inputs,
      [&](const print::Mold& m) {
        files = {a.output};
        for (const NamedMesh& p : m.print_parts) files.push_back(stem + "-" + p.name + ".stl");
        // The package and the pieces' files at once (each writer builds its file in memory).
        tbb::parallel_invoke([&] { io::write_objects(out, m.print_parts); },
                             [&] {
                               for (std::size_t k = 0; k < m.print_parts.size(); ++k) io::write_mesh(files[k + 1], m.print_parts[k].mesh);
                             });
        if (a.obj) {
          files.push_back(stem + ".obj");
          io::write_objects(files.back(), m.print_parts);
        }
        return files;
      },
      [&](const std::string& s) { progress.stage(s); });
  const print::Mold& mold = made.mold;
  const print::MoldReport& r = mold.report;
  const print::SiliconeMix mix = print::silicone_to_mix(r.appliance_ml * 1000.0, silicone);
  nlohmann::json j = {{"appliance", a.appliance}, {"face", a.face}, {"files", files}};
  j.update(pipeline::mold_report_json(mold, o, mix));
  j["mark"] = pipeline::mark_json(made, shop);
  if (finish_report(j, a.report, g, progress)) {
    fmt::print("{} on {} -> {}\n", a.appliance, a.face, fmt::join(files, ", "));
    if (r.layout == "two-part")
      fmt::print("  pull         ({:.3f}, {:.3f}, {:.3f}): undercut {:.0f} mm² (frontal {:.0f} mm²), {} region(s)\n", r.pull.x(),
                 r.pull.y(), r.pull.z(), r.undercut_area_mm2, r.undercut_area_frontal_mm2, r.undercuts.size());
    else
      for (const print::PartPull& p : r.pulls)
        fmt::print("  pull         {:<8} {}: forms {:.0f} mm², undercut {:.0f} mm² up to {:.1f} mm deep\n", p.part,
                   p.direction ? fmt::format("({:.3f}, {:.3f}, {:.3f})", p.direction->x(), p.direction->y(), p.direction->z())
                               : std::string("none (the cast is peeled off it)"),
                   p.cavity_area_mm2, p.undercut_area_mm2, p.undercut_depth_mm);
    for (const auto& c : r.parts)
      fmt::print("  {:<12} {} faces, {:.1f} ml of resin, min wall {:.2f} mm, {}\n", c.name, c.faces, c.volume_ml, c.min_wall_mm,
                 print::is_printable(c) ? fmt::format("printable on the {} printer", o.printer.name) : "NOT printable (see the warnings)");
    if (r.sections.count() > 1)
      fmt::print("  sections     each part cut into {} to fit the {} printer; {} dowels {:g} × {:g} mm (steel or printed)\n", r.sections.count(),
                 o.printer.name, r.sections.dowels.size(), o.dowel_diameter_mm, o.dowel_length_mm);
    if (!r.bolts.bolts.empty())
      fmt::print("  bolts        {} × M{:g} × {:g} mm with washers and nuts, through bosses in the frame (holes {:.2f} mm)\n", r.bolts.bolts.size(),
                 r.bolts.diameter_mm, r.bolts.length_mm(), 2 * r.bolts.hole_radius_mm);
    fmt::print("  casting      cavity {:.2f} ml: mix {:.1f} g of silicone ({:.1f} g A + {:.1f} g B, {:.0f} % waste)\n", r.appliance_ml,
               mix.total_g, mix.part_a_g, mix.part_b_g, 100 * mix.waste_fraction);
    if (r.layout == "two-part")
      fmt::print("  features     {} keys, sprue {:.0f} mm, {} vents, gutter {:.2f} ml\n", r.key_centres.size(), o.sprue_diameter_mm,
                 r.vent_bottoms.size(), r.gutter_ml);
    else
      fmt::print("  features     {} keys, {}, {} vents\n", r.key_centres.size(),
                 r.open_pour ? std::string("poured through its open edge") : fmt::format("sprue {:.0f} mm", o.sprue_diameter_mm),
                 r.vent_bottoms.size());
    for (const auto& w : r.warnings) fmt::print("  warning      {}\n", w);
  }
  return kOk;
}

// ---- check ---------------------------------------------------------------------------------

struct CheckArgs {
  std::string input, units = "auto", printer = "resin", wall_map;
};

int run_check(const CheckArgs& a, const GlobalOptions& g) {
  if (!a.wall_map.empty() && std::filesystem::path(a.wall_map).extension() != ".ply")
    throw UsageError(fmt::format("--wall-map {}: the wall map is written as a .ply file (the only format here that keeps vertex colours)", a.wall_map));
  io::ReadOptions ro;
  ro.units = *parse_unit(a.units);
  const print::PrinterProfile printer = printer_named(a.printer);
  const io::Geometry geo = io::read_mesh(a.input, ro);
  std::vector<print::PartCheck> checks;
  std::vector<std::string> warnings;
  bool ok = true;
  Mesh map;
  for (const NamedMesh& p : io::split_objects(geo, std::filesystem::path(a.input).stem().string())) {
    checks.push_back(print::check_part(p.name, p.mesh, printer));
    if (!a.wall_map.empty()) append(map, print::wall_map(p.mesh, printer));
    const print::PartCheck& c = checks.back();
    ok = ok && print::is_printable(c);
    for (std::string& w : print::part_problems(c, printer)) warnings.push_back(std::move(w));
  }
  warnings.push_back(print::technology_warning(printer));
  if (!a.wall_map.empty()) io::write_mesh(a.wall_map, map);
  const nlohmann::json j = {{"input", a.input}, {"printer", printer.name}, {"printable", ok}, {"parts", checks}, {"warnings", warnings}};
  if (g.json) {
    print_json(j);
  } else if (!g.quiet) {
    fmt::print("{} ({} printer): {}\n", a.input, printer.name, ok ? "printable" : "NOT printable");
    for (const print::PartCheck& c : checks)
      fmt::print("  {:<12} {} faces, closed {}, manifold {}, {} crossings, {:.1f} ml, min wall {:.2f} mm, print as {:.0f} × {:.0f} × {:.0f} mm{}\n",
                 c.name, c.faces, c.closed, c.manifold, c.self_intersections, c.volume_ml, c.min_wall_mm, c.fit.size_mm.x(),
                 c.fit.size_mm.y(), c.fit.size_mm.z(), c.fit.fits ? "" : " (does not fit)");
    for (const auto& w : warnings) fmt::print("  warning      {}\n", w);
  }
  return ok ? kOk : kFailed;
}

}  // namespace

std::function<int()> setup_mold(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<MoldArgs>();
  sub.add_option("APPLIANCE", a->appliance, "Appliance solid (from tracecast appliance)")->required();
  sub.add_option("--face", a->face, "The face the appliance was made on")->required();
  sub.add_option("-o,--output", a->output, "Mold to write: OUT.3mf (every piece), plus OUT-core.stl and OUT-shell.stl, or OUT-core-1.stl, … when the parts are cut into sections")->required();
  add_option_flags(sub, print::mold_option_table(), a->mold_flags);
  add_option_flags(sub, print::silicone_option_table(), a->silicone_flags);
  sub.add_flag("--obj", a->obj, "Also write OUT.obj with both parts");
  add_units_option(sub, a->units, "the inputs'");
  sub.add_option("--report", a->report, "Write the mold report (casting sheet) as JSON to this file");
  sub.add_option("--ledger", a->ledger, "Workshop ledger that allocates and records the piece's identifier (default: $TRACECAST_LEDGER)");
  sub.add_option("--signing-key", a->signing_key, "Workshop signing key (default: $TRACECAST_SIGNING_KEY)");
  sub.add_option("--run", a->run, "Open production run the mold is made in")->check(CLI::Range(1u, (1u << 24) - 1));
  sub.add_option("--subject", a->subject, "Subject code of the person scanned (a valid consent for the run's use is required)");
  sub.add_option("--likeness", a->likeness,
                 "Subject code of the person whose face the piece copies, when not the subject's own (a likeness mask): "
                 "their consent for the run's use is required too, and both are recorded");
  sub.add_option("--mark-key", a->mark_key, "Marking key file the identifier is stamped under (default: $TRACECAST_MARK_KEY)");
  sub.footer("Every mold is stamped with an identifier that the ledger allocates for the run and subject, and is\n"
             "recorded there with its input and output files' SHA-256 (refused without an open run and a valid consent).\n"
             "Examples:\n  tracecast mold mask.ply --face face.ply -o mask-mold.3mf --run 1 --subject S-001 --mark-key shop.key\n"
             "  tracecast mold mask.ply --face face.ply -o mask-mold.3mf --run 1 --subject S-001 --printer fdm --keys 3 --report sheet.json\n"
             "The ledger, signing key and marking key default to $TRACECAST_LEDGER, $TRACECAST_SIGNING_KEY, $TRACECAST_MARK_KEY.");
  return [a, &g] { return run_mold(*a, g); };
}

std::function<int()> setup_check(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<CheckArgs>();
  sub.add_option("MOLD", a->input, "Mold file (3MF with named parts, or one part as STL/PLY/OBJ)")->required();
  sub.add_option("--printer", a->printer, printer_option().help + ": " + printer_option().range_text())->capture_default_str();
  add_units_option(sub, a->units, "the input's");
  sub.add_option("--wall-map", a->wall_map,
                 "Write the parts coloured by their walls to this PLY: magenta under two layers, red under the printer's minimum "
                 "wall, amber under twice that, grey otherwise (view it with tracecast render)");
  sub.footer("Exit code 0 when every part is printable, 4 when one is not.\nExamples:\n  tracecast check mask-mold.3mf --printer resin\n"
             "  tracecast check mold.3mf --wall-map walls.ply && tracecast render walls.ply -o walls.png");
  return [a, &g] { return run_check(*a, g); };
}

}  // namespace tracecast::cli
