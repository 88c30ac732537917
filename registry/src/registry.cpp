#include "tracecast/registry/registry.h"

#include <fmt/format.h>
#include <sodium.h>
#include <tbb/parallel_for.h>

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

#include "registry_impl.h"
#include "tracecast/ledger/ledger.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/piece_id.h"
#include "tracecast/watermark/mark.h"

namespace tracecast::registry {

using nlohmann::json;

namespace {

constexpr char kKeyHeader[] = "tracecast-registry-key 1";
constexpr char kAuditDomain[] = "tracecast registry audit v1";

void init_sodium() {
  if (sodium_init() < 0) throw ProcessingError("the cryptography library could not start");
}

std::string blake_hex(const std::string& domain, const std::string& data) {
  const auto h = ledger::domain_hash(domain, data);
  return ledger::hex(h.data(), h.size());
}

std::string token_hash(const std::string& token) { return blake_hex("tracecast registry token v1", token); }

//! A token's id: the start of its hash, what lists show and revocation names (never the token).
std::string token_id(const std::string& hash) { return hash.substr(0, 16); }

}  // namespace

const json& member(const json& j, const char* name) {
  if (!j.is_object()) throw Refusal(400, "the request body is not a JSON object");
  if (!j.contains(name)) throw Refusal(400, fmt::format("'{}' is missing", name));
  return j[name];
}
std::string text_field(const json& j, const char* name, std::size_t max_len, bool allow_empty) {
  const json& v = member(j, name);
  if (!v.is_string()) throw Refusal(400, fmt::format("'{}' must be a string", name));
  const std::string s = v.get<std::string>();
  if (s.size() > max_len) throw Refusal(400, fmt::format("'{}' is longer than {} characters", name, max_len));
  if (s.empty() && !allow_empty) throw Refusal(400, fmt::format("'{}' is empty", name));
  return s;
}
std::int64_t int_field(const json& j, const char* name, std::int64_t min, std::int64_t max) {
  const json& v = member(j, name);
  if (!v.is_number_integer()) throw Refusal(400, fmt::format("'{}' must be a whole number", name));
  const auto n = v.get<std::int64_t>();
  if (n < min || n > max) throw Refusal(400, fmt::format("'{}' must be in [{}, {}], got {}", name, min, max, n));
  return n;
}
const json& array_field(const json& j, const char* name, std::size_t max_len) {
  const json& v = member(j, name);
  if (!v.is_array()) throw Refusal(400, fmt::format("'{}' must be an array", name));
  if (v.size() > max_len) throw Refusal(400, fmt::format("'{}' holds more than {} items", name, max_len));
  return v;
}

namespace {

std::optional<Role> parse_role(const std::string& s) {
  for (Role r : {Role::administrator, Role::workshop, Role::investigator})
    if (s == role_name(r)) return r;
  return std::nullopt;
}

//! A workshop's entries as pushed, parsed (400 naming the one that is malformed).
std::vector<ledger::SignedEntry> parse_entries(const json& list) {
  std::vector<ledger::SignedEntry> out;
  for (const json& e : list) {
    try {
      out.push_back(e.get<ledger::SignedEntry>());
    } catch (const InputError& err) {
      throw Refusal(400, fmt::format("entry {}: {}", out.size() + 1, err.what()));
    }
  }
  return out;
}

}  // namespace

std::string role_name(Role r) {
  switch (r) {
    case Role::administrator: return "administrator";
    case Role::workshop: return "workshop";
    case Role::investigator: return "investigator";
  }
  return "?";
}

void create_registry_key(const std::filesystem::path& file) {
  init_sodium();
  std::array<std::uint8_t, crypto_box_PUBLICKEYBYTES> pub;
  std::array<std::uint8_t, crypto_box_SECRETKEYBYTES> sec;
  crypto_box_keypair(pub.data(), sec.data());
  write_secret_file(file, fmt::format("{}\npublic {}\nsecret {}\n", kKeyHeader, ledger::hex(pub.data(), pub.size()), ledger::hex(sec.data(), sec.size())),
                    "registry key");
  sodium_memzero(sec.data(), sec.size());
}

std::string ChainCopy::take(const ledger::SignedEntry& e, bool is_new) {
  if (std::string p = check.append(e); !p.empty()) return p;
  const json b = json::parse(e.body, nullptr, false);
  if (e.kind == "run") run_use[b.value("run", 0u)] = b.value("use", std::string());
  if (e.kind == "key" || e.kind == "piece") key_ids.insert(b.value("key_id", std::string()));
  if (e.kind == "piece" && is_new)
    new_pieces.push_back({b.value("id", std::uint64_t(0)), b.value("run", 0u), run_use[b.value("run", 0u)], b.value("date", std::string()),
                          b.value("subject", std::string()), b.value("likeness_subject", std::string())});
  return "";
}

void Registry::Impl::read_key(const std::filesystem::path& file) {
  std::istringstream in(read_secret_file(file, "registry key"));
  std::string header, w1, h1, w2, h2;
  std::getline(in, header);
  in >> w1 >> h1 >> w2 >> h2;
  if (header != kKeyHeader || w1 != "public" || w2 != "secret" || !ledger::unhex(h1, pub.data(), pub.size()) ||
      !ledger::unhex(h2, sec.data(), sec.size()))
    throw InputError(file, "not a tracecast registry key file");
  std::array<std::uint8_t, 32> derived;
  crypto_scalarmult_base(derived.data(), sec.data());
  if (derived != pub) throw InputError(file, "registry key file is damaged: its public key does not match its secret");
}

void Registry::Impl::require(const Caller& c, Role r, const char* what) const {
  if (c.role != r) throw Refusal(403, fmt::format("{} needs the {} role; this token ('{}') has the {} role", what, role_name(r), c.label, role_name(c.role)));
}

void Registry::Impl::audit(const Caller& c, const std::string& action, const std::string& case_ref, const json& result) {
  const auto last = store->query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
  const std::int64_t seq = last.empty() ? 1 : std::stoll(*last[0][0]) + 1;
  const std::string prev = last.empty() ? std::string(64, '0') : *last[0][1];
  const std::string time = ledger::utc_now(), res = result.dump();
  const std::string hash = audit_hash(prev, seq, time, role_name(c.role), c.label, action, case_ref, res);
  store->query("INSERT INTO audit(seq, time_utc, role, label, action, case_ref, result, prev_hash, hash) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9)",
               {std::to_string(seq), time, role_name(c.role), c.label, action, case_ref, res, prev, hash});
}

std::string Registry::Impl::audit_hash(const std::string& prev, std::int64_t seq, const std::string& time, const std::string& role,
                                       const std::string& label, const std::string& action, const std::string& case_ref, const std::string& result) {
  return blake_hex(kAuditDomain, json::array({prev, seq, time, role, label, action, case_ref, result}).dump());
}

void Registry::Impl::flag(std::uint32_t maker, const std::string& problem) {
  std::lock_guard<std::mutex> lock(db);
  store->transaction([&] {
    store->query("INSERT INTO flags(maker, time_utc, problem) VALUES($1,$2,$3)", {std::to_string(maker), ledger::utc_now(), problem});
    audit(Caller{Role::workshop, "registry", maker}, "flag", "", {{"maker", maker}, {"problem", problem}});
  });
}

ChainCopy Registry::Impl::held_chain(std::uint32_t maker, const std::string& public_key) {
  ChainCopy copy(public_key);
  for (const detail::Row& r : store->query("SELECT seq, kind, body, prev_hash, hash, signature FROM entries WHERE maker = $1 ORDER BY seq",
                                            {std::to_string(maker)})) {
    const ledger::SignedEntry e{std::stoll(*r[0]), *r[1], *r[2], *r[3], *r[4], *r[5]};
    if (std::string p = copy.take(e, false); !p.empty())
      throw ProcessingError(fmt::format("the registry's copy of workshop {}'s chain does not verify: {}", maker, p));
  }
  return copy;
}

Registry::Registry(const std::string& db, const std::filesystem::path& key_file) : impl_(std::make_unique<Impl>()) {
  init_sodium();
  impl_->read_key(key_file);
  impl_->store = detail::open_store(db);
}
Registry::~Registry() = default;

std::string Registry::store_kind() const { return impl_->store->kind(); }

std::string Registry::bootstrap_administrator(const std::string& label) {
  std::lock_guard<std::mutex> lock(impl_->db);
  std::string token;
  impl_->store->transaction([&] {
    if (!impl_->store->query("SELECT 1 FROM tokens WHERE role = 'administrator' LIMIT 1").empty()) return;
    unsigned char bytes[32];
    randombytes_buf(bytes, sizeof bytes);
    token = ledger::hex(bytes, sizeof bytes);
    impl_->store->query("INSERT INTO tokens(hash, role, label, maker, created_utc) VALUES($1,'administrator',$2,0,$3)",
                        {token_hash(token), label, ledger::utc_now()});
    impl_->audit(Caller{Role::administrator, label, 0}, "bootstrap", "", {{"label", label}});
  });
  return token;
}

Caller Registry::authenticate(const std::string& token) const {
  if (token.empty()) throw Refusal(401, "no token: send 'Authorization: Bearer TOKEN'");
  std::lock_guard<std::mutex> lock(impl_->db);
  const auto rows =
      impl_->store->query("SELECT role, label, maker, expires_utc, revoked_utc FROM tokens WHERE hash = $1", {token_hash(token)});
  if (rows.empty()) throw Refusal(401, "unknown token");
  if (!rows[0][4]->empty()) throw Refusal(401, fmt::format("this token was revoked on {}", *rows[0][4]));
  if (!rows[0][3]->empty() && *rows[0][3] <= ledger::utc_now()) throw Refusal(401, fmt::format("this token expired on {}", *rows[0][3]));
  return Caller{*parse_role(*rows[0][0]), *rows[0][1], static_cast<std::uint32_t>(std::stoul(*rows[0][2]))};
}

json Registry::tokens(const Caller& c) {
  impl_->require(c, Role::administrator, "listing tokens");
  std::lock_guard<std::mutex> lock(impl_->db);
  json out = json::array();
  for (const detail::Row& r :
       impl_->store->query("SELECT hash, role, label, maker, created_utc, expires_utc, revoked_utc FROM tokens ORDER BY created_utc, hash"))
    out.push_back({{"id", token_id(*r[0])}, {"role", *r[1]}, {"label", *r[2]}, {"maker", std::stol(*r[3])}, {"created_utc", *r[4]},
                   {"expires_utc", *r[5]}, {"revoked_utc", *r[6]}});
  return {{"tokens", out}};
}

json Registry::revoke_token(const Caller& c, const json& req) {
  impl_->require(c, Role::administrator, "revoking a token");
  const std::string id = text_field(req, "id", 16);
  if (id.size() != 16) throw Refusal(400, "'id' must be a token's 16-digit id, as the token list shows it");
  std::lock_guard<std::mutex> lock(impl_->db);
  json done;
  impl_->store->transaction([&] {
    const auto rows = impl_->store->query("SELECT hash, label, revoked_utc FROM tokens WHERE substr(hash, 1, 16) = $1", {id});
    if (rows.empty()) throw Refusal(404, fmt::format("no token with id {}", id));
    if (!rows[0][2]->empty()) throw Refusal(409, fmt::format("token {} ('{}') was revoked already, on {}", id, *rows[0][1], *rows[0][2]));
    const std::string now = ledger::utc_now();
    impl_->store->query("UPDATE tokens SET revoked_utc = $1 WHERE hash = $2", {now, *rows[0][0]});
    impl_->audit(c, "revoke", "", {{"id", id}, {"label", *rows[0][1]}});
    done = {{"id", id}, {"label", *rows[0][1]}, {"revoked_utc", now}};
  });
  return done;
}

json Registry::create_token(const Caller& c, const json& req) {
  impl_->require(c, Role::administrator, "creating a token");
  const std::string role_text = text_field(req, "role", 20), label = text_field(req, "label", 200);
  const std::optional<Role> role = parse_role(role_text);
  if (!role) throw Refusal(400, fmt::format("'role' must be administrator, workshop or investigator, got '{}'", role_text));
  const std::int64_t maker = *role == Role::workshop ? int_field(req, "maker", 1, 65535) : 0;
  const std::string expires = req.contains("valid_days")
                                  ? ledger::utc_time(std::chrono::system_clock::now() + std::chrono::hours(24 * int_field(req, "valid_days", 1, 3650)))
                                  : "";
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  const std::string token = ledger::hex(bytes, sizeof bytes);
  std::lock_guard<std::mutex> lock(impl_->db);
  impl_->store->transaction([&] {
    impl_->store->query("INSERT INTO tokens(hash, role, label, maker, created_utc, expires_utc) VALUES($1,$2,$3,$4,$5,$6)",
                        {token_hash(token), role_text, label, std::to_string(maker), ledger::utc_now(), expires});
    impl_->audit(c, "token", "", {{"id", token_id(token_hash(token))}, {"role", role_text}, {"label", label}, {"maker", maker}, {"expires_utc", expires}});
  });
  return {{"token", token}, {"id", token_id(token_hash(token))}, {"role", role_text}, {"label", label}, {"maker", maker}, {"expires_utc", expires}};
}

json Registry::public_key() const { return {{"public_key", ledger::hex(impl_->pub.data(), impl_->pub.size())}}; }

std::vector<std::pair<std::string, std::string>> Registry::Impl::checked_keys(const json& keys) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const json& k : keys) {
    const std::string id = text_field(k, "id", 16), sealed = text_field(k, "sealed", 256);
    try {
      if (watermark::open_sealed_key(sealed, pub, sec).id() != id)
        throw Refusal(400, fmt::format("marking key {}: the sealed key's id is another", id));
    } catch (const InputError& e) {
      throw Refusal(400, fmt::format("marking key {}: {}", id, e.what()));
    }
    if (!store->query("SELECT 1 FROM marking_keys WHERE key_id = $1", {id}).empty())
      throw Refusal(409, fmt::format("marking key {} is already escrowed", id));
    for (const auto& [seen, unused] : out)
      if (seen == id) throw Refusal(400, fmt::format("marking key {} is listed twice", id));
    out.emplace_back(id, sealed);
  }
  return out;
}

