// The stages design_mold() runs, in order, each usable and tested on its own:
//
//   inspect_inputs   → which appliance faces lie on the skin (inner), which face away (outer)
//   choose_pull      → the pull direction and the undercuts it leaves
//   mold_frame       → a rotation whose z is the pull: the frame every later stage works in
//   parting_surface  → the surface the core and shell meet on, and the core's top with its gutter
//   fit_to_cavity    → the parting surface moved so that it crosses the cavity's rim and nowhere
//                      else touches the cavity (no knife-thin slivers of either part at the rim)
//   cut_gutter       → the overflow groove in the core's top
//   part_envelope    → how far down the core and up the shell go (conformal walls or blocks)
//   mold_features    → keys, sprue, vents, pry slots and hollows
//   plan_sections    → where a part larger than the printer is cut, and the dowels across each cut
//   place_bolts      → the bolts that clamp the parts through the frame
//   assemble_parts   → the booleans: core and shell with the cavity and the features cut
//   section_parts    → each part cut into its sections
//   print_pose       → each part turned onto its flat face (or its side, to fit) and settled in
//                      single precision
//   check_parts      → every part checked as it will be written
//
// plan_mold() runs the stages up to place_bolts (all the refusals), build_mold() the rest.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <optional>
#include <vector>

#include "tracecast/mesh/mesh.h"
#include "tracecast/print/heightfield.h"
#include "tracecast/print/mold.h"

