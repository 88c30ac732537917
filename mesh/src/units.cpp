#include "tracecast/mesh/units.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace tracecast {

std::optional<Unit> parse_unit(const std::string& text) {
  std::string t;
  for (char c : text) t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "auto") return Unit::Auto;
  if (t == "mm" || t == "millimeter" || t == "millimetre" || t == "millimeters" || t == "millimetres")
    return Unit::Millimetre;
  if (t == "cm" || t == "centimeter" || t == "centimetre" || t == "centimeters" || t == "centimetres")
    return Unit::Centimetre;
  if (t == "m" || t == "meter" || t == "metre" || t == "meters" || t == "metres") return Unit::Metre;
  if (t == "in" || t == "inch" || t == "inches") return Unit::Inch;
  return std::nullopt;
}

std::string unit_name(Unit unit) {
  switch (unit) {
    case Unit::Auto: return "auto";
    case Unit::Millimetre: return "mm";
    case Unit::Centimetre: return "cm";
    case Unit::Metre: return "m";
    case Unit::Inch: return "in";
  }
  return "?";
}

const std::vector<std::string>& unit_names() {
  static const std::vector<std::string> names = {unit_name(Unit::Auto), unit_name(Unit::Millimetre), unit_name(Unit::Centimetre),
                                                 unit_name(Unit::Metre), unit_name(Unit::Inch)};
  return names;
}

double millimetres_per(Unit unit) {
  switch (unit) {
    case Unit::Centimetre: return 10.0;
    case Unit::Metre: return 1000.0;
    case Unit::Inch: return 25.4;
    default: return 1.0;
  }
}

UnitGuess resolve_unit(Unit requested, std::optional<Unit> declared, const Aabb& box) {
  UnitGuess g;
  if (requested != Unit::Auto) {
    g.unit = requested;
    g.to_mm = millimetres_per(requested);
    g.source = "given";
    g.reason = fmt::format("unit {} given by the user", unit_name(requested));
    return g;
  }
  if (declared && *declared != Unit::Auto) {
    g.unit = *declared;
    g.to_mm = millimetres_per(*declared);
    g.source = "file";
    g.reason = fmt::format("the file declares its unit as {}", unit_name(*declared));
    return g;
  }
  g.source = "guessed";
  const double extent = box.extent().maxCoeff();
  if (!(extent > 0.0) || !std::isfinite(extent)) {
    g.reason = "no extent to judge from; assumed mm";
    return g;
  }
  const Unit candidates[] = {Unit::Millimetre, Unit::Centimetre, Unit::Metre, Unit::Inch};
  double best_score = std::numeric_limits<double>::infinity();
  Unit best = Unit::Millimetre;
  for (Unit u : candidates) {
    const double mm = extent * millimetres_per(u);
    if (mm < kHeadMinExtentMm || mm > kHeadMaxExtentMm) continue;
    const double score = std::abs(std::log(mm / kHeadTypicalExtentMm));
    if (score < best_score) {
      best_score = score;
      best = u;
    }
  }
  if (!std::isfinite(best_score)) {
    g.reason = fmt::format(
        "largest extent {:.4g} (file units) is no head size in mm, cm, m or in ({:.0f}-{:.0f} mm); assumed mm",
        extent, kHeadMinExtentMm, kHeadMaxExtentMm);
    return g;
  }
  g.unit = best;
  g.to_mm = millimetres_per(best);
  g.reason = fmt::format("largest extent {:.4g} (file units) is {:.0f} mm if read as {}, the size of a head or face",
                         extent, extent * g.to_mm, unit_name(best));
  return g;
}

}  // namespace tracecast
