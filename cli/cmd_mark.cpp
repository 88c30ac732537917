// tracecast stamp / detect: the hidden identifier in and out of the geometry.
#include <fmt/format.h>

#include "common.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"
#include "tracecast/watermark/key.h"
#include "tracecast/watermark/mark.h"
#include "tracecast/watermark/payload.h"

namespace tracecast::cli {

namespace {

nlohmann::json timings_json(const std::vector<std::pair<std::string, double>>& t) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, s] : t) j[k] = s;
  return j;
}

}  // namespace

std::function<int()> setup_stamp(CLI::App& sub, GlobalOptions& g) {
  struct Args {
    std::string input, output, id, key, report, front;
    double max_um = 40, resolution = 0.3;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("APPLIANCE", a->input, "Closed appliance mesh (mm)")->required()->check(CLI::ExistingFile);
  sub.add_option("--id", a->id, "Identifier: MMMM-RRRRRR-PPPPPP (hex maker-run-piece), 0x + 16 hex digits, or decimal")->required();
  sub.add_option("--key", a->key, "Key file (tracecast key new)")->required();
  sub.add_option("-o,--output", a->output, "Stamped mesh to write")->required();
  sub.add_option("--max-displacement-um", a->max_um, "Largest normal displacement, µm")->capture_default_str();
  sub.add_option("--resolution", a->resolution, "Marked triangles are split until no edge is longer, mm")->capture_default_str();
  sub.add_option("--front", a->front, "The piece's forward direction X,Y,Z (default: found from the shape)");
  sub.add_option("--report", a->report, "Write a JSON report here");
  sub.footer("Example:\n  tracecast stamp mask.ply --id 002a-000101-000007 --key workshop.key -o mask-stamped.ply");
  return [a, &g] {
    const auto id = watermark::parse_id(a->id);
    if (!id) throw InputError(fmt::format("--id: '{}' is not an identifier (MMMM-RRRRRR-PPPPPP, 0x…, or decimal)", a->id));
    const watermark::Key key = watermark::read_key(a->key);
    watermark::StampOptions o;
    o.max_displacement_mm = a->max_um / 1000.0;
    o.resolution_mm = a->resolution;
    if (!a->front.empty()) o.front = parse_direction(a->front, "--front");
    Progress progress(g, 2);
    progress.stage("stamping");
    const io::Geometry geo = io::read_mesh(a->input);
    if (geo.mesh.triangles.empty()) throw InputError(a->input, "holds points only; stamp a closed appliance mesh");
    const watermark::Stamped st = watermark::stamp(geo.mesh, *id, key, o);
    progress.stage("writing");
    io::write_mesh(a->output, st.mesh);
    const auto& r = st.report;
    nlohmann::json j = {{"input", a->input},
                        {"output", a->output},
                        {"id", watermark::format_id(*id)},
                        {"key_id", r.key_id},
                        {"front", json_vec(r.front)},
                        {"marked_area_mm2", r.marked_area_mm2},
                        {"tiles", r.tiles},
                        {"max_displacement_um", r.max_displacement_um},
                        {"rms_displacement_um", r.rms_displacement_um},
                        {"hausdorff_mm", r.hausdorff_mm},
                        {"vertices", {{"before", r.vertices_before}, {"after", r.vertices_after}}},
                        {"split_edges", r.split_edges},
                        {"options", {{"max_displacement_um", a->max_um}, {"resolution_mm", a->resolution}}},
                        {"timings_s", timings_json(r.timings)}};
    if (!a->report.empty()) write_file_atomically(a->report, j.dump(2) + "\n");
    progress.done();
    if (g.json) print_json(j);
    else if (!g.quiet)
      fmt::print("{} -> {}: {} under key {}; {:.0f} mm² marked ({:.1f} tiles), max {:.1f} µm, RMS {:.1f} µm, Hausdorff {:.4f} mm\n", a->input,
                 a->output, watermark::format_id(*id), r.key_id, r.marked_area_mm2, r.tiles, r.max_displacement_um, r.rms_displacement_um,
                 r.hausdorff_mm);
    return static_cast<int>(kOk);
  };
}

std::function<int()> setup_detect(CLI::App& sub, GlobalOptions& g) {
  struct Args {
    std::string input;
    std::vector<std::string> keys;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("SCAN", a->input, "Scan of the cast: mesh or point cloud, any pose, unit and sampling, possibly partial")->required()->check(CLI::ExistingFile);
  sub.add_option("--key", a->keys, "Key file; repeat to try several (the scan is analysed once)")->required();
  sub.footer(
      "Exit codes: 0 identifier found, 5 no mark found under the key(s), 6 the scan has too little surface\n"
      "(or too sparse or coarse a sampling) to carry a mark; 3 unreadable scan or key.\n"
      "Example:\n  tracecast detect cast-scan.ply --key workshop.key --json");
  return [a, &g] {
    std::vector<watermark::Key> keys;
    for (const std::string& k : a->keys) keys.push_back(watermark::read_key(k));
    Progress progress(g, 2);
    progress.stage("analysing");
    const io::Geometry geo = io::read_geometry(a->input);
    const watermark::Analysis an = geo.mesh.triangles.empty() ? watermark::analyze(geo.mesh.vertices) : watermark::analyze(geo.mesh);
    progress.stage("reading");
    watermark::Detection best = an.base;
    std::string used_key;
    for (std::size_t k = 0; k < keys.size(); ++k) {
      const watermark::Detection d = watermark::read(an, keys[k]);
      if (d.outcome == watermark::Outcome::found || k == 0) {
        best = d;
        used_key = a->keys[k];
      }
      if (d.outcome == watermark::Outcome::found) break;
    }
    progress.done();
    const bool found = best.outcome == watermark::Outcome::found;
    nlohmann::json j = {{"input", a->input},
                        {"outcome", watermark::outcome_name(best.outcome)},
                        {"reason", best.reason},
                        {"keys_tried", keys.size()},
                        {"area_mm2", best.area_mm2},
                        {"unit_factor", best.unit_factor},
                        {"samples", best.samples},
                        {"timings_s", timings_json(best.timings)}};
    if (best.outcome != watermark::Outcome::insufficient_surface && an.state) {
      j["scale"] = best.scale;
      j["front"] = json_vec(best.front);
      j["lattice_contrast"] = best.lattice_contrast;
      j["sync_z"] = best.sync_z;
    }
    if (found) {
      const watermark::PieceId p = watermark::unpack(best.id);
      j["id"] = watermark::format_id(best.id);
      j["maker"] = p.maker;
      j["run"] = p.run;
      j["piece"] = p.piece;
      j["key_file"] = used_key;
      for (std::size_t k = 0; k < keys.size(); ++k)
        if (a->keys[k] == used_key) j["key_id"] = keys[k].id();
      j["confidence"] = best.confidence;
      j["bit_error_rate"] = best.bit_error_rate;
      j["false_positive_bound"] = best.false_positive_bound * static_cast<double>(keys.size());
      j["carrier_area_mm2"] = best.carrier_area_mm2;
      j["carrier_box"] = {{"min", json_vec(best.carrier_box.min)}, {"max", json_vec(best.carrier_box.max)}};
    }
    if (g.json) print_json(j);
    else if (!g.quiet) {
      if (found)
        fmt::print("{}: {} (maker {}, run {}, piece {}); confidence {:.3f}, {:.1f} % of cells inconsistent, false-positive bound {:.1e}; "
                   "carried by {:.0f} of {:.0f} mm²\n",
                   a->input, watermark::format_id(best.id), j["maker"].get<unsigned>(), j["run"].get<unsigned>(), j["piece"].get<unsigned>(),
                   best.confidence, 100 * best.bit_error_rate, j["false_positive_bound"].get<double>(), best.carrier_area_mm2, best.area_mm2);
      else
        fmt::print("{}: {}: {}\n", a->input, watermark::outcome_name(best.outcome), best.reason);
    }
    if (found) return static_cast<int>(kOk);
    return static_cast<int>(best.outcome == watermark::Outcome::insufficient_surface ? kInsufficientSurface : kNoMark);
  };
}

}  // namespace tracecast::cli
