// tracecast detect: the hidden identifier read back from a scan of a cast, under one or more keys.
#include <fmt/format.h>

#include "common.h"
#include "tracecast/mesh/io.h"
#include "tracecast/watermark/key.h"
#include "tracecast/watermark/mark.h"
#include "tracecast/watermark/payload.h"

namespace tracecast::cli {

watermark::Analysis analyse_scan(const std::string& scan, const nlohmann::json& given) {
  watermark::DetectOptions o;
  apply_flags(watermark::detect_option_table(), given, o);
  const io::Geometry geo = io::read_geometry(scan);
  return geo.mesh.triangles.empty() ? watermark::analyze(geo.mesh.vertices, o) : watermark::analyze(geo.mesh, o);
}

ScanReading read_mark(const std::string& scan, const std::vector<std::string>& key_files, const nlohmann::json& given, const GlobalOptions& g) {
  std::vector<watermark::Key> keys;
  for (const std::string& k : key_files) keys.push_back(watermark::read_key(k));
  Progress progress(g, 2);
  progress.stage("analysing");
  const watermark::Analysis an = analyse_scan(scan, given);
  progress.stage("reading");
  const watermark::KeyedReading reading = watermark::read_under_keys(an, keys);
  progress.done();
  const watermark::Detection& best = reading.detection;
  ScanReading out;
  out.found = best.outcome == watermark::Outcome::found;
  out.report = best;
  out.report.update({{"input", scan}, {"keys_tried", keys.size()}});
  if (out.found) {
    out.id = best.id;
    out.report.update({{"key_file", key_files[reading.key]}, {"key_id", keys[reading.key].id()}});
  }
  out.code = out.found ? kOk : best.outcome == watermark::Outcome::insufficient_surface ? kInsufficientSurface : kNoMark;
  return out;
}

std::string reading_line(const ScanReading& r) {
  const nlohmann::json& j = r.report;
  if (!r.found) return fmt::format("{}: {}: {}", j["input"].get<std::string>(), j["outcome"].get<std::string>(), j["reason"].get<std::string>());
  return fmt::format("{}: {} (maker {}, run {}, piece {}); confidence {:.3f}, {:.1f} % of cells inconsistent, false-positive bound {:.1e}; "
                     "carried by {:.0f} of {:.0f} mm²",
                     j["input"].get<std::string>(), j["id"].get<std::string>(), j["maker"].get<unsigned>(), j["run"].get<unsigned>(),
                     j["piece"].get<unsigned>(), j["confidence"].get<double>(), 100 * j["bit_error_rate"].get<double>(),
                     j["false_positive_bound"].get<double>(), j["carrier_area_mm2"].get<double>(), j["area_mm2"].get<double>());
}

namespace {

struct DetectArgs {
  std::string input;
  std::vector<std::string> keys;
  nlohmann::json given = nlohmann::json::object();  //!< the detect table's flags
};

int run_detect(const DetectArgs& a, const GlobalOptions& g) {
  const ScanReading r = read_mark(a.input, a.keys, a.given, g);
  if (g.json) print_json(r.report);
  else if (!g.quiet) fmt::print("{}\n", reading_line(r));
  return r.code;
}

}  // namespace

std::function<int()> setup_detect(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<DetectArgs>();
  sub.add_option("SCAN", a->input, "Scan of the cast: mesh or point cloud, any pose, unit and sampling, possibly partial")->required()->check(CLI::ExistingFile);
  sub.add_option("--key", a->keys, "Key file; repeat to try several (the scan is analysed once)")->required();
  add_option_flags(sub, watermark::detect_option_table(), a->given);
  sub.footer(
      "Exit codes: 0 identifier found, 5 no mark found under the key(s), 6 the scan has too little surface\n"
      "(or too sparse or coarse a sampling) to carry a mark; 3 unreadable scan or key.\n"
      "Example:\n  tracecast detect cast-scan.ply --key workshop.key --json");
  return [a, &g] { return run_detect(*a, g); };
}

}  // namespace tracecast::cli
