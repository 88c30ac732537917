// The ear prosthesis: from a closed head scan with one ear missing, the healthy ear mirrored
// across the head's symmetry plane onto the other side, as a solid that sits on the skin there.
// Its margin is the healthy ear's own blend into the skin, mirrored: it thins towards the skin
// and ends where it is `edge_mm` thick (a grid cannot hold a thinner edge without breaking it
// into splinters).
//
// The solid is the zero level of a field on a grid (marching tetrahedra): inside the mirrored
// head, within a few millimetres of the mirrored ear, and outside the head. A grid's level set is
// closed, manifold and free of crossings by construction; it is checked all the same.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "tracecast/mesh/face.h"
#include "tracecast/mesh/mesh.h"
#include "tracecast/mesh/options.h"
#include "tracecast/mesh/step_timer.h"
#include "tracecast/sculpt/solid.h"

namespace tracecast::sculpt {

struct EarOptions {
  std::string side = "auto";      //!< the side that lacks the ear: auto, left or right (the wearer's)
  double protrusion_mm = 1.5;     //!< how far the mirrored head must stand out of this one to count as ear
  double reach_mm = 4.0;          //!< how far from the mirrored ear's surface its solid is taken (its half thickness and more)
  double edge_mm = 1.0;           //!< the margin's thickness where it ends on the skin
  double resolution_mm = 0.5;     //!< the grid's step
  SymmetryOptions symmetry;
};
const OptionTable<EarOptions>& ear_option_table();

struct EarReport {
  SymmetryPlane plane;
  std::string side;               //!< left or right (the wearer's), or + / − of the plane's normal when no face was found
  double ear_area_mm2 = 0;        //!< the healthy ear's surface standing out of the head's mirror image
  double ear_height_mm = 0;       //!< how far the mirrored ear stands out of the head at most
  SolidFigures solid;
  std::size_t dropped_pieces = 0; //!< pieces of the level set apart from the ear, left out
  Timings timings;
};
//! {symmetry_plane, side, ear_area_mm2, ear_height_mm, solid, dropped_pieces, timings_s}.
void to_json(nlohmann::json& j, const EarReport& r);

//! The prosthesis for the ear `head` lacks. Throws InputError if the head is not closed,
//! ProcessingError if no ear is missing (the head's mirror image stands out of it nowhere) or the
//! result fails its checks.
Mesh make_ear(const Mesh& head, const EarOptions& o, EarReport* report = nullptr);

}  // namespace tracecast::sculpt
