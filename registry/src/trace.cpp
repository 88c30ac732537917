// Tracing through the registry: a scan's analysis read under every escrowed marking key, and the
// audit log every trace is written to.
#include <fmt/format.h>
#include <sodium.h>
#include <tbb/parallel_for.h>

#include <mutex>

#include "registry_impl.h"
#include "tracecast/ledger/ledger.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/piece_id.h"
#include "tracecast/watermark/mark.h"

namespace tracecast::registry {

using nlohmann::json;

namespace {

struct Escrowed {
  std::string key_id;
  std::uint32_t maker = 0;
  std::string sealed;
};

//! Reads `an` under every escrowed key, in parallel; the keys are opened here, in memory, and
//! gone when this returns. The best reading that finds a mark, else the first key's.
watermark::Detection read_all(const watermark::Analysis& an, const std::vector<Escrowed>& keys, const std::array<std::uint8_t, 32>& pub,
                              const std::array<std::uint8_t, 32>& sec, std::size_t& found_by) {
  std::vector<watermark::Detection> reads(keys.size());
  tbb::parallel_for(std::size_t(0), keys.size(), [&](std::size_t i) { reads[i] = watermark::read(an, watermark::open_sealed_key(keys[i].sealed, pub, sec)); });
  found_by = keys.size();
  for (std::size_t i = 0; i < reads.size(); ++i)
    if (reads[i].outcome == watermark::Outcome::found && (found_by == keys.size() || reads[i].confidence > reads[found_by].confidence)) found_by = i;
  watermark::Detection d = reads[found_by == keys.size() ? 0 : found_by];
  d.false_positive_bound *= static_cast<double>(keys.size());  // each key is one more chance for a random surface
  return d;
}

}  // namespace

json Registry::Impl::workshop_record(std::uint32_t maker) {
  const auto w = store->query("SELECT name, public_key, entries, enrolled_utc FROM workshops WHERE maker = $1", {std::to_string(maker)});
  if (w.empty()) return nullptr;
  json flags = json::array();
  for (const detail::Row& f : store->query("SELECT time_utc, problem FROM flags WHERE maker = $1 ORDER BY time_utc", {std::to_string(maker)}))
    flags.push_back({{"time_utc", *f[0]}, {"problem", *f[1]}});
  std::string problem;
  try {
    held_chain(maker, *w[0][1]);
  } catch (const ProcessingError& e) {
    problem = e.what();
  }
  return {{"maker", maker},
          {"name", *w[0][0]},
          {"key_fingerprint", ledger::key_fingerprint(*w[0][1])},
          {"enrolled_utc", *w[0][3]},
          {"log", {{"entries", std::stoll(*w[0][2])}, {"verifies", problem.empty() && flags.empty()}, {"problem", problem}, {"flags", flags}}}};
}

json Registry::trace(const Caller& c, const json& req) {
  impl_->require(c, Role::investigator, "tracing");
  const std::string case_ref = req.is_object() && req.contains("case") ? text_field(req, "case", 200, true) : "";
  watermark::Analysis an;
  try {
    an = watermark::analysis_from_json(member(req, "analysis"));
  } catch (const InputError& e) {
    throw Refusal(400, e.what());
  }
  std::vector<Escrowed> keys;
  {
    std::lock_guard<std::mutex> lock(impl_->db);
    for (const detail::Row& r : impl_->store->query("SELECT key_id, maker, sealed FROM marking_keys ORDER BY key_id"))
      keys.push_back({*r[0], static_cast<std::uint32_t>(std::stoul(*r[1])), *r[2]});
  }
  json out = {{"keys_tried", keys.size()}, {"workshop", nullptr}, {"piece", nullptr}};
  std::size_t by = keys.size();
  watermark::Detection d = an.base;
  if (keys.empty()) d.reason = "no workshop has escrowed a marking key";
  else d = read_all(an, keys, impl_->pub, impl_->sec, by);
  out["reading"] = d;
  out["found"] = by < keys.size();
  std::lock_guard<std::mutex> lock(impl_->db);
  if (by < keys.size()) {
    const std::uint32_t maker = keys[by].maker;
    out["workshop"] = impl_->workshop_record(maker);
    const auto p = impl_->store->query("SELECT run, run_use, made_utc, subject, likeness FROM pieces WHERE id = $1 AND maker = $2",
                                       {std::to_string(d.id), std::to_string(maker)});
    if (!p.empty()) {
      out["piece"] = {{"id", format_id(d.id)}, {"run", std::stoul(*p[0][0])}, {"use", *p[0][1]}, {"date", *p[0][2]}};
      // The subject's code only with a case reference: the query is then on the record under it.
      if (!case_ref.empty()) out["piece"].update({{"subject", *p[0][3]}, {"likeness_subject", *p[0][4]}});
    } else {
      out["piece_problem"] = fmt::format("identifier {} is not in what workshop {} has pushed", format_id(d.id), maker);
    }
    if (unpack(d.id).maker != maker)
      out["piece_problem"] = fmt::format("the identifier names maker {}, but workshop {}'s key reads it", unpack(d.id).maker, maker);
  }
  const json summary = {{"found", out["found"]}, {"outcome", watermark::outcome_name(d.outcome)},
                        {"id", by < keys.size() ? json(format_id(d.id)) : json(nullptr)},
                        {"maker", by < keys.size() ? json(keys[by].maker) : json(nullptr)}};
  impl_->store->transaction([&] { impl_->audit(c, "trace", case_ref, summary); });
  return out;
}

json Registry::audit(const Caller& c) {
  impl_->require(c, Role::administrator, "reading the audit log");
  std::lock_guard<std::mutex> lock(impl_->db);
  json rows = json::array();
  std::string prev(64, '0'), problem;
  std::int64_t expected = 1;
  for (const detail::Row& r : impl_->store->query("SELECT seq, time_utc, role, label, action, case_ref, result, prev_hash, hash FROM audit ORDER BY seq")) {
    const std::int64_t seq = std::stoll(*r[0]);
    if (problem.empty()) {
      if (seq != expected) problem = fmt::format("audit row {} is missing", expected);
      else if (*r[7] != prev) problem = fmt::format("audit row {} does not follow row {}", seq, seq - 1);
      else if (Impl::audit_hash(prev, seq, *r[1], *r[2], *r[3], *r[4], *r[5], *r[6]) != *r[8])
        problem = fmt::format("audit row {} was altered", seq);
    }
    prev = *r[8];
    ++expected;
    rows.push_back({{"seq", seq}, {"time_utc", *r[1]}, {"role", *r[2]}, {"label", *r[3]}, {"action", *r[4]}, {"case", *r[5]},
                    {"result", json::parse(*r[6], nullptr, false)}});
  }
  return {{"rows", rows}, {"verifies", problem.empty()}, {"problem", problem}};
}

}  // namespace tracecast::registry
