// Point-cloud formats: XYZ (x y z [nx ny nz | r g b]), PTS (Leica: [count] then x y z [i] [r g b])
// and PCD (PCL: ascii, binary, binary_compressed with LZF).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "io_detail.h"

namespace tracecast::io::detail {

namespace {

//! Reads rows of numbers with a constant column count (the first data row sets it).
std::vector<double> read_table(const std::filesystem::path& path, TextCursor& in, std::size_t& columns,
                               std::size_t bytes_hint) {
  std::vector<double> values;
  values.reserve(bytes_hint / 8);
  columns = 0;
  while (!in.eof()) {
    in.skip_empty_lines('#');
    if (in.eof()) break;
    std::size_t n = 0;
    while (!in.at_eol()) {
      values.push_back(in.number("a number"));
      ++n;
    }
    if (columns == 0) columns = n;
    else if (n != columns)
      throw InputError(path, fmt::format("line {}: {} columns, but the first row has {}", in.line(), n, columns));
    in.next_line();
  }
  return values;
}

void colours_from(Mesh& m, const std::vector<double>& v, std::size_t columns, std::size_t first) {
  const std::size_t n = v.size() / columns;
  double mx = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) mx = std::max(mx, v[i * columns + first + k]);
  const double s = mx > 1.0 ? 255.0 : 1.0;
  m.colors.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    m.colors.push_back(Vec3(v[i * columns + first], v[i * columns + first + 1], v[i * columns + first + 2]) / s);
  for (Vec3& c : m.colors) c = c.cwiseMax(0.0).cwiseMin(1.0);
}

}  // namespace

RawGeometry read_xyz(const std::filesystem::path& path, const std::string& bytes) {
  TextCursor in(bytes, path);
  std::size_t columns = 0;
  const std::vector<double> v = read_table(path, in, columns, bytes.size());
  if (columns != 0 && columns < 3) throw InputError(path, fmt::format("XYZ rows need at least 3 columns, found {}", columns));
  RawGeometry out;
  Mesh& m = out.mesh;
  const std::size_t n = columns ? v.size() / columns : 0;
  m.vertices.reserve(n);
  for (std::size_t i = 0; i < n; ++i) m.vertices.emplace_back(v[i * columns], v[i * columns + 1], v[i * columns + 2]);
  const std::string ext = path.extension().string();
  if (columns >= 6) {
    // Columns 4–6 are normals (unit vectors, or the .xyzn extension) or colours (.xyzrgb, or not unit).
    bool unit = ext != ".xyzrgb";
    for (std::size_t i = 0; i < n && unit; ++i) {
      const double len = Vec3(v[i * columns + 3], v[i * columns + 4], v[i * columns + 5]).norm();
      unit = std::abs(len - 1.0) < 1e-2;
    }
    if (unit || ext == ".xyzn") {
      m.normals.reserve(n);
      for (std::size_t i = 0; i < n; ++i) m.normals.emplace_back(v[i * columns + 3], v[i * columns + 4], v[i * columns + 5]);
      if (columns >= 9) colours_from(m, v, columns, 6);
    } else {
      colours_from(m, v, columns, 3);
    }
  }
  return out;
}

RawGeometry read_pts(const std::filesystem::path& path, const std::string& bytes) {
  TextCursor in(bytes, path);
  in.skip_empty_lines('#');
  // Optional first line: the point count alone.
  std::int64_t declared = -1;
  {
    TextCursor probe(bytes, path);
    probe.skip_empty_lines('#');
    const std::string_view first = probe.token();
    std::int64_t n = 0;
    if (probe.at_eol() && TextCursor::parse_int(first, n)) {
      declared = n;
      in.next_line();
    }
  }
  std::size_t columns = 0;
  const std::vector<double> v = read_table(path, in, columns, bytes.size());
  if (columns != 0 && columns != 3 && columns != 4 && columns != 6 && columns != 7)
    throw InputError(path, fmt::format("PTS rows need 3, 4, 6 or 7 columns (x y z [intensity] [r g b]), found {}", columns));
  RawGeometry out;
  Mesh& m = out.mesh;
  const std::size_t n = columns ? v.size() / columns : 0;
  if (declared >= 0 && static_cast<std::size_t>(declared) != n)
    throw InputError(path, fmt::format("PTS header declares {} points but the file holds {}: truncated or corrupt",
                                       declared, n));
  m.vertices.reserve(n);
  for (std::size_t i = 0; i < n; ++i) m.vertices.emplace_back(v[i * columns], v[i * columns + 1], v[i * columns + 2]);
  if (columns == 6) colours_from(m, v, columns, 3);
  if (columns == 7) colours_from(m, v, columns, 4);
  return out;
}

// ---------------------------------------------------------------------------------------------
// PCD