//! The checkpoint must be signed by the workshop's enrolled key and hold exactly the chain now.
static std::string checkpoint_mismatch(const json& cp, const std::string& public_key, const ChainCopy& copy) {
  if (std::string p = ledger::checkpoint_signature_problem(cp); !p.empty()) return p;
  if (cp["workshop"] != public_key)
    return fmt::format("the checkpoint is signed by key {}, the workshop enrolled with key {}: a history re-signed with another key",
                       ledger::key_fingerprint(cp["workshop"].get<std::string>()), ledger::key_fingerprint(public_key));
  if (cp["entries"].get<std::int64_t>() != copy.check.entries() || cp["head_hash"] != copy.check.head_hex())
    return fmt::format("the checkpoint holds {} entries, the chain pushed {}, or its head differs", cp["entries"].get<std::int64_t>(),
                       copy.check.entries());
  return "";
}

void Registry::Impl::store_entries(std::uint32_t maker, const std::vector<ledger::SignedEntry>& entries, const ChainCopy& copy, const json& cp) {
  const std::string m = std::to_string(maker);
  for (const ledger::SignedEntry& e : entries)
    store->query("INSERT INTO entries(maker, seq, kind, body, prev_hash, hash, signature) VALUES($1,$2,$3,$4,$5,$6,$7)",
                 {m, std::to_string(e.seq), e.kind, e.body, e.prev_hash, e.hash, e.signature});
  for (const PieceSummary& p : copy.new_pieces)
    store->query("INSERT INTO pieces(id, maker, run, run_use, made_utc, subject, likeness) VALUES($1,$2,$3,$4,$5,$6,$7)",
                 {std::to_string(p.id), m, std::to_string(p.run), p.use, p.date, p.subject, p.likeness});
  store->query("UPDATE workshops SET entries = $1, head_hash = $2, checkpoint = $3 WHERE maker = $4",
               {std::to_string(copy.check.entries()), copy.check.head_hex(), cp.dump(), m});
}

