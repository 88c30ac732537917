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

}  // namespace

RawGeometry read_pcd(const std::filesystem::path& path, const std::string& bytes) {
  TextCursor in(std::string_view(bytes.data(), std::min<std::size_t>(bytes.size(), 1 << 20)), path);
  std::vector<PcdField> fields;
  std::vector<std::size_t> sizes, counts;
  std::vector<char> types;
  std::int64_t width = -1, height = 1, points = -1;
  std::string data;
  while (!in.eof()) {
    in.skip_empty_lines('#');
    if (in.eof()) break;
    const std::string_view kw = in.token();
    auto rest = [&] {
      std::vector<std::string> t;
      for (std::string_view s = in.token(); !s.empty(); s = in.token()) t.emplace_back(s);
      return t;
    };
    if (kw == "VERSION" || kw == "VIEWPOINT") {
      in.next_line();
    } else if (kw == "FIELDS") {
      for (auto& n : rest()) fields.push_back({n});
      in.next_line();
    } else if (kw == "SIZE" || kw == "COUNT") {
      auto& dst = kw == "SIZE" ? sizes : counts;
      for (auto& t : rest()) {
        std::int64_t v;
        if (!TextCursor::parse_int(t, v) || v <= 0 || v > 1 << 16) in.fail("invalid " + std::string(kw) + " value '" + TextCursor::clip(t) + "'");
        dst.push_back(static_cast<std::size_t>(v));
      }
      in.next_line();
    } else if (kw == "TYPE") {
      for (auto& t : rest()) {
        if (t.size() != 1 || (t[0] != 'F' && t[0] != 'I' && t[0] != 'U')) in.fail("invalid TYPE '" + TextCursor::clip(t) + "'");
        types.push_back(t[0]);
      }
      in.next_line();
    } else if (kw == "WIDTH") {
      width = in.integer("WIDTH");
      in.next_line();
    } else if (kw == "HEIGHT") {
      height = in.integer("HEIGHT");
      in.next_line();
    } else if (kw == "POINTS") {
      points = in.integer("POINTS");
      in.next_line();
    } else if (kw == "DATA") {
      data = std::string(in.token());
      in.next_line();
      break;
    } else {
      in.fail("unknown PCD header keyword '" + TextCursor::clip(kw) + "'");
    }
  }
  if (data.empty()) throw InputError(path, "PCD header has no DATA line (truncated or not a PCD file)");
  if (fields.empty()) throw InputError(path, "PCD header has no FIELDS line");
  if (sizes.size() != fields.size() || types.size() != fields.size())
    throw InputError(path, "PCD header: FIELDS, SIZE and TYPE must list the same number of entries");
  if (counts.empty()) counts.assign(fields.size(), 1);
  if (counts.size() != fields.size()) throw InputError(path, "PCD header: COUNT must list one entry per field");
  if (points < 0) points = width >= 0 && height >= 0 ? width * height : -1;
  if (points < 0) throw InputError(path, "PCD header has no valid POINTS (or WIDTH and HEIGHT)");
  std::size_t row = 0;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    fields[i].size = sizes[i];
    fields[i].type = types[i];
    fields[i].count = counts[i];
    if ((types[i] == 'F' && sizes[i] != 4 && sizes[i] != 8) ||
        (types[i] != 'F' && sizes[i] != 1 && sizes[i] != 2 && sizes[i] != 4 && sizes[i] != 8))
      throw InputError(path, fmt::format("PCD field '{}' has the unsupported size {} for type {}", fields[i].name,
                                         sizes[i], types[i]));
    fields[i].offset = row;
    row += sizes[i] * counts[i];
  }
  auto find = [&](const char* n) -> const PcdField* {
    for (const PcdField& f : fields)
      if (f.name == n) return &f;
    return nullptr;
  };
  const PcdField *fx = find("x"), *fy = find("y"), *fz = find("z");
  if (!fx || !fy || !fz) throw InputError(path, "PCD has no x, y and z fields");
  const PcdField *fnx = find("normal_x"), *fny = find("normal_y"), *fnz = find("normal_z");
  const PcdField* frgb = find("rgb");
  if (!frgb) frgb = find("rgba");
  if (frgb && frgb->size != 4) frgb = nullptr;
  const bool normals = fnx && fny && fnz;
  const std::size_t body = in.position();
  const std::size_t n = static_cast<std::size_t>(points);

  // Every point as one row-major record (binary_compressed stores fields column-major).
  std::string records;
  if (data == "ascii") {
    const std::size_t values_per_row = [&] {
      std::size_t v = 0;
      for (const PcdField& f : fields) v += f.count;
      return v;
    }();
    if (static_cast<long double>(points) * values_per_row * 2 > bytes.size() - body + 1)
      throw InputError(path, fmt::format("header declares {} points, more than the file can hold: truncated or corrupt", points));
    records.resize(n * row);
    TextCursor t(std::string_view(bytes).substr(body), path, in.line());
    for (std::size_t i = 0; i < n; ++i) {
      t.skip_empty_lines('#');
      if (t.eof()) t.fail(fmt::format("file is truncated: {} of {} points", i, n));
      for (const PcdField& f : fields)
        for (std::size_t c = 0; c < f.count; ++c) {
          unsigned char* dst = reinterpret_cast<unsigned char*>(&records[i * row + f.offset + c * f.size]);
          const double v = t.number("a number");
          // Store back in the field's own type so that one decoder serves all encodings.
          if (f.type == 'F' && f.size == 4) { float x = static_cast<float>(v); std::memcpy(dst, &x, 4); }
          else if (f.type == 'F') std::memcpy(dst, &v, 8);
          else if (f.size == 4 && f.type == 'U') { std::uint32_t x = static_cast<std::uint32_t>(v); std::memcpy(dst, &x, 4); }
          else if (f.size == 4) { std::int32_t x = static_cast<std::int32_t>(v); std::memcpy(dst, &x, 4); }
          else if (f.size == 1) *dst = static_cast<unsigned char>(static_cast<std::int64_t>(v));
          else if (f.size == 2) { std::uint16_t x = static_cast<std::uint16_t>(static_cast<std::int64_t>(v)); std::memcpy(dst, &x, 2); }
          else { std::int64_t x = static_cast<std::int64_t>(v); std::memcpy(dst, &x, 8); }
        }
      t.next_line();
    }
  } else if (data == "binary") {
    if (static_cast<long double>(points) * row > bytes.size() - body)
      throw InputError(path, fmt::format("header declares {} points of {} bytes, but only {} bytes follow: truncated or "
                                         "corrupt", points, row, bytes.size() - body));
    records.assign(bytes, body, n * row);
  } else if (data == "binary_compressed") {
    ByteCursor bc(std::string_view(bytes).substr(body), path);
    const std::uint32_t csize = bc.get<std::uint32_t>("the compressed size");
    const std::uint32_t usize = bc.get<std::uint32_t>("the uncompressed size");
    if (static_cast<long double>(points) * row != usize)
      throw InputError(path, fmt::format("compressed PCD: {} points of {} bytes do not make the declared {} bytes",
                                         points, row, usize));
    if (usize > 100ull * csize + 1024)
      throw InputError(path, fmt::format("compressed PCD declares {} bytes from {} compressed: corrupt", usize, csize));
    const std::string_view comp = bc.bytes(csize, "the compressed data");
    std::string columns(usize, '\0');
    if (!lzf_decompress(reinterpret_cast<const unsigned char*>(comp.data()), comp.size(),
                        reinterpret_cast<unsigned char*>(columns.data()), columns.size()))
      throw InputError(path, "compressed PCD data is corrupt (LZF stream does not decode)");
    records.resize(usize);
    std::size_t col = 0;
    for (const PcdField& f : fields) {
      const std::size_t w = f.size * f.count;
      for (std::size_t i = 0; i < n; ++i) std::memcpy(&records[i * row + f.offset], &columns[col + i * w], w);
      col += w * n;
    }
  } else {
    throw InputError(path, "unknown PCD DATA encoding '" + TextCursor::clip(data) + "'");
  }

  RawGeometry out;
  Mesh& m = out.mesh;
  m.vertices.reserve(n);
  std::size_t invalid = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto* r = reinterpret_cast<const unsigned char*>(records.data() + i * row);
    const Vec3 p(field_value(r + fx->offset, *fx), field_value(r + fy->offset, *fy), field_value(r + fz->offset, *fz));
    if (!p.allFinite()) {  // organised clouds mark pixels without a measurement with NaN
      ++invalid;
      continue;
    }
    m.vertices.push_back(p);
    if (normals)
      m.normals.emplace_back(field_value(r + fnx->offset, *fnx), field_value(r + fny->offset, *fny),
                             field_value(r + fnz->offset, *fnz));
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
