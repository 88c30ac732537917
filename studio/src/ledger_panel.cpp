#include "ledger_panel.h"

#include <fmt/format.h>
#include <sodium.h>

#include "tracecast/ledger/ledger.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/watermark/key.h"

namespace tracecast::studio::detail {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Files {
  fs::path ledger, sign, key, consents;
  explicit Files(const fs::path& w)
      : ledger(w / "workshop.ledger"), sign(w / "workshop.sign"), key(w / "workshop.key"), consents(w / "consents") {}
};

std::string text(const json& body, const char* name, bool required = true) {
  if (!body.is_object() || !body.contains(name) || body[name].is_null() || (body[name].is_string() && body[name].get<std::string>().empty())) {
    if (required) throw InputError(fmt::format("'{}' is missing", name));
    return "";
  }
  if (!body[name].is_string()) throw InputError(fmt::format("'{}' must be text", name));
  const std::string s = body[name].get<std::string>();
  if (s.size() > 200) throw InputError(fmt::format("'{}' is longer than 200 characters", name));
  return s;
}

long whole(const json& body, const char* name, long min, long max) {
  if (!body.is_object() || !body.contains(name)) throw InputError(fmt::format("'{}' is missing", name));
  const json& v = body[name];
  long n = 0;
  if (v.is_number_integer()) n = v.get<long>();
  else if (v.is_string() && !v.get<std::string>().empty() && v.get<std::string>().find_first_not_of("0123456789") == std::string::npos)
    n = std::stol(v.get<std::string>());
  else throw InputError(fmt::format("'{}' must be a whole number", name));
  if (n < min || n > max) throw InputError(fmt::format("'{}' must be in [{}, {}], got {}", name, min, max, n));
  return n;
}

ledger::Use use_of(const json& body) {
  const std::string u = text(body, "use");
  const auto use = ledger::parse_use(u);
  if (!use) throw InputError(fmt::format("'use' must be film, medical or other, got '{}'", u));
  return *use;
}

//! The workshop's entries, sorted into what the page lists.
json listing(const std::vector<ledger::Entry>& entries) {
  json out = {{"operators", json::array()}, {"subjects", json::array()}, {"consents", json::array()}, {"runs", json::array()}, {"pieces", 0}};
  std::map<long, std::size_t> run_row;
  for (const ledger::Entry& e : entries) {
    if (!e.workshop.empty()) continue;  // an imported workshop's
    const json b = json::parse(e.body, nullptr, false);
    if (e.kind == "operator") out["operators"].push_back({{"code", b.value("code", "")}, {"name", b.value("name", "")}});
    if (e.kind == "subject") out["subjects"].push_back({{"code", b.value("code", "")}, {"entry", e.seq}});
    if (e.kind == "consent")
      out["consents"].push_back({{"entry", e.seq}, {"subject", b.value("subject", "")}, {"use", b.value("use", "")},
                                 {"valid_until", b.value("valid_until", "")}, {"given_by", b.value("given_by", "")},
                                 {"document_sha256", b.value("document_sha256", "")}});
    if (e.kind == "run") {
      run_row[b.value("run", 0L)] = out["runs"].size();
      out["runs"].push_back({{"run", b.value("run", 0L)}, {"use", b.value("use", "")}, {"client", b.value("client", "")},
                             {"prescriber", b.value("prescriber", "")}, {"operator", b.value("operator", "")}, {"closed", false}, {"pieces", 0}});
    }
    if (e.kind == "run-closed" && run_row.count(b.value("run", 0L))) out["runs"][run_row[b.value("run", 0L)]]["closed"] = true;
    if (e.kind == "piece") {
      out["pieces"] = out["pieces"].get<long>() + 1;
      if (run_row.count(b.value("run", 0L))) {
        json& r = out["runs"][run_row[b.value("run", 0L)]];
        r["pieces"] = r["pieces"].get<long>() + 1;
      }
    }
  }
  return out;
}

//! The consent's signed document, decoded; kept in consents/ under its SHA-256.
struct Document {
  std::string bytes, sha256, file_name;
};
Document document_of(const json& body) {
  const std::string name = text(body, "document_name"), b64 = text(body, "document_base64", true);
  Document d;
  d.bytes.resize(b64.size());
  std::size_t n = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(d.bytes.data()), d.bytes.size(), b64.data(), b64.size(), nullptr, &n, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0)
    throw InputError("'document_base64' is not base64");
  d.bytes.resize(n);
  if (d.bytes.empty()) throw InputError("the consent document is empty");
  d.sha256 = ledger::sha256_hex(d.bytes);
  std::string safe;
  for (char c : fs::path(name).filename().string()) safe += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ? c : '_';
  d.file_name = d.sha256.substr(0, 16) + "-" + (safe.empty() || safe.front() == '.' ? "document" : safe);
  return d;
}

