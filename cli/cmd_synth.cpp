// tracecast synth face | scan | rgbd: synthetic data with exact ground truth.
#include <fmt/format.h>

#include <algorithm>

#include "common.h"
#include "tracecast/mesh/io.h"
#include "tracecast/scan/rgbd.h"
#include "tracecast/scan/simulator.h"
#include "tracecast/scan/synthetic_face.h"
#include "tracecast/scan/synthetic_head.h"

namespace tracecast::cli {

namespace {

//! What every synth subcommand takes: the file to write and its option table's flags.
struct SynthArgs {
  std::string output;
  nlohmann::json given = nlohmann::json::object();
  std::vector<double> yaw_deg{0.0};  //!< synth scan: the views
};

int run_synth_face(const SynthArgs& a, const GlobalOptions& g) {
  scan::SynthFaceOptions o;
  apply_flags(scan::synth_face_option_table(), a.given, o);
  const Mesh m = scan::SyntheticFace(o).mesh(o.spacing_mm);
  io::write_mesh(a.output, m);
  if (g.json) print_json({{"output", a.output}, {"vertices", m.vertices.size()}, {"faces", m.triangles.size()}, {"seed", o.seed}});
  else if (!g.quiet) fmt::print("wrote {} ({} vertices, {} faces, seed {})\n", a.output, m.vertices.size(), m.triangles.size(), o.seed);
  return kOk;
}

int run_synth_head(const SynthArgs& a, const GlobalOptions& g) {
  scan::SynthHeadOptions o;
  apply_flags(scan::synth_head_option_table(), a.given, o);
  const Mesh m = scan::SyntheticHead(o).mesh(o.spacing_mm);
  io::write_mesh(a.output, m);
  if (g.json) print_json({{"output", a.output}, {"vertices", m.vertices.size()}, {"faces", m.triangles.size()}, {"ears", o.ears}});
  else if (!g.quiet) fmt::print("wrote {} ({} vertices, {} faces, ears: {})\n", a.output, m.vertices.size(), m.triangles.size(), o.ears);
  return kOk;
}

int run_synth_scan(const SynthArgs& a, const GlobalOptions& g) {
  scan::SynthScanOptions o;
  apply_flags(scan::synth_scan_option_table(), a.given, o);
  scan::FaceParams p;
  p.seed = o.face_seed;
  const Mesh truth = scan::SyntheticFace(p).mesh(0.25);
  o.views = scan::views_around(bounding_box(truth), a.yaw_deg);
  const scan::SimulatedScan s = scan::simulate_scan(truth, o);
  io::WriteOptions wo;
  wo.declare_mm = false;  // a scanner that does not say its unit: the reader has to work it out
  io::write_point_cloud(a.output, s.cloud, wo);
  const std::size_t outliers = static_cast<std::size_t>(std::count(s.outlier.begin(), s.outlier.end(), 1));
  const std::string unit = unit_name(o.unit);
  if (g.json) print_json({{"output", a.output}, {"points", s.cloud.size()}, {"outliers", outliers}, {"unit", unit}});
  else if (!g.quiet) fmt::print("wrote {} ({} points, {} of them outliers, in {})\n", a.output, s.cloud.size(), outliers, unit);
  return kOk;
}

int run_synth_rgbd(const SynthArgs& a, const GlobalOptions& g) {
  scan::RgbdSimOptions o;
  apply_flags(scan::rgbd_sim_option_table(), a.given, o);
  const auto manifest = scan::write_simulated_rgbd(scan::SyntheticFace().mesh(0.25), a.output, o);
  if (g.json) print_json({{"manifest", manifest.string()}, {"frames", o.frames}});
  else if (!g.quiet) fmt::print("wrote {} ({} frames)\n", manifest.string(), o.frames);
  return kOk;
}

std::function<int()> setup_synth_face(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<SynthArgs>();
  sub.add_option("-o,--output", a->output, "Mesh file to write (mm)")->required();
  add_option_flags(sub, scan::synth_face_option_table(), a->given);
  sub.footer("Example:\n  tracecast synth face -o face.ply --spacing 0.8 --seed 7");
  return [a, &g] { return run_synth_face(*a, g); };
}

std::function<int()> setup_synth_head(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<SynthArgs>();
  sub.add_option("-o,--output", a->output, "Mesh file to write (mm)")->required();
  add_option_flags(sub, scan::synth_head_option_table(), a->given);
  sub.footer("Examples:\n  tracecast synth head -o head.ply\n  tracecast synth head -o no-left-ear.ply --ears right --spacing 0.5");
  return [a, &g] { return run_synth_head(*a, g); };
}

std::function<int()> setup_synth_scan(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<SynthArgs>();
  sub.add_option("-o,--output", a->output, "Point cloud to write (ply or xyz)")->required();
  sub.add_option("--views", a->yaw_deg, "Camera yaw angles in degrees, 0 = frontal (e.g. --views -45 0 45)")->capture_default_str();
  add_option_flags(sub, scan::synth_scan_option_table(), a->given);
  sub.footer("Example:\n  tracecast synth scan -o raw.ply --noise 0.05 --outliers 0.01 --unit m --random-pose");
  return [a, &g] { return run_synth_scan(*a, g); };
}

std::function<int()> setup_synth_rgbd(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<SynthArgs>();
  sub.add_option("-o,--output", a->output, "Folder to write (color/, depth/, sequence.json)")->required();
  add_option_flags(sub, scan::rgbd_sim_option_table(), a->given);
  sub.footer("Example:\n  tracecast synth rgbd -o seq && tracecast scan seq/sequence.json -o face.ply");
  return [a, &g] { return run_synth_rgbd(*a, g); };
}

}  // namespace

Command synth_group() {
  return {"synth",
          "Generate synthetic test data with exact ground truth",
          {},
          {{"face", "A face-like open surface (height field) with known ground truth", setup_synth_face},
           {"head", "A closed head with ears (either can be left off) with known ground truth", setup_synth_head},
           {"scan", "A simulated scanner's point cloud of a synthetic face (for trying 'tracecast scan')", setup_synth_scan},
           {"rgbd", "A simulated RGB-D sequence of a synthetic face: PNG frames and a manifest", setup_synth_rgbd}}};
}

}  // namespace tracecast::cli
