#include <fmt/format.h>

#include "common.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/render.h"

namespace tracecast::cli {

std::function<int()> setup_render(CLI::App& sub, GlobalOptions& g) {
  struct Args {
    std::string input, output, units = "auto";
    RenderOptions options;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("MESH", a->input, "Mesh to draw")->required();
  sub.add_option("-o,--output", a->output, "PNG file to write")->required();
  sub.add_option("--width", a->options.width_px, "Image width in pixels")->check(CLI::Range(16, 8192))->capture_default_str();
  sub.add_option("--yaw", a->options.yaw_deg, "View direction around the vertical axis, degrees (0: from +z)")
      ->check(CLI::Range(-360.0, 360.0))
      ->capture_default_str();
  sub.add_option("--pitch", a->options.pitch_deg, "View from above (+) or below (-), degrees")
      ->check(CLI::Range(-89.0, 89.0))
      ->capture_default_str();
  add_units_option(sub, a->units, "the mesh's");
  sub.footer("Example:\n  tracecast render face.ply -o face.png --yaw 30");
  return [a, &g] {
    io::ReadOptions ro;
    ro.units = *parse_unit(a->units);
    const io::Geometry geo = io::read_mesh(a->input, ro);
    render_png(geo.mesh, a->output, a->options);
    if (g.json) print_json({{"output", a->output}});
    else if (!g.quiet) fmt::print("wrote {}\n", a->output);
    return static_cast<int>(kOk);
  };
}

}  // namespace tracecast::cli
