#include <fmt/format.h>

#include "common.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"

namespace tracecast::cli {

namespace {
struct CompareOptions {
  std::string file, reference;
  std::string units = "auto";
};

int run_compare(const CompareOptions& o, const GlobalOptions& g) {
  io::ReadOptions ro;
  ro.units = *parse_unit(o.units);
  Progress progress(g, 2);
  progress.stage("reading");
  const io::Geometry a = io::read_geometry(o.file, ro);
  const io::Geometry b = io::read_mesh(o.reference, ro);
  progress.stage("distances");
  const DistanceStats ab = summarize(SurfaceQuery(b.mesh).distances(a.mesh.vertices));
  nlohmann::json j = {{"file", o.file}, {"reference", o.reference}, {"file_to_reference_mm", ab}};
  std::optional<DistanceStats> ba;
  if (a.has_faces()) {
    ba = summarize(SurfaceQuery(a.mesh).distances(b.mesh.vertices));
    j["reference_to_file_mm"] = *ba;
    j["hausdorff_mm"] = std::max(ab.max, ba->max);
  }
  progress.done();
  if (g.json) {
    print_json(j);
  } else if (!g.quiet) {
    fmt::print("{} -> {}: mean {:.4f}, rms {:.4f}, p95 {:.4f}, max {:.4f} mm ({} points)\n", o.file, o.reference, ab.mean,
               ab.rms, ab.p95, ab.max, ab.count);
    if (ba)
      fmt::print("{} -> {}: mean {:.4f}, rms {:.4f}, p95 {:.4f}, max {:.4f} mm; Hausdorff {:.4f} mm\n", o.reference,
                 o.file, ba->mean, ba->rms, ba->p95, ba->max, std::max(ab.max, ba->max));
  }
  return kOk;
}
}  // namespace

std::function<int()> setup_compare(CLI::App& sub, GlobalOptions& g) {
  auto o = std::make_shared<CompareOptions>();
  sub.add_option("FILE", o->file, "Mesh or point cloud to measure")->required();
  sub.add_option("REFERENCE", o->reference, "Reference mesh")->required();
  add_units_option(sub, o->units, "both files'");
  sub.footer("Distances from FILE's vertices to REFERENCE's surface, and back when FILE is a mesh (Hausdorff).\n"
             "Example:\n  tracecast compare repaired.ply scan.ply --json");
  return [o, &g] { return run_compare(*o, g); };
}

}  // namespace tracecast::cli
