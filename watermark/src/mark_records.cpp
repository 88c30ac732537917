// The mark's option table and its reports as JSON: one definition each, for `tracecast stamp`,
// `tracecast detect`, the mold's mark and the docs.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "tracecast/mesh/report_json.h"
#include "tracecast/watermark/mark.h"
#include "tracecast/watermark/payload.h"

namespace tracecast::watermark {

namespace {

OptionTable<StampOptions> make_stamp_table() {
  OptionTable<StampOptions> t("stamp");
  // Micrometres on the command line and in reports, millimetres in the struct.
  t.add({"max_displacement_um", OptionKind::Number, "µm", 0, 500, true, {}, "largest displacement along the surface normal, anywhere", {}},
        [](const StampOptions& o) { return nlohmann::json(o.max_displacement_mm * 1000.0); },
        [](StampOptions& o, const nlohmann::json& v) { o.max_displacement_mm = v.get<double>() / 1000.0; });
  t.number("resolution_mm", &StampOptions::resolution_mm, "mm", 0.05, 0.6, "marked triangles are split until no edge is longer", true)
      .number("full_thickness_mm", &StampOptions::full_thickness_mm, "mm", 0, 10,
              "full amplitude where the piece is at least this thick (measured inwards)", true)
      .number("zero_thickness_mm", &StampOptions::zero_thickness_mm, "mm", 0, 10, "no amplitude where it is this thin (the feathered rim)")
      .flag("roughness_shaping", &StampOptions::roughness_shaping, "more amplitude on textured skin, less on smooth skin")
      .direction("front", &StampOptions::front, "the piece's forward direction, X,Y,Z (null: found from the shape)");
  t.rule([](const StampOptions& o) {
    return o.full_thickness_mm > o.zero_thickness_mm
               ? std::string()
               : fmt::format("\"full_thickness_mm\" = {} must exceed \"zero_thickness_mm\" ({} mm)", o.full_thickness_mm, o.zero_thickness_mm);
  });
  return t;
}

OptionTable<DetectOptions> make_detect_table() {
  OptionTable<DetectOptions> t("detect");
  t.number("spacing_mm", &DetectOptions::spacing_mm, "mm", 0.05, 0.6,
           "the scan is resampled to points this far apart (after the unit guess); the mark's cells are 1.2 mm", true)
      .seed("seed", &DetectOptions::seed, "random seed of a mesh's area sampling");
  return t;
}

}  // namespace

const OptionTable<DetectOptions>& detect_option_table() {
  static const OptionTable<DetectOptions> t = make_detect_table();
  return t;
}

const OptionTable<StampOptions>& stamp_option_table() {
  static const OptionTable<StampOptions> t = make_stamp_table();
  return t;
}

void to_json(nlohmann::json& j, const StampReport& r) {
  j = {{"id", format_id(r.id)},
       {"key_id", r.key_id},
       {"front", vec_json(r.front)},
       {"marked_area_mm2", r.marked_area_mm2},
       {"tiles", r.tiles},
       {"max_displacement_um", r.max_displacement_um},
       {"rms_displacement_um", r.rms_displacement_um},
       {"hausdorff_mm", r.hausdorff_mm < 0 ? nlohmann::json() : nlohmann::json(r.hausdorff_mm)},
       {"vertices", {{"before", r.vertices_before}, {"after", r.vertices_after}}},
       {"split_edges", r.split_edges},
       {"warnings", r.warnings},
       {"timings_s", timings_json(r.timings)}};
}

void to_json(nlohmann::json& j, const Detection& d) {
  j = {{"outcome", outcome_name(d.outcome)},
       {"reason", d.reason},
       {"area_mm2", d.area_mm2},
       {"unit_factor", d.unit_factor},
       {"samples", d.samples},
       {"timings_s", timings_json(d.timings)}};
  if (d.lattice_contrast > 0) {  // a lattice was examined
    j["scale"] = d.scale;
    j["front"] = vec_json(d.front);
    j["lattice_contrast"] = d.lattice_contrast;
    j["sync_z"] = d.sync_z;
  }
  if (d.outcome != Outcome::found) return;
  const PieceId p = unpack(d.id);
  j["id"] = format_id(d.id);
  j["maker"] = p.maker;
  j["run"] = p.run;
  j["piece"] = p.piece;
  j["confidence"] = d.confidence;
  j["bit_error_rate"] = d.bit_error_rate;
  j["false_positive_bound"] = d.false_positive_bound;
  j["carrier_area_mm2"] = d.carrier_area_mm2;
  j["carrier_box"] = {{"min", vec_json(d.carrier_box.min)}, {"max", vec_json(d.carrier_box.max)}};
}

}  // namespace tracecast::watermark
