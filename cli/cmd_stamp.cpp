// tracecast stamp: a hidden, keyed identifier into an appliance's outer surface.
#include <fmt/format.h>

#include "common.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"
#include "tracecast/watermark/key.h"
#include "tracecast/watermark/mark.h"
#include "tracecast/watermark/payload.h"

namespace tracecast::cli {

namespace {

struct StampArgs {
  std::string input, output, id, key, report;
  nlohmann::json given = nlohmann::json::object();  //!< the stamp table's flags
};

int run_stamp(const StampArgs& a, const GlobalOptions& g) {
  const auto id = watermark::parse_id(a.id);
  if (!id) throw InputError(fmt::format("--id: '{}' is not an identifier (MMMM-RRRRRR-PPPPPP, 0x…, or decimal)", a.id));
  watermark::StampOptions o;
  apply_flags(watermark::stamp_option_table(), a.given, o);
  const watermark::Key key = watermark::read_key(a.key);
  Progress progress(g, 2);
  progress.stage("stamping");
  const io::Geometry geo = io::read_mesh(a.input);
  if (geo.mesh.triangles.empty()) throw InputError(a.input, "holds points only; stamp a closed appliance mesh");
  const watermark::Stamped st = watermark::stamp(geo.mesh, *id, key, o);
  progress.stage("writing");
  io::write_mesh(a.output, st.mesh);
  const watermark::StampReport& r = st.report;
  nlohmann::json j = r;
  j.update({{"input", a.input}, {"output", a.output}, {"options", watermark::stamp_option_table().to_json(o)}});
  if (finish_report(j, a.report, g, progress)) {
    fmt::print("{} -> {}: {} under key {}; {:.0f} mm² marked ({:.1f} tiles), max {:.1f} µm, RMS {:.1f} µm, Hausdorff {:.4f} mm\n", a.input,
               a.output, watermark::format_id(*id), r.key_id, r.marked_area_mm2, r.tiles, r.max_displacement_um, r.rms_displacement_um,
               r.hausdorff_mm);
    for (const auto& w : r.warnings) fmt::print("  warning      {}\n", w);
  }
  return kOk;
}

}  // namespace

std::function<int()> setup_stamp(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<StampArgs>();
  sub.add_option("APPLIANCE", a->input, "Closed appliance mesh (mm)")->required()->check(CLI::ExistingFile);
  sub.add_option("--id", a->id, "Identifier: MMMM-RRRRRR-PPPPPP (hex maker-run-piece), 0x + 16 hex digits, or decimal")->required();
  sub.add_option("--key", a->key, "Key file (tracecast key new)")->required();
  sub.add_option("-o,--output", a->output, "Stamped mesh to write")->required();
  add_option_flags(sub, watermark::stamp_option_table(), a->given);
  sub.add_option("--report", a->report, "Write a JSON report here");
  sub.footer("Example:\n  tracecast stamp mask.ply --id 002a-000101-000007 --key workshop.key -o mask-stamped.ply");
  return [a, &g] { return run_stamp(*a, g); };
}

}  // namespace tracecast::cli
