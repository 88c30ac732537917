#include "tracecast/watermark/payload.h"

#include <fmt/format.h>
#include <zlib.h>

#include <array>
#include <cctype>
#include <limits>

#include "tracecast/mesh/errors.h"

namespace tracecast::watermark {


std::uint32_t crc32_of(std::uint64_t id) {
  unsigned char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(id >> (56 - 8 * i));
  return static_cast<std::uint32_t>(crc32(0, b, 8));
}

namespace {

constexpr int kStates = 64;
constexpr int kInfo = kIdBits + kCrcBits;
constexpr int kSteps = kInfo + kTailBits;
constexpr unsigned kGenerators[3] = {0133, 0171, 0165};

//! Output bits for shifting `bit` into a register holding `state` (6 previous bits, newest high).
unsigned outputs(unsigned state, unsigned bit) {
  const unsigned reg = (bit << 6) | state;
  unsigned o = 0;
  for (int k = 0; k < 3; ++k) o |= static_cast<unsigned>(__builtin_parity(reg & kGenerators[k])) << k;
  return o;
}
unsigned next_state(unsigned state, unsigned bit) { return ((bit << 6) | state) >> 1; }

std::array<std::uint8_t, kInfo> info_bits(std::uint64_t id) {
  std::array<std::uint8_t, kInfo> b{};
  const std::uint32_t crc = crc32_of(id);
  for (int i = 0; i < kIdBits; ++i) b[i] = static_cast<std::uint8_t>((id >> (63 - i)) & 1);
  for (int i = 0; i < kCrcBits; ++i) b[kIdBits + i] = static_cast<std::uint8_t>((crc >> (31 - i)) & 1);
  return b;
}

}  // namespace

std::vector<std::uint8_t> encode(std::uint64_t id) {
  const auto info = info_bits(id);
  std::vector<std::uint8_t> out;
  out.reserve(kCodedBits);
  unsigned state = 0;
  for (int t = 0; t < kSteps; ++t) {
    const unsigned bit = t < kInfo ? info[t] : 0;
    const unsigned o = outputs(state, bit);
    for (int k = 0; k < 3; ++k) out.push_back(static_cast<std::uint8_t>((o >> k) & 1));
    state = next_state(state, bit);
  }
  return out;
}

Decoded decode(const std::vector<double>& soft) {
  if (soft.size() != static_cast<std::size_t>(kCodedBits))
    throw InputError(fmt::format("decode needs {} soft values, got {}", kCodedBits, soft.size()));
  constexpr double kNone = -std::numeric_limits<double>::infinity();
  std::array<double, kStates> metric;
  metric.fill(kNone);
  metric[0] = 0;
  std::vector<std::array<std::uint8_t, kStates>> from(kSteps);  // predecessor state per step
  for (int t = 0; t < kSteps; ++t) {
    std::array<double, kStates> next;
    next.fill(kNone);
    const double* s = &soft[static_cast<std::size_t>(3 * t)];
    for (unsigned st = 0; st < kStates; ++st) {
      if (metric[st] == kNone) continue;
      for (unsigned bit = 0; bit < (t < kInfo ? 2u : 1u); ++bit) {
        const unsigned o = outputs(st, bit);
        double m = metric[st];
        for (int k = 0; k < 3; ++k) m += ((o >> k) & 1) ? s[k] : -s[k];
        const unsigned n = next_state(st, bit);
        // Ties go to the lower predecessor: deterministic.
        if (m > next[n]) {
          next[n] = m;
          from[static_cast<std::size_t>(t)][n] = static_cast<std::uint8_t>(st);
        }
      }
    }
    metric = next;
  }
  // Trace back from the terminated state 0; the input bit is the new state's top bit.
  std::array<std::uint8_t, kSteps> bits{};
  unsigned st = 0;
  for (int t = kSteps - 1; t >= 0; --t) {
    bits[static_cast<std::size_t>(t)] = static_cast<std::uint8_t>((st >> 5) & 1);
    st = from[static_cast<std::size_t>(t)][st];
  }
  Decoded d;
  for (int i = 0; i < kIdBits; ++i) d.id = (d.id << 1) | bits[static_cast<std::size_t>(i)];
  std::uint32_t crc = 0;
  for (int i = 0; i < kCrcBits; ++i) crc = (crc << 1) | bits[static_cast<std::size_t>(kIdBits + i)];
  d.crc_ok = crc == crc32_of(d.id);
  d.correlation = metric[0];
  const auto code = encode(d.id);
  for (int i = 0; i < kCodedBits; ++i)
    if (soft[static_cast<std::size_t>(i)] != 0.0 && ((soft[static_cast<std::size_t>(i)] > 0) != (code[static_cast<std::size_t>(i)] == 1)))
      ++d.disagreements;
  return d;
}

}  // namespace tracecast::watermark