namespace {

struct PcdField {
  std::string name;
  std::size_t size = 4;
  char type = 'F';
  std::size_t count = 1;
  std::size_t offset = 0;  // within a row-major point
};

//! LZF decompression with every read and write bounds-checked.
bool lzf_decompress(const unsigned char* in, std::size_t in_len, unsigned char* out, std::size_t out_len) {
  std::size_t ip = 0, op = 0;
  while (ip < in_len) {
    const unsigned ctrl = in[ip++];
    if (ctrl < 32) {
      const std::size_t len = ctrl + 1;
      if (ip + len > in_len || op + len > out_len) return false;
      std::memcpy(out + op, in + ip, len);
      ip += len;
      op += len;
    } else {
      std::size_t len = ctrl >> 5;
      if (len == 7) {
        if (ip >= in_len) return false;
        len += in[ip++];
      }
      if (ip >= in_len) return false;
      const std::size_t back = ((ctrl & 0x1fu) << 8) + in[ip++] + 1;
      len += 2;
      if (back > op || op + len > out_len) return false;
      for (std::size_t k = 0; k < len; ++k, ++op) out[op] = out[op - back];  // may overlap
    }
  }
  return op == out_len;
}

double field_value(const unsigned char* p, const PcdField& f) {
  switch (f.type) {
    case 'F':
      if (f.size == 4) { float v; std::memcpy(&v, p, 4); return v; }
      if (f.size == 8) { double v; std::memcpy(&v, p, 8); return v; }
      break;
    case 'I':
      if (f.size == 1) return static_cast<std::int8_t>(*p);
      if (f.size == 2) { std::int16_t v; std::memcpy(&v, p, 2); return v; }
      if (f.size == 4) { std::int32_t v; std::memcpy(&v, p, 4); return v; }
      if (f.size == 8) { std::int64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
      break;
    case 'U':
      if (f.size == 1) return *p;
      if (f.size == 2) { std::uint16_t v; std::memcpy(&v, p, 2); return v; }
      if (f.size == 4) { std::uint32_t v; std::memcpy(&v, p, 4); return v; }
      if (f.size == 8) { std::uint64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
      break;
  }
  return 0;
}

Vec3 unpack_rgb(const unsigned char* p) {  // PCL packs RGB as 0x00RRGGBB in 4 bytes
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return Vec3((v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff) / 255.0;
}

//! What a PCD header says: the fields (laid out in one record), the points, the encoding, and
//! where the data starts.
struct PcdHeader {
  std::vector<PcdField> fields;
  std::int64_t points = -1;
  std::string data;
  std::size_t row = 0, body = 0, body_line = 0;
};

//! The header's lines up to DATA, as given (checked by pcd_layout).
struct PcdLines {
  std::vector<PcdField> fields;
  std::vector<std::size_t> sizes, counts;
  std::vector<char> types;
  std::int64_t width = -1, height = 1, points = -1;
  std::string data;
};

//! The values after a header keyword, to the end of its line.
std::vector<std::string> rest_of_line(TextCursor& in) {
  std::vector<std::string> t;
  for (std::string_view s = in.token(); !s.empty(); s = in.token()) t.emplace_back(s);
  return t;
}

//! One header line after its keyword; true at DATA (the last).
bool read_pcd_line(TextCursor& in, std::string_view kw, PcdLines& h) {
  if (kw == "VERSION" || kw == "VIEWPOINT") {
  } else if (kw == "FIELDS") {
    for (auto& n : rest_of_line(in)) h.fields.push_back({n});
  } else if (kw == "SIZE" || kw == "COUNT") {
    auto& dst = kw == "SIZE" ? h.sizes : h.counts;
    for (auto& t : rest_of_line(in)) {
      std::int64_t v;
      if (!TextCursor::parse_int(t, v) || v <= 0 || v > 1 << 16) in.fail("invalid " + std::string(kw) + " value '" + TextCursor::clip(t) + "'");
      dst.push_back(static_cast<std::size_t>(v));
    }
  } else if (kw == "TYPE") {
    for (auto& t : rest_of_line(in)) {
      if (t.size() != 1 || (t[0] != 'F' && t[0] != 'I' && t[0] != 'U')) in.fail("invalid TYPE '" + TextCursor::clip(t) + "'");
      h.types.push_back(t[0]);
    }
  } else if (kw == "WIDTH") {
    h.width = in.integer("WIDTH");
  } else if (kw == "HEIGHT") {
    h.height = in.integer("HEIGHT");
  } else if (kw == "POINTS") {
    h.points = in.integer("POINTS");
  } else if (kw == "DATA") {
    h.data = std::string(in.token());
    in.next_line();
    return true;
  } else {
    in.fail("unknown PCD header keyword '" + TextCursor::clip(kw) + "'");
  }
  in.next_line();
  return false;
}

//! Checks the header's lists against each other and lays the fields out in one record.
PcdHeader pcd_layout(PcdLines&& l, const std::filesystem::path& path) {
  if (l.data.empty()) throw InputError(path, "PCD header has no DATA line (truncated or not a PCD file)");
  if (l.fields.empty()) throw InputError(path, "PCD header has no FIELDS line");
  if (l.sizes.size() != l.fields.size() || l.types.size() != l.fields.size())
    throw InputError(path, "PCD header: FIELDS, SIZE and TYPE must list the same number of entries");
  if (l.counts.empty()) l.counts.assign(l.fields.size(), 1);
  if (l.counts.size() != l.fields.size()) throw InputError(path, "PCD header: COUNT must list one entry per field");
  if (l.points < 0) l.points = l.width >= 0 && l.height >= 0 ? l.width * l.height : -1;
  if (l.points < 0) throw InputError(path, "PCD header has no valid POINTS (or WIDTH and HEIGHT)");
  PcdHeader h;
  for (std::size_t i = 0; i < l.fields.size(); ++i) {
    PcdField& f = l.fields[i];
    f.size = l.sizes[i];
    f.type = l.types[i];
    f.count = l.counts[i];
    if ((f.type == 'F' && f.size != 4 && f.size != 8) || (f.type != 'F' && f.size != 1 && f.size != 2 && f.size != 4 && f.size != 8))
      throw InputError(path, fmt::format("PCD field '{}' has the unsupported size {} for type {}", f.name, f.size, f.type));
    f.offset = h.row;
    h.row += f.size * f.count;
  }
  h.fields = std::move(l.fields);
  h.points = l.points;
  h.data = std::move(l.data);
  return h;
}

PcdHeader read_pcd_header(const std::filesystem::path& path, const std::string& bytes) {
  TextCursor in(std::string_view(bytes.data(), std::min<std::size_t>(bytes.size(), 1 << 20)), path);
  PcdLines lines;
  while (!in.eof()) {
    in.skip_empty_lines('#');
    if (in.eof()) break;
    if (read_pcd_line(in, in.token(), lines)) break;
  }
  PcdHeader h = pcd_layout(std::move(lines), path);
  h.body = in.position();
  h.body_line = in.line();
  return h;
}

//! Stores a number read as text in the field's own type, so that one decoder serves all encodings.
void store_as_field(double v, const PcdField& f, unsigned char* dst) {
  if (f.type == 'F' && f.size == 4) {
    const float x = static_cast<float>(v);
    std::memcpy(dst, &x, 4);
  } else if (f.type == 'F') {
    std::memcpy(dst, &v, 8);
  } else if (f.size == 4 && f.type == 'U') {
    const std::uint32_t x = static_cast<std::uint32_t>(v);
    std::memcpy(dst, &x, 4);
  } else if (f.size == 4) {
    const std::int32_t x = static_cast<std::int32_t>(v);
    std::memcpy(dst, &x, 4);
  } else if (f.size == 1) {
    *dst = static_cast<unsigned char>(static_cast<std::int64_t>(v));
  } else if (f.size == 2) {
    const std::uint16_t x = static_cast<std::uint16_t>(static_cast<std::int64_t>(v));
    std::memcpy(dst, &x, 2);
  } else {
    const std::int64_t x = static_cast<std::int64_t>(v);
    std::memcpy(dst, &x, 8);
  }
}

std::string ascii_records(const PcdHeader& h, const std::string& bytes, const std::filesystem::path& path) {
  const auto n = static_cast<std::size_t>(h.points);
  std::size_t values_per_row = 0;
  for (const PcdField& f : h.fields) values_per_row += f.count;
  if (static_cast<long double>(h.points) * values_per_row * 2 > bytes.size() - h.body + 1)
    throw InputError(path, fmt::format("header declares {} points, more than the file can hold: truncated or corrupt", h.points));
  std::string records(n * h.row, '\0');
  TextCursor t(std::string_view(bytes).substr(h.body), path, h.body_line);
  for (std::size_t i = 0; i < n; ++i) {
    t.skip_empty_lines('#');
    if (t.eof()) t.fail(fmt::format("file is truncated: {} of {} points", i, n));
    for (const PcdField& f : h.fields)
      for (std::size_t c = 0; c < f.count; ++c)
        store_as_field(t.number("a number"), f, reinterpret_cast<unsigned char*>(&records[i * h.row + f.offset + c * f.size]));
    t.next_line();
  }
  return records;
}

//! binary_compressed: an LZF block of the fields stored column-major.
std::string compressed_records(const PcdHeader& h, const std::string& bytes, const std::filesystem::path& path) {
  const auto n = static_cast<std::size_t>(h.points);
  ByteCursor bc(std::string_view(bytes).substr(h.body), path);
  const std::uint32_t csize = bc.get<std::uint32_t>("the compressed size");
  const std::uint32_t usize = bc.get<std::uint32_t>("the uncompressed size");
  if (static_cast<long double>(h.points) * h.row != usize)
    throw InputError(path, fmt::format("compressed PCD: {} points of {} bytes do not make the declared {} bytes", h.points, h.row, usize));
  if (usize > 100ull * csize + 1024) throw InputError(path, fmt::format("compressed PCD declares {} bytes from {} compressed: corrupt", usize, csize));
  const std::string_view comp = bc.bytes(csize, "the compressed data");
  std::string columns(usize, '\0');
  if (!lzf_decompress(reinterpret_cast<const unsigned char*>(comp.data()), comp.size(), reinterpret_cast<unsigned char*>(columns.data()),
                      columns.size()))
    throw InputError(path, "compressed PCD data is corrupt (LZF stream does not decode)");
  std::string records(usize, '\0');
  std::size_t col = 0;
  for (const PcdField& f : h.fields) {
    const std::size_t w = f.size * f.count;
    for (std::size_t i = 0; i < n; ++i) std::memcpy(&records[i * h.row + f.offset], &columns[col + i * w], w);
    col += w * n;
  }
  return records;
}

//! Every point as one row-major record, whatever the encoding.
std::string pcd_records(const PcdHeader& h, const std::string& bytes, const std::filesystem::path& path) {
  if (h.data == "ascii") return ascii_records(h, bytes, path);
  if (h.data == "binary") {
    if (static_cast<long double>(h.points) * h.row > bytes.size() - h.body)
      throw InputError(path, fmt::format("header declares {} points of {} bytes, but only {} bytes follow: truncated or "
                                         "corrupt",
                                         h.points, h.row, bytes.size() - h.body));
    return std::string(bytes, h.body, static_cast<std::size_t>(h.points) * h.row);
  }
  if (h.data == "binary_compressed") return compressed_records(h, bytes, path);
  throw InputError(path, "unknown PCD DATA encoding '" + TextCursor::clip(h.data) + "'");
}

const PcdField* field_named(const std::vector<PcdField>& fields, const char* n) {
  for (const PcdField& f : fields)
    if (f.name == n) return &f;
  return nullptr;
}

}  // namespace

RawGeometry read_pcd(const std::filesystem::path& path, const std::string& bytes) {
  const PcdHeader h = read_pcd_header(path, bytes);
  const PcdField *fx = field_named(h.fields, "x"), *fy = field_named(h.fields, "y"), *fz = field_named(h.fields, "z");
  if (!fx || !fy || !fz) throw InputError(path, "PCD has no x, y and z fields");
  const PcdField *fnx = field_named(h.fields, "normal_x"), *fny = field_named(h.fields, "normal_y"), *fnz = field_named(h.fields, "normal_z");
  const PcdField* frgb = field_named(h.fields, "rgb");
  if (!frgb) frgb = field_named(h.fields, "rgba");
  if (frgb && frgb->size != 4) frgb = nullptr;
  const bool normals = fnx && fny && fnz;
  const auto n = static_cast<std::size_t>(h.points);
  const std::string records = pcd_records(h, bytes, path);

  RawGeometry out;
  Mesh& m = out.mesh;
  m.vertices.reserve(n);
  std::size_t invalid = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto* r = reinterpret_cast<const unsigned char*>(records.data() + i * h.row);
    const Vec3 p(field_value(r + fx->offset, *fx), field_value(r + fy->offset, *fy), field_value(r + fz->offset, *fz));
    if (!p.allFinite()) {  // organised clouds mark pixels without a measurement with NaN
      ++invalid;
      continue;
    }
    m.vertices.push_back(p);
    if (normals) m.normals.emplace_back(field_value(r + fnx->offset, *fnx), field_value(r + fny->offset, *fny), field_value(r + fnz->offset, *fnz));
    if (frgb) m.colors.push_back(unpack_rgb(r + frgb->offset));
  }
  if (normals)
    for (Vec3& v : m.normals)
      if (!v.allFinite()) v = Vec3::Zero();
  if (invalid) out.notes.push_back(fmt::format("skipped {} points without a measurement (NaN), as organised PCD clouds mark them", invalid));
  return out;
}

std::string xyz_bytes(const PointCloud& cloud) {
  std::string out;
  out.reserve(cloud.size() * 40);
  for (std::size_t i = 0; i < cloud.size(); ++i) {
    const Vec3& p = cloud.points[i];
    fmt::format_to(std::back_inserter(out), "{} {} {}", p.x(), p.y(), p.z());
    if (cloud.has_normals())
      fmt::format_to(std::back_inserter(out), " {} {} {}", cloud.normals[i].x(), cloud.normals[i].y(), cloud.normals[i].z());
    out += '\n';
  }
  return out;
}

}  // namespace tracecast::io::detail
