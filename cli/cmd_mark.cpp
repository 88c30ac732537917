// tracecast stamp / detect / trace: the hidden identifier in and out of the geometry, and back to its record.
#include <fmt/format.h>

#include <filesystem>
#include <optional>

#include "common.h"
#include "tracecast/mesh/report_json.h"
#include "tracecast/ledger/ledger.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"
#include "tracecast/watermark/key.h"
#include "tracecast/watermark/mark.h"
#include "tracecast/watermark/payload.h"

namespace tracecast::cli {

namespace {

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
                        {"front", vec_json(r.front)},
                        {"marked_area_mm2", r.marked_area_mm2},
                        {"tiles", r.tiles},
                        {"max_displacement_um", r.max_displacement_um},
                        {"rms_displacement_um", r.rms_displacement_um},
                        {"hausdorff_mm", r.hausdorff_mm},
                        {"vertices", {{"before", r.vertices_before}, {"after", r.vertices_after}}},
                        {"split_edges", r.split_edges},
                        {"warnings", r.warnings},
                        {"options", {{"max_displacement_um", a->max_um}, {"resolution_mm", a->resolution}}},
                        {"timings_s", timings_json(r.timings)}};
    if (finish_report(j, a->report, g, progress))
      fmt::print("{} -> {}: {} under key {}; {:.0f} mm² marked ({:.1f} tiles), max {:.1f} µm, RMS {:.1f} µm, Hausdorff {:.4f} mm\n", a->input,
                 a->output, watermark::format_id(*id), r.key_id, r.marked_area_mm2, r.tiles, r.max_displacement_um, r.rms_displacement_um,
                 r.hausdorff_mm);
    if (!g.json && !g.quiet)
      for (const auto& w : r.warnings) fmt::print("  warning      {}\n", w);
    return static_cast<int>(kOk);
  };
}

ScanReading read_mark(const std::string& scan, const std::vector<std::string>& key_files, const GlobalOptions& g) {
  std::vector<watermark::Key> keys;
  for (const std::string& k : key_files) keys.push_back(watermark::read_key(k));
  Progress progress(g, 2);
  progress.stage("analysing");
  const io::Geometry geo = io::read_geometry(scan);
  const watermark::Analysis an = geo.mesh.triangles.empty() ? watermark::analyze(geo.mesh.vertices) : watermark::analyze(geo.mesh);
  progress.stage("reading");
  const watermark::KeyedReading reading = watermark::read_under_keys(an, keys);
  const watermark::Detection& best = reading.detection;
  const std::size_t used = reading.key;
  progress.done();
  ScanReading out;
  out.found = best.outcome == watermark::Outcome::found;
  nlohmann::json& j = out.report;
  j = {{"input", scan},
       {"outcome", watermark::outcome_name(best.outcome)},
       {"reason", best.reason},
       {"keys_tried", keys.size()},
       {"area_mm2", best.area_mm2},
       {"unit_factor", best.unit_factor},
       {"samples", best.samples},
       {"timings_s", timings_json(best.timings)}};
  if (best.outcome != watermark::Outcome::insufficient_surface && an.state) {
    j["scale"] = best.scale;
    j["front"] = vec_json(best.front);
    j["lattice_contrast"] = best.lattice_contrast;
    j["sync_z"] = best.sync_z;
  }
  if (out.found) {
    const watermark::PieceId p = watermark::unpack(best.id);
    out.id = best.id;
    j["id"] = watermark::format_id(best.id);
    j["maker"] = p.maker;
    j["run"] = p.run;
    j["piece"] = p.piece;
    j["key_file"] = key_files[used];
    j["key_id"] = keys[used].id();
    j["confidence"] = best.confidence;
    j["bit_error_rate"] = best.bit_error_rate;
    j["false_positive_bound"] = best.false_positive_bound;
    j["carrier_area_mm2"] = best.carrier_area_mm2;
    j["carrier_box"] = {{"min", vec_json(best.carrier_box.min)}, {"max", vec_json(best.carrier_box.max)}};
  }
  out.code = out.found ? kOk : best.outcome == watermark::Outcome::insufficient_surface ? kInsufficientSurface : kNoMark;
  return out;
}

namespace {

//! One line about a reading: the identifier and how sure, or why there is none.
std::string reading_line(const ScanReading& r) {
  const nlohmann::json& j = r.report;
  if (!r.found) return fmt::format("{}: {}: {}", j["input"].get<std::string>(), j["outcome"].get<std::string>(), j["reason"].get<std::string>());
  return fmt::format("{}: {} (maker {}, run {}, piece {}); confidence {:.3f}, {:.1f} % of cells inconsistent, false-positive bound {:.1e}; "
                     "carried by {:.0f} of {:.0f} mm²",
                     j["input"].get<std::string>(), j["id"].get<std::string>(), j["maker"].get<unsigned>(), j["run"].get<unsigned>(),
                     j["piece"].get<unsigned>(), j["confidence"].get<double>(), 100 * j["bit_error_rate"].get<double>(),
                     j["false_positive_bound"].get<double>(), j["carrier_area_mm2"].get<double>(), j["area_mm2"].get<double>());
}

std::string or_dash(const nlohmann::json& v) {
  if (v.is_null()) return "—";
  if (v.is_string()) return v.get<std::string>().empty() ? "—" : v.get<std::string>();
  return v.dump();
}

}  // namespace

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
    const ScanReading r = read_mark(a->input, a->keys, g);
    if (g.json) print_json(r.report);
    else if (!g.quiet) fmt::print("{}\n", reading_line(r));
    return r.code;
  };
}

