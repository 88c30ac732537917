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

#include "tracecast/mesh/piece_id.h"

namespace tracecast::watermark {

// The identifier itself (pack, format, parse) belongs to the base library.
using tracecast::format_id;
using tracecast::pack;
using tracecast::parse_id;
using tracecast::PieceId;
using tracecast::unpack;

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
