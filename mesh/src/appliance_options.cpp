// The appliance's option table (tracecast/mesh/options.h): the scalar options of ApplianceSpec
// and its frame hints. Region, openings and thickness zones are shapes, read by
// parse_appliance_spec() around this table.
#include <fmt/format.h>

#include "tracecast/mesh/appliance.h"
#include "tracecast/mesh/report_json.h"

namespace tracecast {

namespace {

OptionTable<ApplianceSpec> make_appliance_table() {
  OptionTable<ApplianceSpec> t("appliance");
  t.number("thickness_mm", &ApplianceSpec::thickness_mm, "mm", 0, 30, "base thickness of the appliance", true)
      .number("feather_band_mm", &ApplianceSpec::feather_band_mm, "mm", 0, 50, "width of the taper at every edge (5–10 mm is usual)", true)
      .number("edge_thickness_mm", &ApplianceSpec::edge_thickness_mm, "mm", 0, 0.1, "thickness at the edge itself (the rim)", true)
      .number("resolution_mm", &ApplianceSpec::resolution_mm, "mm", 0.1, 5, "edge length of the working mesh")
      .number("opening_margin_mm", &ApplianceSpec::opening_margin_mm, "mm", 0, 30, "openings are this much larger than the feature")
      .number("border_margin_mm", &ApplianceSpec::border_margin_mm, "mm", 0, 30,
              "the edge stays this far inside the scan's border, on a smooth curve (room for the mold's flash land)");
  for (const char* which : {"front", "up"}) {
    const bool front = std::string(which) == "front";
    OptionInfo i{which, OptionKind::Direction, "", 0, 0, false, {},
                 front ? "direction the face looks towards, X,Y,Z in the file's axes (null: found)"
                       : "direction to the top of the head, X,Y,Z (null: found)",
                 {}};
    t.add(
        std::move(i),
        [front](const ApplianceSpec& s) {
          const auto& v = front ? s.face.front : s.face.up;
          return v ? vec_json(*v) : nlohmann::json();
        },
        [front](ApplianceSpec& s, const nlohmann::json& v) {
          auto& d = front ? s.face.front : s.face.up;
          d.reset();
          if (!v.is_null()) d = json_vec(v).normalized();
        });
  }
  t.rule([](const ApplianceSpec& s) {
    return s.edge_thickness_mm < s.thickness_mm ? std::string()
                                                : fmt::format("\"edge_thickness_mm\" = {} must be below the thickness ({} mm)",
                                                              s.edge_thickness_mm, s.thickness_mm);
  });
  return t;
}

OptionTable<MirrorOptions> make_mirror_table() {
  OptionTable<MirrorOptions> t("mirror");
  t.number("asymmetry_mm", &MirrorOptions::asymmetry_mm, "mm", 0.1, 50,
           "depth below the mirrored side that marks a defect, when none is marked")
      .number("blend_mm", &MirrorOptions::blend_mm, "mm", 0.5, 50, "band over which the restored side blends into the skin")
      .number("max_hole_mm", &MirrorOptions::max_hole_mm, "mm", 0, 300, "scan holes up to this size are filled first");
  return t;
}

}  // namespace

const OptionTable<MirrorOptions>& mirror_option_table() {
  static const OptionTable<MirrorOptions> t = make_mirror_table();
  return t;
}

const OptionTable<ApplianceSpec>& appliance_option_table() {
  static const OptionTable<ApplianceSpec> t = make_appliance_table();
  return t;
}

}  // namespace tracecast
