// tracecast ledger …: create, inspect, verify and fill a workshop's production ledger.
#include <fmt/format.h>

#include <cstdlib>
#include <fstream>

#include "common.h"
#include "tracecast/version.h"
#include "tracecast/ledger/ledger.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/watermark/key.h"
#include "tracecast/watermark/payload.h"

namespace tracecast::cli {

namespace {

struct LedgerArgs {
  std::string ledger, signing_key;
  // init
  std::uint32_t maker = 0;
  std::string name;
  // subject / consent / run / piece
  std::string code, subject, likeness, use = "film", valid_until, document, given_by, client, prescriber, operator_code, key;
  std::uint32_t run = 0;
  std::vector<std::string> inputs, outputs;
  // release / export
  std::string piece_id, released_by, note, output;
  bool accepted = false, rejected = false, csv = false;
  // import
  std::string other;
  // verify, checkpoint
  std::string expect_key;
  std::vector<std::string> checkpoints;
};

std::string csv_field(const nlohmann::json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump();
  if (s.find_first_of(",\"\n") != std::string::npos) {
    std::string q = "\"";
    for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  }
  return s;
}

std::string history_csv(const nlohmann::json& h) {
  std::string out = "id,number,subject,made_utc,marking_key_id,consent_use,consent_valid_until,consent_document_sha256,"
                    "release,released_by,released_utc,likeness_subject,likeness_consent_use,likeness_consent_valid_until,"
                    "likeness_consent_document_sha256\n";
  // A field of an object that may be null (no consent, no release, no likeness): empty then.
  const auto field = [](const nlohmann::json& j, const char* key) { return j.is_null() ? nlohmann::json() : j[key]; };
  for (const auto& p : h["pieces"]) {
    const auto& c = p["consent"];
    const auto& r = p["release"];
    const auto& l = p["likeness"];
    const nlohmann::json lc = field(l, "consent");
    const std::vector<nlohmann::json> row = {
        p["id"], p["number"], p["subject"], p["made_utc"], p["marking_key_id"], field(c, "use"), field(c, "valid_until"),
        field(c, "document_sha256"), r.is_null() ? nlohmann::json("awaiting") : nlohmann::json(r["accepted"].get<bool>() ? "accepted" : "rejected"),
        field(r, "released_by"), field(r, "released_utc"), field(l, "subject"), field(lc, "use"), field(lc, "valid_until"),
        field(lc, "document_sha256")};
    for (std::size_t i = 0; i < row.size(); ++i) out += (i ? "," : "") + csv_field(row[i]);
    out += "\n";
  }
  return out;
}

ledger::Use use_of(const std::string& s) {
  const auto u = ledger::parse_use(s);
  if (!u) throw InputError("use must be film, medical or other, not '" + s + "'");
  return *u;
}

void say(const GlobalOptions& g, const nlohmann::json& j, const std::string& text) {
  if (g.json) print_json(j);
  else if (!g.quiet) fmt::print("{}\n", text);
}

int ledger_init(const LedgerArgs& a, const GlobalOptions& g) {
  const std::string lp = ledger_file(a.ledger), kp = from_env(a.signing_key, "TRACECAST_SIGNING_KEY");
  if (kp.empty()) throw InputError("init needs --signing-key FILE (created if it does not exist)");
  bool created_key = false;
  if (!std::filesystem::exists(kp)) {
    ledger::write_signing_key(kp, ledger::SigningKey::generate());
    created_key = true;
  }
  const ledger::SigningKey key = ledger::read_signing_key(kp);
  ledger::Ledger::create(lp, key, a.maker, a.name);
  say(g, {{"ledger", lp}, {"signing_key", kp}, {"created_signing_key", created_key}, {"public_key", key.public_hex()}},
      fmt::format("created {} for maker {} ({}); {} signing key {} (public key {})", lp, a.maker, a.name,
                  created_key ? "new" : "existing", kp, key.public_hex()));
  return static_cast<int>(kOk);
}

int ledger_import(const LedgerArgs& a, const GlobalOptions& g) {
  const auto key = workshop_signing_key(a.signing_key);
  const ledger::ImportResult r = ledger::Ledger::open(ledger_file(a.ledger), &key).import_from(a.other);
  const nlohmann::json j = {{"workshop", r.workshop}, {"maker", r.maker}, {"added", r.added}, {"total", r.total}};
  say(g, j, fmt::format("{}: imported {} new entries of workshop {}… (maker {}); {} held in all", ledger_file(a.ledger), r.added,
                        r.workshop.substr(0, 16), r.maker, r.total));
  return static_cast<int>(kOk);
}

//! The first problem verify finds, else the key's against --expect-key, else each checkpoint's.
ledger::VerifyResult verified(const ledger::Ledger& l, const LedgerArgs& a, const std::string& fingerprint) {
  ledger::VerifyResult r = l.verify();
  const auto fail = [&](std::string problem) {
    r.ok = false;
    r.problem = std::move(problem);
  };
  if (r.ok && !a.expect_key.empty()) {
    const std::optional<std::string> expected = ledger::parse_fingerprint(a.expect_key);
    if (!expected) throw UsageError("--expect-key: a key fingerprint is 32 hexadecimal digits (as 'ledger verify' prints it), got '" + a.expect_key + "'");
    if (*expected != fingerprint)
      fail(fmt::format("the ledger is signed by key {}, not the expected {}: its history was re-signed, or this is another workshop's", fingerprint,
                       *expected));
  }
  for (const std::string& file : a.checkpoints) {
    if (!r.ok) break;
    std::ifstream in(file, std::ios::binary);
    if (!in) throw InputError(file, "cannot open the checkpoint");
    const nlohmann::json cp = nlohmann::json::parse(in, nullptr, false);
    if (cp.is_discarded()) throw InputError(file, "the checkpoint is not JSON");
    if (const std::string p = l.checkpoint_problem(cp); !p.empty()) fail(file + ": " + p);
  }
  return r;
}

int ledger_verify(const LedgerArgs& a, const GlobalOptions& g) {
  const ledger::Ledger l = ledger::Ledger::open(ledger_file(a.ledger));
  const std::string fingerprint = ledger::key_fingerprint(l.public_key_hex());
  const ledger::VerifyResult r = verified(l, a, fingerprint);
  const nlohmann::json j = {{"ok", r.ok},
                            {"entries", r.entries},
                            {"first_bad_entry", r.first_bad_seq},
                            {"problem", r.problem},
                            {"public_key", l.public_key_hex()},
                            {"key_fingerprint", fingerprint},
                            {"checkpoints", a.checkpoints.size()}};
  if (!r.ok) {
    if (g.json) print_json(j);
    throw InputError(ledger_file(a.ledger), "ledger does not verify: " + r.problem);
  }
  say(g, j, fmt::format("{}: {} entries; chain, signatures, rules and tables verify{}{}\nkey fingerprint {}", ledger_file(a.ledger), r.entries,
                        a.expect_key.empty() ? "" : "; signed by the expected key",
                        a.checkpoints.empty() ? "" : fmt::format("; extends {} checkpoint(s)", a.checkpoints.size()), fingerprint));
  return static_cast<int>(kOk);
}

int ledger_checkpoint(const LedgerArgs& a, const GlobalOptions& g) {
  const auto key = workshop_signing_key(a.signing_key);
  const nlohmann::json cp = ledger::Ledger::open(ledger_file(a.ledger), &key).checkpoint();
  if (a.output.empty()) {
    fmt::print("{}\n", cp.dump(2));
    return static_cast<int>(kOk);
  }
  write_file_atomically(a.output, cp.dump(2) + "\n");
  say(g, {{"output", a.output}, {"entries", cp["entries"]}, {"head_hash", cp["head_hash"]}},
      fmt::format("wrote {}: {} entries, head {}…, signed by key {}", a.output, cp["entries"].get<std::int64_t>(),
                  cp["head_hash"].get<std::string>().substr(0, 16), cp["key_fingerprint"].get<std::string>()));
  return static_cast<int>(kOk);
}

int ledger_show(const LedgerArgs& a, const GlobalOptions& g) {
  const ledger::Ledger l = ledger::Ledger::open(ledger_file(a.ledger));
  nlohmann::json all = nlohmann::json::array();
  std::string text;
  for (const auto& e : l.entries()) {
    all.push_back({{"seq", e.seq}, {"kind", e.kind}, {"body", nlohmann::json::parse(e.body)}, {"hash", e.hash_hex}});
    text += fmt::format("{:6}  {:<11} {}\n", e.seq, e.kind, e.body);
  }
  if (g.json) print_json(all);
  else if (!g.quiet) fmt::print("{}", text);
  return static_cast<int>(kOk);
}

int ledger_operator(const LedgerArgs& a, const GlobalOptions& g) {
  const auto key = workshop_signing_key(a.signing_key);
  ledger::Ledger::open(ledger_file(a.ledger), &key).add_operator(a.code, a.name);
  say(g, {{"operator", a.code}, {"name", a.name}}, fmt::format("added operator {} ({})", a.code, a.name));
  return static_cast<int>(kOk);
}

int ledger_subject(const LedgerArgs& a, const GlobalOptions& g) {
  const auto key = workshop_signing_key(a.signing_key);
  ledger::Ledger::open(ledger_file(a.ledger), &key).add_subject(a.code);
  say(g, {{"subject", a.code}}, "added subject " + a.code);
  return static_cast<int>(kOk);
}

int ledger_consent(const LedgerArgs& a, const GlobalOptions& g) {
  const auto key = workshop_signing_key(a.signing_key);
  const std::string hash = ledger::file_sha256(a.document);
  const auto seq = ledger::Ledger::open(ledger_file(a.ledger), &key)
                       .add_consent(a.subject, use_of(a.use), a.valid_until, hash, a.given_by);
  say(g, {{"consent_entry", seq}, {"document_sha256", hash}},
      fmt::format("recorded consent of {} for {} use until {} (entry {})", a.subject, a.use, a.valid_until, seq));
  return static_cast<int>(kOk);
}

int ledger_run_open(const LedgerArgs& a, const GlobalOptions& g) {
  const auto key = workshop_signing_key(a.signing_key);
  const auto n = ledger::Ledger::open(ledger_file(a.ledger), &key).open_run(use_of(a.use), a.client, a.prescriber, a.operator_code);
  say(g, {{"run", n}}, fmt::format("opened run {}", n));
  return static_cast<int>(kOk);
}

int ledger_run_close(const LedgerArgs& a, const GlobalOptions& g) {
  const auto key = workshop_signing_key(a.signing_key);
  ledger::Ledger::open(ledger_file(a.ledger), &key).close_run(a.run);
  say(g, {{"run", a.run}, {"closed", true}}, fmt::format("closed run {}", a.run));
  return static_cast<int>(kOk);
}

int ledger_piece(const LedgerArgs& a, const GlobalOptions& g) {
  const auto key = workshop_signing_key(a.signing_key);
  const watermark::Key mark = watermark::read_key(a.key);
  nlohmann::json details = {{"software", kSoftware}, {"inputs", nlohmann::json::object()}, {"outputs", nlohmann::json::object()}};
  for (const auto& f : a.inputs) details["inputs"][f] = ledger::file_sha256(f);
  for (const auto& f : a.outputs) details["outputs"][f] = ledger::file_sha256(f);
  const auto p = ledger::Ledger::open(ledger_file(a.ledger), &key).record_piece(a.run, a.subject, mark.id(), details, "", a.likeness);
  say(g, {{"id", watermark::format_id(p.id)}, {"id_value", p.id}, {"entry", p.seq}},
      fmt::format("piece {} recorded (entry {})", watermark::format_id(p.id), p.seq));
  return static_cast<int>(kOk);
}

int ledger_release(const LedgerArgs& a, const GlobalOptions& g) {
  if (a.accepted == a.rejected) throw InputError("say --accepted or --rejected");
  const auto id = watermark::parse_id(a.piece_id);
  if (!id) throw InputError("'" + a.piece_id + "' is not a piece identifier (MMMM-RRRRRR-PPPPPP)");
  const auto key = workshop_signing_key(a.signing_key);
  ledger::Ledger::open(ledger_file(a.ledger), &key).release_piece(*id, a.accepted, {{"note", a.note}}, a.released_by, a.note);
  say(g, {{"id", watermark::format_id(*id)}, {"accepted", a.accepted}},
      fmt::format("piece {} {}", watermark::format_id(*id), a.accepted ? "accepted" : "rejected"));
  return static_cast<int>(kOk);
}

int ledger_export(const LedgerArgs& a, const GlobalOptions& g) {
  const nlohmann::json h = ledger::Ledger::open(ledger_file(a.ledger)).device_history(a.run);
  const bool csv = a.csv || std::filesystem::path(a.output).extension() == ".csv";
  const std::string text = csv ? history_csv(h) : h.dump(2) + "\n";
  if (a.output.empty()) {
    fmt::print("{}", text);
  } else {
    write_file_atomically(a.output, text);
    say(g, {{"output", a.output}, {"pieces", h["pieces"].size()}},
        fmt::format("wrote {} ({} pieces of run {})", a.output, h["pieces"].size(), a.run));
  }
  return static_cast<int>(kOk);
}

using LedgerRun = int (*)(const LedgerArgs&, const GlobalOptions&);
using LedgerOptions = void (*)(CLI::App&, LedgerArgs&);

//! A ledger subcommand: --ledger (and --signing-key when it writes), its own options, its run function.
Command ledger_command(const char* name, const char* summary, bool writes, LedgerRun run, LedgerOptions options = nullptr) {
  return {name, summary, [writes, run, options](CLI::App& s, GlobalOptions& g) -> std::function<int()> {
            auto a = std::make_shared<LedgerArgs>();
            s.add_option("--ledger", a->ledger, "Ledger file (default: $TRACECAST_LEDGER)");
            if (writes) s.add_option("--signing-key", a->signing_key, "Workshop signing key (default: $TRACECAST_SIGNING_KEY)");
            if (options) options(s, *a);
            return [a, &g, run] { return run(*a, g); };
          }};
}

//! init, import, verify, show: the ledger itself.
std::vector<Command> book_commands() {
  return {ledger_command("init", "Create a workshop's ledger, and its signing key if the file does not exist", true, ledger_init,
                         [](CLI::App& s, LedgerArgs& a) {
                           s.add_option("--maker", a.maker, "The workshop's maker number (0-65535): the first field of every identifier")
                               ->required();
                           s.add_option("--name", a.name, "The workshop's name")->required();
                         }),
          ledger_command("import", "Import another workshop's ledger: its chain stays verifiable, its pieces findable here", true,
                         ledger_import, [](CLI::App& s, LedgerArgs& a) { s.add_option("OTHER", a.other, "The other workshop's ledger file")->required(); }),
          ledger_command("verify", "Replay the chain: signatures, the ledger's rules and every table; name the first problem", false,
                         ledger_verify,
                         [](CLI::App& s, LedgerArgs& a) {
                           s.add_option("--expect-key", a.expect_key, "The workshop key's fingerprint, as verify prints it: any other key fails");
                           s.add_option("--checkpoint", a.checkpoints, "A checkpoint kept elsewhere (ledger checkpoint): the ledger must extend it");
                         }),
          ledger_command("checkpoint", "Write a signed checkpoint of the chain (entries, head hash, time) to keep elsewhere", true,
                         ledger_checkpoint,
                         [](CLI::App& s, LedgerArgs& a) { s.add_option("-o,--output", a.output, "File to write (default: stdout)"); }),
          ledger_command("show", "Print the ledger's entries", false, ledger_show)};
}

//! operator, subject, consent: who works, and whose face.
std::vector<Command> register_commands() {
  return {ledger_command("operator", "Add an operator (who runs production) by code and name", true, ledger_operator,
                         [](CLI::App& s, LedgerArgs& a) {
                           s.add_option("CODE", a.code, "Operator code, as runs name it")->required();
                           s.add_option("--name", a.name, "The operator's name")->required();
                         }),
          ledger_command("subject", "Add a subject (the person scanned) by pseudonymous code", true, ledger_subject,
                         [](CLI::App& s, LedgerArgs& a) { s.add_option("CODE", a.code, "Pseudonymous code, never a name")->required(); }),
          ledger_command("consent", "Record a subject's consent for a use, with the signed document's hash", true, ledger_consent,
                         [](CLI::App& s, LedgerArgs& a) {
                           s.add_option("--subject", a.subject, "Subject code")->required();
                           s.add_option("--use", a.use, "film, medical or other")->required();
                           s.add_option("--valid-until", a.valid_until, "Last valid day, YYYY-MM-DD")->required();
                           s.add_option("--document", a.document, "The signed consent document (its SHA-256 is recorded)")->required();
                           s.add_option("--given-by", a.given_by, "Who consented (the subject, or a guardian)")->required();
                         })};
}

//! run open and close: a production run's bounds.
Command run_commands() {
  Command run{"run", "Open or close a production run", {}, {}};
  run.children = {ledger_command("open", "Open a run; prints its number", true, ledger_run_open,
                                 [](CLI::App& s, LedgerArgs& a) {
                                   s.add_option("--use", a.use, "film, medical or other")->required();
                                   s.add_option("--client", a.client, "Production or patient's clinic")->required();
                                   s.add_option("--prescriber", a.prescriber, "Prescriber (required for medical runs)");
                                   s.add_option("--operator", a.operator_code, "Operator code");
                                 }),
                  ledger_command("close", "Close a run: no more pieces in it", true, ledger_run_close,
                                 [](CLI::App& s, LedgerArgs& a) { s.add_option("RUN", a.run, "Run number")->required(); })};
  return run;
}

//! piece, release, export: production.
std::vector<Command> production_commands() {
  return {ledger_command("piece", "Allocate the next identifier of a run and record the piece", true, ledger_piece,
                         [](CLI::App& s, LedgerArgs& a) {
                           s.add_option("--run", a.run, "Run number")->required();
                           s.add_option("--subject", a.subject, "Subject code")->required();
                           s.add_option("--likeness", a.likeness, "Subject whose face the piece copies, when not the subject's own (their consent is required too)");
                           s.add_option("--key", a.key, "Marking key file (its id is recorded)")->required();
                           s.add_option("--input", a.inputs, "Input files (their SHA-256 are recorded)");
                           s.add_option("--output", a.outputs, "Output files (their SHA-256 are recorded)");
                         }),
          ledger_command("release", "Record a piece's acceptance (or rejection) after its checks", true, ledger_release,
                         [](CLI::App& s, LedgerArgs& a) {
                           s.add_option("--piece", a.piece_id, "Piece identifier (MMMM-RRRRRR-PPPPPP)")->required();
                           auto* acc = s.add_flag("--accepted", a.accepted, "The piece passed its checks");
                           auto* rej = s.add_flag("--rejected", a.rejected, "The piece failed its checks");
                           acc->excludes(rej);
                           s.add_option("--by", a.released_by, "Who released it")->required();
                           s.add_option("--note", a.note, "Checks and remarks");
                         }),
          ledger_command("export", "Export a run's device history record (JSON, or CSV)", false, ledger_export,
                         [](CLI::App& s, LedgerArgs& a) {
                           s.add_option("--run", a.run, "Run number")->required();
                           s.add_option("-o,--output", a.output, "File to write (.json or .csv); default: JSON on stdout");
                           s.add_flag("--csv", a.csv, "CSV instead of JSON (one row a piece)");
                         })};
}

//! The group's examples, under its help.
const char* const kLedgerExamples =
    "Examples:\n  tracecast ledger init --ledger shop.ledger --signing-key shop.sign --maker 42 --name \"Shop\"\n"
    "  tracecast ledger operator OP-1 --name \"Alex Moreau\"\n"
    "  tracecast ledger subject S-001\n"
    "  tracecast ledger consent --subject S-001 --use film --valid-until 2027-12-31 --document consent.pdf "
    "--given-by \"S-001\"\n"
    "  tracecast ledger run open --use film --client \"Studio X\" --operator OP-1\n"
    "  tracecast ledger piece --run 1 --subject S-001 --key shop.key --output mold.3mf\n"
    "  tracecast ledger release --piece 002a-000001-000001 --accepted --by \"QA\"\n"
    "  tracecast ledger export --run 1 -o run1.csv\n"
    "  tracecast ledger checkpoint -o shop-2026-12.checkpoint\n"
    "  tracecast ledger verify --expect-key 3f2a-91c0-77de-0b14-a2c5-9e01-44f3-bb20 --checkpoint shop-2026-12.checkpoint\n"
    "The ledger and signing key default to $TRACECAST_LEDGER and $TRACECAST_SIGNING_KEY.";

}  // namespace

Command ledger_group() {
  Command ledger{"ledger", "The workshop's signed production ledger: subjects, consents, runs, pieces, verification", {}, book_commands(),
                 kLedgerExamples};
  for (Command& c : register_commands()) ledger.children.push_back(std::move(c));
  ledger.children.push_back(run_commands());
  for (Command& c : production_commands()) ledger.children.push_back(std::move(c));
  return ledger;
}

}  // namespace tracecast::cli
