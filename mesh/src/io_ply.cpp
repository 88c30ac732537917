// PLY: ascii, binary_little_endian and binary_big_endian; faces as polygon lists ("face") or
// triangle strips with -1 restarts ("tristrips", as Cyberware scans store them).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "io_detail.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the binary writers assume a little-endian host");

namespace tracecast::io::detail {

namespace {

enum class Scalar { I8, U8, I16, U16, I32, U32, F32, F64 };

std::optional<Scalar> scalar_from_name(std::string_view n) {
  if (n == "char" || n == "int8") return Scalar::I8;
  if (n == "uchar" || n == "uint8") return Scalar::U8;
  if (n == "short" || n == "int16") return Scalar::I16;
  if (n == "ushort" || n == "uint16") return Scalar::U16;
  if (n == "int" || n == "int32") return Scalar::I32;
  if (n == "uint" || n == "uint32") return Scalar::U32;
  if (n == "float" || n == "float32") return Scalar::F32;
  if (n == "double" || n == "float64") return Scalar::F64;
  return std::nullopt;
}

std::size_t scalar_size(Scalar s) {
  switch (s) {
    case Scalar::I8: case Scalar::U8: return 1;
    case Scalar::I16: case Scalar::U16: return 2;
    case Scalar::I32: case Scalar::U32: case Scalar::F32: return 4;
    case Scalar::F64: return 8;
  }
  return 1;
}

//! Full-scale value of an integer colour channel (255 for uchar …); 1 for floats.
double colour_scale(Scalar s) {
  switch (s) {
    case Scalar::U8: case Scalar::I8: return 255.0;
    case Scalar::U16: case Scalar::I16: return 65535.0;
    case Scalar::U32: case Scalar::I32: return 4294967295.0;
    default: return 1.0;
  }
}

struct Property {
  std::string name;
  Scalar type = Scalar::F32;
  bool is_list = false;
  Scalar count_type = Scalar::U8;
};

struct Element {
  std::string name;
  std::uint64_t count = 0;
  std::vector<Property> properties;
  std::size_t min_bytes() const {  // smallest binary size of one element
    std::size_t s = 0;
    for (const Property& p : properties) s += p.is_list ? scalar_size(p.count_type) : scalar_size(p.type);
    return s;
  }
};

enum class Encoding { Ascii, BinaryLE, BinaryBE };

//! Reads one scalar as double, from text or binary.
class ValueSource {
 public:
  ValueSource(Encoding enc, std::string_view data, const std::filesystem::path& file, std::size_t first_line)
      : enc_(enc), text_(data, file, first_line), bin_(data, file, enc == Encoding::BinaryBE) {}

  double read(Scalar t) {
    if (enc_ == Encoding::Ascii) {
      text_.skip_empty_lines(0);
      if (text_.eof()) text_.fail("file is truncated: the data ends before every element the header declares");
      return text_.number("a number");
    }
    switch (t) {
      case Scalar::I8: return bin_.get<std::int8_t>("an element");
      case Scalar::U8: return bin_.get<std::uint8_t>("an element");
      case Scalar::I16: return bin_.get<std::int16_t>("an element");
      case Scalar::U16: return bin_.get<std::uint16_t>("an element");
      case Scalar::I32: return bin_.get<std::int32_t>("an element");
      case Scalar::U32: return bin_.get<std::uint32_t>("an element");
      case Scalar::F32: return bin_.get<float>("an element");
      case Scalar::F64: return bin_.get<double>("an element");
    }
    return 0;
  }
  //! A list length or index: must be an integer that fits `max`.
  std::int64_t read_integer(Scalar t, const char* what) {
    const double v = read(t);
    if (!(v == std::floor(v)) || std::abs(v) > 2147483647.0)
      fail(fmt::format("{} {} is not a valid integer", what, v));
    return static_cast<std::int64_t>(v);
  }
  std::size_t remaining() const { return enc_ == Encoding::Ascii ? text_.remaining() : bin_.remaining(); }
  [[noreturn]] void fail(const std::string& problem) {
    if (enc_ == Encoding::Ascii) text_.fail(problem);
    throw InputError(file_of_error_, problem);
  }
  void set_file(const std::filesystem::path& f) { file_of_error_ = f; }

