#include <fmt/format.h>

#include "common.h"
#include "tracecast/mesh/io.h"
#include "tracecast/scan/synthetic_face.h"

namespace tracecast::cli {

namespace {
struct SynthOptions {
  std::string output;
  double spacing_mm = 0.8;
  std::uint64_t seed = 0;
  scan::FaceParams face;
};

int run_synth_face(const SynthOptions& o, const GlobalOptions& g) {
  scan::FaceParams p = o.face;
  p.seed = o.seed;
  const scan::SyntheticFace face(p);
  const Mesh m = face.mesh(o.spacing_mm);
  io::write_mesh(o.output, m);
  if (g.json) print_json({{"output", o.output}, {"vertices", m.vertices.size()}, {"faces", m.triangles.size()}, {"seed", o.seed}});
  else if (!g.quiet) fmt::print("wrote {} ({} vertices, {} faces, seed {})\n", o.output, m.vertices.size(), m.triangles.size(), o.seed);
  return kOk;
}
}  // namespace

std::function<int()> setup_synth(CLI::App& sub, const GlobalOptions& g) {
  sub.require_subcommand(1);
  CLI::App* face = sub.add_subcommand("face", "A face-like open surface (height field) with known ground truth");
  face->add_flag("--json", const_cast<GlobalOptions&>(g).json, "Machine-readable JSON on stdout");
  face->add_flag("-q,--quiet", const_cast<GlobalOptions&>(g).quiet, "No output on stdout except --json");
  auto o = std::make_shared<SynthOptions>();
  face->add_option("-o,--output", o->output, "Mesh file to write (mm)")->required();
  face->add_option("--spacing", o->spacing_mm, "Grid spacing in mm")->check(CLI::Range(0.05, 20.0))->capture_default_str();
  face->add_option("--seed", o->seed, "0: the canonical face; other values vary every feature by up to 15 %")
      ->capture_default_str();
  face->add_option("--width", o->face.width_mm, "Width of the outline in mm")->check(CLI::Range(20.0, 500.0))->capture_default_str();
  face->add_option("--height", o->face.height_mm, "Height of the outline in mm")->check(CLI::Range(20.0, 500.0))->capture_default_str();
  face->add_option("--wrinkles", o->face.wrinkle_mm, "Forehead wrinkle amplitude in mm (0: none)")
      ->check(CLI::Range(0.0, 2.0))
      ->capture_default_str();
  face->footer("Example:\n  tracecast synth face -o face.ply --spacing 0.8 --seed 7");
  auto action = std::make_shared<std::function<int()>>();
  return [o, &g] { return run_synth_face(*o, g); };
}

}  // namespace tracecast::cli
