// OFF (Object File Format, text): "OFF"/"COFF"/"NOFF"/"CNOFF" header, counts, vertices, faces.
#include <fmt/format.h>

#include "io_detail.h"

namespace tracecast::io::detail {

RawGeometry read_off(const std::filesystem::path& path, const std::string& bytes) {
  TextCursor in(bytes, path);
  in.skip_empty_lines('#');
  std::string_view head = in.token();
  bool has_normals = false, has_colors = false;
  // The header keyword may be glued to the counts on one line ("OFF 8 6 0").
  auto strip = [&](char c) {
    if (!head.empty() && head.front() == c) {
      head.remove_prefix(1);
      return true;
    }
    return false;
  };
  if (strip('S')) in.fail("OFF with texture coordinates (STOFF) is not supported");
  has_colors = strip('C');
  has_normals = strip('N');
  if (head == "4OFF" || head == "nOFF") in.fail("4D / n-dimensional OFF is not supported");
  if (head != "OFF") in.fail("not an OFF file (first keyword must be OFF, COFF, NOFF or CNOFF)");
  const std::size_t header_line = in.line();
  const std::string_view rest = in.rest_of_line();
  if (rest.rfind("BINARY", 0) == 0) throw InputError(path, "binary OFF is not supported");
  std::int64_t nv = 0, nf = 0;
  if (rest.empty() || rest.front() == '#') {
    in.skip_empty_lines('#');
    nv = in.integer("vertex count");
    nf = in.integer("face count");
    in.next_line();
  } else {
    TextCursor counts(rest, path, header_line);
    nv = counts.integer("vertex count");
    nf = counts.integer("face count");
  }
  if (nv < 0 || nf < 0) in.fail("negative vertex or face count");
  // ≥ 6 bytes per vertex ("0 0 0\n") and per face ("1 0\n" at least 4): refuse absurd counts early.
  if (static_cast<long double>(nv) * 6 + static_cast<long double>(nf) * 4 > static_cast<long double>(bytes.size()))
    throw InputError(path, fmt::format("header declares {} vertices and {} faces, more than the {} bytes of the file "
                                       "can hold: truncated or corrupt",
                                       nv, nf, bytes.size()));
  RawGeometry out;
  Mesh& m = out.mesh;
  m.vertices.reserve(static_cast<std::size_t>(nv));
  for (std::int64_t i = 0; i < nv; ++i) {
    in.skip_empty_lines('#');
    if (in.eof()) in.fail(fmt::format("file is truncated: {} of {} vertices", i, nv));
    const double x = in.number("x"), y = in.number("y"), z = in.number("z");
    m.vertices.emplace_back(x, y, z);
    if (has_normals) {
      const double a = in.number("nx"), b = in.number("ny"), c = in.number("nz");
      m.normals.emplace_back(a, b, c);
    }
    if (has_colors) {
      Vec3 c;
      for (int k = 0; k < 3; ++k) c[k] = in.number("colour");
      if (c.maxCoeff() > 1.0) c /= 255.0;
      m.colors.push_back(c.cwiseMax(0.0).cwiseMin(1.0));
    }
    in.next_line();
  }
  std::size_t dropped = 0;
  std::vector<std::int64_t> poly;
  m.triangles.reserve(static_cast<std::size_t>(nf));
  for (std::int64_t f = 0; f < nf; ++f) {
    in.skip_empty_lines('#');
    if (in.eof()) in.fail(fmt::format("file is truncated: {} of {} faces", f, nf));
    const std::int64_t k = in.integer("corner count");
    if (k < 0 || static_cast<std::uint64_t>(k) > in.remaining()) in.fail(fmt::format("invalid corner count {}", k));
    poly.resize(static_cast<std::size_t>(k));
    for (std::int64_t j = 0; j < k; ++j) {
      const std::int64_t v = in.integer("vertex index");
      if (v < 0 || v >= nv) in.fail(fmt::format("face {} refers to vertex {}, but there are {} vertices", f, v, nv));
      poly[static_cast<std::size_t>(j)] = v;
    }
    in.next_line();  // a face colour may follow
    if (k < 3) {
      ++dropped;
      continue;
    }
    for (std::size_t j = 1; j + 1 < poly.size(); ++j)
      m.triangles.push_back({static_cast<std::int32_t>(poly[0]), static_cast<std::int32_t>(poly[j]),
                             static_cast<std::int32_t>(poly[j + 1])});
  }
  if (dropped) out.notes.push_back(fmt::format("dropped {} faces with fewer than 3 vertices", dropped));
  return out;
}

}  // namespace tracecast::io::detail
