// The payload codec: identifiers survive noise and erasures exactly, and noise never decodes.
#include <catch2/catch.hpp>

#include <cstdio>
#include <random>

#include "tracecast/mesh/errors.h"
#include "tracecast/watermark/payload.h"

using namespace tracecast;
using namespace tracecast::watermark;

namespace {
std::vector<double> bpsk(const std::vector<std::uint8_t>& bits) {
  std::vector<double> s;
  for (auto b : bits) s.push_back(b ? 1.0 : -1.0);
  return s;
}
}  // namespace

TEST_CASE("identifier layout packs, formats and parses", "[watermark][payload]") {
  const PieceId p{0x2a, 0x101, 7};
  const std::uint64_t v = pack(p);
  CHECK(v == 0x002a000101000007ull);
  CHECK(format_id(v) == "002a-000101-000007");
  CHECK(parse_id("002a-000101-000007") == v);
  CHECK(parse_id("0x002a000101000007") == v);
  CHECK(parse_id(std::to_string(v)) == v);
  CHECK_FALSE(parse_id("002a-000101-00000g"));
  CHECK_FALSE(parse_id("99999999999999999999"));
  CHECK(unpack(v).run == 0x101);
  CHECK_THROWS_AS(pack({1, 1u << 24, 0}), InputError);
  CHECK_THROWS_AS(pack({1u << 16, 0, 0}), InputError);
}

TEST_CASE("clean codewords decode to the exact identifier", "[watermark][payload]") {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 200; ++i) {
    const std::uint64_t id = rng();
    const auto code = encode(id);
    REQUIRE(code.size() == static_cast<std::size_t>(kCodedBits));
    const Decoded d = decode(bpsk(code));
    CHECK(d.crc_ok);
    CHECK(d.id == id);
    CHECK(d.disagreements == 0);
  }
}

namespace {
//! Exact decodes out of `trials`, with Gaussian noise `sigma` on ±1 symbols and a fraction of
//! the coded bits erased (unseen tiles). Also returns the raw (pre-decoding) bit error rate.
int exact_decodes(double sigma, double erased, int trials, std::uint64_t seed, double& raw_ber) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, sigma);
  std::uniform_real_distribution<double> u(0, 1);
  int exact = 0, raw_errors = 0;
  for (int i = 0; i < trials; ++i) {
    const std::uint64_t id = rng();
    auto s = bpsk(encode(id));
    for (double& x : s) {
      const double y = x + noise(rng);
      raw_errors += (y > 0) != (x > 0);
      x = u(rng) < erased ? 0.0 : y;
    }
    const Decoded d = decode(s);
    exact += d.crc_ok && d.id == id;
  }
  raw_ber = double(raw_errors) / (double(trials) * kCodedBits);
  return exact;
}
}  // namespace

TEST_CASE("noisy and partly erased codewords decode exactly", "[watermark][payload]") {
  double ber = 0;
  // ≈ 5 % raw bit errors and a quarter of the bits unseen: every identifier comes back.
  CHECK(exact_decodes(0.6, 0.25, 300, 2, ber) == 300);
  CHECK(ber == Approx(0.048).margin(0.01));
  // ≈ 11 % raw bit errors and a quarter unseen: still at least 90 %.
  const int harsh = exact_decodes(0.8, 0.25, 300, 4, ber);
  std::printf("payload: sigma 0.8, 25 %% erased: %d / 300 exact (raw bit error rate %.3f)\n", harsh, ber);
  CHECK(harsh >= 270);
  CHECK(ber == Approx(0.106).margin(0.01));
}

TEST_CASE("noise alone never passes the CRC", "[watermark][payload]") {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0.0, 1.0);
  int false_positives = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<double> s(kCodedBits);
    for (double& x : s) x = noise(rng);
    false_positives += decode(s).crc_ok;
  }
  CHECK(false_positives == 0);  // expected 20000 · 2^-32 ≈ 5e-6
}

TEST_CASE("decode rejects a wrong length", "[watermark][payload]") {
  CHECK_THROWS_AS(decode(std::vector<double>(10)), InputError);
}
