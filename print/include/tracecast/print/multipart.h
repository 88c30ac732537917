// Molds in more than two parts, for pieces that no single pull releases: a full-head mask, an ear.
//
// The piece's outer surface is divided among shell parts, each released along its own pull: the
// pulls are chosen from directions spread over the sphere, the fewest that see (rays from the
// surface along them meet neither the piece nor the skin) nearly all of it; each outer face goes
// to the part whose pull sees it and is most square to it, and islands too small to print alone
// join the neighbour they share most edge with. The core is a wall under the skin.
//
// The parts are then zero levels of fields on one grid (mesh/level_set.h), from the piece's and
// the skin's signed distances and the distances to each part's share of the outer surface:
//   - core and shells meet on the skin lifted by `lift` (inside the piece, and across its rim);
//   - two shell parts meet where their shares of the surface are equally near (a bisector, which
//     leaves the surface square to it; each share less a band along the seam, so that beyond a
//     ridge the two are not equally near everywhere);
//   - each shell part is the wall within `wall_mm` of the piece, and a flange `flange_mm` further
//     along every surface it shares with another part (a skirt on the skin, a plate on each
//     bisector), where the keys sit: a ball on one part, its socket larger by the printer's
//     clearance in the other (exact spheres, added and cut by booleans);
//   - a piece with an open planar edge (a mask's neck) is poured there: every part ends
//     kOpenShort short of that edge; any other piece gets a sprue at its highest point (the core
//     down);
//   - vents at the cavity's other local high points in the casting pose.
// Subtracting the piece from every part (exact booleans) leaves a cavity that is exactly the
// piece; sprue and vents are cut as exact cylinders. A part too large for the printer is cut into
// sections pinned by dowels, on bosses added across the cut where its wall is too thin for a pin.
#pragma once

#include <array>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tracecast/print/mold.h"
#include "tracecast/print/mold_stages.h"

