// The appliance: the silicone piece that will be cast, as a closed solid.
//
// Its inner surface is the wearer's skin inside a region (an outline on the face, minus openings
// for eyes, nostrils and mouth); its outer surface is the skin offset by a thickness map, or a
// sculpted surface; towards every edge the thickness tapers smoothly to a thin rim (the feathered
// edge that blends into the skin). Regions are placed in the face frame (face.h): presets from
// landmarks, or the user's outline.
//
// Method: the face is cropped around the region and remeshed isotropically to the working
// resolution; a signed distance to the outline (in the frontal projection), combined by a smooth
// minimum with the distance to the scan's border less a margin (smoothed along the surface), is
// cut exactly at zero (a level-set cut of the triangles), so the edge is a smooth curve inside
// the scan whatever its border looks like; the geodesic distance to that edge (fast marching)
// drives the feathering. The outer surface is offset along smoothed normals. Where the scan's
// surface doubles back on itself (a fold narrower than the thickness) the skin is smoothed;
// where the skin faces itself across a crease or under an overhang, the thickness is held below
// half the gap; concave areas are pushed out to keep the thickness; remaining folds and
// crossings are relaxed and thinned. Inner, outer and rim are stitched into one closed surface,
// checked with exact predicates (closed, manifold, oriented, no self-intersection) before it is
// returned; every change against the design is measured and reported (area, depth).
#pragma once

#include <Eigen/Core>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tracecast/mesh/face.h"
#include "tracecast/mesh/mesh.h"
#include "tracecast/mesh/options.h"
#include "tracecast/mesh/step_timer.h"

