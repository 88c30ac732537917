#include "chain_state.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "tracecast/mesh/piece_id.h"

namespace tracecast::ledger::detail {

namespace {

using nlohmann::json;

std::string text(const json& b, const char* key) { return b.contains(key) && b[key].is_string() ? b[key].get<std::string>() : std::string(); }
template <class T>
T number(const json& b, const char* key) {
  return b.contains(key) && b[key].is_number() ? b[key].get<T>() : T(0);
}

bool known_use(const std::string& u) { return u == "film" || u == "medical" || u == "other"; }

//! Why `consent` does not allow a piece of `subject` in a run of `use` on `date` ("" when it does).
std::string consent_problem(const ChainState& s, std::int64_t consent, const std::string& subject, const std::string& use, const std::string& date) {
  const auto c = s.consents.find(consent);
  if (c == s.consents.end()) return fmt::format("names consent entry {}, which is not a consent recorded before it", consent);
  if (c->second.subject != subject) return fmt::format("names consent entry {}, which is subject '{}''s, not '{}''s", consent, c->second.subject, subject);
  if (c->second.use != use) return fmt::format("names consent entry {}, which is for {} use, not the run's {} use", consent, c->second.use, use);
  if (c->second.valid_until < date) return fmt::format("names consent entry {}, which expired on {}, before the piece's date {}", consent, c->second.valid_until, date);
  return "";
}

std::string apply_piece(ChainState& s, std::int64_t seq, const json& b) {
  const auto run = number<std::uint32_t>(b, "run");
  const auto number_in_run = number<std::uint32_t>(b, "number");
  const auto id = number<std::uint64_t>(b, "id");
  const std::string subject = text(b, "subject");
  // The date the consent was checked for: recorded since the ledger replays its rules; before, the
  // day the piece was recorded.
  const std::string date = b.contains("date") ? text(b, "date") : text(b, "time_utc").substr(0, 10);
  const std::string at = fmt::format("entry {} (piece)", seq);
  const auto r = s.runs.find(run);
  if (r == s.runs.end()) return fmt::format("{} is in run {}, which was not opened before it", at, run);
  if (r->second.closed) return fmt::format("{} is in run {}, which was closed before it", at, run);
  if (number_in_run != r->second.pieces + 1)
    return fmt::format("{} has number {} in run {}, whose next number was {}", at, number_in_run, run, r->second.pieces + 1);
  if (id != pack(PieceId{s.maker, run, number_in_run})) return fmt::format("{} has identifier {}, not its maker's, run's and number's", at, id);
  if (!s.subjects.count(subject)) return fmt::format("{} is of subject '{}', not recorded before it", at, subject);
  if (const std::string p = consent_problem(s, number<std::int64_t>(b, "consent_entry"), subject, r->second.use, date); !p.empty())
    return at + " " + p;
  if (b.contains("likeness_subject")) {
    const std::string likeness = text(b, "likeness_subject");
    if (likeness == subject) return fmt::format("{} names its subject as its likeness subject", at);
    if (!s.subjects.count(likeness)) return fmt::format("{} copies subject '{}''s face, not recorded before it", at, likeness);
    if (const std::string p = consent_problem(s, number<std::int64_t>(b, "likeness_consent_entry"), likeness, r->second.use, date); !p.empty())
      return at + " (likeness) " + p;
  }
  r->second.pieces = number_in_run;
  s.pieces[id] = PieceFact{run, number_in_run, seq};
  return "";
}

std::string apply_run(ChainState& s, std::int64_t seq, const json& b) {
  const auto run = number<std::uint32_t>(b, "run");
  const std::string use = text(b, "use");
  if (run != s.runs.size() + 1) return fmt::format("entry {} (run) opens run {}, where the next run is {}", seq, run, s.runs.size() + 1);
  if (!known_use(use)) return fmt::format("entry {} (run) is for an unknown use '{}'", seq, use);
  s.runs[run] = RunFact{use, false, seq, 0};
  return "";
}

std::string apply_record(ChainState& s, std::int64_t seq, const std::string& kind, const json& b) {
  if (kind == "subject") {
    const std::string code = text(b, "code");
    if (code.empty() || s.subjects.count(code)) return fmt::format("entry {} (subject) adds subject '{}' a second time or without a code", seq, code);
    s.subjects[code] = seq;
  } else if (kind == "consent") {
    const ConsentFact c{text(b, "subject"), text(b, "use"), text(b, "valid_until")};
    if (!s.subjects.count(c.subject)) return fmt::format("entry {} (consent) is for subject '{}', not recorded before it", seq, c.subject);
    if (!known_use(c.use)) return fmt::format("entry {} (consent) is for an unknown use '{}'", seq, c.use);
    s.consents[seq] = c;
  } else if (kind == "run") {
    return apply_run(s, seq, b);
  } else if (kind == "run-closed") {
    const auto r = s.runs.find(number<std::uint32_t>(b, "run"));
    if (r == s.runs.end() || r->second.closed) return fmt::format("entry {} (run-closed) closes run {}, which is not open", seq, number<std::uint32_t>(b, "run"));
    r->second.closed = true;
  } else if (kind == "piece") {
    return apply_piece(s, seq, b);
  } else if (kind == "outputs") {
    const auto id = number<std::uint64_t>(b, "id");
    if (!s.pieces.count(id)) return fmt::format("entry {} (outputs) names a piece not recorded before it", seq);
    if (!s.outputs.insert(id).second) return fmt::format("entry {} (outputs) records the files of a piece a second time", seq);
  } else if (kind == "release") {
    const auto id = number<std::uint64_t>(b, "id");
    if (!s.pieces.count(id)) return fmt::format("entry {} (release) releases a piece not recorded before it", seq);
    if (s.releases.count(id)) return fmt::format("entry {} (release) releases piece {} a second time", seq, format_id(id));
    s.releases[id] = ReleaseFact{b.value("accepted", false), seq};
  } else if (kind == "import") {
    s.attested[text(b, "workshop")].emplace_back(number<std::int64_t>(b, "entries"), text(b, "head_hash"));
  } else if (kind != "operator" && kind != "key") {
    return fmt::format("entry {} is of an unknown kind '{}'", seq, kind);
  }
  return "";
}

}  // namespace

std::string apply_entry(ChainState& s, std::int64_t seq, const std::string& kind, const std::string& body) {
  const json b = json::parse(body, nullptr, false);
  if (b.is_discarded() || !b.is_object()) return fmt::format("entry {} ({}) is not a JSON object", seq, kind);
  if ((seq == 1) != (kind == "workshop")) return fmt::format("entry {} ({}): a ledger's first entry, and only it, names the workshop", seq, kind);
  if (kind == "workshop") {
    s.maker = number<std::uint32_t>(b, "maker");
    return "";
  }
  return apply_record(s, seq, kind, b);
}

ConsentCheck consent_for(const ChainState& s, std::uint32_t run, const std::string& subject, const std::string& date) {
  const auto r = s.runs.find(run);
  if (r == s.runs.end()) return {0, fmt::format("no run {} in the ledger: open a run first", run)};
  if (r->second.closed) return {0, fmt::format("run {} is closed: no more pieces can be made in it", run)};
  bool any = false, expired = false;
  std::int64_t entry = 0;
  for (const auto& [seq, c] : s.consents) {
    if (c.subject != subject) continue;
    any = true;
    if (c.use != r->second.use) continue;
    if (c.valid_until < date) expired = true;
    else entry = seq;
  }
  if (entry) return {entry, ""};
  if (!any) return {0, fmt::format("no consent recorded for subject '{}'", subject)};
  if (expired) return {0, fmt::format("the consent of subject '{}' for {} use has expired", subject, r->second.use)};
  return {0, fmt::format("subject '{}' consented to another use, not to {} use (run {})", subject, r->second.use, run)};
}

}  // namespace tracecast::ledger::detail
