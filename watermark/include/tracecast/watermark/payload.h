// The identifier a mark carries, and the channel code that protects it.
//
// An identifier is 64 bits: maker (16) | run (24) | piece (24). It is protected by a CRC-32 and a
// convolutional code (constraint length 7, rate 1/3, generators 133/171/165 octal, terminated
// with 6 zero bits): 64 + 32 + 6 = 102 input bits become 306 coded bits. The decoder takes soft
// values, so evidence from every tile a scan covers adds up before the decision; a result counts
// only if its CRC matches (a random decode passes with probability 2^-32).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tracecast::watermark {

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

constexpr int kIdBits = 64;
constexpr int kCrcBits = 32;
constexpr int kTailBits = 6;
constexpr int kCodedBits = 3 * (kIdBits + kCrcBits + kTailBits);  // 306

std::uint32_t crc32_of(std::uint64_t id);

//! The kCodedBits coded bits (each 0 or 1) of an identifier.
std::vector<std::uint8_t> encode(std::uint64_t id);

struct Decoded {
  bool crc_ok = false;        //!< the only condition under which `id` may be reported
  std::uint64_t id = 0;
  int disagreements = 0;      //!< non-zero soft values whose sign the decoded codeword contradicts
  double correlation = 0;     //!< Σ soft·(±1) along the decoded codeword
};

//! Soft-decision Viterbi decoding. soft[i] > 0 says coded bit i is 1, < 0 says 0; the magnitude is
//! the confidence, 0 means no evidence. Precondition: soft.size() == kCodedBits (InputError if not).
Decoded decode(const std::vector<double>& soft);

}  // namespace tracecast::watermark
