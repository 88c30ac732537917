// tracecast trace: from a scan of a piece to its ledger record (run, subject, consent, operator, files).
#include <fmt/format.h>

#include <filesystem>
#include <optional>

#include "common.h"
#include "tracecast/ledger/ledger.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/registry/registry.h"
#include "tracecast/watermark/mark.h"

namespace tracecast::cli {

namespace {

std::string or_dash(const nlohmann::json& v) {
  if (v.is_null()) return "—";
  if (v.is_string()) return v.get<std::string>().empty() ? "—" : v.get<std::string>();
  return v.dump();
}

//! The run's and the consent's lines of a piece's record.
std::string run_and_consent_text(const nlohmann::json& run, const nlohmann::json& piece) {
  std::string text;
  if (!run.is_null())
    text += fmt::format("\n  run        {}: {} use, client {}, prescriber {}, operator {}{}; opened {}, closed {}", or_dash(run["run"]),
                        or_dash(run["use"]), or_dash(run["client"]), or_dash(run["prescriber"]), or_dash(run["operator"]),
                        run["operator_name"].is_null() ? "" : " (" + or_dash(run["operator_name"]) + ")", or_dash(run["opened_utc"]),
                        or_dash(run["closed_utc"]));
  const auto consent_line = [](const nlohmann::json& c) {
    return c.is_null() ? std::string()
                       : fmt::format("\n  consent    {} use until {}, given by {}; document SHA-256 {} (entry {})", or_dash(c["use"]),
                                     or_dash(c["valid_until"]), or_dash(c["given_by"]), or_dash(c["document_sha256"]), or_dash(c["entry"]));
  };
  text += fmt::format("\n  subject    {}", or_dash(piece["subject"])) + consent_line(piece["consent"]);
  if (const nlohmann::json& l = piece["likeness"]; l.is_object())
    text += fmt::format("\n  likeness   {} (the face the piece copies)", or_dash(l["subject"])) + consent_line(l["consent"]);
  return text;
}

//! The piece's files (inputs and outputs with their SHA-256), its release and the ledger's state.
std::string files_and_release_text(const nlohmann::json& rec) {
  const nlohmann::json& p = rec["piece"];
  std::string text = fmt::format("\n  made       {} under marking key {} (entry {})", or_dash(p["made_utc"]), or_dash(p["marking_key_id"]),
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
  const nlohmann::json& v = rec["ledger"];
  text += v["verified"].get<bool>() ? fmt::format("\n  ledger     {} entries, chain, signatures, rules and tables verified", or_dash(v["entries"]))
                                    : fmt::format("\n  ledger     DOES NOT VERIFY: {}", or_dash(v["problem"]));
  return text;
}

//! A piece's record as the text lines `trace` prints under the reading.
std::string record_text(const nlohmann::json& rec) {
  const nlohmann::json& w = rec["workshop"];
  return fmt::format("\n  workshop   {} (maker {}){}\n  key        {}", or_dash(w["name"]), or_dash(w["maker"]),
                     rec["imported"].get<bool>() ? ", imported into this ledger" : "", or_dash(w["key_fingerprint"])) +
         run_and_consent_text(rec["run"], rec["piece"]) + files_and_release_text(rec);
}

struct TraceArgs {
  std::string input, ledger, registry, token, case_ref, ca;
  std::vector<std::string> keys;
  nlohmann::json given = nlohmann::json::object();  //!< the detect table's flags
};

//! What the registry answered, as the lines `trace --registry` prints.
std::string registry_text(const std::string& input, const nlohmann::json& r) {
  const nlohmann::json& d = r["reading"];
  if (!r["found"].get<bool>())
    return fmt::format("{}: {}: {} ({} escrowed keys tried)", input, or_dash(d["outcome"]), or_dash(d["reason"]), r["keys_tried"].get<long>());
  std::string text = fmt::format("{}: {} (confidence {:.3f}, {:.1f} % of cells inconsistent, false-positive bound {:.1e} over {} keys)", input,
                                 or_dash(d["id"]), d["confidence"].get<double>(), 100 * d["bit_error_rate"].get<double>(),
                                 d["false_positive_bound"].get<double>(), r["keys_tried"].get<long>());
  const nlohmann::json& w = r["workshop"];
  const nlohmann::json& log = w["log"];
  text += fmt::format("\n  workshop   {} (maker {}), key {}, enrolled {}", or_dash(w["name"]), or_dash(w["maker"]), or_dash(w["key_fingerprint"]),
                      or_dash(w["enrolled_utc"]));
  text += log["verifies"].get<bool>() ? fmt::format("\n  log        {} entries held by the registry; chain, signatures and rules verify", or_dash(log["entries"]))
                                      : fmt::format("\n  log        DOES NOT VERIFY in the registry: {}", log["problem"].get<std::string>().empty()
                                                        ? fmt::format("{} refused push(es), the last on {}: {}", log["flags"].size(), or_dash(log["flags"].back()["time_utc"]),
                                                                      or_dash(log["flags"].back()["problem"]))
                                                        : log["problem"].get<std::string>());
  if (const nlohmann::json& p = r["piece"]; p.is_object()) {
    text += fmt::format("\n  piece      {}, run {}: {} use, made {}", or_dash(p["id"]), or_dash(p["run"]), or_dash(p["use"]), or_dash(p["date"]));
    if (p.contains("subject"))
      text += fmt::format("\n  subject    {}{}", or_dash(p["subject"]),
                          p["likeness_subject"].get<std::string>().empty() ? "" : ", likeness of " + p["likeness_subject"].get<std::string>());
    else
      text += "\n  subject    (given only with --case)";
  }
  if (r.contains("piece_problem")) text += "\n  problem    " + r["piece_problem"].get<std::string>();
  return text;
}

//! Through a registry: the analysis made here, only it sent (no coordinate of the scan), read there
//! under every enrolled workshop's key.
int trace_via_registry(const TraceArgs& a, const GlobalOptions& g) {
  registry::Client client(a.registry, from_env(a.token, "TRACECAST_REGISTRY_TOKEN"), from_env(a.ca, "TRACECAST_REGISTRY_CA"));
  Progress progress(g, 2);
  progress.stage("analysing");
  const nlohmann::json analysis = watermark::analysis_to_json(analyse_scan(a.input, a.given));
  progress.stage("tracing");
  const nlohmann::json r = client.post("/v1/trace", {{"analysis", analysis}, {"case", a.case_ref}});
  progress.done();
  if (g.json) print_json(r);
  else if (!g.quiet) fmt::print("{}\n", registry_text(a.input, r));
  const std::string outcome = r["reading"]["outcome"].get<std::string>();
  if (!r["found"].get<bool>()) return outcome == "insufficient_surface" ? kInsufficientSurface : kNoMark;
  return r["piece"].is_object() ? kOk : kNotInLedger;
}

int run_trace(const TraceArgs& a, const GlobalOptions& g) {
  const std::string registry = from_env(a.registry, "TRACECAST_REGISTRY");
  if (!registry.empty() && a.keys.empty() && a.ledger.empty()) {
    TraceArgs r = a;
    r.registry = registry;
    return trace_via_registry(r, g);
  }
  if (a.keys.empty()) throw UsageError("trace needs --key (and a ledger), or --registry");
  // The ledger first: a wrong path is said before the minutes of analysis.
  const std::string lp = ledger_file(a.ledger);
  if (!std::filesystem::exists(lp)) throw InputError(lp, "no such ledger");
  const ledger::Ledger book = ledger::Ledger::open(lp);
  const ScanReading r = read_mark(a.input, a.keys, a.given, g);
  nlohmann::json j = {{"scan", r.report}, {"ledger", lp}, {"record", nullptr}};
  int code = r.code;
  std::string text = reading_line(r);
  if (r.found) {
    if (const std::optional<nlohmann::json> rec = book.piece_record(r.id)) {
      j["record"] = *rec;
      text += record_text(*rec);
    } else {
      code = kNotInLedger;
      text += fmt::format("\n  not in {}: no piece {} was recorded there (maker {}; import that workshop's ledger to trace it)", lp,
                          r.report["id"].get<std::string>(), r.report["maker"].get<unsigned>());
    }
  }
  if (g.json) print_json(j);
  else if (!g.quiet) fmt::print("{}\n", text);
  return code;
}

}  // namespace

std::function<int()> setup_trace(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<TraceArgs>();
  sub.add_option("SCAN", a->input, "Scan of the piece (a cast, or a mold part): mesh or point cloud, any pose, unit and sampling")
      ->required()
      ->check(CLI::ExistingFile);
  sub.add_option("--key", a->keys, "Marking key file; repeat to try several (not with --registry)");
  sub.add_option("--ledger", a->ledger, "Ledger to look the identifier up in (default: $TRACECAST_LEDGER)");
  sub.add_option("--registry", a->registry, "Trace through a registry instead (default: $TRACECAST_REGISTRY when no --key is given)");
  sub.add_option("--token", a->token, "Investigator token for the registry (default: $TRACECAST_REGISTRY_TOKEN)");
  sub.add_option("--ca-cert", a->ca, "For an https:// registry with its own certificate: the PEM file it must chain to (default: $TRACECAST_REGISTRY_CA)");
  sub.add_option("--case", a->case_ref, "Case reference: recorded in the registry's audit log; the subject's code is given only with one");
  add_option_flags(sub, watermark::detect_option_table(), a->given);
  sub.footer(
      "Reads the hidden identifier from the scan and prints the piece's record from the ledger: run,\n"
      "subject code, consent, operator, files and dates (pieces of imported workshops too).\n"
      "Exit codes: 0 record found, 5 no mark found, 6 too little surface, 7 a mark was read but its\n"
      "identifier is not in this ledger (or the registry); 3 unreadable scan, key or ledger; 8 the registry refused.\n"
      "With --registry, the scan is analysed here and only the analysis (the folded tile, no coordinate of the\n"
      "scan) is sent; the registry reads it under every enrolled workshop's key.\n"
      "Examples:\n  tracecast trace cast-scan.ply --key workshop.key --ledger shop.ledger\n"
      "  TRACECAST_REGISTRY_TOKEN=… tracecast trace cast-scan.ply --registry http://127.0.0.1:8470 --case CASE-0142");
  return [a, &g] { return run_trace(*a, g); };
}

}  // namespace tracecast::cli
