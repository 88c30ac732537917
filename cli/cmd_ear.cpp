// tracecast ear: the ear prosthesis, the healthy ear mirrored onto the side that lacks it.
#include <fmt/format.h>

#include "common.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/report_json.h"
#include "tracecast/sculpt/ear.h"

namespace tracecast::cli {

namespace {

struct EarArgs {
  std::string input, output, report, units = "auto";
  nlohmann::json given = nlohmann::json::object();  //!< the ear table's flags
};

int run_ear(const EarArgs& a, const GlobalOptions& g) {
  sculpt::EarOptions options;
  apply_flags(sculpt::ear_option_table(), a.given, options);
  io::ReadOptions ro;
  ro.units = *parse_unit(a.units);
  Progress progress(g, 2);
  progress.stage("reading");
  const io::Geometry geo = io::read_mesh(a.input, ro);
  progress.stage("mirroring the ear");
  sculpt::EarReport r;
  const Mesh ear = sculpt::make_ear(geo.mesh, options, &r);
  io::write_mesh(a.output, ear);
  nlohmann::json j = r;
  j["input"] = a.input;
  j["output"] = a.output;
  j["units"] = geo.units;
  j["options"] = sculpt::ear_option_table().to_json(options);
  if (finish_report(j, a.report, g, progress)) {
    fmt::print("{} -> {}\n", a.input, a.output);
    print_symmetry(r.plane);
    fmt::print("  ear          the {} side's, mirrored: {:.0f} mm² of healthy ear standing up to {:.1f} mm out of the head\n", r.side,
               r.ear_area_mm2, r.ear_height_mm);
    const Vec3 s = r.solid.bounds.extent();
    fmt::print("  solid        {:.2f} ml, {:.0f} × {:.0f} × {:.0f} mm, {} faces, closed, manifold, no self-intersection\n", r.solid.volume_ml,
               s.x(), s.y(), s.z(), r.solid.faces);
  }
  return kOk;
}

}  // namespace

std::function<int()> setup_ear(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<EarArgs>();
  sub.add_option("HEAD", a->input, "Closed head scan with one ear missing")->required();
  sub.add_option("-o,--output", a->output, "Ear prosthesis solid to write (mm)")->required();
  add_option_flags(sub, sculpt::ear_option_table(), a->given);
  add_units_option(sub, a->units, "the input's");
  sub.add_option("--report", a->report, "Write the report as JSON to this file");
  sub.footer("Examples:\n  tracecast synth head -o patient.ply --ears right && tracecast ear patient.ply -o ear.ply\n"
             "  tracecast ear patient.ply -o ear.ply --side left --feather 10 --report ear.json");
  return [a, &g] { return run_ear(*a, g); };
}

}  // namespace tracecast::cli
