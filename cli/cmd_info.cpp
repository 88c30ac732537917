#include <fmt/format.h>

#include <optional>

#include "common.h"
#include "tracecast/mesh/report_json.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/measure.h"

namespace tracecast::cli {

namespace {

struct InfoOptions {
  std::string file;
  std::string units = "auto";
  std::string format;
  bool skip_self_intersections = false;
};

nlohmann::json box_json(const Aabb& b) {
  return {{"min", {b.min.x(), b.min.y(), b.min.z()}},
          {"max", {b.max.x(), b.max.y(), b.max.z()}},
          {"size", {b.extent().x(), b.extent().y(), b.extent().z()}}};
}

std::string yes_no(bool b) { return b ? "yes" : "no"; }

nlohmann::json info_json(const std::string& file, const io::Geometry& geo, const std::optional<MeshInfo>& info) {
  const Mesh& m = geo.mesh;
  nlohmann::json j = nlohmann::json::object();
  if (info) {
    j = *info;
    j["kind"] = "mesh";
    j["vertices_in_file"] = geo.vertices_in_file;
    j["welded_vertices"] = geo.welded_vertices;
    nlohmann::json objects = nlohmann::json::array();
    for (const auto& obj : geo.objects) objects.push_back({{"name", obj.name}, {"faces", obj.triangle_count}});
    j["objects"] = objects;
  } else {
    j["kind"] = "point_cloud";
    j["points"] = m.vertices.size();
  }
  j["file"] = file;
  j["format"] = io::format_name(geo.format);
  j["units"] = geo.units;
  j["bounding_box_mm"] = box_json(bounding_box(m));
  j["has_normals"] = m.has_normals();
  j["has_colors"] = m.has_colors();
  j["notes"] = geo.notes;
  return j;
}

void print_mesh_text(const io::Geometry& geo, const MeshInfo& info) {
  fmt::print("  vertices         {}", info.vertices);
  if (geo.welded_vertices) fmt::print(" ({} in the file, {} identical ones welded)", geo.vertices_in_file, geo.welded_vertices);
  fmt::print("\n  faces            {}\n", info.triangles);
  if (geo.objects.size() > 1) {
    fmt::print("  objects          {}:", geo.objects.size());
    for (const auto& obj : geo.objects) fmt::print(" '{}' ({} faces)", obj.name, obj.triangle_count);
    fmt::print("\n");
  }
  fmt::print("  components       {}\n", info.components);
  fmt::print("  boundary         {} loops, {} edges\n", info.boundary_loops, info.boundary_edges);
  fmt::print("  watertight       {}\n", yes_no(info.watertight));
  fmt::print("  edge-manifold    {} ({} non-manifold edges)\n", yes_no(info.edge_manifold), info.non_manifold_edges);
  fmt::print("  vertex-manifold  {} ({} non-manifold vertices)\n", yes_no(info.vertex_manifold), info.non_manifold_vertices);
  fmt::print("  oriented         {} ({} edges traversed twice the same way)\n", yes_no(info.oriented), info.inconsistent_edges);
  if (!info.self_intersecting_pairs) fmt::print("  self-intersect.  not checked\n");
  else fmt::print("  self-intersect.  {} pairs of faces\n", *info.self_intersecting_pairs);
  if (!info.genus) fmt::print("  genus            - (not a manifold, oriented surface)\n");
  else fmt::print("  genus            {}\n", *info.genus);
  fmt::print("  area             {:.1f} mm2\n", info.area_mm2);
  if (!info.volume_mm3) fmt::print("  volume           - (not closed)\n");
  else fmt::print("  volume           {:.1f} mm3 ({:.2f} ml)\n", *info.volume_mm3, *info.volume_mm3 / 1000.0);
  if (info.degenerate_triangles || info.duplicate_triangles || info.unreferenced_vertices)
    fmt::print("  defects          {} degenerate faces, {} duplicate faces, {} unused vertices\n", info.degenerate_triangles,
               info.duplicate_triangles, info.unreferenced_vertices);
}

void print_info_text(const std::string& file, const io::Geometry& geo, const std::optional<MeshInfo>& info) {
  const Mesh& m = geo.mesh;
  const Aabb b = bounding_box(m);
  const Vec3 s = b.extent();
  fmt::print("{}\n", file);
  fmt::print("  format           {}\n", io::format_name(geo.format));
  fmt::print("  units            {} ({}: {})\n", unit_name(geo.units.unit), geo.units.source, geo.units.reason);
  fmt::print("  size             {:.2f} x {:.2f} x {:.2f} mm\n", s.x(), s.y(), s.z());
  fmt::print("  bounding box     [{:.2f}, {:.2f}, {:.2f}] to [{:.2f}, {:.2f}, {:.2f}] mm\n", b.min.x(), b.min.y(), b.min.z(), b.max.x(), b.max.y(),
             b.max.z());
  if (info) {
    print_mesh_text(geo, *info);
  } else {
    fmt::print("  points           {}\n", m.vertices.size());
    fmt::print("  normals, colours {}, {}\n", yes_no(m.has_normals()), yes_no(m.has_colors()));
  }
  for (const std::string& n : geo.notes) fmt::print("  note             {}\n", n);
}

int run_info(const InfoOptions& o, const GlobalOptions& g) {
  io::ReadOptions ro;
  ro.units = *parse_unit(o.units);
  if (!o.format.empty()) ro.format = io::parse_format(o.format);
  Progress progress(g, 2);
  progress.stage("reading");
  const io::Geometry geo = io::read_geometry(o.file, ro);
  std::optional<MeshInfo> info;
  if (geo.has_faces()) {
    progress.stage(o.skip_self_intersections ? "topology" : "topology and self-intersections");
    MeasureOptions mo;
    mo.self_intersections = !o.skip_self_intersections;
    info = measure(geo.mesh, mo);
  }
  progress.done();
  if (g.json) print_json(info_json(o.file, geo, info));
  else if (!g.quiet) print_info_text(o.file, geo, info);
  return kOk;
}

}  // namespace

std::function<int()> setup_info(CLI::App& sub, GlobalOptions& g) {
  auto o = std::make_shared<InfoOptions>();
  sub.add_option("FILE", o->file, "Mesh or point cloud (ply, stl, obj, off, gltf, glb, fbx, 3mf, pcd, xyz, pts)")
      ->required();
  add_units_option(sub, o->units, "the file's");
  sub.add_option("--format", o->format, "Read as this format instead of the one the extension names")
      ->check([](const std::string& s) { return io::parse_format(s) ? std::string() : "unknown format '" + s + "'"; });
  sub.add_flag("--no-self-intersections", o->skip_self_intersections, "Skip the self-intersection test (the slowest)");
  sub.footer("Examples:\n  tracecast info scan.ply\n  tracecast info head.obj --units cm --json");
  return [o, &g] { return run_info(*o, g); };
}

}  // namespace tracecast::cli