//! The marking keys the workshop's chain names (registered, or marking a piece) that the registry
//! does not hold: its pieces under those keys cannot be traced here.
json Registry::Impl::keys_missing(std::uint32_t maker, const ChainCopy& copy) {
  json out = json::array();
  for (const std::string& id : copy.key_ids)
    if (!id.empty() && store->query("SELECT 1 FROM marking_keys WHERE key_id = $1 AND maker = $2", {id, std::to_string(maker)}).empty()) out.push_back(id);
  return out;
}

json Registry::enrol(const Caller& c, const json& req) {
  impl_->require(c, Role::workshop, "enrolling");
  const auto maker = static_cast<std::uint32_t>(int_field(req, "maker", 1, 65535));
  if (maker != c.maker) throw Refusal(403, fmt::format("this token belongs to maker number {}, not {}", c.maker, maker));
  const std::string name = text_field(req, "name", 200), public_key = text_field(req, "public_key", 64);
  const json& cp = member(req, "checkpoint");
  const std::vector<ledger::SignedEntry> entries = parse_entries(array_field(req, "entries", 1000000));
  const json& keys = array_field(req, "marking_keys", 1000);
  if (keys.empty()) throw Refusal(400, "'marking_keys' is empty: a workshop escrows at least the key it marks with");
  ChainCopy copy(public_key);
  for (const ledger::SignedEntry& e : entries)
    if (std::string p = copy.take(e, true); !p.empty()) throw Refusal(400, "the workshop's chain does not verify: " + p);
  if (copy.check.entries() == 0) throw Refusal(400, "'entries' is empty: enrolment carries the whole chain");
  if (copy.check.maker() != maker) throw Refusal(400, fmt::format("the chain's workshop has maker number {}, not {}", copy.check.maker(), maker));
  if (std::string p = checkpoint_mismatch(cp, public_key, copy); !p.empty()) throw Refusal(400, p);
  std::lock_guard<std::mutex> lock(impl_->db);
  json missing;
  impl_->store->transaction([&] {
    if (const auto w = impl_->store->query("SELECT name FROM workshops WHERE maker = $1", {std::to_string(maker)}); !w.empty())
      throw Refusal(409, fmt::format("maker number {} is already enrolled (workshop '{}')", maker, *w[0][0]));
    if (!impl_->store->query("SELECT 1 FROM workshops WHERE public_key = $1", {public_key}).empty())
      throw Refusal(409, "this signing key is already enrolled under another maker number");
    const auto sealed = impl_->checked_keys(keys);
    impl_->store->query("INSERT INTO workshops(maker, public_key, name, enrolled_utc, entries, head_hash, checkpoint) VALUES($1,$2,$3,$4,0,'','')",
                        {std::to_string(maker), public_key, name, ledger::utc_now()});
    for (const auto& [id, s] : sealed)
      impl_->store->query("INSERT INTO marking_keys(key_id, maker, sealed) VALUES($1,$2,$3)", {id, std::to_string(maker), s});
    impl_->store_entries(maker, entries, copy, cp);
    impl_->audit(c, "enrol", "", {{"maker", maker}, {"entries", copy.check.entries()}, {"pieces", copy.new_pieces.size()}});
    missing = impl_->keys_missing(maker, copy);
  });
  return {{"keys_missing", missing}, {"maker", maker}, {"name", name}, {"key_fingerprint", ledger::key_fingerprint(public_key)}, {"entries", copy.check.entries()},
          {"pieces", copy.new_pieces.size()}, {"marking_keys", keys.size()}};
}

