#include <fmt/format.h>

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

int run_info(const InfoOptions& o, const GlobalOptions& g) {
  io::ReadOptions ro;
  ro.units = *parse_unit(o.units);
  if (!o.format.empty()) ro.format = io::parse_format(o.format);
  Progress progress(g, 2);
  progress.stage("reading");
  const io::Geometry geo = io::read_geometry(o.file, ro);
  const Mesh& m = geo.mesh;
  nlohmann::json j;
  j["file"] = o.file;
  j["format"] = io::format_name(geo.format);
  j["units"] = geo.units;
  j["bounding_box_mm"] = box_json(bounding_box(m));
  j["has_normals"] = m.has_normals();
  j["has_colors"] = m.has_colors();
  j["notes"] = geo.notes;
  if (!geo.has_faces()) {
    j["kind"] = "point_cloud";
    j["points"] = m.vertices.size();
  } else {
    progress.stage(o.skip_self_intersections ? "topology" : "topology and self-intersections");
    MeasureOptions mo;
    mo.self_intersections = !o.skip_self_intersections;
    const MeshInfo info = measure(m, mo);
    j["kind"] = "mesh";
    j["vertices"] = info.vertices;
    j["vertices_in_file"] = geo.vertices_in_file;
    j["welded_vertices"] = geo.welded_vertices;
    j["faces"] = info.triangles;
    nlohmann::json objects = nlohmann::json::array();
    for (const auto& obj : geo.objects) objects.push_back({{"name", obj.name}, {"faces", obj.triangle_count}});
    j["objects"] = objects;
    j["unreferenced_vertices"] = info.unreferenced_vertices;
    j["degenerate_faces"] = info.degenerate_triangles;
    j["duplicate_faces"] = info.duplicate_triangles;
    j["connected_components"] = info.components;
    j["edges"] = info.edges;
    j["boundary_edges"] = info.boundary_edges;
    j["boundary_loops"] = info.boundary_loops;
    j["non_manifold_edges"] = info.non_manifold_edges;
    j["non_manifold_vertices"] = info.non_manifold_vertices;
    j["inconsistently_oriented_edges"] = info.inconsistent_edges;
    j["edge_manifold"] = info.edge_manifold;
    j["vertex_manifold"] = info.vertex_manifold;
    j["oriented"] = info.oriented;
    j["watertight"] = info.watertight;
    j["euler_characteristic"] = info.euler_characteristic;
    j["genus"] = info.genus ? nlohmann::json(*info.genus) : nlohmann::json();
    j["self_intersecting_face_pairs"] =
        info.self_intersecting_pairs ? nlohmann::json(*info.self_intersecting_pairs) : nlohmann::json();
    j["area_mm2"] = info.area_mm2;
    j["volume_mm3"] = info.volume_mm3 ? nlohmann::json(*info.volume_mm3) : nlohmann::json();
  }
  progress.done();
  if (g.json) {
    print_json(j);
    return kOk;
  }
  if (g.quiet) return kOk;
  const Aabb b = bounding_box(m);
  const Vec3 s = b.extent();
  fmt::print("{}\n", o.file);
  fmt::print("  format           {}\n", io::format_name(geo.format));
  fmt::print("  units            {} ({}: {})\n", unit_name(geo.units.unit), geo.units.source, geo.units.reason);
  fmt::print("  size             {:.2f} x {:.2f} x {:.2f} mm\n", s.x(), s.y(), s.z());
  fmt::print("  bounding box     [{:.2f}, {:.2f}, {:.2f}] to [{:.2f}, {:.2f}, {:.2f}] mm\n", b.min.x(), b.min.y(),
             b.min.z(), b.max.x(), b.max.y(), b.max.z());
  if (!geo.has_faces()) {
    fmt::print("  points           {}\n", m.vertices.size());
    fmt::print("  normals, colours {}, {}\n", yes_no(m.has_normals()), yes_no(m.has_colors()));
  } else {
    fmt::print("  vertices         {}", j["vertices"].get<std::size_t>());
    if (geo.welded_vertices) fmt::print(" ({} in the file, {} identical ones welded)", geo.vertices_in_file, geo.welded_vertices);
    fmt::print("\n  faces            {}\n", j["faces"].get<std::size_t>());
    if (geo.objects.size() > 1) {
      fmt::print("  objects          {}:", geo.objects.size());
      for (const auto& obj : geo.objects) fmt::print(" '{}' ({} faces)", obj.name, obj.triangle_count);
      fmt::print("\n");
    }
    fmt::print("  components       {}\n", j["connected_components"].get<std::size_t>());
    fmt::print("  boundary         {} loops, {} edges\n", j["boundary_loops"].get<std::size_t>(),
               j["boundary_edges"].get<std::size_t>());
    fmt::print("  watertight       {}\n", yes_no(j["watertight"]));
    fmt::print("  edge-manifold    {} ({} non-manifold edges)\n", yes_no(j["edge_manifold"]),
               j["non_manifold_edges"].get<std::size_t>());
    fmt::print("  vertex-manifold  {} ({} non-manifold vertices)\n", yes_no(j["vertex_manifold"]),
               j["non_manifold_vertices"].get<std::size_t>());
    fmt::print("  oriented         {} ({} edges traversed twice the same way)\n", yes_no(j["oriented"]),
               j["inconsistently_oriented_edges"].get<std::size_t>());
    if (j["self_intersecting_face_pairs"].is_null()) fmt::print("  self-intersect.  not checked\n");
    else fmt::print("  self-intersect.  {} pairs of faces\n", j["self_intersecting_face_pairs"].get<std::size_t>());
    if (j["genus"].is_null()) fmt::print("  genus            - (not a manifold, oriented surface)\n");
    else fmt::print("  genus            {}\n", j["genus"].get<int>());
    fmt::print("  area             {:.1f} mm2\n", j["area_mm2"].get<double>());
    if (j["volume_mm3"].is_null()) fmt::print("  volume           - (not closed)\n");
    else fmt::print("  volume           {:.1f} mm3 ({:.2f} ml)\n", j["volume_mm3"].get<double>(),
                    j["volume_mm3"].get<double>() / 1000.0);
    const auto degenerate = j["degenerate_faces"].get<std::size_t>(), dup = j["duplicate_faces"].get<std::size_t>(),
               unref = j["unreferenced_vertices"].get<std::size_t>();
    if (degenerate || dup || unref)
      fmt::print("  defects          {} degenerate faces, {} duplicate faces, {} unused vertices\n", degenerate, dup, unref);
  }
  for (const std::string& n : geo.notes) fmt::print("  note             {}\n", n);
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
