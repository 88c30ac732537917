#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "fixtures.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/watermark/key.h"

using namespace tracecast;
using namespace tracecast::watermark;

TEST_CASE("key files: 0600, id checked, never overwritten, too-open files refused", "[watermark][key]") {
  const auto dir = test::temp_dir("keys");
  const Key k = Key::generate();
  CHECK(k.id().size() == 16);
  write_key(dir / "a.key", k);
  struct stat st {};
  REQUIRE(::stat((dir / "a.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const Key back = read_key(dir / "a.key");
  CHECK(back.id() == k.id());
  CHECK(back.stream("tile", 3, 64) == k.stream("tile", 3, 64));
  CHECK_THROWS_AS(write_key(dir / "a.key", Key::generate()), InputError);

  ::chmod((dir / "a.key").c_str(), 0644);
  CHECK_THROWS_WITH(read_key(dir / "a.key"), Catch::Contains("chmod 600"));
  ::chmod((dir / "a.key").c_str(), 0600);

  std::string text = test::read_bytes(dir / "a.key");
  const auto at = text.find("secret ") + 7;
  text[at] = text[at] == '0' ? '1' : '0';
  test::write_bytes(dir / "b.key", text);
  ::chmod((dir / "b.key").c_str(), 0600);
  CHECK_THROWS_WITH(read_key(dir / "b.key"), Catch::Contains("damaged"));
  test::write_bytes(dir / "c.key", "hello\n");
  ::chmod((dir / "c.key").c_str(), 0600);
  CHECK_THROWS_WITH(read_key(dir / "c.key"), Catch::Contains("not a tracecast key file"));
}

TEST_CASE("keyed streams differ by key, label and index, and are reproducible", "[watermark][key]") {
  std::array<std::uint8_t, 32> s{};
  s[0] = 1;
  const Key a = Key::from_secret(s);
  s[0] = 2;
  const Key b = Key::from_secret(s);
  CHECK(a.id() != b.id());
  CHECK(a.stream("tile", 0, 32) == Key::from_secret(std::array<std::uint8_t, 32>{1}).stream("tile", 0, 32));
  CHECK(a.stream("tile", 0, 32) != b.stream("tile", 0, 32));
  CHECK(a.stream("tile", 0, 32) != a.stream("tile", 1, 32));
  CHECK(a.stream("tile", 0, 32) != a.stream("sync", 0, 32));
  // Bytes look uniform: about half the bits set over a long stream.
  const auto bytes = a.stream("tile", 9, 1 << 14);
  std::size_t ones = 0;
  for (auto v : bytes) ones += static_cast<std::size_t>(__builtin_popcount(v));
  CHECK(double(ones) / (8.0 * bytes.size()) == Approx(0.5).margin(0.01));
}