json Registry::status(const Caller& c) {
  impl_->require(c, Role::workshop, "a workshop's status");
  std::lock_guard<std::mutex> lock(impl_->db);
  const auto w = impl_->store->query("SELECT entries, head_hash FROM workshops WHERE maker = $1", {std::to_string(c.maker)});
  if (w.empty()) throw Refusal(404, fmt::format("maker number {} is not enrolled", c.maker));
  json keys = json::array();
  for (const detail::Row& r : impl_->store->query("SELECT key_id FROM marking_keys WHERE maker = $1 ORDER BY key_id", {std::to_string(c.maker)}))
    keys.push_back(*r[0]);
  return {{"maker", c.maker}, {"entries", std::stoll(*w[0][0])}, {"head_hash", *w[0][1]}, {"marking_keys", keys}};
}

//! Why a push does not extend the `held` entries in `copy` ("" when it does; the pushed entries are
//! then taken into `copy`): re-signed under another key, truncated or an old checkpoint, an entry
//! pushed again or altered, a checkpoint that does not hold the result. A checkpoint that only
//! repeats what is held is refused (409) without being such a problem: it changes nothing.
static std::string extension_problem(const json& cp, const std::vector<ledger::SignedEntry>& entries, const std::string& public_key,
                                     std::int64_t held, ChainCopy& copy) {
  if (cp["workshop"] != public_key) return checkpoint_mismatch(cp, public_key, copy);
  const auto claimed = cp["entries"].get<std::int64_t>();
  if (claimed < held)
    return fmt::format("the checkpoint holds {} entries; the registry holds {}: a truncated history, or an old checkpoint replayed", claimed, held);
  if (claimed == held && entries.empty())
    throw Refusal(409, fmt::format("the registry already holds these {} entries: nothing to push (a replayed checkpoint)", held));
  for (const ledger::SignedEntry& e : entries) {
    if (e.seq <= held) return fmt::format("entry {} was pushed again: the registry holds it, and holds entries up to {}", e.seq, held);
    if (std::string p = copy.take(e, true); !p.empty()) return fmt::format("the pushed entries do not extend the {} held: {}", held, p);
  }
  return checkpoint_mismatch(cp, public_key, copy);
}

