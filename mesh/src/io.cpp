// Format registry and the public read/write entry points: dispatch by extension, then the
// steps every reader shares (validation, welding, units) so no format can skip them.
#include "tracecast/mesh/io.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "io_detail.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/submesh.h"

namespace tracecast::io {

namespace {

using Reader = detail::RawGeometry (*)(const std::filesystem::path&, const std::string&);

struct FormatInfo {
  Format format;
  const char* name;
  std::vector<const char*> extensions;
  Reader reader;          // nullptr: read through the isolated importer
  bool mesh_only;         // zero faces is an error, not a point cloud
  bool write_mesh;
  bool write_points;
};

const std::vector<FormatInfo>& registry() {
  static const std::vector<FormatInfo> formats = {
      {Format::Ply, "ply", {".ply"}, detail::read_ply, false, true, true},
      {Format::Stl, "stl", {".stl"}, detail::read_stl, true, true, false},
      {Format::Obj, "obj", {".obj"}, detail::read_obj, false, true, false},
      {Format::Off, "off", {".off"}, detail::read_off, true, false, false},
      {Format::Gltf, "gltf", {".gltf"}, nullptr, true, false, false},
      {Format::Glb, "glb", {".glb"}, nullptr, true, true, false},
      {Format::Fbx, "fbx", {".fbx"}, nullptr, true, false, false},
      {Format::ThreeMf, "3mf", {".3mf"}, nullptr, true, true, false},
      {Format::Pcd, "pcd", {".pcd"}, detail::read_pcd, false, false, false},
      {Format::Xyz, "xyz", {".xyz", ".xyzn", ".xyzrgb", ".txt"}, detail::read_xyz, false, false, true},
      {Format::Pts, "pts", {".pts"}, detail::read_pts, false, false, false},
  };
  return formats;
}

const FormatInfo& info(Format f) {
  for (const FormatInfo& i : registry())
    if (i.format == f) return i;
  return registry().front();
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string known_extensions(bool (*keep)(const FormatInfo&)) {
  std::string s;
  for (const FormatInfo& i : registry())
    if (keep(i)) s += (s.empty() ? "" : ", ") + std::string(i.extensions.front());
  return s;
}

}  // namespace

std::string format_name(Format f) { return info(f).name; }

std::optional<Format> parse_format(const std::string& name) {
  std::string n = lower(name);
  if (!n.empty() && n.front() == '.') n.erase(0, 1);
  for (const FormatInfo& i : registry()) {
    if (n == i.name) return i.format;
    for (const char* e : i.extensions)
      if ("." + n == e) return i.format;
  }
  return std::nullopt;
}

Format format_from_path(const std::filesystem::path& path) {
  const std::string ext = lower(path.extension().string());
  for (const FormatInfo& i : registry())
    for (const char* e : i.extensions)
      if (ext == e) return i.format;
  throw InputError(path, fmt::format("unknown file type '{}' (known: {})", ext.empty() ? "no extension" : ext,
                                     known_extensions([](const FormatInfo&) { return true; })));
}

bool can_write_mesh(Format f) { return info(f).write_mesh; }
bool can_write_point_cloud(Format f) { return info(f).write_points; }

std::vector<std::string> readable_extensions() {
  std::vector<std::string> out;
  for (const FormatInfo& i : registry())
    for (const char* e : i.extensions) out.emplace_back(e);
  return out;
}

namespace detail {

std::string read_file_bytes(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw InputError(path, std::string("cannot open: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw InputError(path, "is a folder, not a file");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw InputError(path, std::string("cannot open: ") + std::strerror(errno));
  std::string bytes;
  char buf[1 << 16];
  std::size_t n;
  if (S_ISREG(st.st_mode)) bytes.reserve(static_cast<std::size_t>(st.st_size));
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
  const bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) throw InputError(path, "read error");
  if (bytes.empty()) throw InputError(path, "file is empty (0 bytes)");
  return bytes;
}

}  // namespace detail

Geometry read_geometry(const std::filesystem::path& path, const ReadOptions& options) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw InputError(path, "is a folder, not a file");
  const Format format = options.format ? *options.format : format_from_path(path);
  const FormatInfo& fi = info(format);
  const std::string bytes = detail::read_file_bytes(path);
  detail::RawGeometry raw = fi.reader ? fi.reader(path, bytes)
                                      : detail::read_with_assimp(path, bytes, format, options.importer_timeout_s);
  if (raw.mesh.vertices.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    throw InputError(path, "more than 2^31 vertices");
  validate(raw.mesh, path.string());
  if (raw.mesh.vertices.empty()) throw InputError(path, "holds no vertices or points");
  if (fi.mesh_only && raw.mesh.triangles.empty())
    throw InputError(path, fmt::format("has no faces ({} vertices and no triangles)", raw.mesh.vertices.size()));

  Geometry g;
  g.format = format;
  g.notes = std::move(raw.notes);
  g.vertices_in_file = raw.mesh.vertices.size();
  // Object ranges cover every triangle, in order.
  raw.close_object();
  if (!raw.objects.empty() && raw.objects.front().first_triangle > 0)
    raw.objects.insert(raw.objects.begin(), ObjectRange{"", 0, raw.objects.front().first_triangle});
  raw.objects.erase(std::remove_if(raw.objects.begin(), raw.objects.end(),
                                   [](const ObjectRange& o) { return o.triangle_count == 0; }),
                    raw.objects.end());
  if (raw.objects.empty() && !raw.mesh.triangles.empty()) raw.objects.push_back({"", 0, raw.mesh.triangles.size()});
  g.objects = std::move(raw.objects);
  g.mesh = std::move(raw.mesh);
  if (options.weld && raw.needs_weld) {
    g.welded_vertices = weld_identical_vertices(g.mesh);
  }
  g.units = resolve_unit(options.units, raw.declared_unit, bounding_box(g.mesh));
  if (g.units.to_mm != 1.0) scale(g.mesh, g.units.to_mm);
  return g;
}

Geometry read_mesh(const std::filesystem::path& path, const ReadOptions& options) {
  Geometry g = read_geometry(path, options);
  if (!g.has_faces())
    throw InputError(path, fmt::format("has no faces ({} points): it is a point cloud, and this step needs a mesh",
                                       g.mesh.vertices.size()));
  return g;
}

PointCloud read_point_cloud(const std::filesystem::path& path, const ReadOptions& options, UnitGuess* units) {
  ReadOptions o = options;
  o.weld = false;
  Geometry g = read_geometry(path, o);
  if (units) *units = g.units;
  PointCloud c;
  c.points = std::move(g.mesh.vertices);
  c.normals = std::move(g.mesh.normals);
  c.colors = std::move(g.mesh.colors);
  return c;
}

namespace {

Format output_format(const std::filesystem::path& path, const WriteOptions& options) {
  return options.format ? *options.format : format_from_path(path);
}

void check_for_output(const Mesh& m, const std::filesystem::path& path) {
  try {
    validate(m, "mesh to write");
  } catch (const InputError& e) {
    throw ProcessingError(path.string() + ": refusing to write an invalid " + e.what());
  }
}

}  // namespace

void write_objects(const std::filesystem::path& path, const std::vector<NamedMesh>& objects,
                   const WriteOptions& options) {
  const Format f = output_format(path, options);
  if (!can_write_mesh(f))
    throw InputError(path, fmt::format("cannot write meshes as {} (writable: {})", format_name(f),
                                       known_extensions([](const FormatInfo& i) { return i.write_mesh; })));
  for (const NamedMesh& o : objects) check_for_output(o.mesh, path);
  auto merged = [&] {
    if (objects.size() == 1) return objects.front().mesh;
    Mesh m;
    for (const NamedMesh& o : objects) append(m, o.mesh);
    return m;
  };
  std::string bytes;
  switch (f) {
    case Format::Ply: bytes = detail::ply_bytes(merged(), options.ascii, options.double_precision, options.declare_mm); break;
    case Format::Stl: bytes = detail::stl_bytes(merged(), options.ascii); break;
    case Format::Obj: bytes = detail::obj_bytes(objects); break;
    case Format::ThreeMf: bytes = detail::threemf_bytes(objects, path); break;
    case Format::Glb: bytes = detail::glb_bytes(objects); break;
    default: break;
  }
  write_file_atomically(path, bytes);
}

void write_mesh(const std::filesystem::path& path, const Mesh& mesh, const WriteOptions& options) {
  write_objects(path, {NamedMesh{path.stem().string(), mesh}}, options);
}

void write_point_cloud(const std::filesystem::path& path, const PointCloud& cloud, const WriteOptions& options) {
  const Format f = output_format(path, options);
  if (!can_write_point_cloud(f))
    throw InputError(path, fmt::format("cannot write point clouds as {} (writable: {})", format_name(f),
                                       known_extensions([](const FormatInfo& i) { return i.write_points; })));
  Mesh m;
  m.vertices = cloud.points;
  m.normals = cloud.normals;
  m.colors = cloud.colors;
  check_for_output(m, path);
  write_file_atomically(path, f == Format::Ply ? detail::ply_bytes(m, options.ascii, options.double_precision, options.declare_mm)
                                               : detail::xyz_bytes(cloud));
}

std::vector<NamedMesh> split_objects(const Geometry& g, const std::string& fallback_name) {
  if (g.objects.size() <= 1) return {NamedMesh{fallback_name, g.mesh}};
  std::vector<NamedMesh> parts;
  for (const ObjectRange& ob : g.objects) {
    std::vector<char> keep(g.mesh.triangles.size(), 0);
    std::fill(keep.begin() + static_cast<std::ptrdiff_t>(ob.first_triangle),
              keep.begin() + static_cast<std::ptrdiff_t>(ob.first_triangle + ob.triangle_count), 1);
    parts.push_back({ob.name, submesh(g.mesh, keep)});
  }
  return parts;
}

}  // namespace tracecast::io