 private:
  Encoding enc_;
  TextCursor text_;
  ByteCursor bin_;
  std::filesystem::path file_of_error_;
};

int index_of(const Element& e, std::initializer_list<const char*> names) {
  for (const char* n : names)
    for (std::size_t i = 0; i < e.properties.size(); ++i)
      if (!e.properties[i].is_list && e.properties[i].name == n) return static_cast<int>(i);
  return -1;
}

//! What the header says: the encoding, the elements with their properties, the unit a comment
//! declares, and where the data starts.
struct PlyHeader {
  Encoding enc = Encoding::Ascii;
  std::vector<Element> elements;
  std::optional<Unit> declared;
  std::size_t data_start = 0, data_line = 0;
};

//! "comment ... units: millimetres" (tracecast's own files; also "unit: mm" and the like)
//! declares the unit.
void read_unit_comment(TextCursor& hdr, std::optional<Unit>& declared) {
  bool next_is_unit = false;
  while (!hdr.at_eol()) {
    const std::string_view t = hdr.token();
    if (next_is_unit) {
      if (const auto u = parse_unit(std::string(t)); u && *u != Unit::Auto) declared = *u;
      next_is_unit = false;
    }
    if (t == "units:" || t == "unit:" || t == "units" || t == "unit") next_is_unit = true;
  }
}

Property read_property(TextCursor& hdr) {
  Property p;
  const std::string_view t = hdr.token();
  if (t == "list") {
    const auto ct = scalar_from_name(hdr.token());
    const auto it = scalar_from_name(hdr.token());
    if (!ct || !it) hdr.fail("malformed list property (unknown type)");
    if (*ct == Scalar::F32 || *ct == Scalar::F64) hdr.fail("list count type must be an integer type");
    p.is_list = true;
    p.count_type = *ct;
    p.type = *it;
  } else {
    const auto st = scalar_from_name(t);
    if (!st) hdr.fail("unknown property type '" + TextCursor::clip(t) + "'");
    p.type = *st;
  }
  p.name = std::string(hdr.token());
  if (p.name.empty()) hdr.fail("property without a name");
  return p;
}

//! One header line after its keyword: format, element or property.
void read_header_line(TextCursor& hdr, std::string_view kw, PlyHeader& h, bool& have_format) {
  if (kw == "format") {
    const std::string_view f = hdr.token();
    if (f == "ascii") h.enc = Encoding::Ascii;
    else if (f == "binary_little_endian") h.enc = Encoding::BinaryLE;
    else if (f == "binary_big_endian") h.enc = Encoding::BinaryBE;
    else hdr.fail("unknown PLY format '" + TextCursor::clip(f) + "'");
    have_format = true;
  } else if (kw == "element") {
    Element e;
    e.name = std::string(hdr.token());
    const std::string_view c = hdr.token();
    std::int64_t n = -1;
    if (e.name.empty() || !TextCursor::parse_int(c, n) || n < 0) hdr.fail("malformed element line (expected 'element NAME COUNT')");
    e.count = static_cast<std::uint64_t>(n);
    h.elements.push_back(std::move(e));
  } else if (kw == "property") {
    if (h.elements.empty()) hdr.fail("property before any element");
    h.elements.back().properties.push_back(read_property(hdr));
  } else {
    hdr.fail("unknown header keyword '" + TextCursor::clip(kw) + "'");
  }
}

PlyHeader read_header(const std::filesystem::path& path, const std::string& bytes) {
  if (bytes.compare(0, 3, "ply") != 0 || bytes.size() < 4 || (bytes[3] != '\n' && bytes[3] != '\r'))
    throw InputError(path, "not a PLY file (it does not start with the line 'ply')");
  const std::size_t header_limit = std::min<std::size_t>(bytes.size(), 1 << 20);
  TextCursor hdr(std::string_view(bytes.data(), header_limit), path);
  hdr.next_line();
  PlyHeader h;
  bool have_format = false, have_end = false;
  while (!hdr.eof()) {
    const std::string_view kw = hdr.token();
    if (kw == "comment") read_unit_comment(hdr, h.declared);
    else if (kw == "end_header") {
      hdr.next_line();
      have_end = true;
      break;
    } else if (!kw.empty() && kw != "obj_info") {
      read_header_line(hdr, kw, h, have_format);
    }
    hdr.next_line();
  }
  if (!have_end) throw InputError(path, "PLY header has no 'end_header' line (truncated or not a PLY file)");
  if (!have_format) throw InputError(path, "PLY header has no 'format' line");
  h.data_start = hdr.position();
  h.data_line = hdr.line();
  return h;
}

//! Claimed counts must fit in the bytes that follow (binary: exact minimum; ascii: ≥ 2 bytes per
//! value), so that a header claiming 10^12 vertices is refused before any allocation.
void check_claimed_size(const PlyHeader& h, std::size_t data_size, const std::filesystem::path& path) {
  long double need = 0;
  std::string claimed;
  for (const Element& e : h.elements) {
    const std::size_t per = h.enc == Encoding::Ascii ? std::max<std::size_t>(1, 2 * e.properties.size()) : e.min_bytes();
    need += static_cast<long double>(e.count) * per;
    claimed += (claimed.empty() ? "" : ", ") + fmt::format("{} {}", e.count, e.name);
  }
  if (need > static_cast<long double>(data_size) + (h.enc == Encoding::Ascii ? 1 : 0))
    throw InputError(path, fmt::format("header declares more data than the file holds ({} elements needing at "
                                       "least {:.0Lf} bytes, {} bytes follow the header): truncated or corrupt",
                                       claimed, need, data_size));
}

//! Which of an element's properties the reader takes (-1: absent), and what it makes of them.
struct Columns {
  bool vertex = false, face = false, strip = false;
  int x = -1, y = -1, z = -1, nx = -1, ny = -1, nz = -1, r = -1, g = -1, b = -1, list = -1;
  bool normals() const { return nx >= 0 && ny >= 0 && nz >= 0; }
  bool colours() const { return r >= 0 && g >= 0 && b >= 0; }
};

Columns vertex_columns(const Element& e, const std::filesystem::path& path) {
  Columns c;
  c.vertex = true;
  c.x = index_of(e, {"x"});
  c.y = index_of(e, {"y"});
  c.z = index_of(e, {"z"});
  if (c.x < 0 || c.y < 0 || c.z < 0) throw InputError(path, "PLY vertex element lacks an x, y or z property");
  c.nx = index_of(e, {"nx"});
  c.ny = index_of(e, {"ny"});
  c.nz = index_of(e, {"nz"});
  c.r = index_of(e, {"red", "r", "diffuse_red"});
  c.g = index_of(e, {"green", "g", "diffuse_green"});
  c.b = index_of(e, {"blue", "b", "diffuse_blue"});
  return c;
}

Columns face_columns(const Element& e, const std::filesystem::path& path) {
  Columns c;
  c.face = e.name == "face";
  c.strip = !c.face;
  for (std::size_t i = 0; i < e.properties.size(); ++i)
    if (e.properties[i].is_list && (e.properties[i].name == "vertex_indices" || e.properties[i].name == "vertex_index")) c.list = static_cast<int>(i);
  if (c.list < 0) throw InputError(path, "PLY '" + e.name + "' element has no vertex_indices list");
  const Scalar t = e.properties[static_cast<std::size_t>(c.list)].type;
  if (t == Scalar::F32 || t == Scalar::F64) throw InputError(path, "PLY vertex_indices must be an integer list");
  return c;
}

//! One row's values into `row` (scalars) and `list` (the vertex index list), other lists skipped.
void read_row(ValueSource& src, const Element& e, const Columns& c, Encoding enc, std::vector<double>& row, std::vector<std::int64_t>& list) {
  for (std::size_t pi = 0; pi < e.properties.size(); ++pi) {
    const Property& p = e.properties[pi];
    if (!p.is_list) {
      row[pi] = src.read(p.type);
      continue;
    }
    const std::int64_t n = src.read_integer(p.count_type, "list length");
    if (n < 0) src.fail(fmt::format("negative list length {} in element '{}'", n, e.name));
    if (static_cast<std::uint64_t>(n) * (enc == Encoding::Ascii ? 2 : scalar_size(p.type)) > src.remaining() + 1)
      src.fail(fmt::format("list of {} entries in element '{}' runs past the end of the file", n, e.name));
    if (static_cast<int>(pi) == c.list) {
      list.resize(static_cast<std::size_t>(n));
      for (std::int64_t j = 0; j < n; ++j) list[static_cast<std::size_t>(j)] = src.read_integer(p.type, "vertex index");
    } else {
      for (std::int64_t j = 0; j < n; ++j) src.read(p.type);
    }
  }
}

void add_vertex(Mesh& mesh, const Element& e, const Columns& c, const std::vector<double>& row) {
  mesh.vertices.emplace_back(row[c.x], row[c.y], row[c.z]);
  if (c.normals()) mesh.normals.emplace_back(row[c.nx], row[c.ny], row[c.nz]);
  if (c.colours()) {
    const double s = colour_scale(e.properties[static_cast<std::size_t>(c.r)].type);
    mesh.colors.emplace_back(std::clamp(row[c.r] / s, 0.0, 1.0), std::clamp(row[c.g] / s, 0.0, 1.0), std::clamp(row[c.b] / s, 0.0, 1.0));
  }
}

//! A polygon as a fan; false when it has fewer than 3 corners (dropped).
bool add_face(Mesh& mesh, ValueSource& src, std::uint64_t k, const std::vector<std::int64_t>& list) {
  for (std::int64_t v : list)
    if (v < 0) src.fail(fmt::format("face {} has the negative vertex index {}", k, v));
  if (list.size() < 3) return false;
  for (std::size_t j = 1; j + 1 < list.size(); ++j)
    mesh.triangles.push_back({static_cast<std::int32_t>(list[0]), static_cast<std::int32_t>(list[j]), static_cast<std::int32_t>(list[j + 1])});
  return true;
}

//! A strip v0 v1 v2 v3 … makes (v0 v1 v2), (v2 v1 v3), (v2 v3 v4)…: every other triangle swaps
//! its first two corners to keep one orientation. -1 starts a new strip. Returns the degenerate
//! triangles skipped (strips use repeated indices to turn corners).
std::size_t add_strip(Mesh& mesh, ValueSource& src, std::uint64_t k, const std::vector<std::int64_t>& list) {
  std::size_t run = 0, skipped = 0;
  for (std::size_t j = 0; j < list.size(); ++j) {
    if (list[j] == -1) {
      run = 0;
      continue;
    }
    if (list[j] < 0) src.fail(fmt::format("strip {} has the negative vertex index {}", k, list[j]));
    ++run;
    if (run < 3) continue;
    auto a = static_cast<std::int32_t>(list[j - 2]), b = static_cast<std::int32_t>(list[j - 1]), c = static_cast<std::int32_t>(list[j]);
    if (run % 2 == 0) std::swap(a, b);
    if (a == b || b == c || a == c) {
      ++skipped;
      continue;
    }
    mesh.triangles.push_back({a, b, c});
  }
  return skipped;
}

}  // namespace

RawGeometry read_ply(const std::filesystem::path& path, const std::string& bytes) {
  const PlyHeader h = read_header(path, bytes);
  const std::string_view data(bytes.data() + h.data_start, bytes.size() - h.data_start);
  check_claimed_size(h, data.size(), path);

  ValueSource src(h.enc, data, path, h.data_line);
  src.set_file(path);
  RawGeometry out;
  out.declared_unit = h.declared;
  Mesh& mesh = out.mesh;
  bool seen_vertex = false;
  std::size_t dropped_polygons = 0, dropped_strip_triangles = 0;
  std::vector<double> row;
  std::vector<std::int64_t> list;
  for (const Element& e : h.elements) {
    Columns c;
    if (e.name == "vertex") {
      if (seen_vertex) throw InputError(path, "PLY has two 'vertex' elements");
      seen_vertex = true;
      c = vertex_columns(e, path);
      const std::size_t n = plausible_count(e.count, data.size(), 1);
      mesh.vertices.reserve(n);
      if (c.normals()) mesh.normals.reserve(n);
      if (c.colours()) mesh.colors.reserve(n);
    } else if (e.name == "face" || e.name == "tristrips") {
      c = face_columns(e, path);
      mesh.triangles.reserve(mesh.triangles.size() + plausible_count(e.count, data.size(), 4));
    }
    row.assign(e.properties.size(), 0.0);
    list.clear();
    for (std::uint64_t k = 0; k < e.count; ++k) {
      read_row(src, e, c, h.enc, row, list);
      if (c.vertex) add_vertex(mesh, e, c, row);
      else if (c.face) dropped_polygons += !add_face(mesh, src, k, list);
      else if (c.strip) dropped_strip_triangles += add_strip(mesh, src, k, list);
    }
  }
  if (!seen_vertex) throw InputError(path, "PLY has no 'vertex' element");
  if (dropped_polygons) out.notes.push_back(fmt::format("dropped {} faces with fewer than 3 vertices", dropped_polygons));
  if (dropped_strip_triangles)
    out.notes.push_back(fmt::format("skipped {} degenerate triangles that join triangle strips", dropped_strip_triangles));
  return out;
}

namespace {
std::uint8_t to_byte(double c) { return static_cast<std::uint8_t>(std::lround(std::clamp(c, 0.0, 1.0) * 255.0)); }
}  // namespace

std::string ply_bytes(const Mesh& mesh, bool ascii, bool double_precision, bool declare_mm) {
  std::string out;
  const char* coord = double_precision ? "double" : "float";
  out += fmt::format("ply\nformat {} 1.0\ncomment written by tracecast{}\n", ascii ? "ascii" : "binary_little_endian",
                     declare_mm ? "; units: millimetres" : "");
  out += fmt::format("element vertex {}\nproperty {} x\nproperty {} y\nproperty {} z\n", mesh.vertices.size(), coord,
                     coord, coord);
  if (mesh.has_normals()) out += "property float nx\nproperty float ny\nproperty float nz\n";
  if (mesh.has_colors()) out += "property uchar red\nproperty uchar green\nproperty uchar blue\n";
  if (!mesh.triangles.empty())
    out += fmt::format("element face {}\nproperty list uchar int vertex_indices\n", mesh.triangles.size());
  out += "end_header\n";
  const std::size_t per_vertex = (double_precision ? 24 : 12) + (mesh.has_normals() ? 12 : 0) + (mesh.has_colors() ? 3 : 0);
  out.reserve(out.size() + (ascii ? 3 : 1) * (mesh.vertices.size() * per_vertex + mesh.triangles.size() * 13));
  for (std::size_t i = 0; i < mesh.vertices.size(); ++i) {
    const Vec3& v = mesh.vertices[i];
    if (ascii) {
      if (double_precision) fmt::format_to(std::back_inserter(out), "{} {} {}", v.x(), v.y(), v.z());
      else fmt::format_to(std::back_inserter(out), "{} {} {}", float(v.x()), float(v.y()), float(v.z()));
      if (mesh.has_normals())
        fmt::format_to(std::back_inserter(out), " {} {} {}", float(mesh.normals[i].x()), float(mesh.normals[i].y()),
                       float(mesh.normals[i].z()));
      if (mesh.has_colors())
        fmt::format_to(std::back_inserter(out), " {} {} {}", to_byte(mesh.colors[i].x()), to_byte(mesh.colors[i].y()),
                       to_byte(mesh.colors[i].z()));
      out += '\n';
    } else {
      for (int k = 0; k < 3; ++k) {
        if (double_precision) put<double>(out, v[k]);
        else put<float>(out, static_cast<float>(v[k]));
      }
      if (mesh.has_normals())
        for (int k = 0; k < 3; ++k) put<float>(out, static_cast<float>(mesh.normals[i][k]));
      if (mesh.has_colors())
        for (int k = 0; k < 3; ++k) put<std::uint8_t>(out, to_byte(mesh.colors[i][k]));
    }
  }
  for (const Tri& t : mesh.triangles) {
    if (ascii) {
      fmt::format_to(std::back_inserter(out), "3 {} {} {}\n", t[0], t[1], t[2]);
    } else {
      put<std::uint8_t>(out, 3);
      for (std::int32_t i : t) put<std::int32_t>(out, i);
    }
  }
  return out;
}

}  // namespace tracecast::io::detail
