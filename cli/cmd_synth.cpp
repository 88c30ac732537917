#include <fmt/format.h>

#include <algorithm>

#include "common.h"
#include "tracecast/mesh/io.h"
#include "tracecast/scan/rgbd.h"
#include "tracecast/scan/simulator.h"
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
struct SynthScanOptions {
  std::string output;
  std::uint64_t face_seed = 0;
  std::vector<double> yaw_deg{0.0};
  std::string unit = "mm";
  scan::SimulatorOptions sim;
};

int run_synth_scan(const SynthScanOptions& o, const GlobalOptions& g) {
  scan::FaceParams p;
  p.seed = o.face_seed;
  const Mesh truth = scan::SyntheticFace(p).mesh(0.25);
  scan::SimulatorOptions sim = o.sim;
  sim.unit = *parse_unit(o.unit);
  sim.views = scan::views_around(bounding_box(truth), o.yaw_deg);
  const scan::SimulatedScan s = scan::simulate_scan(truth, sim);
  io::WriteOptions wo;
  wo.declare_mm = false;  // a scanner that does not say its unit: the reader has to work it out
  io::write_point_cloud(o.output, s.cloud, wo);
  const std::size_t outliers = static_cast<std::size_t>(std::count(s.outlier.begin(), s.outlier.end(), 1));
  if (g.json)
    print_json({{"output", o.output}, {"points", s.cloud.size()}, {"outliers", outliers}, {"unit", o.unit}});
  else if (!g.quiet)
    fmt::print("wrote {} ({} points, {} of them outliers, in {})\n", o.output, s.cloud.size(), outliers, o.unit);
  return kOk;
}

}  // namespace

std::function<int()> setup_synth(CLI::App& sub, GlobalOptions& g) {
  sub.require_subcommand(1);
  CLI::App* face = sub.add_subcommand("face", "A face-like open surface (height field) with known ground truth");
  face->add_flag("--json", g.json, "Machine-readable JSON on stdout");
  face->add_flag("-q,--quiet", g.quiet, "No output on stdout except --json");
  auto o = std::make_shared<SynthOptions>();
  face->add_option("-o,--output", o->output, "Mesh file to write (mm)")->required();
  face->add_option("--spacing", o->spacing_mm, "Grid spacing in mm")->check(CLI::Range(0.05, 20.0))->capture_default_str();
  face->add_option("--seed", o->seed, "0: the canonical face; other values vary every feature by up to 15 %")
      ->capture_default_str();
  face->add_option("--width", o->face.width_mm, "Width of the outline in mm")->check(CLI::Range(20.0, 500.0))->capture_default_str();
  face->add_option("--height", o->face.height_mm, "Height of the outline in mm")->check(CLI::Range(20.0, 500.0))->capture_default_str();
  face->add_option("--creases", o->face.crease_mm, "Depth of deep nasolabial and mouth-corner creases in mm (0: none)")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  face->add_option("--wrinkles", o->face.wrinkle_mm, "Forehead wrinkle amplitude in mm (0: none)")
      ->check(CLI::Range(0.0, 2.0))
      ->capture_default_str();
  face->footer("Example:\n  tracecast synth face -o face.ply --spacing 0.8 --seed 7");
  auto which = std::make_shared<int>(0);
  face->callback([which] { *which = 1; });

  CLI::App* sc = sub.add_subcommand("scan", "A simulated scanner's point cloud of a synthetic face (for trying 'tracecast scan')");
  sc->add_flag("--json", g.json, "Machine-readable JSON on stdout");
  sc->add_flag("-q,--quiet", g.quiet, "No output on stdout except --json");
  auto so = std::make_shared<SynthScanOptions>();
  sc->add_option("-o,--output", so->output, "Point cloud to write (ply or xyz)")->required();
  sc->add_option("--face-seed", so->face_seed, "Which synthetic face (0: the canonical one)")->capture_default_str();
  sc->add_option("--views", so->yaw_deg, "Camera yaw angles in degrees, 0 = frontal (e.g. --views -45 0 45)");
  sc->add_option("--spacing", so->sim.spacing_mm, "Point spacing in mm")->check(CLI::Range(0.05, 10.0))->capture_default_str();
  sc->add_option("--noise", so->sim.noise_mm, "Noise along the ray, standard deviation in mm")
      ->check(CLI::Range(0.0, 5.0))
      ->capture_default_str();
  sc->add_option("--outliers", so->sim.outlier_fraction, "Share of outliers added (0-0.5)")
      ->check(CLI::Range(0.0, 0.5))
      ->capture_default_str();
  sc->add_option("--holes", so->sim.holes, "Number of circular holes cut in the data")->capture_default_str();
  sc->add_option("--uneven", so->sim.density_variation, "Uneven density, 0 (uniform) to 1")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sc->add_flag("--random-pose", so->sim.random_pose, "Rotate and move the scan at random");
  sc->add_option("--unit", so->unit, "Unit of the written coordinates")
      ->check(CLI::IsMember({"mm", "cm", "m", "in"}))
      ->capture_default_str();
  sc->add_option("--seed", so->sim.seed, "Random seed of the scanner")->capture_default_str();
  sc->footer("Example:\n  tracecast synth scan -o raw.ply --noise 0.05 --outliers 0.01 --unit m --random-pose");
  sc->callback([which] { *which = 2; });

  struct RgbdSynth {
    std::string folder;
    int frames = 24;
    double sweep = 60, noise = 0.3;
    bool no_poses = false;
    std::uint64_t seed = 1;
  };
  auto ro = std::make_shared<RgbdSynth>();
  CLI::App* rg = sub.add_subcommand("rgbd", "A simulated RGB-D sequence of a synthetic face: PNG frames and a manifest");
  rg->add_flag("--json", g.json, "Machine-readable JSON on stdout");
  rg->add_flag("-q,--quiet", g.quiet, "No output on stdout except --json");
  rg->add_option("-o,--output", ro->folder, "Folder to write (color/, depth/, sequence.json)")->required();
  rg->add_option("--frames", ro->frames, "Number of frames")->check(CLI::Range(1, 1000))->capture_default_str();
  rg->add_option("--sweep", ro->sweep, "Arc the camera moves along, degrees")->check(CLI::Range(0.0, 180.0))->capture_default_str();
  rg->add_option("--noise", ro->noise, "Depth noise, standard deviation in mm")->check(CLI::Range(0.0, 10.0))->capture_default_str();
  rg->add_flag("--no-poses", ro->no_poses, "Leave the poses out of the manifest (odometry will place the frames)");
  rg->add_option("--seed", ro->seed, "Random seed")->capture_default_str();
  rg->footer("Example:\n  tracecast synth rgbd -o seq && tracecast scan seq/sequence.json -o face.ply");
  rg->callback([which] { *which = 3; });
  return [o, so, ro, which, &g] {
    if (*which == 3) {
      const Mesh truth = scan::SyntheticFace().mesh(0.25);
      const auto manifest = scan::write_simulated_rgbd(truth, ro->folder, ro->frames, ro->sweep, 450, ro->noise,
                                                       !ro->no_poses, ro->seed);
      if (g.json) print_json({{"manifest", manifest.string()}, {"frames", ro->frames}});
      else if (!g.quiet) fmt::print("wrote {} ({} frames)\n", manifest.string(), ro->frames);
      return static_cast<int>(kOk);
    }
    return *which == 2 ? run_synth_scan(*so, g) : run_synth_face(*o, g);
  };
}

}  // namespace tracecast::cli
