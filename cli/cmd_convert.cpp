#include <fmt/format.h>

#include "common.h"
#include "tracecast/mesh/io.h"

namespace tracecast::cli {

namespace {
struct ConvertOptions {
  std::string input, output;
  std::string units = "auto";
  std::string in_format, out_format;
  bool ascii = false;
  bool double_precision = false;
  bool points = false;
};

int run_convert(const ConvertOptions& o, const GlobalOptions& g) {
  io::ReadOptions ro;
  ro.units = *parse_unit(o.units);
  if (!o.in_format.empty()) ro.format = io::parse_format(o.in_format);
  io::WriteOptions wo;
  if (!o.out_format.empty()) wo.format = io::parse_format(o.out_format);
  wo.ascii = o.ascii;
  wo.double_precision = o.double_precision;
  Progress progress(g, 2);
  progress.stage("reading");
  io::Geometry geo = io::read_geometry(o.input, ro);
  progress.stage("writing");
  const bool as_points = o.points || !geo.has_faces();
  if (as_points) {
    PointCloud c = to_point_cloud(geo.mesh);
    io::write_point_cloud(o.output, c, wo);
  } else if (geo.objects.size() > 1) {
    std::vector<NamedMesh> parts;
    for (const io::ObjectRange& r : geo.objects) {
      NamedMesh nm{r.name, geo.mesh};
      nm.mesh.triangles.assign(geo.mesh.triangles.begin() + static_cast<std::ptrdiff_t>(r.first_triangle),
                               geo.mesh.triangles.begin() + static_cast<std::ptrdiff_t>(r.first_triangle + r.triangle_count));
      weld_identical_vertices(nm.mesh);  // also drops the other objects' vertices
      parts.push_back(std::move(nm));
    }
    io::write_objects(o.output, parts, wo);
  } else {
    io::write_mesh(o.output, geo.mesh, wo);
  }
  progress.done();
  nlohmann::json j = {{"input", o.input},
                      {"output", o.output},
                      {"units", unit_name(geo.units.unit)},
                      {"units_reason", geo.units.reason},
                      {"vertices", geo.mesh.vertices.size()},
                      {"faces", as_points ? 0 : geo.mesh.triangles.size()}};
  if (g.json) print_json(j);
  else if (!g.quiet)
    fmt::print("wrote {} ({} vertices, {} faces; input read as {}: {})\n", o.output, geo.mesh.vertices.size(),
               as_points ? 0 : geo.mesh.triangles.size(), unit_name(geo.units.unit), geo.units.reason);
  return kOk;
}
}  // namespace

std::function<int()> setup_convert(CLI::App& sub, GlobalOptions& g) {
  auto o = std::make_shared<ConvertOptions>();
  sub.add_option("INPUT", o->input, "Mesh or point cloud to read")->required();
  sub.add_option("OUTPUT", o->output, "File to write, in mm (ply, stl, obj, 3mf, glb; point clouds: ply, xyz)")->required();
  add_units_option(sub, o->units, "the input's");
  auto fmt_check = [](const std::string& s) { return io::parse_format(s) ? std::string() : "unknown format '" + s + "'"; };
  sub.add_option("--from", o->in_format, "Read as this format instead of the one the extension names")->check(fmt_check);
  sub.add_option("--to", o->out_format, "Write this format instead of the one the extension names")->check(fmt_check);
  sub.add_flag("--ascii", o->ascii, "PLY and STL: write text instead of binary");
  sub.add_flag("--double", o->double_precision, "PLY: store coordinates as 64-bit floats (lossless)");
  sub.add_flag("--points", o->points, "Write only the vertices, as a point cloud");
  sub.footer("Examples:\n  tracecast convert scan.stl scan.ply\n  tracecast convert head.obj head.3mf --units cm");
  return [o, &g] { return run_convert(*o, g); };
}

}  // namespace tracecast::cli
