// tracecast appliance | mirror | landmarks: from a face to the solid that will be cast.
#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "common.h"
#include "tracecast/mesh/appliance.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/report_json.h"

namespace tracecast::cli {

namespace {

// --front and --up, as the appliance's option table defines them, for mirror and landmarks.
struct FaceArgs {
  nlohmann::json given = nlohmann::json::object();
  void add(CLI::App& sub) {
    std::vector<std::string> skip = appliance_option_table().keys();
    skip.erase(std::remove_if(skip.begin(), skip.end(), [](const std::string& k) { return k == "front" || k == "up"; }), skip.end());
    add_option_flags(sub, appliance_option_table(), given, skip);
  }
  void apply(FaceOptions& o) const {
    ApplianceSpec s;
    s.face = o;
    apply_flags(appliance_option_table(), given, s);
    o = s.face;
  }
};

// ---- appliance -----------------------------------------------------------------------------

struct ApplianceArgs {
  std::string input, output, report, units = "auto", spec_file, sculpt, region, openings, defect;
  bool mirror = false;
  nlohmann::json given = nlohmann::json::object();         //!< the appliance table's flags
  nlohmann::json mirror_given = nlohmann::json::object();  //!< the mirror table's flags (with --mirror)
};

std::vector<RegionShape> read_defect(const std::string& path) {
  std::vector<RegionShape> out;
  if (path.empty()) return out;
  ApplianceSpec none;
  none.openings.clear();
  const ApplianceSpec s = read_appliance_spec(path, none);
  out.push_back(s.region);
  return out;
}

int run_appliance(const ApplianceArgs& a, const GlobalOptions& g) {
  io::ReadOptions ro;
  ro.units = *parse_unit(a.units);
  Progress progress(g, 3);
  progress.stage("reading");
  const io::Geometry geo = io::read_mesh(a.input, ro);
  ApplianceSpec spec;
  if (!a.spec_file.empty()) spec = read_appliance_spec(a.spec_file, spec);
  if (!a.region.empty()) spec.region = RegionShape{a.region, {}, {}};
  if (!a.openings.empty()) {
    spec.openings.clear();
    if (a.openings != "none") {
      std::stringstream ss(a.openings);
      std::string item;
      while (std::getline(ss, item, ','))
        if (!item.empty()) spec.openings.push_back(RegionShape{item, {}, {}});
    }
  }
  apply_flags(appliance_option_table(), a.given, spec);
  validate(spec);
  std::optional<io::Geometry> sculpt;
  if (!a.sculpt.empty()) sculpt = io::read_mesh(a.sculpt, ro);
  progress.stage("building");
  ApplianceReport r;
  Mesh solid;
  nlohmann::json mirror_json;
  if (a.mirror) {
    MirrorOptions mo;
    apply_flags(mirror_option_table(), a.mirror_given, mo);
    mo.defect = read_defect(a.defect);
    mo.face = spec.face;
    MirrorReport mr;
    const MirrorResult m = mirror_restore(geo.mesh, mo, &mr);
    solid = make_prosthesis(m, mo.blend_mm, spec, &r);
    mirror_json = mr;
    mirror_json.erase("face");  // the appliance's own face analysis is the report's
  } else {
    solid = make_appliance(geo.mesh, spec, sculpt ? &sculpt->mesh : nullptr, &r);
  }
  progress.stage("writing");
  io::write_mesh(a.output, solid);
  nlohmann::json j = r;
  j.update({{"input", a.input},
            {"output", a.output},
            {"units", geo.units},
            {"mode", a.mirror ? "mirror" : (sculpt ? "sculpt" : "thickness")},
            {"spec", appliance_option_table().to_json(spec)}});
  if (a.mirror) j["mirror"] = mirror_json;
  if (finish_report(j, a.report, g, progress)) {
    fmt::print("{} -> {}\n", a.input, a.output);
    print_symmetry(r.face.plane);
    fmt::print("  appliance    {:.0f} mm² of skin, {:.2f} ml, {} edge loop(s)\n", r.inner_area_mm2, r.volume_mm3 / 1000.0,
               r.boundary_loops);
    if (r.interior_thickness.samples == 0)
      fmt::print("  thickness    no point lies farther than the feather band ({} mm) from an edge: the whole piece tapers, up to {:.3f} mm; "
                 "a narrower --feather-band gives it a full-thickness part\n",
                 spec.feather_band_mm, r.thickness.max);
    else
      fmt::print("  thickness    {:.3f} / {:.3f} / {:.3f} mm min/mean/max inside the feather band ({:.1f} % within ±5 %); {:.3f} mm at the edge\n",
                 r.interior_thickness.min, r.interior_thickness.mean, r.interior_thickness.max,
                 100 * r.interior_thickness.within_5_percent, r.rim_max_mm);
    fmt::print("  outline      {:.0f} mm, {:.0f} mm of it kept {} mm inside the scan's border; sharpest turn {:.0f}° per mm\n",
               r.outline.length_mm, r.outline.border_mm, spec.border_margin_mm, r.outline.max_turn_deg);
    if (r.thinned.vertices || r.skin_smoothed.vertices)
      fmt::print("  changed      thinner than designed over {:.1f} mm² (by up to {:.2f} mm); scan folds smoothed over {:.1f} mm² (up to {:.2f} mm)\n",
                 r.thinned.area_mm2, r.thinned.max_mm, r.skin_smoothed.area_mm2, r.skin_smoothed.max_mm);
    fmt::print("  solid        {} faces, closed, manifold, no self-intersection\n", r.faces);
  }
  return kOk;
}

// ---- mirror --------------------------------------------------------------------------------

struct MirrorArgs {
  std::string input, output, report, units = "auto", defect;
  nlohmann::json given = nlohmann::json::object();  //!< the mirror table's flags
  FaceArgs face;
};

int run_mirror(const MirrorArgs& a, const GlobalOptions& g) {
  MirrorOptions options;
  apply_flags(mirror_option_table(), a.given, options);
  io::ReadOptions ro;
  ro.units = *parse_unit(a.units);
  Progress progress(g, 2);
  progress.stage("reading");
  const io::Geometry geo = io::read_mesh(a.input, ro);
  options.defect = read_defect(a.defect);
  a.face.apply(options.face);
  progress.stage("restoring");
  MirrorReport r;
  const MirrorResult m = mirror_restore(geo.mesh, options, &r);
  io::write_mesh(a.output, m.restored);
  nlohmann::json j = r;
  j.update({{"input", a.input}, {"output", a.output}});
  if (finish_report(j, a.report, g, progress)) {
    fmt::print("{} -> {}\n", a.input, a.output);
    print_symmetry(r.face.plane);
    fmt::print("  defect       {:.0f} mm² ({} vertices), largest change {:.2f} mm\n", r.defect_area_mm2, r.defect_vertices,
               r.max_change_mm);
  }
  return kOk;
}

// ---- landmarks -----------------------------------------------------------------------------

struct LandmarkArgs {
  std::string input, units = "auto";
  FaceArgs face;
};

int run_landmarks(const LandmarkArgs& a, const GlobalOptions& g) {
  io::ReadOptions ro;
  ro.units = *parse_unit(a.units);
  const io::Geometry geo = io::read_mesh(a.input, ro);
  FaceOptions fo;
  a.face.apply(fo);
  const FaceAnalysis f = analyze_face(geo.mesh, fo);
  nlohmann::json j = f;
  j["input"] = a.input;
  if (g.json) {
    print_json(j);
  } else if (!g.quiet) {
    fmt::print("{}\n  symmetry plane  normal ({:.4f}, {:.4f}, {:.4f}), offset {:.3f} mm, fit {:.3f} mm RMS\n", a.input,
               f.plane.normal.x(), f.plane.normal.y(), f.plane.normal.z(), f.plane.offset, f.plane.rms_mm);
    fmt::print("  front           ({:.4f}, {:.4f}, {:.4f}) from {}\n", f.frame.axes(0, 2), f.frame.axes(1, 2),
               f.frame.axes(2, 2), f.front_source);
    if (f.scale != 1) fmt::print("  scale           {:.2f} of an adult's face (a miniature: every length of the search scaled)\n", f.scale);
    const Landmarks& l = f.landmarks;
    for (const auto& [name, p] : std::vector<std::pair<const char*, Vec3>>{{"eye left", l.eye_left},
                                                                           {"eye right", l.eye_right},
                                                                           {"inner eye left", l.inner_eye_left},
                                                                           {"inner eye right", l.inner_eye_right},
                                                                           {"mouth centre", l.mouth_center},
                                                                           {"mouth left", l.mouth_left},
                                                                           {"mouth right", l.mouth_right},
                                                                           {"chin", l.chin}})
      fmt::print("  {:<15} ({:7.1f}, {:7.1f}, {:7.1f}) mm from the nose tip\n", name, p.x(), p.y(), p.z());
  }
  return kOk;
}

}  // namespace

std::function<int()> setup_appliance(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<ApplianceArgs>();
  sub.add_option("FACE", a->input, "Face scan or mesh the appliance sits on")->required();
  sub.add_option("-o,--output", a->output, "Appliance solid to write (mm)")->required();
  sub.add_option("--spec", a->spec_file, "Appliance JSON file: region, openings, thickness map… (docs/formats.md)");
  sub.add_option("--region", a->region, "Region preset: full_face, upper_face, nose, forehead, cheek_left, cheek_right, chin [full_face]");
  sub.add_option("--openings", a->openings, "Comma-separated openings (eyes, nostrils, mouth) or 'none' [eyes,nostrils,mouth]");
  add_option_flags(sub, appliance_option_table(), a->given);
  sub.add_option("--sculpt", a->sculpt, "Character sculpt: the outer surface, aligned to the face");
  sub.add_flag("--mirror", a->mirror, "Prosthesis: restore the defect side from the healthy side and fill the difference");
  sub.add_option("--defect", a->defect, "With --mirror: JSON file whose \"region\" marks the defect (default: found)");
  add_option_flags(sub, mirror_option_table(), a->mirror_given);
  add_units_option(sub, a->units, "the inputs'");
  sub.add_option("--report", a->report, "Write the report as JSON to this file");
  sub.footer(
      "Examples:\n  tracecast appliance face.ply -o mask.ply\n"
      "  tracecast appliance face.ply -o nose.ply --region nose --thickness 1.5 --openings nostrils\n"
      "  tracecast appliance face.ply -o piece.ply --spec piece.json --report piece-report.json\n"
      "  tracecast appliance face.ply -o character.ply --sculpt sculpt.obj --region upper_face\n"
      "  tracecast appliance patient.ply -o prosthesis.ply --mirror");
  return [a, &g] { return run_appliance(*a, g); };
}

std::function<int()> setup_mirror(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<MirrorArgs>();
  sub.add_option("FACE", a->input, "Face scan with a defect on one side")->required();
  sub.add_option("-o,--output", a->output, "Restored face to write (mm)")->required();
  sub.add_option("--defect", a->defect, "JSON file whose \"region\" marks the defect (default: found from asymmetry)");
  add_option_flags(sub, mirror_option_table(), a->given);
  a->face.add(sub);
  add_units_option(sub, a->units, "the input's");
  sub.add_option("--report", a->report, "Write the report as JSON to this file");
  sub.footer("Example:\n  tracecast mirror patient.ply -o restored.ply --report restored.json");
  return [a, &g] { return run_mirror(*a, g); };
}

std::function<int()> setup_landmarks(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<LandmarkArgs>();
  sub.add_option("FACE", a->input, "Face scan or mesh")->required();
  a->face.add(sub);
  add_units_option(sub, a->units, "the input's");
  sub.footer("Example:\n  tracecast landmarks face.ply --json");
  return [a, &g] { return run_landmarks(*a, g); };
}

}  // namespace tracecast::cli