namespace tracecast {

using Vec2 = Eigen::Vector2d;

//! A region of the face: a named preset (full_face, upper_face, nose, forehead, cheek_left,
//! cheek_right, chin; for openings and zones also eyes, nostrils, mouth), a polygon in the face
//! frame's x/y (mm), or points in the input's coordinates (snapped to the surface, projected).
//! The named presets an appliance's region can be, and those of the features (openings; also
//! regions and zones).
const std::vector<std::string>& region_preset_names();
const std::vector<std::string>& feature_preset_names();

struct RegionShape {
  std::string preset;                 //!< empty when outline or points are given
  std::vector<Vec2> outline;          //!< face-frame polygon, mm
  std::vector<Vec3> points;           //!< input coordinates (mm after unit conversion)
};

struct ThicknessZone {
  RegionShape shape;
  double thickness_mm = 1.0;
  double blend_mm = 8.0;              //!< width of the smooth transition across the zone's edge
};

//! One dab of the thickness brush: within `radius_mm` of its centre (in the face frame's x/y) the
//! thickness moves towards `thickness_mm` by `strength` times a smooth falloff (1 at the centre, 0
//! at the radius). A stroke is a row of dabs; they apply in order, after the zones.
struct ThicknessDab {
  std::optional<Vec3> point;          //!< the centre in the input's coordinates (mm), projected to the face frame …
  Vec2 at = Vec2::Zero();             //!< … or given in the face frame's x/y (mm) when `point` is unset
  double radius_mm = 8.0;
  double thickness_mm = 1.0;
  double strength = 0.5;
};
//! The dab's ranges: radius (0.5, 100] mm, thickness (0, 30] mm, strength (0, 1].
std::string dab_problem(const ThicknessDab& d);

//! What an appliance is made of. The scalar members and the frame hints are options of
//! appliance_option_table() (key, flag, unit, range, help there; defaults here).
struct ApplianceSpec {
  RegionShape region{"full_face", {}, {}};
  std::vector<RegionShape> openings{{"eyes", {}, {}}, {"nostrils", {}, {}}, {"mouth", {}, {}}};
  double opening_margin_mm = 2.0;     //!< openings are this much larger than the feature
  double thickness_mm = 2.0;          //!< base thickness
  std::vector<ThicknessZone> zones;   //!< per-region thickness, applied in order
  std::vector<ThicknessDab> paint;    //!< the thickness brush's dabs, applied in order after the zones
  double feather_band_mm = 6.0;       //!< width of the taper at every edge
  double edge_thickness_mm = 0.05;    //!< thickness at the edge itself (the rim), ≤ 0.1
  double resolution_mm = 0.5;         //!< edge length of the working mesh
  double border_margin_mm = 4.0;      //!< the edge stays this far inside the scan's border (flash land)
  FaceOptions face;                   //!< frame hints (--front/--up)
};

//! Parses the appliance JSON file (format in docs/formats.md) on top of `defaults`; throws
//! InputError naming the file and the field on any problem.
ApplianceSpec read_appliance_spec(const std::string& path, ApplianceSpec defaults = {});
//! The same from a JSON object already read (a recipe's "appliance" section); `where` names it in
//! errors.
ApplianceSpec parse_appliance_spec(const nlohmann::json& j, const std::string& where, ApplianceSpec defaults = {});

//! The appliance's options: CLI flags, the appliance file and the recipe's "appliance" section,
//! the reports.
const OptionTable<ApplianceSpec>& appliance_option_table();

//! Range checks (thickness > 0, edge ≤ 0.1 mm and below the thickness, band > 0, …); throws
//! InputError naming the field.
void validate(const ApplianceSpec& spec);

struct ThicknessStats {
  std::size_t samples = 0;
  double min = 0, mean = 0, max = 0;
  double p05 = 0, p95 = 0;            //!< 5th and 95th percentiles
  double within_5_percent = 0;        //!< share of samples within ±5 % (or ±0.02 mm) of the request
};

//! Where the built piece departs from the design, and by how much.
struct Departure {
  std::size_t vertices = 0;
  double area_mm2 = 0;
  double max_mm = 0;                   //!< the largest shortfall or displacement
};

//! The piece's outline (its longest edge loop).
struct OutlineStats {
  double length_mm = 0;                //!< of the outline
  double max_turn_deg = 0;             //!< largest turn between successive 1 mm steps along it
  double border_mm = 0;                //!< outline length held back by the scan's border
};

struct ApplianceReport {
  FaceAnalysis face;
  double inner_area_mm2 = 0;
  double volume_mm3 = 0;
  ThicknessStats thickness;            //!< ray-cast from every inner vertex along its normal
  ThicknessStats interior_thickness;   //!< the same, over vertices farther than the band from any edge
  double rim_max_mm = 0;               //!< largest thickness on the edge itself
  double band_end_max_mm = 0;          //!< largest thickness within 0.5 mm of the edge
  std::size_t boundary_loops = 0;      //!< outline plus openings
  std::size_t stray_loops_filled = 0;  //!< holes in the skin the cut did not make (a tightly folded scan), filled
  std::size_t sculpt_misses = 0;       //!< inner vertices whose ray missed the sculpt (thin there)
  std::size_t pushed_vertices = 0;     //!< moved out of concave areas to keep the thickness
  std::size_t relaxed_vertices = 0;    //!< relaxed to undo folds or crossings
  Departure thinned;                   //!< thinner than designed (creases, overhangs): measured shortfall
  Departure skin_smoothed;             //!< the scan's own folds smoothed out of the skin: displacement
  OutlineStats outline;
  std::size_t vertices = 0, faces = 0;
  bool closed = false, manifold = false, oriented = false;
  std::size_t self_intersections = 0;
  Timings timings;
};
//! The appliance report, as `tracecast appliance --json` and a run's report give it.
void to_json(nlohmann::json& j, const ThicknessStats& s);
void to_json(nlohmann::json& j, const Departure& d);
void to_json(nlohmann::json& j, const OutlineStats& o);
void to_json(nlohmann::json& j, const ApplianceReport& r);

namespace detail {
struct Patch;
}

//! What make_appliance() keeps from one build to the next on the same face: the skin cut for the
//! region (the crop, its remeshing, the edge and the distances to it: most of a build). It is
//! used again when the face and all the cut depends on (region, openings and their margin, the
//! border margin, the resolution, the face frame) are as before; only the thickness, zones,
//! feather or edge changed (a designer's edits in the studio).
struct ApplianceCache {
  std::string key;
  std::shared_ptr<const detail::Patch> patch;
};

//! Builds the appliance on `face` (mm). With `sculpt`, the outer surface is the sculpt (rays
//! along the skin's normals), feathered the same way. Throws InputError for specs that do not
//! fit the face (region outside the surface, sculpt not overlapping the face) and
//! ProcessingError when the solid cannot be made valid. `known`: the face's analysis when the
//! caller has it (analyze_face on this very face with spec.face), instead of analysing it again.
//! `cache`: kept by the caller between builds (the same solid as without it).
Mesh make_appliance(const Mesh& face, const ApplianceSpec& spec, const Mesh* sculpt = nullptr,
                    ApplianceReport* report = nullptr, const FaceAnalysis* known = nullptr, ApplianceCache* cache = nullptr);

//! The region (outline minus openings) as polygons in the face frame, for pictures and reports.
struct RegionOutline {
  std::vector<Vec2> outline;
  std::vector<std::vector<Vec2>> openings;
};
RegionOutline region_polygons(const ApplianceSpec& spec, const FaceAnalysis& face);

//! An opening preset (eyes, nostrils, mouth) where the appliance cuts it, `margin_mm` larger than
//! the feature: polygons in the face frame's x–y plane (mm). The full-head mask cuts the same.
std::vector<std::vector<Vec2>> opening_outline(const std::string& preset, const FaceAnalysis& fa, double margin_mm);
//! Signed distance from q to the union of the polygons (positive inside), mm.
double outline_distance(const std::vector<std::vector<Vec2>>& polygons, const Vec2& q);

// ---- Mirroring (medical prostheses) -------------------------------------------------------

struct MirrorOptions {
  std::vector<RegionShape> defect;    //!< the defect, if marked; else found from asymmetry
  double asymmetry_mm = 1.0;          //!< auto: depth below the mirrored side that marks a defect
  double blend_mm = 8.0;              //!< band over which the mirrored surface blends into the skin
  double max_hole_mm = 80.0;          //!< scan holes up to this size are filled first
  FaceOptions face;
};

struct MirrorReport {
  FaceAnalysis face;
  std::size_t defect_vertices = 0;
  double defect_area_mm2 = 0;
  std::size_t filled_holes = 0;
  double max_change_mm = 0;           //!< largest displacement of a vertex
};
void to_json(nlohmann::json& j, const MirrorReport& r);

struct MirrorResult {
  Mesh face;                          //!< the scan, holes filled (the skin the prosthesis sits on)
  Mesh restored;                      //!< same vertices and triangles, defect side restored
  std::vector<char> defect;           //!< per vertex: inside the defect (before blending)
};

MirrorResult mirror_restore(const Mesh& face, const MirrorOptions& options = {}, MirrorReport* report = nullptr);

//! Mirroring's options (`tracecast mirror`, and `tracecast appliance --mirror`).
const OptionTable<MirrorOptions>& mirror_option_table();

//! The prosthesis: the appliance between the skin (mirror.face) and the restored surface, over
//! the defect grown by `grow_mm` (the blend band) plus the feather band; spec.region and
//! spec.openings are not used.
Mesh make_prosthesis(const MirrorResult& mirror, double grow_mm, const ApplianceSpec& spec,
                     ApplianceReport* report = nullptr);

}  // namespace tracecast
