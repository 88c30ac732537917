#include <fmt/format.h>

#include "common.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/repair.h"

namespace tracecast::cli {

namespace {
struct RepairArgs {
  std::string input, output, report, units = "auto";
  RepairOptions options;
};

int run_repair(const RepairArgs& a, const GlobalOptions& g) {
  io::ReadOptions ro;
  ro.units = *parse_unit(a.units);
  Progress progress(g, 2);
  progress.stage("reading");
  const io::Geometry geo = io::read_mesh(a.input, ro);
  progress.stage("repairing");
  RepairReport r;
  const Mesh out = repair(geo.mesh, a.options, &r);
  io::write_mesh(a.output, out);
  nlohmann::json holes = nlohmann::json::array();
  std::size_t filled = 0;
  for (const Hole& h : r.holes) {
    holes.push_back({{"size_mm", h.size_mm}, {"edges", h.edges}, {"filled", h.filled}, {"faired", h.faired}});
    filled += h.filled;
  }
  nlohmann::json timings = nlohmann::json::object();
  for (const auto& [step, s] : r.timings) timings[step] = s;
  const nlohmann::json j = {
      {"input", a.input},
      {"output", a.output},
      {"units", {{"unit", unit_name(geo.units.unit)}, {"reason", geo.units.reason}}},
      {"options",
       {{"max_hole_mm", a.options.max_hole_mm},
        {"min_piece_fraction", a.options.min_piece_fraction},
        {"remesh_edge_mm", a.options.remesh_edge_mm},
        {"smooth_iterations", a.options.smooth_iterations},
        {"decimate_faces", a.options.decimate_faces},
        {"fix_self_intersections", a.options.fix_self_intersections}}},
      {"in", {{"vertices", r.vertices_in}, {"faces", r.faces_in}}},
      {"fixed",
       {{"welded_vertices", r.welded_vertices},
        {"degenerate_faces", r.degenerate_faces},
        {"duplicate_faces", r.duplicate_faces},
        {"split_vertices", r.split_vertices},
        {"reoriented", r.reoriented},
        {"flipped_outward", r.flipped_outward},
        {"removed_pieces", r.removed_pieces},
        {"removed_piece_faces", r.removed_piece_faces},
        {"self_intersections_found", r.self_intersections_found},
        {"self_intersections_left", r.self_intersections_left}}},
      {"holes", holes},
      {"out", {{"vertices", r.vertices_out}, {"faces", r.faces_out}}},
      {"distance_mm", {{"input_to_output", distance_stats_json(r.input_to_output)}, {"output_to_input", distance_stats_json(r.output_to_input)}}},
      {"timings_s", timings}};
  if (!a.report.empty()) write_file_atomically(a.report, j.dump(2) + "\n");
  progress.done();
  if (g.json) {
    print_json(j);
  } else if (!g.quiet) {
    fmt::print("{} -> {}\n", a.input, a.output);
    fmt::print("  fixed        {} welded vertices, {} degenerate and {} duplicate faces, {} vertices split, {}{}\n",
               r.welded_vertices, r.degenerate_faces, r.duplicate_faces, r.split_vertices,
               r.reoriented ? "faces reoriented" : "orientation kept", r.flipped_outward ? ", turned outward" : "");
    fmt::print("  pieces       {} small pieces removed ({} faces)\n", r.removed_pieces, r.removed_piece_faces);
    if (a.options.fix_self_intersections)
      fmt::print("  crossing     {} pairs of self-intersecting faces found, {} left\n", r.self_intersections_found,
                 r.self_intersections_left);
    fmt::print("  holes        {} found, {} filled (up to {:.0f} mm), {} left:", r.holes.size(), filled,
               a.options.max_hole_mm, r.holes.size() - filled);
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
  sub.add_option("--max-hole", a->options.max_hole_mm, "Fill holes up to this width in mm (0: none)")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  sub.add_option("--min-piece", a->options.min_piece_fraction, "Drop pieces smaller than this share of the largest")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub.add_option("--remesh", a->options.remesh_edge_mm, "Isotropic remeshing to this edge length in mm (0: off)")
      ->check(CLI::Range(0.0, 50.0))
      ->capture_default_str();
  sub.add_option("--smooth", a->options.smooth_iterations, "Taubin smoothing passes (0: off)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  sub.add_option("--decimate", a->options.decimate_faces,
                 "Quadric decimation down to this many faces, after remeshing (0: off)")
      ->check(CLI::Range(0, 100000000))
      ->capture_default_str();
  sub.add_flag("!--keep-self-intersections", a->options.fix_self_intersections,
               "Do not look for crossing faces (faster on large scans)");
  sub.add_option("--report", a->report, "Write the report as JSON to this file");
  sub.footer("Examples:\n  tracecast repair scan.ply -o clean.ply\n  tracecast repair scan.stl -o clean.ply --max-hole 15 --remesh 0.5");
  return [a, &g] { return run_repair(*a, g); };
}

}  // namespace tracecast::cli
