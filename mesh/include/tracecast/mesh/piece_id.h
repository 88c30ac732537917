// A piece's 64-bit identifier: maker (16 bits: the workshop) | run (24) | piece (24), and its
// text form. One definition for the ledger that allocates identifiers and the mark that carries
// them; no dependency beyond the standard library.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tracecast {

struct PieceId {
  std::uint32_t maker = 0;  //!< 16 bits: the workshop
  std::uint32_t run = 0;    //!< 24 bits: the production run
  std::uint32_t piece = 0;  //!< 24 bits: the piece within the run
};

//! Throws InputError if a field does not fit its width.
std::uint64_t pack(const PieceId& id);
PieceId unpack(std::uint64_t value);
//! "MMMM-RRRRRR-PPPPPP" (hexadecimal fields), e.g. "002a-000101-000007".
std::string format_id(std::uint64_t value);
//! Accepts format_id()'s form, "0x" + 16 hex digits, or a decimal number; nullopt otherwise.
std::optional<std::uint64_t> parse_id(const std::string& text);

}  // namespace tracecast
