#include <fmt/format.h>

#include "common.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/repair.h"
#include "tracecast/mesh/report_json.h"

namespace tracecast::cli {

namespace {
struct RepairArgs {
  std::string input, output, report, units = "auto";
  nlohmann::json given = nlohmann::json::object();  //!< repair_option_table()'s flags
};

int run_repair(const RepairArgs& a, const GlobalOptions& g) {
  RepairOptions options;
  apply_flags(repair_option_table(), a.given, options);
  io::ReadOptions ro;
  ro.units = *parse_unit(a.units);
  Progress progress(g, 2);
  progress.stage("reading");
  const io::Geometry geo = io::read_mesh(a.input, ro);
  progress.stage("repairing");
  RepairReport r;
  const Mesh out = repair(geo.mesh, options, &r);
  io::write_mesh(a.output, out);
  std::size_t filled = 0;
  for (const Hole& h : r.holes) filled += h.filled;
  nlohmann::json j = r;
  j.update({{"input", a.input}, {"output", a.output}, {"units", geo.units}, {"options", repair_option_table().to_json(options)}});
  if (finish_report(j, a.report, g, progress)) {
    fmt::print("{} -> {}\n", a.input, a.output);
    fmt::print("  fixed        {} welded vertices, {} degenerate and {} duplicate faces, {} vertices split, {}{}\n",
               r.welded_vertices, r.degenerate_faces, r.duplicate_faces, r.split_vertices,
               r.reoriented ? "faces reoriented" : "orientation kept", r.flipped_outward ? ", turned outward" : "");
    fmt::print("  pieces       {} small pieces removed ({} faces)\n", r.removed_pieces, r.removed_piece_faces);
    if (options.fix_self_intersections)
      fmt::print("  crossing     {} pairs of self-intersecting faces found, {} left\n", r.self_intersections_found,
                 r.self_intersections_left);
    fmt::print("  holes        {} found, {} filled (up to {:.0f} mm), {} left:", r.holes.size(), filled,
               options.max_hole_mm, r.holes.size() - filled);
    for (const Hole& h : r.holes)
      if (!h.filled) fmt::print(" {:.1f} mm", h.size_mm);
    fmt::print("\n  faces        {} -> {}\n", r.faces_in, r.faces_out);
    fmt::print("  distance     input to output max {:.4f} mm; output to input max {:.4f} mm (outside filled holes)\n",
               r.input_to_output.max, r.output_to_input.max);
  }
  return kOk;
}
}  // namespace

std::function<int()> setup_repair(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<RepairArgs>();
  sub.add_option("INPUT", a->input, "Mesh to repair")->required();
  sub.add_option("-o,--output", a->output, "Repaired mesh to write (mm)")->required();
  add_units_option(sub, a->units, "the input's");
  add_option_flags(sub, repair_option_table(), a->given);
  sub.add_option("--report", a->report, "Write the report as JSON to this file");
  sub.footer("Examples:\n  tracecast repair scan.ply -o clean.ply\n  tracecast repair scan.stl -o clean.ply --max-hole 15 --remesh-edge 0.5");
  return [a, &g] { return run_repair(*a, g); };
}

}  // namespace tracecast::cli
