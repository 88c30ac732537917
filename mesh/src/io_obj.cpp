// Wavefront OBJ (geometry only): v (with optional RGB), vn, f with v/vt/vn corners and
// negative (relative) indices, polygons fan-triangulated, o/g names as objects.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "io_detail.h"

namespace tracecast::io::detail {

namespace {

//! What the reader keeps while it goes through the file.
struct ObjState {
  std::vector<Vec3> positions, colors, vn;
  std::vector<std::int64_t> normal_of;  // per vertex: index into vn from the face corners, -1 none
  bool normals_consistent = true, colored = true;
  std::vector<std::int64_t> poly;
  std::size_t dropped = 0;
};

//! "v x y z", with an optional "w" or "r g b" (the colour extension scanners use): three values
//! are a colour.
void read_vertex(TextCursor& in, ObjState& st) {
  const double x = in.number("vertex x"), y = in.number("vertex y"), z = in.number("vertex z");
  st.positions.emplace_back(x, y, z);
  std::string_view t1 = in.token();
  if (t1.empty()) {
    st.colored = false;
    return;
  }
  std::string_view t2 = in.token(), t3 = in.token();
  double r, g, b;
  if (!t2.empty() && !t3.empty() && TextCursor::parse_double(t1, r) && TextCursor::parse_double(t2, g) && TextCursor::parse_double(t3, b)) {
    if (st.colored) st.colors.emplace_back(r, g, b);
  } else {
    st.colored = false;
  }
}

//! A corner's normal, kept per vertex only while every corner of a vertex names the same normal.
void note_corner_normal(ObjState& st, std::int64_t vertex, std::int64_t nidx) {
  const std::int64_t nn = static_cast<std::int64_t>(st.vn.size());
  const std::int64_t nz = nidx > 0 ? nidx - 1 : nidx < 0 ? nn + nidx : -1;
  if (nz < 0 || nz >= nn) {
    st.normals_consistent = false;
  } else if (st.normals_consistent) {
    if (st.normal_of.size() < st.positions.size()) st.normal_of.resize(st.positions.size(), -1);
    auto& slot = st.normal_of[static_cast<std::size_t>(vertex)];
    if (slot < 0) slot = nz;
    else if (slot != nz && st.vn[static_cast<std::size_t>(slot)] != st.vn[static_cast<std::size_t>(nz)]) st.normals_consistent = false;
  }
}

//! "f" with v, v/vt, v//vn or v/vt/vn corners (1-based; negative counts back from the last vertex
//! defined so far), fan-triangulated.
void read_face(TextCursor& in, ObjState& st, std::vector<Tri>& triangles) {
  st.poly.clear();
  for (;;) {
    const std::string_view corner = in.token();
    if (corner.empty()) break;
    const std::string_view vtok = corner.substr(0, corner.find('/'));
    std::int64_t nidx = 0;  // after the second slash
    if (const auto s1 = corner.find('/'); s1 != std::string_view::npos)
      if (const auto s2 = corner.find('/', s1 + 1); s2 != std::string_view::npos)
        if (!TextCursor::parse_int(corner.substr(s2 + 1), nidx)) nidx = 0;
    std::int64_t idx = 0;
    if (!TextCursor::parse_int(vtok, idx) || idx == 0) in.fail("malformed face corner '" + TextCursor::clip(corner) + "'");
    const std::int64_t n = static_cast<std::int64_t>(st.positions.size());
    const std::int64_t zero_based = idx > 0 ? idx - 1 : n + idx;
    if (zero_based < 0 || zero_based >= n) in.fail(fmt::format("face refers to vertex {}, but only {} vertices are defined before it", idx, n));
    st.poly.push_back(zero_based);
    note_corner_normal(st, zero_based, nidx);
  }
  if (st.poly.size() < 3) {
    ++st.dropped;
    return;
  }
  for (std::size_t j = 1; j + 1 < st.poly.size(); ++j)
    triangles.push_back({static_cast<std::int32_t>(st.poly[0]), static_cast<std::int32_t>(st.poly[j]), static_cast<std::int32_t>(st.poly[j + 1])});
}

//! Vertices, per-vertex normals (when every vertex has one consistent normal) and colours (0-255
//! ones, which exist in the wild, scaled to the 0-1 convention) into the mesh.
void finish_obj(ObjState& st, Mesh& m) {
  if (!st.colored || st.colors.size() != st.positions.size()) st.colors.clear();
  if (st.normals_consistent && !st.vn.empty() && st.normal_of.size() == st.positions.size() &&
      std::find(st.normal_of.begin(), st.normal_of.end(), -1) == st.normal_of.end()) {
    m.normals.reserve(st.positions.size());
    for (std::int64_t k : st.normal_of) m.normals.push_back(st.vn[static_cast<std::size_t>(k)]);
    for (Vec3& n : m.normals)
      if (!n.allFinite()) n = Vec3::Zero();
  }
  m.vertices = std::move(st.positions);
  m.colors = std::move(st.colors);
  if (m.colors.empty()) return;
  double mx = 0;
  for (const Vec3& c : m.colors) mx = std::max(mx, c.maxCoeff());
  if (mx > 1.0)
    for (Vec3& c : m.colors) c /= 255.0;
  for (Vec3& c : m.colors) c = c.cwiseMax(0.0).cwiseMin(1.0);
}

}  // namespace

RawGeometry read_obj(const std::filesystem::path& path, const std::string& bytes) {
  TextCursor in(bytes, path);
  ObjState st;
  st.positions.reserve(bytes.size() / 40);
  RawGeometry out;
  std::vector<Tri>& triangles = out.mesh.triangles;
  while (!in.eof()) {
    in.skip_empty_lines('#');
    if (in.eof()) break;
    const std::string_view kw = in.token();
    if (kw == "v") {
      read_vertex(in, st);
    } else if (kw == "f") {
      read_face(in, st, triangles);
    } else if (kw == "vn") {
      const double x = in.number("normal x"), y = in.number("normal y"), z = in.number("normal z");
      st.vn.emplace_back(x, y, z);
    } else if (kw == "o" || kw == "g") {
      std::string name(in.rest_of_line());
      if (!out.objects.empty() && out.objects.back().first_triangle == triangles.size())
        out.objects.back().name = name;  // "o x" then "g y" before any face: one object
      else
        out.begin_object(name);
      continue;
    }
    // vt, l, p, s, usemtl, mtllib, …: not geometry we keep.
    in.next_line();
  }
  if (st.positions.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    throw InputError(path, "too many vertices for this reader (more than 2^31)");
  out.close_object();
  finish_obj(st, out.mesh);
  if (st.dropped) out.notes.push_back(fmt::format("dropped {} faces with fewer than 3 vertices", st.dropped));
  return out;
}

std::string obj_bytes(const std::vector<NamedMesh>& objects) {
  std::string out = "# written by tracecast; units: millimetres\n";
  std::int64_t offset = 1;
  for (const NamedMesh& o : objects) {
    const Mesh& m = o.mesh;
    if (!o.name.empty()) fmt::format_to(std::back_inserter(out), "o {}\n", o.name);
    for (std::size_t i = 0; i < m.vertices.size(); ++i) {
      const Vec3& v = m.vertices[i];
      if (m.has_colors())
        fmt::format_to(std::back_inserter(out), "v {} {} {} {} {} {}\n", v.x(), v.y(), v.z(), m.colors[i].x(),
                       m.colors[i].y(), m.colors[i].z());
      else
        fmt::format_to(std::back_inserter(out), "v {} {} {}\n", v.x(), v.y(), v.z());
    }
    if (m.has_normals())
      for (const Vec3& n : m.normals) fmt::format_to(std::back_inserter(out), "vn {} {} {}\n", n.x(), n.y(), n.z());
    for (const Tri& t : m.triangles) {
      const std::int64_t a = t[0] + offset, b = t[1] + offset, c = t[2] + offset;
      if (m.has_normals())
        fmt::format_to(std::back_inserter(out), "f {0}//{0} {1}//{1} {2}//{2}\n", a, b, c);
      else
        fmt::format_to(std::back_inserter(out), "f {} {} {}\n", a, b, c);
    }
    offset += static_cast<std::int64_t>(m.vertices.size());
  }
  return out;
}

}  // namespace tracecast::io::detail
