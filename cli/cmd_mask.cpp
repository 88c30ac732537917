// tracecast mask: the full-head pull-over mask, the wearer's head inside, a likeness outside.
#include <fmt/format.h>

#include "common.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/report_json.h"
#include "tracecast/sculpt/mask.h"

namespace tracecast::cli {

namespace {

struct MaskArgs {
  std::string input, likeness, output, report, units = "auto";
  nlohmann::json given = nlohmann::json::object();  //!< the mask table's flags
};

void print_mask(const MaskArgs& a, const sculpt::MaskReport& r) {
  fmt::print("{} -> {}\n", a.input, a.output);
  print_symmetry(r.wearer.plane);
  if (r.likeness)
    fmt::print("  likeness     {} scaled by {:.3f} onto the wearer's face ({:.1f} mm RMS at the landmarks); pushed out to the minimum "
               "thickness over {:.0f} mm², by up to {:.1f} mm\n",
               a.likeness, r.likeness_scale, r.likeness_fit_rms_mm, r.pushed_area_mm2, r.pushed_max_mm);
  const Vec3 s = r.solid.bounds.extent();
  fmt::print("  solid        {:.0f} ml, {:.0f} × {:.0f} × {:.0f} mm, {} faces, {} opening(s) besides the neck, closed, manifold, no "
             "self-intersection\n",
             r.solid.volume_ml, s.x(), s.y(), s.z(), r.solid.faces, r.solid.genus ? *r.solid.genus : -1);
}

int run_mask(const MaskArgs& a, const GlobalOptions& g) {
  sculpt::MaskOptions options;
  apply_flags(sculpt::mask_option_table(), a.given, options);
  io::ReadOptions ro;
  ro.units = *parse_unit(a.units);
  Progress progress(g, 2);
  progress.stage("reading");
  const io::Geometry wearer = io::read_mesh(a.input, ro);
  std::optional<io::Geometry> likeness;
  if (!a.likeness.empty()) likeness = io::read_mesh(a.likeness, ro);
  progress.stage("shaping the mask");
  sculpt::MaskReport r;
  const Mesh mask = sculpt::make_mask(wearer.mesh, likeness ? &likeness->mesh : nullptr, options, &r);
  io::write_mesh(a.output, mask);
  nlohmann::json j = r;
  j["input"] = a.input;
  j["likeness_file"] = a.likeness.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.likeness);
  j["output"] = a.output;
  j["units"] = wearer.units;
  j["options"] = sculpt::mask_option_table().to_json(options);
  if (finish_report(j, a.report, g, progress)) print_mask(a, r);
  return kOk;
}

}  // namespace

std::function<int()> setup_mask(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<MaskArgs>();
  sub.add_option("WEARER", a->input, "Closed scan of the head the mask is made to fit")->required();
  sub.add_option("-o,--output", a->output, "Mask solid to write (mm)")->required();
  sub.add_option("--likeness", a->likeness, "Closed scan of the head whose face the mask carries (default: the wearer's own)");
  add_option_flags(sub, sculpt::mask_option_table(), a->given);
  add_units_option(sub, a->units, "the inputs'");
  sub.add_option("--report", a->report, "Write the report as JSON to this file");
  sub.footer("Examples:\n  tracecast synth head -o wearer.ply && tracecast mask wearer.ply -o mask.ply\n"
             "  tracecast mask wearer.ply --likeness actor.ply -o mask.ply --min-thickness 1.5 --neck 60 --report mask.json");
  return [a, &g] { return run_mask(*a, g); };
}

}  // namespace tracecast::cli
