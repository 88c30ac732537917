// STL: binary (80-byte header, uint32 count, 50 bytes a triangle) and ascii ("solid … facet …").
// STL stores three corners per triangle; the caller welds identical corners into shared vertices.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "io_detail.h"

namespace tracecast::io::detail {

namespace {

RawGeometry read_binary_stl(const std::filesystem::path& path, const std::string& bytes) {
  ByteCursor in(bytes, path);
  in.skip(80, "the 80-byte header");
  const std::uint32_t n = in.get<std::uint32_t>("the triangle count");
  const std::uint64_t need = 84ull + 50ull * n;
  if (need > bytes.size())
    throw InputError(path, fmt::format("binary STL declares {} triangles ({} bytes) but the file has {} bytes: "
                                       "truncated or corrupt",
                                       n, need, bytes.size()));
  RawGeometry out;
  out.needs_weld = true;
  Mesh& m = out.mesh;
  m.vertices.reserve(3ull * n);
  m.triangles.reserve(n);
  for (std::uint32_t f = 0; f < n; ++f) {
    in.skip(12, "a facet normal");
    const auto base = static_cast<std::int32_t>(m.vertices.size());
    for (int c = 0; c < 3; ++c) {
      const float x = in.get<float>("a facet"), y = in.get<float>("a facet"), z = in.get<float>("a facet");
      m.vertices.emplace_back(x, y, z);
    }
    in.skip(2, "a facet's attribute bytes");
    m.triangles.push_back({base, base + 1, base + 2});
  }
  return out;
}

RawGeometry read_ascii_stl(const std::filesystem::path& path, const std::string& bytes) {
  TextCursor in(bytes, path);
  RawGeometry out;
  out.needs_weld = true;
  in.skip_empty_lines(0);
  if (in.token() != "solid") in.fail("ascii STL must start with 'solid'");
  out.begin_object(std::string(in.rest_of_line()));
  Mesh* m = &out.mesh;
  m->vertices.reserve(bytes.size() / 120);
  for (;;) {
    in.skip_empty_lines(0);
    if (in.eof()) in.fail("file is truncated: no 'endsolid'");
    const std::string_view kw = in.token();
    if (kw == "endsolid") {
      in.next_line();
      in.skip_empty_lines(0);
      if (in.eof()) break;
      // Several solids in one file: each becomes an object.
      if (in.token() != "solid") in.fail("expected 'solid' after 'endsolid'");
      out.begin_object(std::string(in.rest_of_line()));
      continue;
    }
    if (kw != "facet") in.fail("expected 'facet' or 'endsolid', found '" + TextCursor::clip(kw) + "'");
    in.next_line();
    in.skip_empty_lines(0);
    if (in.token() != "outer" || in.token() != "loop") in.fail("expected 'outer loop'");
    in.next_line();
    const auto base = static_cast<std::int32_t>(m->vertices.size());
    for (int c = 0; c < 3; ++c) {
      in.skip_empty_lines(0);
      if (in.token() != "vertex") in.fail("expected 'vertex' (only triangles are valid STL facets)");
      const double x = in.number("x"), y = in.number("y"), z = in.number("z");
      m->vertices.emplace_back(x, y, z);
      in.next_line();
    }
    in.skip_empty_lines(0);
    if (in.token() != "endloop") in.fail("expected 'endloop' (only triangles are valid STL facets)");
    in.next_line();
    in.skip_empty_lines(0);
    if (in.token() != "endfacet") in.fail("expected 'endfacet'");
    in.next_line();
    m->triangles.push_back({base, base + 1, base + 2});
  }
  out.close_object();
  return out;
}

}  // namespace

RawGeometry read_stl(const std::filesystem::path& path, const std::string& bytes) {
  // Binary files may also begin with "solid" in their free-form header: trust the size check first.
  if (bytes.size() >= 84) {
    std::uint32_t n = 0;
    std::memcpy(&n, bytes.data() + 80, 4);
    if (84ull + 50ull * n == bytes.size()) return read_binary_stl(path, bytes);
  }
  std::size_t i = 0;
  while (i < bytes.size() && std::isspace(static_cast<unsigned char>(bytes[i]))) ++i;
  if (bytes.compare(i, 5, "solid") == 0) {
    // A text STL has no NUL bytes; a binary one whose header says "solid" usually does.
    const bool looks_text = std::find(bytes.begin(), bytes.begin() + std::min<std::size_t>(bytes.size(), 4096), '\0') ==
                            bytes.begin() + std::min<std::size_t>(bytes.size(), 4096);
    if (looks_text) return read_ascii_stl(path, bytes);
  }
  if (bytes.size() < 84) throw InputError(path, fmt::format("too short for an STL file ({} bytes)", bytes.size()));
  return read_binary_stl(path, bytes);  // reports the size mismatch
}

namespace {
Vec3 facet_normal(const Vec3& a, const Vec3& b, const Vec3& c) {
  const Vec3 n = (b - a).cross(c - a);
  const double len = n.norm();
  return len > 0 ? Vec3(n / len) : Vec3::Zero();
}
}  // namespace

std::string stl_bytes(const Mesh& mesh, bool ascii) {
  std::string out;
  if (ascii) {
    out.reserve(mesh.triangles.size() * 250);
    out += "solid tracecast\n";
    for (const Tri& t : mesh.triangles) {
      const Vec3 &a = mesh.vertices[t[0]], &b = mesh.vertices[t[1]], &c = mesh.vertices[t[2]];
      const Vec3 n = facet_normal(a, b, c);
      fmt::format_to(std::back_inserter(out), "facet normal {} {} {}\n outer loop\n", float(n.x()), float(n.y()),
                     float(n.z()));
      for (const Vec3* v : {&a, &b, &c})
        fmt::format_to(std::back_inserter(out), "  vertex {} {} {}\n", float(v->x()), float(v->y()), float(v->z()));
      out += " endloop\nendfacet\n";
    }
    out += "endsolid tracecast\n";
    return out;
  }
  out.reserve(84 + 50 * mesh.triangles.size());
  std::string header = "binary STL written by tracecast; units: millimetres";
  header.resize(80, ' ');
  out += header;
  put<std::uint32_t>(out, static_cast<std::uint32_t>(mesh.triangles.size()));
  for (const Tri& t : mesh.triangles) {
    const Vec3 &a = mesh.vertices[t[0]], &b = mesh.vertices[t[1]], &c = mesh.vertices[t[2]];
    const Vec3 n = facet_normal(a, b, c);
    for (int k = 0; k < 3; ++k) put<float>(out, static_cast<float>(n[k]));
    for (const Vec3* v : {&a, &b, &c})
      for (int k = 0; k < 3; ++k) put<float>(out, static_cast<float>((*v)[k]));
    put<std::uint16_t>(out, 0);
  }
  return out;
}

}  // namespace tracecast::io::detail
