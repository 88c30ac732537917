// The two-part casting mold: core (positive of the face under the appliance, on a flat base) and
// shell (negative of the appliance's outer surface, flat top), with flash land, overflow gutter,
// registration keys, pour sprue, vents and pry slots.
//
// Construction, in a frame whose z is the pull direction: the parting surface is a height field
// over a rectangle: the skin (front-most along the pull) around the appliance, blended further out
// into a smooth plane fitted to the skin around the flash land; inside the appliance's footprint it
// runs just over the appliance's inner surface, fitted so that it leaves the appliance through its
// rim (mold_stages.h). The core is under the parting surface (conformal walls on a frame and ribs,
// or a block down to a flat base), the shell over it; subtracting the appliance from both (CGAL
// corefinement, exact predicates) leaves a cavity that is exactly the appliance, and since the
// parting surface lies inside the appliance there, no two surfaces of a boolean coincide. The gutter is a groove in the core's top just outside the flash
// land; keys are hemispheres on the core and matching hollows, larger by the clearance, in the
// shell; sprue and vents are cylinders through the shell.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "tracecast/mesh/mesh.h"
#include "tracecast/mesh/options.h"
#include "tracecast/mesh/step_timer.h"
#include "tracecast/print/printer.h"

namespace tracecast {
struct FaceAnalysis;
namespace print::stages {
struct Inspection;
}
}

