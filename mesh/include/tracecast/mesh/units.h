// Length units of input files, and the guess of an unknown unit from the size of a head.
//
// Everything inside tracecast is in millimetres; files are converted on reading. Scans arrive
// in mm, cm, m or inches with nothing in the file to say which (PLY, OBJ, STL, XYZ), so `auto`
// picks the unit that makes the object the size of a human head or face.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tracecast/mesh/mesh.h"

namespace tracecast {

enum class Unit { Auto, Millimetre, Centimetre, Metre, Inch };

//! "mm" | "cm" | "m" | "in" | "auto" (also long forms such as "millimeter"); nullopt otherwise.
std::optional<Unit> parse_unit(const std::string& text);
std::string unit_name(Unit unit);  //!< "mm", "cm", "m", "in", "auto"
//! The names a user gives a file's unit in (short forms): "auto", "mm", "cm", "m", "in".
const std::vector<std::string>& unit_names();
double millimetres_per(Unit unit);  //!< 1, 10, 1000, 25.4; precondition: unit != Auto

struct UnitGuess {
  Unit unit = Unit::Millimetre;
  double to_mm = 1.0;        //!< factor applied to the file's coordinates
  std::string source;        //!< "given" (by the user), "file" (declared in the file), "guessed"
  std::string reason;        //!< one sentence a user can check
};

//! Plausible largest extent of a head-sized object in mm (a nose appliance to a full bust).
constexpr double kHeadMinExtentMm = 40.0;
constexpr double kHeadMaxExtentMm = 1000.0;
//! The extent a guess aims at: a face or head as scanned.
constexpr double kHeadTypicalExtentMm = 220.0;

//! Chooses the unit: `requested` unless Auto; else the unit the file declares, if any; else the
//! candidate whose conversion puts the largest bounding-box extent closest (in ratio) to a
//! typical head, among those that fall in the plausible range.
UnitGuess resolve_unit(Unit requested, std::optional<Unit> declared, const Aabb& box_in_file_units);

}  // namespace tracecast