json Registry::push(const Caller& c, const json& req) {
  impl_->require(c, Role::workshop, "pushing");
  const json& cp = member(req, "checkpoint");
  const std::vector<ledger::SignedEntry> entries = parse_entries(array_field(req, "entries", 1000000));
  const json keys = req.contains("marking_keys") ? array_field(req, "marking_keys", 1000) : json::array();
  if (std::string p = ledger::checkpoint_signature_problem(cp); !p.empty()) throw Refusal(400, p);
  std::unique_lock<std::mutex> lock(impl_->db);
  const auto w = impl_->store->query("SELECT public_key, entries FROM workshops WHERE maker = $1", {std::to_string(c.maker)});
  if (w.empty()) throw Refusal(404, fmt::format("maker number {} is not enrolled", c.maker));
  const std::string public_key = *w[0][0];
  const std::int64_t held = std::stoll(*w[0][1]);
  ChainCopy copy = impl_->held_chain(c.maker, public_key);
  if (const std::string rewritten = extension_problem(cp, entries, public_key, held, copy); !rewritten.empty()) {
    lock.unlock();
    impl_->flag(c.maker, rewritten);
    throw Refusal(409, rewritten);
  }
  json missing;
  impl_->store->transaction([&] {
    const auto sealed = impl_->checked_keys(keys);
    for (const auto& [id, s] : sealed)
      impl_->store->query("INSERT INTO marking_keys(key_id, maker, sealed) VALUES($1,$2,$3)", {id, std::to_string(c.maker), s});
    impl_->store_entries(c.maker, entries, copy, cp);
    impl_->audit(c, "push", "", {{"maker", c.maker}, {"entries", copy.check.entries()}, {"added", entries.size()}});
    missing = impl_->keys_missing(c.maker, copy);
  });
  return {{"keys_missing", missing}, {"maker", c.maker}, {"entries", copy.check.entries()}, {"added", entries.size()}, {"pieces", copy.new_pieces.size()}};
}

}  // namespace tracecast::registry