namespace tracecast::print {

//! How a mold is made. Every member is an option of mold_option_table(): its key, flag, unit,
//! range and help live there, its default here.
struct MoldOptions {
  std::optional<Vec3> pull;             //!< pull direction of the shell; searched if unset
  std::optional<Vec3> front;            //!< the face's forward direction (hint for the search); found if unset
  double max_pull_tilt_deg = 40;        //!< search cone around the forward direction
  double flash_land_mm = 2.5;           //!< contact band between the appliance's edge and the gutter
  double gutter_width_mm = 3.0;
  double gutter_depth_mm = 1.5;
  std::string style = "conformal";      //!< "conformal": walls following the cavity and parting surface, on a frame and ribs; "block": solid blocks
  double wall_mm = 3.0;                 //!< material around the cavity, under it and over it
  double frame_mm = 4.0;                //!< conformal: width of the frame along the mold's border
  double frame_depth_mm = 15.0;         //!< conformal: how far the frame reaches past the parting surface; legs at the corners reach the flat face (0: all of it does)
  double rib_spacing_mm = 80.0;         //!< conformal: ribs (as thick as the wall) at this spacing under the walls (0: none)
  int keys = 4;                         //!< registration keys (0 or ≥ 3)
  double key_radius_mm = 5.0;
  double sprue_diameter_mm = 10.0;      //!< 0: none
  bool top_pour = false;                //!< sprue at the cavity's highest point; default: lowest (bottom fill)
  double vent_diameter_mm = 1.0;        //!< 0: none
  int max_vents = 6;
  double pry_slot_mm = 5.0;             //!< 0: none
  double resolution_mm = 0.5;           //!< grid of the parting surface
  double hollow_mm = 0;                 //!< hollow each part, leaving walls this thick, with two drain holes (0: solid)
  double rigid_undercut_mm = 3.0;       //!< undercuts deeper than this are flagged rigid
  int max_sections = 8;                 //!< a part larger than the printer is cut into at most this many sections
  double dowel_diameter_mm = 4.0;       //!< pins across each cut that align the sections (holes: plus the key clearance)
  double dowel_length_mm = 16.0;
  double bolt_diameter_mm = 4.0;        //!< conformal: bolts that clamp the parts through bosses in the frame's skirt (0: none)
  double bolt_spacing_mm = 80.0;        //!< the most room between two bolts along a side of the frame
  int parts = 0;                        //!< 0: as the piece needs (two, or a core and as many shell parts as its undercuts need); 2: core and shell; 3–6: a core and parts − 1 shell parts
  double flange_mm = 10.0;              //!< multi-part: how far the flanges between parts reach beyond the wall
  double grid_mm = 0;                   //!< multi-part: the grid the parts' walls are sampled on (0: chosen from the piece's size and the wall)
  PrinterProfile printer = *find_printer("resin");
};

//! The mold's options: CLI flags, the recipe's "mold" section, the reports' and ledger's record.
const OptionTable<MoldOptions>& mold_option_table();
//! A printer profile as the reports and the ledger record it.
nlohmann::json printer_json(const PrinterProfile& p);

struct Undercut {
  std::string surface;     //!< "outer" (formed by the shell) or "inner" (formed by the core)
  Vec3 centroid = Vec3::Zero();
  double area_mm2 = 0;
  double depth_mm = 0;     //!< how far the cast must flex to release
  bool rigid = false;
};

//! At most this many thin spots are listed per part.
inline constexpr std::size_t kMaxThinSpots = 20;

//! A place where a part's wall is thinner than the printer's minimum: the thinnest sample there.
struct ThinSpot {
  Vec3 at = Vec3::Zero();  //!< where the thinnest sample's ray starts, in the part's file coordinates
  double thinnest_mm = 0;
  std::size_t samples = 0;  //!< thin samples within 5 mm of the spot's first
};

struct PartCheck {
  std::string name;
  std::size_t faces = 0;
  bool closed = false, manifold = false, oriented = false;
  std::size_t self_intersections = 0;
  double volume_ml = 0;
  //! Walls: a ray from every face centre inwards (against the face normal) that leaves through a
  //! face turned against the one it started from. Samples under two layers are slivers the printer
  //! does not form; every other sample is a printed wall.
  double min_wall_mm = 0;        //!< thinnest printed wall (the least sample of two layers or more)
  double required_wall_mm = 0;   //!< the printer's minimum wall the part was checked against
  std::size_t wall_samples = 0;  //!< rays that measured a wall
  std::size_t thin_samples = 0;  //!< printed-wall samples thinner than the required wall
  std::size_t sliver_samples = 0;  //!< samples under two layers: not formed by the printer
  //! Of the thin samples, those at the cutting edge: within edge_zone_mm (the flash land's width)
  //! of the appliance's rim, where the parts meet at its feathered edge. Still thin: the count
  //! says where the thin walls are, it does not excuse them.
  std::size_t edge_samples = 0;
  double edge_zone_mm = 0;       //!< 0: the rim was not known (a part checked from its file alone)
  //! The thinnest printed wall farther than edge_zone_mm from the rim (NaN: no sample is); the
  //! same as min_wall_mm when the rim is not known.
  double min_wall_off_edge_mm = 0;
  std::vector<ThinSpot> thin_spots;  //!< the thin samples gathered into spots, thinnest first (at most kMaxThinSpots)
  BuildFit fit;                  //!< as placed in the file: what a slicer gets
  BuildFit turned;               //!< the best of the 6 axis-aligned orientations
};
//! A part's check as reports give it (docs/formats.md#mold-report, `parts`).
void to_json(nlohmann::json& j, const PartCheck& c);

//! A pin across a cut, aligning the two sections it joins.
struct Dowel {
  int axis = 0;            //!< 0: across a cut x = const (the pin lies along x); 1: across y = const; 2: z = const (multi-part)
  Vec3 centre = Vec3::Zero();  //!< on the cut's plane, in the mold frame
  bool core = true;        //!< in the core's sections (else the shell's)
  bool boss = false;       //!< in a boss added across the cut for it (Sections::boss_radius_mm)
};

//! Where the parts are cut (both parts at the same planes) and the dowels across the cuts.
struct Sections {
  std::array<std::vector<double>, 2> cuts;  //!< planes x = c and y = c in the mold frame, ascending
  std::vector<double> cuts_z;               //!< a multi-part mold's part only: planes z = c, across its pull (its print frame)
  std::vector<Dowel> dowels;
  double hole_radius_mm = 0;  //!< the dowel's radius plus the printer's key clearance
  double hole_depth_mm = 0;   //!< on each side of the cut
  double boss_radius_mm = 0;  //!< a dowel's boss (multi-part parts): a cylinder round its axis, the hole and a wall;
  double boss_reach_mm = 0;   //!< it reaches this far each side of the cut (the hole's depth and a wall)
  Vec3 part_size_mm = Vec3::Zero();  //!< the larger part's box before cutting
  std::vector<std::string> warnings;
  std::size_t count() const { return (cuts[0].size() + 1) * (cuts[1].size() + 1) * (cuts_z.size() + 1); }
};
//! Sections as reports give them (docs/formats.md#mold-report, `sections`), in the mold frame.
void to_json(nlohmann::json& j, const Sections& s);

//! A bolt along the pull that clamps core and shell through a boss in the frame's skirts.
struct Bolt {
  Vec3 centre = Vec3::Zero();      //!< on the parting surface, in the mold frame
  double floor_z = 0, roof_z = 0;  //!< the boss's ends: the core's skirt edge and the shell's
  int border_axis = 0;             //!< the border it stands on: x = border_at (0) or y = border_at (1)
  double border_at = 0;
};
struct Bolts {
  std::vector<Bolt> bolts;
  double diameter_mm = 0;     //!< the bolt's (M4: 4)
  double hole_radius_mm = 0;  //!< the bolt's radius plus the printer's key clearance
  double boss_radius_mm = 0;  //!< the hole's plus a wall: the half-width of the square boss
  std::vector<std::string> warnings;
  double grip_mm() const;     //!< the longest stack a bolt clamps (boss to boss)
  double length_mm() const;   //!< the bolts to buy: the grip plus washers and a nut (1.5 diameters), to the next 5 mm
};
//! Bolts as reports give them (docs/formats.md#mold-report, `bolts`), in the mold frame.
void to_json(nlohmann::json& j, const Bolts& b);

//! One part's pull: the direction it leaves the cast in, the cavity it forms and what of that does
//! not release along it.
struct PartPull {
  std::string part;                    //!< "core", "shell", "shell-1", …
  std::optional<Vec3> direction;       //!< in the mold frame; none for a core the cast wraps round (it is peeled off)
  double cavity_area_mm2 = 0;          //!< the piece's surface this part forms
  double undercut_area_mm2 = 0;        //!< of that, turned away from the pull or hidden along it by the piece
  double undercut_depth_mm = 0;        //!< the most material in the way along the pull: how far the cast must flex
};
void to_json(nlohmann::json& j, const PartPull& p);

//! A part of a multi-part mold cut into sections: `frame`, the rotation from the mold frame to
//! the one its cuts and dowels are given in (its print frame: its pull along −z).
struct PartSections {
  std::string part;
  Eigen::Matrix3d frame = Eigen::Matrix3d::Identity();
  Sections sections;
};

struct MoldReport {
  std::string layout = "two-part";      //!< "two-part" (height fields along one pull) or "multi-part" (a core and shell parts, each its own pull)
  std::vector<PartPull> pulls;          //!< per part of the layout (before sectioning)
  double grid_mm = 0;                   //!< multi-part: the step the parts' walls were sampled on (0: a two-part mold)
  Vec3 pull = Vec3::UnitZ();
  bool pull_searched = false;
  Eigen::Matrix3d frame = Eigen::Matrix3d::Identity();  //!< rows: the mold frame's x, y, z (z = pull) in input coordinates; parts are in this frame
  double undercut_area_mm2 = 0;          //!< for the chosen pull
  double undercut_area_frontal_mm2 = 0;  //!< for the face's forward direction
  std::vector<Undercut> undercuts;
  double appliance_ml = 0;
  double void_ml = 0;                    //!< the parts' envelope minus core and shell: cavity, gutter, key gaps, sprue, vents, slots
  //! The cavity's closure (two-part molds): the appliance's surface that lies more than 0.05 mm off
  //! both parts (a void against the cavity, which the cast fills: a fin), by the sprue's foot and
  //! the vents' left out; its area and the largest distance.
  double open_cavity_mm2 = 0, open_cavity_max_mm = 0;
  double gutter_ml = 0;
  double sliver_ml = 0;                  //!< loose slivers dropped from the parts (along the appliance's rim)
  std::vector<Vec3> key_centres;
  std::vector<double> key_radii_mm;      //!< each key's ball (its socket: plus the printer's key clearance)
  bool open_pour = false;                //!< multi-part: poured through the piece's open planar edge (a mask's neck), no sprue
  Vec3 sprue_bottom = Vec3::Zero();      //!< where the sprue opens into the cavity (lowest full-thickness point for bottom fill)
  Vec3 sprue_bend = Vec3::Zero();        //!< the sprue leaves the cavity square to its roof, to here, then rises vertically
  std::vector<Vec3> vent_bottoms;        //!< the cavity's local high points (pull up), where the vents start
  Vec3 box_min = Vec3::Zero(), box_max = Vec3::Zero();  //!< in the mold frame (z along the pull)
  std::vector<PartCheck> parts;
  Sections sections;                     //!< where the parts were cut to fit the printer (none: count() == 1)
  std::vector<PartSections> part_sections;  //!< multi-part: each part that was cut to fit the printer
  Bolts bolts;                           //!< the clamping bolts through the frame
  std::vector<Eigen::Affine3d> print_from_mold;  //!< per part: mold frame → its file's coordinates (the print pose)
  std::vector<std::string> warnings;
  Timings timings;
};

struct Mold {
  std::vector<NamedMesh> parts;        //!< "core", "shell", assembled, in the mold frame
  std::vector<NamedMesh> print_parts;  //!< the pieces printed: the parts, or their sections ("core-1", …), in print pose (core on its base, shell on its top,
                                       //!< side by side, z = 0 on the plate), coordinates exact in
                                       //!< single precision: what STL and 3MF store, and what was checked
  MoldReport report;
};

//! The refusals of design_mold() alone (options out of range, an appliance that is not a closed
//! solid or does not sit on the face: InputError), in a fraction of its time: the check a
//! pipeline makes before it commits to a piece.
void check_mold_inputs(const Mesh& appliance, const Mesh& face, const MoldOptions& options = {});

//! Throws InputError if the appliance is not a closed solid or does not sit on the face, and
//! ProcessingError if a part cannot be made valid. Nothing is written here. `face_analysis`: the
//! face's analysis when the caller has it (the one the appliance was made with), else it is made
//! here (1.6 s on a 250,000-face scan). `inspection`: the appliance's inspection when the caller
//! has it (stages::carry_inspection() from the unstamped appliance's), else it is made here.
Mold design_mold(const Mesh& appliance, const Mesh& face, const MoldOptions& options = {}, const FaceAnalysis* face_analysis = nullptr,
                 const stages::Inspection* inspection = nullptr);

//! The appliance's rim where a part's file has it: points along it (part file coordinates), and
//! how far from them the cutting edge reaches.
struct CuttingEdge {
  std::vector<Vec3> rim;
  double zone_mm = 0;
};

//! One wall sample: a ray from a face's centre inwards (against its normal); `mm` is how far it
//! runs to a face turned against the one it started from, NaN where it leaves through a side met at
//! an angle (a corner) or not at all. Every face is sampled up to 4 M faces, then every k-th.
//! With a printer: where a sample under its minimum wall ran along a shelf or a tab less than two
//! layers high (the largest ball about the ray's midpoint, clear of the surface, is under two
//! layers across: a step of the parting surface beside the appliance's rim), `mm` is that ball's
//! diameter, so that the sample counts as the sliver it is; a wall's own samples keep their rays'
//! length (at its middle the ball is as wide as the wall).
struct WallSample {
  std::size_t face = 0;
  Vec3 at = Vec3::Zero();  //!< where the ray starts, just inside the face
  double mm = 0;
};
std::vector<WallSample> wall_samples(const Mesh& part, const PrinterProfile* printer = nullptr);
//! The part with vertex colours by its thinnest wall sample among the faces round each vertex:
//! magenta under two layers (slivers), red under the printer's minimum wall, amber under twice
//! that, grey otherwise (and where no wall was measured). For `tracecast check --wall-map`.
Mesh wall_map(const Mesh& part, const PrinterProfile& printer);

//! Checks a part (closed, manifold, crossings, walls, build volume) as `tracecast check` does.
//! `crossings`: the part's crossing face pairs when already counted on exactly this mesh (the
//! mold's settling counts them last); counted here otherwise. `edge`: where the cutting edge is,
//! to count the thin samples there (PartCheck::edge_samples).
PartCheck check_part(const std::string& name, const Mesh& part, const PrinterProfile& printer,
                     std::optional<std::size_t> crossings = std::nullopt, const CuttingEdge* edge = nullptr);

//! The printability policy, one for the mold's own checks, the reports and `tracecast check`.
//! A valid solid: closed, manifold, outward and free of crossing faces.
bool is_valid_solid(const PartCheck& c);
//! Why a checked part is not a valid solid (one line), or "" when it is one.
std::string solid_problem(const PartCheck& c);
//! No printed wall thinner than the printer's minimum (min_wall_mm ≥ required_wall_mm).
bool walls_ok(const PartCheck& c);
//! Printable on the printer it was checked for: a valid solid, its walls ok, and it fits as placed.
bool is_printable(const PartCheck& c);
//! Why a checked part is not printable, one line per reason; empty when it is.
std::vector<std::string> part_problems(const PartCheck& c, const PrinterProfile& printer);
//! What the printer's technology means for casting silicone in its parts.
std::string technology_warning(const PrinterProfile& printer);

}  // namespace tracecast::print