json add_consent(const Files& f, ledger::Ledger& book, const json& body) {
  const std::string subject = text(body, "subject"), until = text(body, "valid_until"), given_by = text(body, "given_by");
  const ledger::Use use = use_of(body);
  const Document d = document_of(body);
  const std::int64_t entry = book.add_consent(subject, use, until, d.sha256, given_by);
  fs::create_directories(f.consents);
  if (!fs::exists(f.consents / d.file_name)) write_file_atomically(f.consents / d.file_name, d.bytes, 0600);
  return fmt::format("consent of {} for {} use until {} recorded (entry {}); its document kept as consents/{}", subject, ledger::use_name(use), until, entry,
                     d.file_name);
}

json init(const Files& f, const json& body) {
  const long maker = whole(body, "maker", 0, 65535);
  const std::string name = text(body, "name");
  if (fs::exists(f.ledger)) throw InputError(f.ledger, "the workshop already has a ledger");
  if (!fs::exists(f.sign)) ledger::write_signing_key(f.sign, ledger::SigningKey::generate());
  if (!fs::exists(f.key)) watermark::write_key(f.key, watermark::Key::generate());
  const ledger::SigningKey signer = ledger::read_signing_key(f.sign);
  ledger::Ledger::create(f.ledger, signer, static_cast<std::uint32_t>(maker), name);
  ledger::Ledger::open(f.ledger, &signer).register_key(watermark::read_key(f.key).id());
  return fmt::format("ledger of {} (maker {}) created, with its signing key and marking key beside it", name, maker);
}

}  // namespace

json ledger_view(const fs::path& workshop) {
  const Files f(workshop);
  if (!fs::exists(f.ledger)) return {{"exists", false}};
  const ledger::Ledger book = ledger::Ledger::open(f.ledger);
  const std::vector<ledger::Entry> entries = book.entries();
  json out = listing(entries);
  const json first = entries.empty() ? json::object() : json::parse(entries.front().body, nullptr, false);
  out["exists"] = true;
  out["workshop"] = {{"name", first.value("name", "")}, {"maker", book.maker()}, {"key_fingerprint", ledger::key_fingerprint(book.public_key_hex())}};
  const ledger::VerifyResult v = book.verify();
  out["verify"] = {{"ok", v.ok}, {"entries", v.entries}, {"problem", v.problem}};
  return out;
}

json ledger_change(const fs::path& workshop, const std::string& what, const json& body) {
  const Files f(workshop);
  json done;
  if (what == "init") {
    done = init(f, body);
  } else {
    if (!fs::exists(f.ledger)) throw InputError(f.ledger, "no ledger in the workshop folder yet: create it first");
    const ledger::SigningKey signer = ledger::read_signing_key(f.sign);
    ledger::Ledger book = ledger::Ledger::open(f.ledger, &signer);
    if (what == "operator") {
      book.add_operator(text(body, "code"), text(body, "name"));
      done = "operator " + text(body, "code") + " added";
    } else if (what == "subject") {
      book.add_subject(text(body, "code"));
      done = "subject " + text(body, "code") + " added";
    } else if (what == "consent") {
      done = add_consent(f, book, body);
    } else if (what == "run") {
      const std::uint32_t run = book.open_run(use_of(body), text(body, "client"), text(body, "prescriber", false), text(body, "operator", false));
      done = fmt::format("run {} opened", run);
    } else if (what == "run-close") {
      const long run = whole(body, "run", 1, 16777215);
      book.close_run(static_cast<std::uint32_t>(run));
      done = fmt::format("run {} closed", run);
    } else {
      throw InputError(fmt::format("no ledger change '{}' (init, operator, subject, consent, run, run-close)", what));
    }
  }
  return {{"done", done}, {"ledger", ledger_view(workshop)}};
}

}  // namespace tracecast::studio::detail
