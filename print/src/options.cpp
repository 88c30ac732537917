// The mold's and the casting sheet's option tables (tracecast/mesh/options.h): one definition of
// each option for the CLI, the recipe, the reports, the ledger record and the docs; and the
// print results as reports write them.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "tracecast/mesh/report_json.h"
#include "tracecast/print/casting.h"
#include "tracecast/print/mold.h"

namespace tracecast::print {

namespace {

//! "W,D,H" as a build volume (each 20–2000 mm), or nullopt.
std::optional<Vec3> parse_volume(const std::string& s) {
  Vec3 v;
  char c1 = 0, c2 = 0;
  std::istringstream in(s);
  if (!(in >> v.x() >> c1 >> v.y() >> c2 >> v.z()) || c1 != ',' || c2 != ',' || !(in >> std::ws).eof()) return std::nullopt;
  if (v.minCoeff() < 20 || v.maxCoeff() > 2000) return std::nullopt;
  return v;
}

std::vector<std::string> printer_names() {
  std::vector<std::string> names;
  for (const PrinterProfile& p : printer_profiles()) names.push_back(p.name);
  return names;
}

OptionTable<MoldOptions> make_mold_table() {
  OptionTable<MoldOptions> t("mold");
  OptionInfo printer{"printer", OptionKind::Choice, "", 0, 0, false, printer_names(),
                     "printer profile: build volume, key clearance, minimum wall, layer", {}};
  t.add(std::move(printer), [](const MoldOptions& o) { return nlohmann::json(o.printer.name); },
        [](MoldOptions& o, const nlohmann::json& v) { o.printer = *find_printer(v.get<std::string>()); });
  OptionInfo volume{"build_volume_mm", OptionKind::Text, "mm", 0, 0, false, {},
                    "the printer's build volume W,D,H (each 20-2000 mm), for a printer of the profile's technology but another size "
                    "(profile: the profile's own)",
                    [](const std::string& s) { return s == "profile" || parse_volume(s) ? std::string() : std::string("not \"profile\" or W,D,H in mm, each 20 to 2000"); }};
  t.add(std::move(volume),
        [](const MoldOptions& o) {
          const auto named = find_printer(o.printer.name);
          const Vec3& v = o.printer.build_volume_mm;
          return nlohmann::json(named && named->build_volume_mm == v ? std::string("profile") : fmt::format("{:g},{:g},{:g}", v.x(), v.y(), v.z()));
        },
        [](MoldOptions& o, const nlohmann::json& v) {
          if (const auto size = parse_volume(v.get<std::string>())) o.printer.build_volume_mm = *size;
        });
  t.direction("pull", &MoldOptions::pull, "pull direction of the shell, X,Y,Z (null: searched for the least undercut)")
      .direction("front", &MoldOptions::front, "the face's forward direction, X,Y,Z (null: found from the face)")
      .number("max_pull_tilt_deg", &MoldOptions::max_pull_tilt_deg, "deg", 0, 80,
              "how far from the forward direction the pull search may tilt")
      .number("flash_land_mm", &MoldOptions::flash_land_mm, "mm", 0.5, 10, "contact band between the appliance's edge and the gutter")
      .number("gutter_width_mm", &MoldOptions::gutter_width_mm, "mm", 0, 20, "overflow gutter width (0: none)")
      .number("gutter_depth_mm", &MoldOptions::gutter_depth_mm, "mm", 0, 10, "overflow gutter depth")
      .choice("style", &MoldOptions::style, {"conformal", "block"},
              "conformal: walls that follow the cavity and the parting surface, on a frame and ribs; block: solid blocks")
      .number("wall_mm", &MoldOptions::wall_mm, "mm", 2, 100,
              "material around, under and over the cavity: the thickness of conformal parts' walls (4 mm suits FDM)")
      .number("frame_mm", &MoldOptions::frame_mm, "mm", 2, 40, "conformal: width of the frame along the border")
      .number("frame_depth_mm", &MoldOptions::frame_depth_mm, "mm", 0, 300,
              "conformal: how far the frame (and the faces along each cut) reach past the parting surface; legs at each section's corners, ribs and posts reach the flat face the part stands on (0: the whole frame does)")
      .number("rib_spacing_mm", &MoldOptions::rib_spacing_mm, "mm", 0, 300, "conformal: spacing of the ribs under the walls (0: none)")
      .integer("keys", &MoldOptions::keys, 0, 6, "registration keys (0, or 3 to 6)")
      .number("key_radius_mm", &MoldOptions::key_radius_mm, "mm", 1, 20, "registration key radius")
      .number("sprue_diameter_mm", &MoldOptions::sprue_diameter_mm, "mm", 0, 40, "pour sprue diameter (0: none)")
      .flag("top_pour", &MoldOptions::top_pour, "sprue at the cavity's highest point (false: its lowest full-thickness point with a roof under 28°, filling from the bottom)")
      .number("vent_diameter_mm", &MoldOptions::vent_diameter_mm, "mm", 0, 5, "vent diameter (0: none)")
      .integer("max_vents", &MoldOptions::max_vents, 0, 30, "most vents, at the cavity's local high points")
      .number("pry_slot_mm", &MoldOptions::pry_slot_mm, "mm", 0, 20, "pry slot width (0: none)")
      .number("hollow_mm", &MoldOptions::hollow_mm, "mm", 0, 20,
              "hollow each part leaving walls this thick, with two 3.5 mm drain holes (0: solid; else at least 1.5)")
      .number("resolution_mm", &MoldOptions::resolution_mm, "mm", 0.1, 5, "grid of the parting surface")
      .number("rigid_undercut_mm", &MoldOptions::rigid_undercut_mm, "mm", 0, 50,
              "undercuts deeper than this are reported as rigid (the cast cannot flex out)")
      .integer("max_sections", &MoldOptions::max_sections, 1, 24,
               "a part larger than the printer is cut into sections that fit, at most this many (1: never cut)")
      .number("dowel_diameter_mm", &MoldOptions::dowel_diameter_mm, "mm", 2, 10,
              "pins that align the sections across each cut (steel or printed); their holes are wider by the key clearance")
      .number("dowel_length_mm", &MoldOptions::dowel_length_mm, "mm", 6, 40, "length of the pins; each hole is half as deep, plus 0.5 mm")
      .number("bolt_diameter_mm", &MoldOptions::bolt_diameter_mm, "mm", 0, 12,
              "conformal: bolts along the pull that clamp the parts through bosses in the frame's skirts, M4 by default; their holes are wider by the key clearance (0: none, else at least 2)")
      .number("bolt_spacing_mm", &MoldOptions::bolt_spacing_mm, "mm", 20, 400, "the most room between two bolts along a side of the frame")
      .integer("parts", &MoldOptions::parts, 0, 6,
               "how many parts: 0 as the piece needs (two, or more where one pull leaves over a fifth of the piece's outer surface in undercut: "
               "a full-head mask, an ear); 2: core and shell; 3 to 6: a core and parts - 1 shell parts, each with its own pull")
      .number("flange_mm", &MoldOptions::flange_mm, "mm", 4, 40,
              "multi-part: how far the flanges along the parting surfaces reach beyond the wall (the keys sit in them)")
      .number("grid_mm", &MoldOptions::grid_mm, "mm", 0, 3,
              "multi-part: the grid the parts' walls and flanges are sampled on (0: half the wall, at most 1 mm for a piece up to 150 mm across, 1.5 mm for a larger one; else at least 0.3)");
  t.rule([](const MoldOptions& o) { return o.parts == 1 ? std::string("\"parts\" must be 0 (as needed), or 2 to 6") : ""; });
  t.rule([](const MoldOptions& o) {
    return o.parts > 2 && o.wall_mm < 2 * o.grid_mm ? fmt::format("\"wall_mm\" = {} is under two steps of \"grid_mm\" = {}: the walls would break up", o.wall_mm, o.grid_mm) : "";
  });
  t.rule([](const MoldOptions& o) {
    return o.grid_mm > 0 && o.grid_mm < 0.3 ? std::string("\"grid_mm\" must be 0 (chosen from the piece's size and the wall) or at least 0.3 mm") : "";
  });
  t.rule([](const MoldOptions& o) { return o.keys == 1 || o.keys == 2 ? std::string("\"keys\" must be 0, or 3 to 6") : ""; });
  t.rule([](const MoldOptions& o) {
    return o.bolt_diameter_mm > 0 && o.bolt_diameter_mm < 2 ? std::string("\"bolt_diameter_mm\" must be 0 (none) or at least 2 mm") : "";
  });
  t.rule([](const MoldOptions& o) {
    return o.hollow_mm > 0 && o.hollow_mm < 1.5 ? std::string("\"hollow_mm\" must be 0 (solid) or at least 1.5 mm") : "";
  });
  t.rule([](const MoldOptions& o) {
    return o.hollow_mm > 0 && o.style != "block" ? std::string("\"hollow_mm\" applies to \"style\": \"block\" (conformal parts are walls already)") : "";
  });
  t.rule([](const MoldOptions& o) {
    return o.hollow_mm > 0 && o.wall_mm < 2 * o.hollow_mm + 2
               ? fmt::format("\"hollow_mm\" = {} needs \"wall_mm\" of at least {} mm (a void between two walls)", o.hollow_mm, 2 * o.hollow_mm + 2)
               : std::string();
  });

  return t;
}

OptionTable<SiliconeOptions> make_silicone_table() {
  OptionTable<SiliconeOptions> t("mold", "casting sheet");
  t.number("density_g_ml", &SiliconeOptions::density_g_ml, "g/ml", 0.5, 3, "silicone density (platinum skin silicone: 1.08)")
      .number("waste_fraction", &SiliconeOptions::waste_fraction, "fraction", 0, 1,
              "extra silicone mixed for cups, sprue and vents, as a fraction of the cavity");
  return t;
}

}  // namespace

const OptionTable<MoldOptions>& mold_option_table() {
  static const OptionTable<MoldOptions> t = make_mold_table();
  return t;
}

const OptionTable<SiliconeOptions>& silicone_option_table() {
  static const OptionTable<SiliconeOptions> t = make_silicone_table();
  return t;
}

void to_json(nlohmann::json& j, const PartCheck& c) {
  nlohmann::json spots = nlohmann::json::array();
  for (const ThinSpot& s : c.thin_spots) spots.push_back({{"at_mm", vec_json(s.at)}, {"thinnest_mm", s.thinnest_mm}, {"samples", s.samples}});
  j = {{"name", c.name},
       {"faces", c.faces},
       {"closed", c.closed},
       {"manifold", c.manifold},
       {"oriented", c.oriented},
       {"self_intersections", c.self_intersections},
       {"valid_solid", is_valid_solid(c)},
       {"resin_ml", c.volume_ml},
       {"min_wall_mm", c.min_wall_mm},
       {"required_wall_mm", c.required_wall_mm},
       {"walls_ok", walls_ok(c)},
       {"wall_samples", c.wall_samples},
       {"thin_samples", c.thin_samples},
       {"sliver_samples", c.sliver_samples},
       {"edge_samples", c.edge_samples},
       {"edge_zone_mm", c.edge_zone_mm},
       {"min_wall_off_edge_mm", std::isnan(c.min_wall_off_edge_mm) ? nlohmann::json(nullptr) : nlohmann::json(c.min_wall_off_edge_mm)},
       {"thin_spots", spots},
       {"thin_spots_capped", c.thin_spots.size() >= kMaxThinSpots},
       {"fits_build_volume", c.fit.fits},
       {"print_size_mm", vec_json(c.fit.size_mm)},
       {"build_margin_mm", c.fit.margin_mm},
       {"fits_turned", c.turned.fits},
       {"printable", is_printable(c)}};
}

void to_json(nlohmann::json& j, const Sections& s) {
  nlohmann::json dowels = nlohmann::json::array();
  for (const Dowel& d : s.dowels)
    dowels.push_back({{"part", d.core ? "core" : "shell"}, {"axis", std::string(1, "xyz"[d.axis])}, {"centre_mm", vec_json(d.centre)}, {"boss", d.boss}});
  j = {{"count", s.count()},
       {"cuts_x_mm", s.cuts[0]},
       {"cuts_y_mm", s.cuts[1]},
       {"cuts_z_mm", s.cuts_z},
       {"part_size_mm", vec_json(s.part_size_mm)},
       {"hole_diameter_mm", 2 * s.hole_radius_mm},
       {"hole_depth_mm", s.hole_depth_mm},
       {"boss_diameter_mm", 2 * s.boss_radius_mm},
       {"boss_length_mm", 2 * s.boss_reach_mm},
       {"dowels", dowels}};
}

void to_json(nlohmann::json& j, const PartPull& p) {
  j = {{"part", p.part},
       {"direction", p.direction ? vec_json(*p.direction) : nlohmann::json(nullptr)},
       {"cavity_area_mm2", p.cavity_area_mm2},
       {"undercut_area_mm2", p.undercut_area_mm2},
       {"undercut_depth_mm", p.undercut_depth_mm}};
}

double Bolts::grip_mm() const {
  double g = 0;
  for (const Bolt& b : bolts) g = std::max(g, b.roof_z - b.floor_z);
  return g;
}

double Bolts::length_mm() const { return bolts.empty() ? 0.0 : 5.0 * std::ceil((grip_mm() + 1.5 * diameter_mm) / 5.0); }

void to_json(nlohmann::json& j, const Bolts& b) {
  nlohmann::json centres = nlohmann::json::array();
  for (const Bolt& t : b.bolts) centres.push_back(vec_json(t.centre));
  j = {{"count", b.bolts.size()},
       {"diameter_mm", b.diameter_mm},
       {"length_mm", b.length_mm()},
       {"hole_diameter_mm", 2 * b.hole_radius_mm},
       {"boss_diameter_mm", 2 * b.boss_radius_mm},
       {"grip_mm", b.grip_mm()},
       {"centres_mm", centres}};
}

nlohmann::json printer_json(const PrinterProfile& p) {
  return {{"name", p.name},
          {"technology", p.technology == Technology::Resin ? "resin" : "fdm"},
          {"build_volume_mm", vec_json(p.build_volume_mm)},
          {"layer_height_mm", p.layer_height_mm},
          {"key_clearance_mm", p.key_clearance_mm},
          {"min_wall_mm", p.min_wall_mm}};
}

}  // namespace tracecast::print
