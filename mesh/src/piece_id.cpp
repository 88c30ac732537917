#include "tracecast/mesh/piece_id.h"

#include <fmt/format.h>

#include <cctype>
#include <limits>

#include "tracecast/mesh/errors.h"

namespace tracecast {

std::uint64_t pack(const PieceId& id) {
  if (id.maker >= (1u << 16)) throw InputError(fmt::format("maker number {} does not fit 16 bits", id.maker));
  if (id.run >= (1u << 24)) throw InputError(fmt::format("run number {} does not fit 24 bits", id.run));
  if (id.piece >= (1u << 24)) throw InputError(fmt::format("piece number {} does not fit 24 bits", id.piece));
  return (std::uint64_t(id.maker) << 48) | (std::uint64_t(id.run) << 24) | id.piece;
}

PieceId unpack(std::uint64_t v) {
  return {static_cast<std::uint32_t>(v >> 48), static_cast<std::uint32_t>((v >> 24) & 0xFFFFFF),
          static_cast<std::uint32_t>(v & 0xFFFFFF)};
}

std::string format_id(std::uint64_t v) {
  const PieceId p = unpack(v);
  return fmt::format("{:04x}-{:06x}-{:06x}", p.maker, p.run, p.piece);
}

std::optional<std::uint64_t> parse_id(const std::string& t) {
  auto hex = [](const std::string& s, std::uint64_t& out) {
    if (s.empty() || s.size() > 16) return false;
    out = 0;
    for (char c : s) {
      if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
      out = out * 16 + static_cast<std::uint64_t>(std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10);
    }
    return true;
  };
  std::uint64_t m, r, p;
  if (t.size() == 18 && t[4] == '-' && t[11] == '-' && hex(t.substr(0, 4), m) && hex(t.substr(5, 6), r) &&
      hex(t.substr(12, 6), p))
    return (m << 48) | (r << 24) | p;
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
    std::uint64_t v;
    if (hex(t.substr(2), v)) return v;
    return std::nullopt;
  }
  if (t.empty() || t.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : t) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

}  // namespace tracecast
