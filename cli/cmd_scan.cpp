#include <fmt/format.h>

#include "common.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/report_json.h"
#include "tracecast/scan/reconstruct.h"
#include "tracecast/scan/register.h"
#include "tracecast/scan/rgbd.h"

namespace tracecast::cli {

namespace {

struct ScanOptions {
  std::vector<std::string> inputs;
  std::string output, report;
  std::string units = "auto";
  nlohmann::json given = nlohmann::json::object();  //!< reconstruct_option_table()'s flags
};

nlohmann::json report_json(const ScanOptions& o, const scan::ReconstructOptions& opt, const io::Geometry& g, const scan::ScanReport& r,
                           const std::optional<scan::Registration>& reg) {
  nlohmann::json j = r;
  j.update({{"inputs", o.inputs},
            {"registration", reg ? scan::registration_json(*reg, o.inputs) : nlohmann::json()},
            {"output", o.output},
            {"input_kind", g.has_faces() ? "mesh" : "point_cloud"},
            {"units", g.units},
            {"options", scan::reconstruct_option_table().to_json(opt)}});
  return j;
}

int run_rgbd(const ScanOptions& o, const scan::ReconstructOptions& opt, const GlobalOptions& g) {
  if (o.inputs.size() != 1) throw InputError("an RGB-D manifest is the only input of its scan");
  Progress progress(g, 2);
  progress.stage("reading the manifest");
  const scan::RgbdSequence seq = scan::read_rgbd_manifest(o.inputs.front());
  progress.stage("integrating frames");
  scan::RgbdOptions ro;
  if (opt.resolution_mm > 0) ro.voxel_mm = opt.resolution_mm;
  scan::RgbdReport r;
  const Mesh surface = scan::integrate_rgbd(seq, ro, &r);
  io::write_mesh(o.output, surface);
  const nlohmann::json j = {{"inputs", o.inputs},
                            {"input_kind", "rgbd"},
                            {"output", o.output},
                            {"frames", {{"total", r.frames}, {"posed", r.posed_frames}, {"odometry", r.odometry_frames}}},
                            {"reconstruction", {{"voxel_mm", ro.voxel_mm}}},
                            {"surface",
                             {{"vertices", r.vertices},
                              {"faces", r.faces},
                              {"area_mm2", r.area_mm2},
                              {"boundary_loops", r.boundary_loops}}},
                            {"timings_s", timings_json(r.timings)}};
  if (finish_report(j, o.report, g, progress))
    fmt::print("{} -> {}\n  frames       {} ({} with poses, {} placed by odometry)\n  surface      {} faces at "
               "{:.2f} mm voxels, {:.0f} mm2, {} boundary loops\n",
               o.inputs.front(), o.output, r.frames, r.posed_frames, r.odometry_frames, r.faces, ro.voxel_mm, r.area_mm2,
               r.boundary_loops);
  return kOk;
}

int run_views(const ScanOptions& o, const scan::ReconstructOptions& opt, const GlobalOptions& g) {
  io::ReadOptions ro;
  ro.units = *parse_unit(o.units);
  Progress progress(g, 2);
  progress.stage("reading");
  // Each input is a view; a mesh's faces give its points outward normals and, for a single view,
  // the surface against which reconstruction is trimmed.
  std::vector<io::Geometry> geos;
  std::vector<Mesh> views;
  for (const std::string& in : o.inputs) {
    geos.push_back(io::read_geometry(in, ro));
    views.push_back(geos.back().mesh);
  }
  const io::Geometry& geo = geos.front();
  if (views.size() > 1) progress.stage("registering views and reconstructing");
  else progress.stage("cleaning and reconstructing");
  const scan::ViewsScan scanned = scan::scan_views(views, opt);
  const Mesh& surface = scanned.surface;
  const scan::ScanReport& r = scanned.report;
  const std::optional<scan::Registration>& reg = scanned.registration;
  io::write_mesh(o.output, surface);
  const nlohmann::json j = report_json(o, opt, geo, r, reg);
  if (finish_report(j, o.report, g, progress)) {
    std::string ins;
    for (const auto& in : o.inputs) ins += (ins.empty() ? "" : " + ") + in;
    fmt::print("{} -> {}\n", ins, o.output);
    if (reg)
      for (const auto& p : reg->pairs)
        fmt::print("  registered   {} to {}: overlap {:.0f} %, plane rms {:.3f} mm{}\n", o.inputs[p.source],
                   o.inputs[p.target], 100 * p.fitness, p.rms_mm, p.used ? "" : " (not used)");
    fmt::print("  units        {} ({}: {})\n", unit_name(geo.units.unit), geo.units.source, geo.units.reason);
    fmt::print("  points       {} in; removed {} outliers, {} by crop, {} by downsampling; {} used\n", r.points_in,
               r.removed_statistical + r.removed_radius, r.removed_crop, r.removed_voxel, r.points_used);
    fmt::print("  spacing      {:.3f} mm (median); normals {}\n", r.median_spacing_mm,
               r.normals_estimated ? "estimated" : "from input");
    fmt::print("  surface      {} faces, median edge {:.2f} mm for {:.2f} mm asked (Poisson depth {}), {:.0f} mm2, "
               "{} boundary loops\n",
               r.faces, r.median_edge_mm, r.resolution_mm, r.poisson_depth, r.area_mm2, r.boundary_loops);
    fmt::print("  accuracy     points to surface: mean {:.3f}, p95 {:.3f}, max {:.3f} mm\n", r.accuracy.mean,
               r.accuracy.p95, r.accuracy.max);
    fmt::print("  invented     {:.1f} mm2 of surface with no point within 2 spacings\n", r.invented_area_mm2);
    fmt::print("  time         {:.1f} s\n", total_seconds(r.timings));
  }
  return kOk;
}

//! One scan: an RGB-D sequence's manifest, or views (point clouds or meshes) to register and merge.
int run_scan(const ScanOptions& o, const GlobalOptions& g) {
  scan::ReconstructOptions opt;
  apply_flags(scan::reconstruct_option_table(), o.given, opt);
  if (!o.inputs.empty() && std::filesystem::path(o.inputs.front()).extension() == ".json") return run_rgbd(o, opt, g);
  return run_views(o, opt, g);
}

}  // namespace

std::function<int()> setup_scan(CLI::App& sub, GlobalOptions& g) {
  auto o = std::make_shared<ScanOptions>();
  sub.add_option("INPUT", o->inputs,
                 "A scan: point cloud (ply, pcd, xyz, pts) or mesh (ply, obj, stl, glb, ...); several partial views "
                 "of one face are registered and merged; or an RGB-D sequence's manifest (.json)")
      ->required();
  sub.add_option("-o,--output", o->output, "Surface mesh to write (mm)")->required();
  add_units_option(sub, o->units, "the inputs'");
  add_option_flags(sub, scan::reconstruct_option_table(), o->given);
  sub.add_option("--report", o->report, "Write the full report as JSON to this file");
  sub.footer(
      "Examples:\n  tracecast scan raw.ply -o face.ply --report scan.json\n"
      "  tracecast scan head.xyz --units m --crop sphere:0,0,0,150 -o head.ply");
  return [o, &g] { return run_scan(*o, g); };
}

}  // namespace tracecast::cli
