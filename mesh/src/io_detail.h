// Internal to the I/O module: what each format reader returns, and the bounded cursors every
// parser uses, so that bounds checks and error messages (file, line, problem) are in one place.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/mesh.h"

namespace tracecast::io::detail {

//! What a reader found, in the file's own units.
struct RawGeometry {
  Mesh mesh;
  std::vector<ObjectRange> objects;  //!< empty: one unnamed object
  std::optional<Unit> declared_unit;
  std::vector<std::string> notes;
  bool needs_weld = false;  //!< the format stores vertices per face (STL) or per primitive

  //! Starts a new named object at the current end of the triangle list.
  void begin_object(std::string name) {
    close_object();
    objects.push_back({std::move(name), mesh.triangles.size(), 0});
  }
  void close_object() {
    if (!objects.empty()) objects.back().triangle_count = mesh.triangles.size() - objects.back().first_triangle;
  }
};

std::string read_file_bytes(const std::filesystem::path& path);

//! Appends v's bytes as they are in memory (little-endian on every platform tracecast builds on):
//! the writers of binary PLY, STL and GLB.
template <class T>
void put(std::string& out, T v) {
  char raw[sizeof(T)];
  std::memcpy(raw, &v, sizeof(T));
  out.append(raw, sizeof(T));
}


//! Number of elements of `bytes_each` bytes that `available` bytes can hold: the most a header
//! may claim before we believe it enough to reserve memory.
inline std::size_t plausible_count(std::uint64_t claimed, std::size_t available, std::size_t bytes_each) {
  const std::uint64_t cap = available / (bytes_each ? bytes_each : 1);
  return static_cast<std::size_t>(claimed < cap ? claimed : cap);
}

//! Line-oriented text cursor. Tokens are separated by blanks; `#` starts a comment when
//! `hash_comments` is set.
class TextCursor {
 public:
  TextCursor(std::string_view text, const std::filesystem::path& file, std::size_t line = 1)
      : text_(text), file_(file), line_(line) {}

  bool eof() const { return pos_ >= text_.size(); }
  std::size_t line() const { return line_; }
  std::size_t position() const { return pos_; }
  std::size_t remaining() const { return text_.size() - pos_; }

  //! Skips blanks on the current line (not the newline).
  void skip_blanks() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\r' ||
                                   text_[pos_] == '\f' || text_[pos_] == '\v'))
      ++pos_;
  }
  //! Next token on the current line; empty at end of line or file.
  std::string_view token() {
    skip_blanks();
    const std::size_t start = pos_;
    while (pos_ < text_.size() && !is_blank(text_[pos_]) && text_[pos_] != '\n') ++pos_;
    return text_.substr(start, pos_ - start);
  }
  bool at_eol() {
    skip_blanks();
    return pos_ >= text_.size() || text_[pos_] == '\n';
  }
  //! Moves past the end of the current line.
  void next_line() {
    while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
    if (pos_ < text_.size()) {
      ++pos_;
      ++line_;
    }
  }
  //! Skips empty lines and lines starting with `comment` (if non-zero).
  void skip_empty_lines(char comment) {
    for (;;) {
      skip_blanks();
      if (pos_ >= text_.size()) return;
      if (text_[pos_] == '\n' || (comment && text_[pos_] == comment)) {
        next_line();
        continue;
      }
      return;
    }
  }
  //! The rest of the current line (without newline), and moves to the next line.
  std::string_view rest_of_line() {
    skip_blanks();
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
    std::string_view s = text_.substr(start, pos_ - start);
    while (!s.empty() && (s.back() == '\r' || is_blank(s.back()))) s.remove_suffix(1);
    next_line();
    return s;
  }

  double number(const char* what) {
    const std::string_view t = token();
    if (t.empty()) fail(std::string("expected ") + what + ", found end of line");
    double v = 0;
    if (!parse_double(t, v)) fail(std::string("expected ") + what + ", found '" + clip(t) + "'");
    return v;
  }
  std::int64_t integer(const char* what) {
    const std::string_view t = token();
    if (t.empty()) fail(std::string("expected ") + what + ", found end of line");
    std::int64_t v = 0;
    if (!parse_int(t, v)) fail(std::string("expected ") + what + ", found '" + clip(t) + "'");
    return v;
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw InputError(file_, "line " + std::to_string(line_) + ": " + problem);
  }

  static bool parse_double(std::string_view t, double& v) {
    if (!t.empty() && t.front() == '+') t.remove_prefix(1);
    const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    return ec == std::errc() && p == t.data() + t.size();
  }
  static bool parse_int(std::string_view t, std::int64_t& v) {
    if (!t.empty() && t.front() == '+') t.remove_prefix(1);
    const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    return ec == std::errc() && p == t.data() + t.size();
  }
  static std::string clip(std::string_view t) {
    std::string s(t.substr(0, 40));
    for (char& c : s)
      if (static_cast<unsigned char>(c) < 32 || static_cast<unsigned char>(c) > 126) c = '?';
    return t.size() > 40 ? s + "..." : s;
  }

 private:
  static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }
  std::string_view text_;
  const std::filesystem::path& file_;
  std::size_t pos_ = 0;
  std::size_t line_;
};