namespace tracecast::print::stages {

//! The appliance as the mold sees it: its volume, its faces' centres, which lie on the skin
//! (inner) and which face away from it (outer; the rim is neither).
struct Inspection {
  double appliance_ml = 0;
  std::vector<Vec3> centres;
  std::vector<char> inner, outer;
};
//! Throws InputError for options out of range, an appliance that is not a closed outward solid,
//! one that does not sit on the face, or a multi-part mold asked for (parts ≥ 3) on a face that is not
//! a closed surface.
Inspection inspect_inputs(const Mesh& appliance, const Mesh& face, const MoldOptions& o);
//! The inspection of `refined`, an appliance whose faces were split and moved off the skin no
//! farther than the stamp moves them (`origin`: each face's face of the appliance `before` was
//! made of): each piece keeps its face's role, so the skin is not measured again (0.6 s for
//! nefertiti's 1.09 M faces); the volume is `refined`'s own. ProcessingError if `origin` does not
//! fit the meshes.
Inspection carry_inspection(const Inspection& before, const Mesh& refined, const std::vector<std::uint32_t>& origin);

//! Each face's unit normal (zero for a face of no area) and area.
struct FaceNormals {
  std::vector<Vec3> normal;
  std::vector<double> area;
};
FaceNormals face_normals(const Mesh& m);

//! Keeps the connected piece with the largest volume, and the voids that cross a cut of `s` (the
//! dowel holes, which the cut opens); returns the volume (mm³) of the others.
double keep_largest_piece(Mesh& m, const Sections& s = {});
//! keep_largest_piece(), returning the other pieces (besides the largest: slivers the booleans
//! leave where the parting surface meets the appliance's thin rim, closed bubbles of the cavity,
//! and pieces the parting surface cuts off between two layers of the cavity).
Mesh split_off_pieces(Mesh& m, const Sections& s = {});
//! Gives `to` each piece of `pieces` (closed, outward) that lies against it: shares faces with it,
//! the same corners the other way round, as the core and the shell share the parting surface. The
//! shared faces leave both and the rest joins `to`, where `to` stays closed and edge-manifold
//! around the piece (checked, else the piece stays). Returns the volume given (mm³); `pieces`
//! keeps the rest.
double give_pieces(Mesh& to, Mesh& pieces);
//! The total of the pieces' volumes (mm³; a void's counted as positive).
double pieces_volume(const Mesh& pieces);

struct PullChoice {
  Vec3 front = Vec3::UnitZ();  //!< the face's forward direction
  Vec3 pull = Vec3::UnitZ();
  bool searched = false;
  double undercut_area_mm2 = 0, undercut_area_frontal_mm2 = 0;
  std::vector<Undercut> undercuts;  //!< regions over 1 mm², largest first
  std::vector<Vec3> detail;         //!< eyes and mouth (its corners and centre), input coordinates, when the face analysis found them
};
//! The pull with the least undercut area within max_pull_tilt_deg of the forward direction (or
//! the given one), and the undercut regions with how far the cast must flex to release. The
//! forward direction comes from the face's analysis: `known` when the caller has it (the
//! appliance's own), else made here.
PullChoice choose_pull(const Mesh& appliance, const Mesh& face, const Inspection& in, const MoldOptions& o,
                       const FaceAnalysis* known = nullptr);

//! Rows: the mold frame's x, y, z in input coordinates, z = pull.
Eigen::Matrix3d mold_frame(const Vec3& pull);

//! The appliance and the face in the mold frame, with the appliance's faces' roles.
struct Cavity {
  Mesh appliance, face;
  std::vector<char> inner, outer;
};

//! The parting surface as height fields over one grid in the mold frame.
struct Parting {
  Grid skin, out, in;           //!< front-most skin; the appliance's outer surface; its inner one under that
  Grid top, low;                //!< the appliance's highest and lowest surfaces (any face)
  std::vector<char> foot;       //!< nodes under any face of the appliance
  std::vector<double> dist;     //!< distance (mm) from each node to the footprint
  Grid shell_h;                 //!< the parting surface: the shell's underside
  Grid core_h;                  //!< the core's top: the parting surface less the gutter
  double lift = 0;              //!< how far over the skin the parting surface crosses the rim
  CellPoints rim;               //!< the rim's points: the parting surface passes through them in the cells they lie in
  std::vector<char> land;       //!< nodes outside the cavity levelled with the rim beside it (the fit leaves them there)
  double gutter_ml = 0;
  bool skin_around = true;      //!< false: the scan ends at the appliance's edge (a plane continues it)
};
//! Over the appliance's box widened by `margin` on each side: inside the footprint just over the
//! appliance's inner surface, through the rim's points in the cells the rim crosses, around it the
//! skin lifted by half the rim's thickness (level with the rim for two cells where the skin falls
//! away steeply), blending into a plane fitted to the skin further out; where no skin is seen
//! beside the footprint, the skin round it carried in; the gutter a sin² groove outside the
//! flash land.
Parting parting_surface(const Cavity& c, const MoldOptions& o, double margin);
//! The frame's width in grid nodes: the band along the border where the parting surface is level.
int frame_band(const MoldOptions& o);

struct FitReport {
  std::size_t constraints = 0;  //!< cavity points the parting surface must pass over or under
  std::size_t moved = 0;        //!< of those, missed in some round (and so moved)
  double max_move_mm = 0;       //!< largest change of a node's height
  std::size_t missed = 0;       //!< missed still (0 when the fit succeeded)
};
//! Moves the parting surface's nodes (before the gutter is cut) until it passes at least
//! `clearance` over every front-most point of the appliance's inner surface and under every
//! front-most point of its outer surface, as interpolated on the grid's triangles (in the rim's
//! cells on theirs, the rim's points held): the surface
//! then leaves the cavity through its rim wall, and neither part keeps a sliver over or under the
//! cavity's feathered edge, as far as a cell can follow the rim (conflicting constraints within
//! one cell stay missed, by less than the rim's thickness: `missed`; the rounds stop when ten have
//! not cut the missed by 1 %). The land beside the rim (`Parting::land`) moves by 0.2 mm at most.
FitReport fit_to_cavity(Parting& p, const Cavity& c, double clearance);
//! The core's top: the parting surface less a sin² groove `gutter_depth_mm` deep, between the
//! flash land and `flash_land_mm + gutter_width_mm` from the footprint.
void cut_gutter(Parting& p, const MoldOptions& o);

//! How far the parts reach: conformal, a floor under the core and a roof over the shell `wall`
//! from everything they cover (rolling-ball offsets), filled down or up to the flat faces at the
//! frame, ribs and posts; block, flat planes `wall` beyond the cavity.
struct Envelope {
  Grid core_floor, shell_roof;  //!< conformal only
  double z_bottom = 0, z_top = 0;
  Vec3 box_min = Vec3::Zero(), box_max = Vec3::Zero();
};
Envelope part_envelope(const Parting& p, const Cavity& c, const MoldOptions& o);

//! What is added to or cut from the parts besides the cavity.
struct Features {
  Mesh male, female;        //!< keys on the core, their hollows in the shell
  Mesh channels;            //!< sprue and vents (cut from the shell)
  Mesh slots;               //!< pry slots (cut from both)
  Mesh core_void, shell_void;
  std::vector<Vec3> key_centres, vent_bottoms;
  Vec3 sprue_bottom = Vec3::Zero();
  Vec3 sprue_axis = Vec3::UnitZ();  //!< the sprue's direction as it leaves the cavity: the roof's normal there
  Vec3 sprue_bend = Vec3::Zero();   //!< where it turns to rise vertically
  Vec3 sprue_top = Vec3::Zero();    //!< where it leaves through the flat top, above the bend
  std::vector<std::string> warnings;
};
//! The features; the envelope's flat faces move out as far as the keys need (a key's sphere and a
//! wall under it in the core, its socket and a wall over it in the shell).
Features mold_features(const Parting& p, Envelope& e, const MoldOptions& o);
//! The fewest sections (at most max_sections) whose boxes fit the printer in some orientation,
//! the cuts moved within the room that leaves to where they cross the least cavity and the least
//! detail (the mark's relief, eyes, lips) and away from keys, sprue, vents and pry slots; two or
//! three dowels per cut in each part, where the part is deep enough to hold them. Throws
//! ProcessingError naming the part when no such sectioning exists (the part is too deep for the
//! printer, or needs more sections than allowed).
//! `detail`: the eyes and the mouth in the mold frame; no cut comes within 12 mm of them if another can.
Sections plan_sections(const Parting& p, const Envelope& e, const Features& f, const MoldOptions& o, const std::vector<Vec3>& detail = {});

//! Conformal parts: bolts along the pull through bosses in the frame's skirts, on each side of the
//! border at most bolt_spacing_mm apart within each section, clear of the legs at the sections'
//! corners, the keys, sprue, vents, pry slots and dowels. None for blocks, or where the frame
//! reaches the flat face (frame_depth_mm 0).
Bolts place_bolts(const Parting& p, const Envelope& e, const Features& f, const Sections& s, const MoldOptions& o);
//! Whether a grid node at `offset` from a bolt's axis lies on its boss: a square of half-width r
//! (the hole and a wall) along the grid's lines, to the nearest node. A round boss on the grid
//! has a stepped outline, each step a fin of the part's underside (the generated face, 0.5 mm
//! grid: 0.96–0.99 mm walls; a round boss a grid step wider, on the bundled example: 0.67 mm); a
//! square's sides run straight along the grid.
inline bool on_boss(const Eigen::Vector2d& offset, double r, double h) { return offset.cwiseAbs().maxCoeff() <= r + 0.5 * h; }
//! Whether a node lies in the box, along the grid's lines, round the segment a–b widened by r (as
//! on_boss, half a cell's slack).
inline bool on_segment_box(const Eigen::Vector2d& q, const Eigen::Vector2d& a, const Eigen::Vector2d& b, double r, double h) {
  const Eigen::Vector2d lo = a.cwiseMin(b).array() - (r + 0.5 * h), hi = a.cwiseMax(b).array() + (r + 0.5 * h);
  return (q.array() >= lo.array()).all() && (q.array() <= hi.array()).all();
}
//! Levels the parting surface (and the core's top with it) across each bolt's boss at the height
//! it has on the bolt's axis, so that the bolt's hole meets it square: through a surface sloping
//! at 60° a hole leaves a 30° wedge on one part. Round the boss it eases back into its own height
//! over a ring two walls wide (a smoothstep: no crease at either edge; a step at the boss's edge
//! left fins where the frame's skirt met the boss). The frame's band is levelled again after.
//! The part's walls and features must be laid on the surface after this (part_envelope).
void seat_bolts(Parting& p, const Bolts& b, const MoldOptions& o);
//! Each bolt's ends as the parts were built round it (after add_supports): the lowest underside
//! and the highest top over its boss, which its hole passes.
void bolt_reach(Bolts& b, const Envelope& e);
//! The bolts' holes, cut from both parts.
Mesh bolt_holes(const Bolts& b);

//! Where the ribs run across [lo, hi] along one axis: every rib_spacing_mm from the middle, none
//! closer to the border than the frame plus three walls (no slot too narrow to clean).
std::vector<double> rib_lines(double lo, double hi, const MoldOptions& o);

//! Fills the conformal envelope's floor and roof to the flat faces at the frame, ribs and posts
//! under the keys, sprue and vents; along each cut a wall-thick face on either side and a post
//! round each dowel; a boss round each bolt, level at the bolt's ends.
void add_supports(Envelope& e, const Parting& p, const Features& f, const Sections& s, const Bolts& b, const MoldOptions& o);
//! How far from the cavity's side a cut turns to meet it square (section_cutter): twice the
//! printer's minimum wall. A section reaches up to that (and 0.5 mm) across its cut.
double cut_land_mm(const PrinterProfile& printer);
//! What lies below a cut at `at` along `axis` (x: 0, y: 1) through the core (or the shell), as a
//! closed solid reaching past `bounds`: square to the axis, except that within `land` of the
//! cavity's side (the core's top, the shell's underside) it turns to meet that surface square,
//! so that neither section ends in a wedge where a steep surface crosses the cut.
Mesh section_cutter(const Parting& p, bool core, int axis, double at, const Aabb& bounds, double land);
//! The dowels' holes, to be cut from the core (core = true) or the shell.
Mesh dowel_holes(const Sections& s, bool core);

struct Assembly {
  Mesh core, shell;
  double envelope_ml = 0;  //!< the parts' envelope (cavity and features included)
  double sliver_ml = 0;    //!< loose pieces the booleans left, dropped
  double given_ml = 0;     //!< pieces the booleans cut off a part, given to the other part
};
Assembly assemble_parts(const Parting& p, const Envelope& e, const Features& f, const Sections& s, const Bolts& b, const Cavity& c,
                        const MoldOptions& o);

//! Where the cavity is meant to open: the sprue's and the vents' feet (a point and a radius each)
//! and an open edge the mold is poured through (a mask's neck: the piece beyond a plane).
struct Openings {
  std::vector<std::pair<Vec3, double>> balls;
  std::optional<std::pair<Vec3, double>> beyond;  //!< unit normal n and offset d: n·x > d is open
  bool contain(const Vec3& v) const;
};

//! The appliance's surface (in the mold frame, as its vertices' areas) lying more than `tolerance`
//! off every one of `parts`, except in the openings: area (mm²) and the largest distance (mm; a
//! vertex 5 mm or more off reads 5).
std::pair<double, double> open_cavity(const Mesh& appliance, const std::vector<const Mesh*>& parts, const Openings& openings,
                                      double tolerance = 0.05);
//! open_cavity() into the report (MoldReport::open_cavity_mm2, open_cavity_max_mm), with a
//! warning when not 0 that ends with `likely` (the likely cause; none when empty).
void check_closure(const Mesh& appliance, const std::vector<const Mesh*>& parts, const Openings& openings, const std::string& likely,
                   MoldReport& r);

//! The parts cut at the planes: "core" and "shell" when there is one section, else "core-1",
//! "core-2", … (x first, then y) and the same for the shell; in the mold frame. Adds to
//! `sliver_ml` what a cut leaves unconnected.
std::vector<NamedMesh> section_parts(const Assembly& a, const Sections& s, const Parting& p, const PrinterProfile& printer, double& sliver_ml);

//! The core on its base, the shell turned onto its top, each laid on its side when only that
//! fits the printer (a warning says so), side by side on the plate, settled in single precision.
//! `from_mold`: per part, the map from the mold frame to its file's coordinates; `crossings`: the
//! crossing face pairs the settling's last test found on each part as returned.
//! `turn_shells` false: every piece is taken in the pose it comes in (the parts of a multi-part
//! mold, each turned already so that its cavity faces up).
std::vector<NamedMesh> print_pose(const std::vector<NamedMesh>& pieces, const PrinterProfile& printer, std::vector<std::string>& warnings,
                                  std::vector<Eigen::Affine3d>& from_mold, std::vector<std::size_t>& crossings, bool turn_shells = true);

//! check_part() on each (their crossings as print_pose() counted them; `edges`, when given, the
//! cutting edge in each part's file); throws ProcessingError for a part that is not a valid solid.
std::vector<PartCheck> check_parts(const std::vector<NamedMesh>& parts, const std::vector<std::size_t>& crossings, const PrinterProfile& printer,
                                   std::vector<std::string>& warnings, const std::vector<CuttingEdge>* edges = nullptr);

//! The appliance's rim (the centres of its faces neither on the skin nor facing away from it),
//! in the mold frame `R`, as each part's file has it.
std::vector<CuttingEdge> cutting_edges(const Inspection& in, const Eigen::Matrix3d& R, const std::vector<Eigen::Affine3d>& print_from_mold,
                                       double zone_mm);

//! What the mold is before anything is cut: the pull, the fitted parting surface, the walls,
//! the features, the sections and the bolts, with the report so far. Everything here that can
//! refuse the mold does (a printer too small for any sectioning, a grid too large), so a caller
//! that records the piece before building it (the ledger) plans first. Planned on the unstamped
//! appliance, it holds for the stamped one: the mark moves the outer surface by at most 0.04 mm,
//! and not at all where the piece is thinner than 0.4 mm (the rim the parting surface meets).
struct MultipartDesign;
struct MoldPlan {
  MoldReport report;
  PullChoice pull;
  bool multipart = false;  //!< built by design_multipart_mold() on `multipart_design`; nothing else is planned
  std::shared_ptr<MultipartDesign> multipart_design;
  Parting parting;
  Envelope envelope;
  Features features;
  Sections sections;
};
//! The stages from inspect_inputs() to place_bolts(); `inspection` as for design_mold().
MoldPlan plan_mold(const Mesh& appliance, const Mesh& face, const MoldOptions& o, const FaceAnalysis* face_analysis = nullptr,
                   const Inspection* inspection = nullptr);
//! The plan carried to the appliance refined by the stamp (`origin`: each face's face of the
//! planned appliance): a multi-part mold's division of the surface, face by face.
void carry_plan(MoldPlan& plan, const std::vector<std::uint32_t>& origin);
//! The stages from assemble_parts() to check_parts(), on `appliance` (the planned one, or it
//! stamped: `inspection` then its carried inspection).
Mold build_mold(MoldPlan plan, const Mesh& appliance, const Mesh& face, const MoldOptions& o, const Inspection* inspection = nullptr);

}  // namespace tracecast::print::stages
