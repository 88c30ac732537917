// The mesh library's result types as every report writes them (one serializer each; keys in
// docs/formats.md).
#include <nlohmann/json.hpp>

#include "tracecast/mesh/appliance.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/face.h"
#include "tracecast/mesh/repair.h"
#include "tracecast/mesh/report_json.h"

namespace tracecast {

using nlohmann::json;

void to_json(json& j, const DistanceStats& s) {
  j = {{"count", s.count}, {"mean", s.mean}, {"rms", s.rms}, {"median", s.median}, {"p95", s.p95}, {"max", s.max}};
}

void to_json(json& j, const SymmetryPlane& p) {
  j = {{"normal", vec_json(p.normal)}, {"offset_mm", p.offset}, {"fit_rms_mm", p.rms_mm}, {"inlier_fraction", p.inlier_fraction}};
}

void to_json(json& j, const FaceAnalysis& f) {
  const Landmarks& l = f.landmarks;
  j = {{"symmetry_plane", f.plane},
       {"scale", f.scale},
       {"frame",
        {{"origin_mm", vec_json(f.frame.origin)},
         {"x_left", vec_json(f.frame.axes.col(0))},
         {"y_up", vec_json(f.frame.axes.col(1))},
         {"z_front", vec_json(f.frame.axes.col(2))},
         {"front_from", f.front_source}}},
       {"landmarks_mm",
        {{"nose_tip", vec_json(l.nose_tip)},
         {"eye_left", vec_json(l.eye_left)},
         {"eye_right", vec_json(l.eye_right)},
         {"inner_eye_left", vec_json(l.inner_eye_left)},
         {"inner_eye_right", vec_json(l.inner_eye_right)},
         {"mouth_center", vec_json(l.mouth_center)},
         {"mouth_left", vec_json(l.mouth_left)},
         {"mouth_right", vec_json(l.mouth_right)},
         {"chin", vec_json(l.chin)},
         {"nostrils", l.nostrils_found ? json{{"left", vec_json(l.nostril_left)}, {"right", vec_json(l.nostril_right)}} : json(nullptr)}}}};
}

void from_json(const json& j, SymmetryPlane& p) {
  p.normal = json_vec(j.at("normal"));
  p.offset = j.at("offset_mm").get<double>();
  p.rms_mm = j.at("fit_rms_mm").get<double>();
  p.inlier_fraction = j.at("inlier_fraction").get<double>();
}

void from_json(const json& j, FaceAnalysis& f) {
  f.plane = j.at("symmetry_plane").get<SymmetryPlane>();
  f.scale = j.at("scale").get<double>();
  const json& fr = j.at("frame");
  f.frame.origin = json_vec(fr.at("origin_mm"));
  f.frame.axes.col(0) = json_vec(fr.at("x_left"));
  f.frame.axes.col(1) = json_vec(fr.at("y_up"));
  f.frame.axes.col(2) = json_vec(fr.at("z_front"));
  f.front_source = fr.at("front_from").get<std::string>();
  const json& lm = j.at("landmarks_mm");
  Landmarks& l = f.landmarks;
  l.nose_tip = json_vec(lm.at("nose_tip"));
  l.eye_left = json_vec(lm.at("eye_left"));
  l.eye_right = json_vec(lm.at("eye_right"));
  l.inner_eye_left = json_vec(lm.at("inner_eye_left"));
  l.inner_eye_right = json_vec(lm.at("inner_eye_right"));
  l.mouth_center = json_vec(lm.at("mouth_center"));
  l.mouth_left = json_vec(lm.at("mouth_left"));
  l.mouth_right = json_vec(lm.at("mouth_right"));
  l.chin = json_vec(lm.at("chin"));
  const json& n = lm.at("nostrils");
  l.nostrils_found = !n.is_null();
  if (l.nostrils_found) {
    l.nostril_left = json_vec(n.at("left"));
    l.nostril_right = json_vec(n.at("right"));
  }
}

void to_json(json& j, const ThicknessStats& s) {
  j = {{"samples", s.samples}, {"min", s.min}, {"mean", s.mean}, {"max", s.max},
       {"p05", s.p05}, {"p95", s.p95}, {"within_5_percent", s.within_5_percent}};
}

void to_json(json& j, const Departure& d) {
  j = {{"vertices", d.vertices}, {"area_mm2", d.area_mm2}, {"max_mm", d.max_mm}};
}

void to_json(json& j, const OutlineStats& o) {
  j = {{"length_mm", o.length_mm}, {"max_turn_deg", o.max_turn_deg}, {"border_mm", o.border_mm}};
}

void to_json(json& j, const ApplianceReport& r) {
  j = {{"face", r.face},
       {"inner_area_mm2", r.inner_area_mm2},
       {"volume_ml", r.volume_mm3 / 1000.0},
       {"thickness_mm", r.thickness},
       {"interior_thickness_mm", r.interior_thickness},
       {"edge_thickness_max_mm", r.rim_max_mm},
       {"thickness_within_0_5_mm_of_edge_max_mm", r.band_end_max_mm},
       {"boundary_loops", r.boundary_loops},
       {"stray_loops_filled", r.stray_loops_filled},
       {"sculpt_misses", r.sculpt_misses},
       {"pushed_vertices", r.pushed_vertices},
       {"relaxed_vertices", r.relaxed_vertices},
       {"thinned", r.thinned},
       {"skin_smoothed", r.skin_smoothed},
       {"outline", r.outline},
       {"solid",
        {{"vertices", r.vertices},
         {"faces", r.faces},
         {"closed", r.closed},
         {"manifold", r.manifold},
         {"oriented", r.oriented},
         {"self_intersections", r.self_intersections}}},
       {"timings_s", timings_json(r.timings)}};
}

void to_json(json& j, const MirrorReport& r) {
  j = {{"face", r.face},
       {"defect_vertices", r.defect_vertices},
       {"defect_area_mm2", r.defect_area_mm2},
       {"filled_holes", r.filled_holes},
       {"max_change_mm", r.max_change_mm}};
}

void to_json(json& j, const RepairReport& r) {
  json holes = json::array();
  for (const Hole& h : r.holes) holes.push_back({{"size_mm", h.size_mm}, {"edges", h.edges}, {"filled", h.filled}, {"faired", h.faired}});
  j = {{"in", {{"vertices", r.vertices_in}, {"faces", r.faces_in}}},
       {"fixed",
        {{"welded_vertices", r.welded_vertices},
         {"degenerate_faces", r.degenerate_faces},
         {"duplicate_faces", r.duplicate_faces},
         {"split_vertices", r.split_vertices},
         {"reoriented", r.reoriented},
         {"flipped_outward", r.flipped_outward},
         {"removed_pieces", r.removed_pieces},
         {"removed_piece_faces", r.removed_piece_faces},
         {"self_intersections_found", r.self_intersections_found},
         {"self_intersections_made", r.self_intersections_made},
         {"self_intersections_left", r.self_intersections_left}}},
       {"holes", holes},
       {"out", {{"vertices", r.vertices_out}, {"faces", r.faces_out}}},
       {"distance_mm", {{"input_to_output", r.input_to_output}, {"output_to_input", r.output_to_input}}},
       {"timings_s", timings_json(r.timings)}};
}

namespace {

OptionTable<RepairOptions> make_repair_table() {
  OptionTable<RepairOptions> t("repair");
  t.number("max_hole_mm", &RepairOptions::max_hole_mm, "mm", 0, 1000, "fill holes up to this width (0: none)")
      .number("min_piece_fraction", &RepairOptions::min_piece_fraction, "fraction", 0, 1,
              "drop pieces with fewer faces than this share of the largest")
      .number("remesh_edge_mm", &RepairOptions::remesh_edge_mm, "mm", 0, 50, "isotropic remeshing to this edge length (0: off)")
      .integer("remesh_iterations", &RepairOptions::remesh_iterations, 1, 20, "passes of the isotropic remeshing")
      .integer("smooth_iterations", &RepairOptions::smooth_iterations, 0, 1000, "Taubin smoothing passes (0: off)");
  OptionInfo decimate{"decimate_faces", OptionKind::Integer, "faces", 0, 1e8, false, {},
                      "quadric decimation down to this many faces, after remeshing (0: off)", {}};
  t.add(std::move(decimate), [](const RepairOptions& o) { return json(o.decimate_faces); },
        [](RepairOptions& o, const json& v) { o.decimate_faces = v.get<std::size_t>(); });
  t.flag("fix_self_intersections", &RepairOptions::fix_self_intersections,
         "find crossing faces (exact predicates) and repair them (off: faster on large scans)");
  return t;
}

}  // namespace

const OptionTable<RepairOptions>& repair_option_table() {
  static const OptionTable<RepairOptions> t = make_repair_table();
  return t;
}

}  // namespace tracecast