//! Bounds-checked reader of binary data with a fixed byte order.
class ByteCursor {
 public:
  ByteCursor(std::string_view bytes, const std::filesystem::path& file, bool big_endian = false)
      : bytes_(bytes), file_(file), big_endian_(big_endian) {}
  std::size_t position() const { return pos_; }
  std::size_t remaining() const { return bytes_.size() - pos_; }
  void seek(std::size_t pos) {
    if (pos > bytes_.size()) fail_truncated("a seek");
    pos_ = pos;
  }
  void skip(std::size_t n, const char* what) {
    if (n > remaining()) fail_truncated(what);
    pos_ += n;
  }
  template <class T>
  T get(const char* what) {
    if (sizeof(T) > remaining()) fail_truncated(what);
    unsigned char raw[sizeof(T)];
    std::memcpy(raw, bytes_.data() + pos_, sizeof(T));
    if (big_endian_)
      for (std::size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(raw[i], raw[sizeof(T) - 1 - i]);
    T v;
    std::memcpy(&v, raw, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view bytes(std::size_t n, const char* what) {
    if (n > remaining()) fail_truncated(what);
    std::string_view s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  [[noreturn]] void fail_truncated(const char* what) const {
    throw InputError(file_, std::string("file is truncated: it ends (at byte ") + std::to_string(bytes_.size()) +
                                ") in the middle of " + what);
  }

 private:
  std::string_view bytes_;
  const std::filesystem::path& file_;
  bool big_endian_;
  std::size_t pos_ = 0;
};

// Readers (file units). Each throws InputError on malformed input.
RawGeometry read_ply(const std::filesystem::path& path, const std::string& bytes);
RawGeometry read_stl(const std::filesystem::path& path, const std::string& bytes);
RawGeometry read_obj(const std::filesystem::path& path, const std::string& bytes);
RawGeometry read_off(const std::filesystem::path& path, const std::string& bytes);
RawGeometry read_xyz(const std::filesystem::path& path, const std::string& bytes);
RawGeometry read_pts(const std::filesystem::path& path, const std::string& bytes);
RawGeometry read_pcd(const std::filesystem::path& path, const std::string& bytes);
//! glTF, GLB, FBX, 3MF: through Assimp in an isolated child process (see io_assimp.cpp).
RawGeometry read_with_assimp(const std::filesystem::path& path, const std::string& bytes, Format format,
                             double timeout_s);
//! Structural checks of a GLB container before any parser sees it.
void check_glb_container(const std::filesystem::path& path, const std::string& bytes);
//! What Assimp does not pass on from a 3MF model part: the declared unit and object names.
struct ThreeMfInfo {
  std::optional<Unit> unit;
  std::vector<std::pair<std::string, std::string>> names;  //!< object id -> name
};
ThreeMfInfo read_3mf_info(const std::filesystem::path& path);

// Writers: return the file's bytes (mm in, file units out).
std::string ply_bytes(const Mesh& mesh, bool ascii, bool double_precision, bool declare_mm = true);
std::string stl_bytes(const Mesh& mesh, bool ascii);
std::string obj_bytes(const std::vector<NamedMesh>& objects);
std::string threemf_bytes(const std::vector<NamedMesh>& objects, const std::filesystem::path& for_errors);
std::string glb_bytes(const std::vector<NamedMesh>& objects);
std::string xyz_bytes(const PointCloud& cloud);

}  // namespace tracecast::io::detail
