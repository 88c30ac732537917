// tracecast render: a mesh as a shaded PNG picture.
#include <fmt/format.h>

#include "common.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/render.h"

namespace tracecast::cli {

namespace {

struct RenderArgs {
  std::string input, output, units = "auto";
  nlohmann::json given = nlohmann::json::object();  //!< the render table's flags
};

int run_render(const RenderArgs& a, const GlobalOptions& g) {
  RenderOptions options;
  apply_flags(render_option_table(), a.given, options);
  io::ReadOptions ro;
  ro.units = *parse_unit(a.units);
  const io::Geometry geo = io::read_mesh(a.input, ro);
  render_png(geo.mesh, a.output, options);
  if (g.json) print_json({{"output", a.output}});
  else if (!g.quiet) fmt::print("wrote {}\n", a.output);
  return kOk;
}

}  // namespace

std::function<int()> setup_render(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<RenderArgs>();
  sub.add_option("MESH", a->input, "Mesh to draw")->required();
  sub.add_option("-o,--output", a->output, "PNG file to write")->required();
  add_option_flags(sub, render_option_table(), a->given);
  add_units_option(sub, a->units, "the mesh's");
  sub.footer("Example:\n  tracecast render face.ply -o face.png --yaw 30");
  return [a, &g] { return run_render(*a, g); };
}

}  // namespace tracecast::cli
