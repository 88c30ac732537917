#include <fmt/format.h>

#include "common.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/io.h"
#include "tracecast/scan/reconstruct.h"

namespace tracecast::cli {

namespace {

struct ScanOptions {
  std::string input, output, report;
  std::string units = "auto";
  std::string crop = "auto";
  double resolution_mm = 0;
  double voxel_mm = 0;
  int depth = 0;
};

nlohmann::json report_json(const ScanOptions& o, const io::Geometry& g, const scan::ScanReport& r) {
  nlohmann::json timings = nlohmann::json::object();
  double total = 0;
  for (const auto& t : r.timings) {
    timings[t.step] = t.seconds;
    total += t.seconds;
  }
  timings["total"] = total;
  return {
      {"input", o.input},
      {"output", o.output},
      {"input_kind", g.has_faces() ? "mesh" : "point_cloud"},
      {"units", {{"unit", unit_name(g.units.unit)}, {"source", g.units.source}, {"reason", g.units.reason}}},
      {"options", {{"resolution_mm", o.resolution_mm}, {"crop", o.crop}, {"voxel_mm", o.voxel_mm}, {"poisson_depth", o.depth}}},
      {"points",
       {{"in", r.points_in},
        {"removed_statistical_outliers", r.removed_statistical},
        {"removed_radius_outliers", r.removed_radius},
        {"removed_by_crop", r.removed_crop},
        {"removed_by_downsampling", r.removed_voxel},
        {"used", r.points_used},
        {"median_spacing_mm", r.median_spacing_mm},
        {"normals", r.normals_estimated ? "estimated" : "from input"}}},
      {"reconstruction", {{"resolution_mm", r.resolution_mm}, {"poisson_depth", r.poisson_depth}}},
      {"accuracy_mm",
       {{"what", "distance from the points used to the surface"},
        {"mean", r.accuracy.mean},
        {"median", r.accuracy.median},
        {"p95", r.accuracy.p95},
        {"max", r.accuracy.max}}},
      {"surface",
       {{"vertices", r.vertices},
        {"faces", r.faces},
        {"area_mm2", r.area_mm2},
        {"invented_area_mm2", r.invented_area_mm2},
        {"boundary_loops", r.boundary_loops}}},
      {"timings_s", timings},
  };
}

int run_scan(const ScanOptions& o, const GlobalOptions& g) {
  io::ReadOptions ro;
  ro.units = *parse_unit(o.units);
  scan::ReconstructOptions opt;
  opt.crop = *scan::parse_crop(o.crop);
  opt.resolution_mm = o.resolution_mm;
  opt.voxel_mm = o.voxel_mm;
  opt.poisson_depth = o.depth;
  Progress progress(g, 2);
  progress.stage("reading");
  const io::Geometry geo = io::read_geometry(o.input, ro);
  PointCloud cloud = to_point_cloud(geo.mesh);
  if (geo.has_faces()) cloud.normals = scan::outward_vertex_normals(geo.mesh);  // the mesh knows its outside
  progress.stage("cleaning and reconstructing");
  scan::ScanReport r;
  const Mesh surface = scan::reconstruct_surface(cloud, opt, &r, geo.has_faces() ? &geo.mesh : nullptr);
  io::write_mesh(o.output, surface);
  const nlohmann::json j = report_json(o, geo, r);
  if (!o.report.empty()) write_file_atomically(o.report, j.dump(2) + "\n");
  progress.done();
  if (g.json) {
    print_json(j);
  } else if (!g.quiet) {
    fmt::print("{} -> {}\n", o.input, o.output);
    fmt::print("  units        {} ({}: {})\n", unit_name(geo.units.unit), geo.units.source, geo.units.reason);
    fmt::print("  points       {} in; removed {} outliers, {} by crop, {} by downsampling; {} used\n", r.points_in,
               r.removed_statistical + r.removed_radius, r.removed_crop, r.removed_voxel, r.points_used);
    fmt::print("  spacing      {:.3f} mm (median); normals {}\n", r.median_spacing_mm,
               r.normals_estimated ? "estimated" : "from input");
    fmt::print("  surface      {} faces at {:.2f} mm (Poisson depth {}), {:.0f} mm2, {} boundary loops\n", r.faces,
               r.resolution_mm, r.poisson_depth, r.area_mm2, r.boundary_loops);
    fmt::print("  accuracy     points to surface: mean {:.3f}, p95 {:.3f}, max {:.3f} mm\n", r.accuracy.mean,
               r.accuracy.p95, r.accuracy.max);
    fmt::print("  invented     {:.1f} mm2 of surface with no point within 2 spacings\n", r.invented_area_mm2);
    double total = 0;
    for (const auto& t : r.timings) total += t.seconds;
    fmt::print("  time         {:.1f} s\n", total);
  }
  return kOk;
}

}  // namespace

std::function<int()> setup_scan(CLI::App& sub, const GlobalOptions& g) {
  auto o = std::make_shared<ScanOptions>();
  sub.add_option("INPUT", o->input, "A scan: point cloud (ply, pcd, xyz, pts) or mesh (ply, obj, stl, glb, ...)")->required();
  sub.add_option("-o,--output", o->output, "Surface mesh to write (mm)")->required();
  sub.add_option("--units", o->units, "Unit of the input's coordinates: mm, cm, m, in, or auto")
      ->check(CLI::IsMember({"auto", "mm", "cm", "m", "in"}))
      ->capture_default_str();
  sub.add_option("--resolution", o->resolution_mm, "Target edge length in mm (0: the median point spacing, within 0.5-5)")
      ->check(CLI::Range(0.0, 20.0))
      ->capture_default_str();
  sub.add_option("--crop", o->crop,
                 "auto (largest connected cluster), none, box:x0,y0,z0,x1,y1,z1, sphere:x,y,z,r, or "
                 "plane:px,py,pz,nx,ny,nz (keep the side the normal points to); mm")
      ->check([](const std::string& s) { return scan::parse_crop(s) ? std::string() : "invalid crop '" + s + "'"; })
      ->capture_default_str();
  sub.add_option("--voxel", o->voxel_mm, "Downsample to one point per voxel of this size in mm (0: off)")
      ->check(CLI::Range(0.0, 20.0))
      ->capture_default_str();
  sub.add_option("--depth", o->depth, "Poisson octree depth (0: from size and resolution)")->check(CLI::Range(0, 12));
  sub.add_option("--report", o->report, "Write the full report as JSON to this file");
  sub.footer(
      "Examples:\n  tracecast scan raw.ply -o face.ply --report scan.json\n"
      "  tracecast scan head.xyz --units m --crop sphere:0,0,0,150 -o head.ply");
  return [o, &g] { return run_scan(*o, g); };
}

}  // namespace tracecast::cli
