// Internal: the parting line along the appliance's rim (mold_rim.cpp), for parting_surface and
// fit_to_cavity. A grid's cell cannot put the parting surface through a rim that crosses it on a
// steep wall; the rim's own points, added to the cells it crosses, do.
#pragma once

#include <unordered_map>
#include <vector>

#include "tracecast/print/mold_stages.h"

namespace tracecast::print::stages {

//! One edge of the appliance's rim on the skin, moved onto the parting line.
struct RimSegment {
  Vec3 a, b;
};

//! The appliance's rim on the skin: its edges between a face on the skin that faces it (a step
//! along its normal goes into the skin) and one that does not (the rim's wall, or an outer face
//! near the tip the inspection took for skin-side), each moved `lift` off the skin along that
//! face's normal and 0.01 mm into the appliance: halfway up the rim's wall, inside the cavity.
std::vector<RimSegment> appliance_rim(const Cavity& c, double lift);

//! The rim's points in the grid's cells: where it crosses the cells' edges (each such point in both
//! cells) and its corners inside cells; none within 0.01 mm of another point in its cell, of a
//! node, or of an edge of its cell it does not lie on. Cells on the grid's border are left alone.
CellPoints rim_points(const std::vector<RimSegment>& rim, const Grid& g);

//! The parting surface level for `width` outward from the rim where the skin beyond falls away
//! steeply: each node off the cavity within `width` of it — off the footprint where the surface
//! there lies more than twice its distance under the rim, or under an outer surface overhanging
//! the rim — takes the rim's height at its nearest point (under the overhang at most 0.02 mm under
//! the appliance's lowest face). Marks them in `held`.
void level_land(Parting& p, const std::vector<RimSegment>& rim, double width, const std::vector<char>& cavity, std::vector<char>& held);

//! A point (x, y) in a cell the rim's points shape: the grid's corners of its triangle there and
//! their weights, and `fixed`, the part of the surface's height there the rim's points (which do
//! not move) make. False where the corners make less than 30 % of it.
bool on_rim_cell(const Parting& p, CellTriangles& tins, std::size_t cell, double x, double y, GridCorners& at, double& fixed);

}  // namespace tracecast::print::stages