namespace tracecast::print::stages {

//! The piece's surface divided among the parts.
struct Division {
  std::vector<int> label;        //!< per face: 0 the core's (on the skin), k ≥ 1 shell part k's, −1 the rim (shared)
  std::vector<Vec3> pulls;       //!< shell part k's pull at k − 1
  std::vector<PartPull> parts;   //!< names and pulls: the core first, then the shell parts
};

//! Divides the piece's surface: inner faces (on the skin) to the core, outer ones among `shells`
//! shell parts (0: two, and more while each releases 3 % more of the outer surface, up to 5 or 99 %),
//! each face then to the part most of the outer surface within `smooth_mm` of it goes to.
Division divide_surface(const Mesh& piece, const Mesh& skin, const Inspection& in, int shells, double smooth_mm);
//! The division design_multipart_mold() builds on (`parts` ≥ 3 forces parts − 1 shells), after
//! refusing, naming --grid, a piece whose parts' grid would hold more values than the level sets
//! take (150 M: a bust's head and shoulders at 1 mm): the multi-part mold's refusals, made before
//! anything is recorded.
Division plan_division(const Mesh& piece, const Mesh& skin, const Inspection& in, const MoldOptions& o);

//! A plane the piece is open along (a mask's neck): its outward normal and offset (n·x = offset).
struct OpenPlane {
  Vec3 normal = Vec3::UnitZ();
  double offset = 0;
};
//! The plane of the piece's rim faces (neither inner nor outer) when at least 100 mm² of them lie
//! nearly flat in one plane (within 0.5 mm and 5.7°): a mask's neck edge, whose edges are rounded
//! so that only its middle is flat, and which a remeshing leaves flat to a few tenths of a
//! millimetre (the generated head's mask remeshed at 1 mm: 36 mm² within 0.05 mm and 1.1°, 201 mm²
//! within these). Its offset is where the parts end, the cast's edge there being the silicone's
//! level: at least kOpenShort under the lowest of those faces' corners (ending past the edge, the
//! parts closed it with a film), and where the piece's walls under it stand square to the plane
//! (90 % of the faces in a 0.5 mm slab within 72.5° of it; over the edge's rounding each part
//! would end in a wedge), else none.
std::optional<OpenPlane> find_open_plane(const Mesh& piece, const Division& d);
constexpr double kOpenShort = 0.3;
//! The core–shell parting's lift for a piece poured through an open edge (MultipartPlan::lift).
constexpr double kOpenLift = 0.8;

//! A connected piece of a part this large or larger is mold, not a sliver: it is kept (the
//! full-head mask's shell-1 had one of 111.6 ml cut off by the cavity, which dropped took the
//! mold's wall off 10,296 mm² of its neck) and printed as a piece of its own.
constexpr double kLeastPieceMl = 0.5;
//! The connected pieces of `m` of at least `min_ml` (the smaller ones' volume added to
//! `sliver_ml`, and specks of a few faces dropped: a cut of nefertiti's mask's shell left one of
//! 18 faces and no volume); a void of 1 mm³ or more goes with the piece whose box holds it.
std::vector<Mesh> pieces_of(const Mesh& m, double min_ml, double& sliver_ml);

struct Key {
  Vec3 centre = Vec3::Zero();
  double radius = 0;
  int male = 0, female = 0;  //!< part numbers (0: core, k: shell part k)
};
struct Channel {
  Vec3 from = Vec3::Zero(), to = Vec3::Zero();  //!< from inside the piece to the end of its boss (the hole goes 2 mm further)
  double radius = 0;
  bool sprue = false;
  int part = 1;  //!< the shell part it leaves through (a boss a wall thick round it there, its end square to it)
};
//! What the fields are built from besides the division.
struct MultipartPlan {
  //! The core–shell parting surface over the skin: 0.4 mm, and 0.8 mm for a piece poured through
  //! an open edge (a mask), whose openings are rounded over half its own grid step: lower, the
  //! parting surface met the rounding's underside at a slant and left the shell there 0.1 mm thin
  //! (the generated head's mask: 612 → 161 thin samples round the eyes). An ear's base meets the
  //! skin in a crease: at 0.8 its core formed 79 mm² of the ear it cannot release (at 0.4, under 29).
  double lift = 0.4;  // kOpenLift when poured through an open edge
  double flange_half = 0;     //!< a flange's thickness on each side of a parting surface
  double grid_mm = 0;         //!< the step the parts' solids are sampled on (multipart_grid_mm)
  std::optional<OpenPlane> open;
  Vec3 up = Vec3::UnitZ();    //!< up in the casting pose
  std::vector<Key> keys;
  std::vector<Channel> channels;
  std::vector<std::string> warnings;
};
MultipartPlan plan_multipart(const Mesh& piece, const Mesh& skin, const Division& d, const MoldOptions& o);
//! The step the parts' solids are sampled on: `grid_mm`, or where it is 0 (the default) half the
//! wall, at most 1 mm for a piece up to 150 mm across (an ear) and 1.5 mm for a larger one (a
//! full-head mask: its mold in half the time, with the same keys and fewer thin walls; an ear's
//! on 1.5 mm left wider grooves where three parts meet at its cavity).
double multipart_grid_mm(const MoldOptions& o, const Mesh& piece);

//! The parts' solids before the cavity is cut: the core, then shell part 1, 2, … (level sets).
//! Keys whose ball and a wall round it would not lie in the two parts they join are dropped from
//! the plan first (with a warning).
std::vector<Mesh> multipart_solids(const Mesh& piece, const Mesh& skin, const Division& d, MultipartPlan& plan, const MoldOptions& o);

//! Each solid with its keys' balls, less the piece, its keys' sockets (larger by the printer's
//! clearance) and the channels (exact booleans), its loose slivers dropped (their volume added to
//! `sliver_ml`): "core", "shell-1", …
std::vector<NamedMesh> cut_cavity(std::vector<Mesh> solids, const Mesh& piece, const MultipartPlan& plan, const PrinterProfile& printer,
                                  double& sliver_ml);

//! Each part's figures as made: the piece's surface it forms (its faces within 0.1 µm of it), and
//! of that what its pull does not release (a ray from the face along the pull meets the piece),
//! with the most material in the way.
void measure_release(std::vector<PartPull>& pulls, const std::vector<NamedMesh>& parts, const Mesh& piece);

//! A multi-part mold before its cavity is cut: the division, the plan and the parts' solids.
struct MultipartDesign {
  Division division;
  MultipartPlan plan;
  std::vector<Mesh> solids;
};
//! plan_division(), plan_multipart() and multipart_solids(), then the refusal of a part that no
//! sectioning within max_sections fits: all of a multi-part mold's refusals, made before anything
//! is recorded. The bound used is the part's solid, grown on each side by its largest key ball, in
//! its print pose (cutting the cavity only takes away from it), so that section_part() never
//! refuses a part planned here. Planned on the unstamped piece, the solids hold for the stamped
//! one: the mark moves the outer surface by at most 0.04 mm, and cut_cavity() cuts the stamped one.
//! `timer` gets the steps' laps (pulls, features, walls).
MultipartDesign plan_multipart_design(const Mesh& piece, const Mesh& skin, const Inspection& in, const MoldOptions& o, StepTimer& timer);

//! Part k's name: "core", "shell-1", …
std::string part_name(std::size_t k);

//! The sections grid (along x, y, z of the part's print pose) for a part of `size`: the fewest
//! sections that fit the printer, within max_sections. Throws ProcessingError naming the part
//! when there is none.
std::array<int, 3> sections_or_refuse(const std::string& part, const Vec3& size, const MoldOptions& o);

//! Whether each point (in a part's print frame) may take a dowel's boss: off the cavity, the other
//! parts, the keys' balls and the channels' bores.
using BossRoom = std::function<std::vector<char>(const std::vector<Vec3>&)>;

//! A part (in its print pose: its pull along −z) cut into sections that fit the printer when no
//! orientation of it does: section_counts() of its box, the cuts along x and y moved clear of the
//! keys (given in the same frame) to where the most dowels fit, dowel holes across each cut where
//! a pin and a wall round it lie inside the part on both sides; where fewer than two do (a
//! conformal part's wall is thinner than a pin), bosses across the cut on the wall, where `room`
//! allows, to take the others. Named NAME.1, NAME.2, …; pieces under 0.5 ml a cut leaves loose
//! are dropped (added to `sliver_ml`). The part itself when it fits. `s`: the cuts, dowels and
//! bosses, in the part's frame. Throws ProcessingError naming the part when no sectioning within
//! max_sections fits.
std::vector<NamedMesh> section_part(const NamedMesh& part, const std::vector<Vec3>& keys, const MoldOptions& o, Sections& s, double& sliver_ml,
                                    const BossRoom& room = {});

}  // namespace tracecast::print::stages

namespace tracecast::print {

//! Whether design_mold() makes this piece's mold in more than two parts: `parts` ≥ 3, or 0 when the
//! best single pull leaves over a fifth of the outer surface in undercut and the skin is closed.
bool needs_multipart(const Mesh& piece, const Mesh& skin, const stages::Inspection& in, const stages::PullChoice& pc, const MoldOptions& o);

//! The multi-part mold (build_mold() calls it when needs_multipart()), on the design planned by
//! plan_multipart_design() (on this piece, or on it before the stamp: the division carried to it).
Mold design_multipart_mold(const Mesh& piece, const Mesh& skin, const stages::Inspection& in, const MoldOptions& o,
                           stages::MultipartDesign design);

}  // namespace tracecast::print