std::function<int()> setup_trace(CLI::App& sub, GlobalOptions& g) {
  struct Args {
    std::string input, ledger;
    std::vector<std::string> keys;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("SCAN", a->input, "Scan of the piece (a cast, or a mold part): mesh or point cloud, any pose, unit and sampling")
      ->required()
      ->check(CLI::ExistingFile);
  sub.add_option("--key", a->keys, "Marking key file; repeat to try several")->required();
  sub.add_option("--ledger", a->ledger, "Ledger to look the identifier up in (default: $TRACECAST_LEDGER)");
  sub.footer(
      "Reads the hidden identifier from the scan and prints the piece's record from the ledger: run,\n"
      "subject code, consent, operator, files and dates (pieces of imported workshops too).\n"
      "Exit codes: 0 record found, 5 no mark found, 6 too little surface, 7 a mark was read but its\n"
      "identifier is not in this ledger; 3 unreadable scan, key or ledger.\n"
      "Example:\n  tracecast trace cast-scan.ply --key workshop.key --ledger shop.ledger");
  return [a, &g] {
    // The ledger first: a wrong path is said before the minutes of analysis.
    const std::string lp = ledger_file(a->ledger);
    if (!std::filesystem::exists(lp)) throw InputError(lp, "no such ledger");
    const ledger::Ledger book = ledger::Ledger::open(lp);
    const ScanReading r = read_mark(a->input, a->keys, g);
    nlohmann::json j = {{"scan", r.report}, {"ledger", lp}, {"record", nullptr}};
    int code = r.code;
    std::string text = reading_line(r);
    if (r.found) {
      const std::optional<nlohmann::json> rec = book.piece_record(r.id);
      if (!rec) {
        code = kNotInLedger;
        text += fmt::format("\n  not in {}: no piece {} was recorded there (maker {}; import that workshop's ledger to trace it)", lp,
                            r.report["id"].get<std::string>(), r.report["maker"].get<unsigned>());
      } else {
        j["record"] = *rec;
        const nlohmann::json &p = (*rec)["piece"], &run = (*rec)["run"], &w = (*rec)["workshop"], &c = p["consent"];
        text += fmt::format("\n  workshop   {} (maker {}){}", or_dash(w["name"]), or_dash(w["maker"]),
                            (*rec)["imported"].get<bool>() ? ", imported into this ledger" : "");
        if (!run.is_null())
          text += fmt::format("\n  run        {}: {} use, client {}, prescriber {}, operator {}{}; opened {}, closed {}", or_dash(run["run"]),
                              or_dash(run["use"]), or_dash(run["client"]), or_dash(run["prescriber"]), or_dash(run["operator"]),
                              run["operator_name"].is_null() ? "" : " (" + or_dash(run["operator_name"]) + ")", or_dash(run["opened_utc"]),
                              or_dash(run["closed_utc"]));
        text += fmt::format("\n  subject    {}", or_dash(p["subject"]));
        if (!c.is_null())
          text += fmt::format("\n  consent    {} use until {}, given by {}; document SHA-256 {} (entry {})", or_dash(c["use"]),
                              or_dash(c["valid_until"]), or_dash(c["given_by"]), or_dash(c["document_sha256"]), or_dash(c["entry"]));
        text += fmt::format("\n  made       {} under marking key {} (entry {})", or_dash(p["made_utc"]), or_dash(p["marking_key_id"]),
                            or_dash(p["entry"]));
        const nlohmann::json& details = p["details"];
        if (details.is_object() && details.contains("inputs"))
          for (const auto& [f, h] : details["inputs"].items()) text += fmt::format("\n  input      {}  {}", f, or_dash(h));
        if (!p["outputs"].is_null())
          for (const auto& [f, h] : p["outputs"]["files"].items()) text += fmt::format("\n  output     {}  {}", f, or_dash(h));
        else if (details.is_object() && details.contains("outputs"))
          for (const auto& [f, h] : details["outputs"].items()) text += fmt::format("\n  output     {}  {}", f, or_dash(h));
        const nlohmann::json& rel = p["release"];
        text += rel.is_null() ? std::string("\n  release    awaiting release")
                              : fmt::format("\n  release    {} by {} on {}{}", rel["accepted"].get<bool>() ? "accepted" : "rejected",
                                            or_dash(rel["released_by"]), or_dash(rel["released_utc"]),
                                            rel["note"].is_string() && !rel["note"].get<std::string>().empty() ? ": " + or_dash(rel["note"]) : "");
        const nlohmann::json& v = (*rec)["ledger"];
        text += v["verified"].get<bool>() ? fmt::format("\n  ledger     {} entries, chain and signatures verified", or_dash(v["entries"]))
                                          : fmt::format("\n  ledger     DOES NOT VERIFY: {}", or_dash(v["problem"]));
      }
    }
    if (g.json) print_json(j);
    else if (!g.quiet) fmt::print("{}\n", text);
    return code;
  };
}

}  // namespace tracecast::cli
