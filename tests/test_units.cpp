#include <catch2/catch.hpp>

#include "tracecast/mesh/units.h"

using namespace tracecast;

namespace {
Aabb box_of(double extent) {
  Aabb b;
  b.add(Vec3::Zero());
  b.add(Vec3(extent * 0.7, extent, extent * 0.8));
  return b;
}
}  // namespace

TEST_CASE("unit guess from the size of a head", "[units]") {
  CHECK(resolve_unit(Unit::Auto, std::nullopt, box_of(0.23)).unit == Unit::Metre);
  CHECK(resolve_unit(Unit::Auto, std::nullopt, box_of(0.099)).unit == Unit::Metre);  // igea
  CHECK(resolve_unit(Unit::Auto, std::nullopt, box_of(23)).unit == Unit::Centimetre);
  CHECK(resolve_unit(Unit::Auto, std::nullopt, box_of(34)).unit == Unit::Centimetre);  // face.obj
  CHECK(resolve_unit(Unit::Auto, std::nullopt, box_of(9)).unit == Unit::Inch);
  CHECK(resolve_unit(Unit::Auto, std::nullopt, box_of(220)).unit == Unit::Millimetre);
  CHECK(resolve_unit(Unit::Auto, std::nullopt, box_of(495)).unit == Unit::Millimetre);  // nefertiti
  const UnitGuess g = resolve_unit(Unit::Auto, std::nullopt, box_of(23));
  CHECK(g.source == "guessed");
  CHECK(g.to_mm == 10.0);
  CHECK(g.reason.find("230 mm") != std::string::npos);
}

TEST_CASE("no plausible unit: mm, and the reason says so", "[units]") {
  const UnitGuess g = resolve_unit(Unit::Auto, std::nullopt, box_of(1e7));
  CHECK(g.unit == Unit::Millimetre);
  CHECK(g.reason.find("assumed mm") != std::string::npos);
}

TEST_CASE("given units beat declared ones, declared beat guesses", "[units]") {
  CHECK(resolve_unit(Unit::Inch, Unit::Metre, box_of(200)).unit == Unit::Inch);
  const UnitGuess d = resolve_unit(Unit::Auto, Unit::Metre, box_of(200));
  CHECK(d.unit == Unit::Metre);
  CHECK(d.source == "file");
}

TEST_CASE("unit names parse", "[units]") {
  CHECK(parse_unit("MM") == Unit::Millimetre);
  CHECK(parse_unit("millimeter") == Unit::Millimetre);
  CHECK(parse_unit("inch") == Unit::Inch);
  CHECK(parse_unit("auto") == Unit::Auto);
  CHECK_FALSE(parse_unit("furlong"));
  CHECK(millimetres_per(Unit::Inch) == 25.4);
}
