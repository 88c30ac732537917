// Wavefront OBJ (geometry only): v (with optional RGB), vn, f with v/vt/vn corners and
// negative (relative) indices, polygons fan-triangulated, o/g names as objects.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "io_detail.h"

namespace tracecast::io::detail {

RawGeometry read_obj(const std::filesystem::path& path, const std::string& bytes) {
  TextCursor in(bytes, path);
  std::vector<Vec3> positions, colors, vn;
  std::vector<std::int64_t> normal_of;  // per vertex: index into vn from the face corners, -1 none
  bool normals_consistent = true;
  positions.reserve(bytes.size() / 40);
  RawGeometry out;
  std::vector<Tri>& triangles = out.mesh.triangles;
  std::vector<std::int64_t> poly;
  std::size_t dropped = 0;
  bool colored = true;
  while (!in.eof()) {
    in.skip_empty_lines('#');
    if (in.eof()) break;
    const std::string_view kw = in.token();
    if (kw == "v") {
      const double x = in.number("vertex x"), y = in.number("vertex y"), z = in.number("vertex z");
      positions.emplace_back(x, y, z);
      // Optional "w" or "r g b" (colour extension used by scanners): three values = colour.
      std::string_view t1 = in.token();
      if (!t1.empty()) {
        std::string_view t2 = in.token(), t3 = in.token();
        double r, g, b;
        if (!t2.empty() && !t3.empty() && TextCursor::parse_double(t1, r) && TextCursor::parse_double(t2, g) &&
            TextCursor::parse_double(t3, b)) {
          if (colored) colors.emplace_back(r, g, b);
        } else {
          colored = false;
        }
      } else {
        colored = false;
      }
    } else if (kw == "f") {
      poly.clear();
      for (;;) {
        const std::string_view corner = in.token();
        if (corner.empty()) break;
        const std::string_view vtok = corner.substr(0, corner.find('/'));
        // v//vn or v/vt/vn: the normal index is after the second slash.
        std::int64_t nidx = 0;
        if (const auto s1 = corner.find('/'); s1 != std::string_view::npos)
          if (const auto s2 = corner.find('/', s1 + 1); s2 != std::string_view::npos)
            if (!TextCursor::parse_int(corner.substr(s2 + 1), nidx)) nidx = 0;
        std::int64_t idx = 0;
        if (!TextCursor::parse_int(vtok, idx) || idx == 0)
          in.fail("malformed face corner '" + TextCursor::clip(corner) + "'");
        // 1-based; negative counts back from the last vertex defined so far.
        const std::int64_t n = static_cast<std::int64_t>(positions.size());
        const std::int64_t zero_based = idx > 0 ? idx - 1 : n + idx;
        if (zero_based < 0 || zero_based >= n)
          in.fail(fmt::format("face refers to vertex {}, but only {} vertices are defined before it", idx, n));
        poly.push_back(zero_based);
        // Per-vertex normals only when every corner of a vertex names the same normal.
        const std::int64_t nn = static_cast<std::int64_t>(vn.size());
        const std::int64_t nz = nidx > 0 ? nidx - 1 : nidx < 0 ? nn + nidx : -1;
        if (nz < 0 || nz >= nn) {
          normals_consistent = false;
        } else if (normals_consistent) {
          if (normal_of.size() < positions.size()) normal_of.resize(positions.size(), -1);
          auto& slot = normal_of[static_cast<std::size_t>(zero_based)];
          if (slot < 0) slot = nz;
          else if (slot != nz && vn[static_cast<std::size_t>(slot)] != vn[static_cast<std::size_t>(nz)]) normals_consistent = false;
        }
      }
      if (poly.size() < 3) {
        ++dropped;
      } else {
        for (std::size_t j = 1; j + 1 < poly.size(); ++j)
          triangles.push_back({static_cast<std::int32_t>(poly[0]), static_cast<std::int32_t>(poly[j]),
                                              static_cast<std::int32_t>(poly[j + 1])});
      }
    } else if (kw == "vn") {
      const double x = in.number("normal x"), y = in.number("normal y"), z = in.number("normal z");
      vn.emplace_back(x, y, z);
    } else if (kw == "o" || kw == "g") {
      std::string name(in.rest_of_line());
      if (!out.objects.empty() && out.objects.back().first_triangle == triangles.size())
        out.objects.back().name = name;  // "o x" then "g y" before any face: one object
      else
        out.begin_object(name);
      continue;
    }
    // vn, vt, l, p, s, usemtl, mtllib, …: not geometry we keep.
    in.next_line();
  }
  if (positions.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    throw InputError(path, "too many vertices for this reader (more than 2^31)");
  out.close_object();
  if (!colored || colors.size() != positions.size()) colors.clear();
  Mesh& m = out.mesh;
  if (normals_consistent && !vn.empty() && normal_of.size() == positions.size() &&
      std::find(normal_of.begin(), normal_of.end(), -1) == normal_of.end()) {
    m.normals.reserve(positions.size());
    for (std::int64_t k : normal_of) m.normals.push_back(vn[static_cast<std::size_t>(k)]);
    for (Vec3& n : m.normals)
      if (!n.allFinite()) n = Vec3::Zero();
  }
  m.vertices = std::move(positions);
  m.colors = std::move(colors);
  if (!m.colors.empty()) {
    // 0-255 colours exist in the wild; 0-1 is the convention.
    double mx = 0;
    for (const Vec3& c : m.colors) mx = std::max(mx, c.maxCoeff());
    if (mx > 1.0)
      for (Vec3& c : m.colors) c /= 255.0;
    for (Vec3& c : m.colors) c = c.cwiseMax(0.0).cwiseMin(1.0);
  }
  if (dropped) out.notes.push_back(fmt::format("dropped {} faces with fewer than 3 vertices", dropped));
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
