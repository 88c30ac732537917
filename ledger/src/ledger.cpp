#include "tracecast/ledger/ledger.h"

#include <fmt/format.h>
#include <sodium.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <map>
#include <set>

#include "chain_state.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/piece_id.h"

namespace tracecast::ledger {

namespace {

constexpr int kSchemaVersion = 2;  // 2: foreign_entries (imported workshops' chains)
constexpr char kHashDomain[] = "tracecast ledger entry v1";

void init_sodium() {
  if (sodium_init() < 0) throw ProcessingError("the cryptography library could not start");
}


template <std::size_t N>
bool unhex(const std::string& h, std::array<std::uint8_t, N>& out) {
  return ledger::unhex(h, out.data(), N);
}


std::string utc_today() { return utc_now().substr(0, 10); }

bool valid_date(const std::string& d) {
  if (d.size() != 10 || d[4] != '-' || d[7] != '-') return false;
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (!std::isdigit(static_cast<unsigned char>(d[static_cast<std::size_t>(i)]))) return false;
  const int m = std::stoi(d.substr(5, 2)), day = std::stoi(d.substr(8, 2));
  return m >= 1 && m <= 12 && day >= 1 && day <= 31;
}

//! hash = BLAKE2b-256(domain ‖ prev ‖ seq (8 bytes LE) ‖ kind ‖ 0 ‖ body)
std::array<std::uint8_t, 32> entry_hash(const std::array<std::uint8_t, 32>& prev, std::int64_t seq,
                                        const std::string& kind, const std::string& body) {
  std::array<std::uint8_t, 32> h;
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, h.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(kHashDomain), sizeof kHashDomain - 1);
  crypto_generichash_update(&st, prev.data(), prev.size());
  unsigned char s[8];
  for (int i = 0; i < 8; ++i) s[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(seq) >> (8 * i));
  crypto_generichash_update(&st, s, 8);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(kind.data()), kind.size());
  const unsigned char zero = 0;
  crypto_generichash_update(&st, &zero, 1);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(body.data()), body.size());
  crypto_generichash_final(&st, h.data(), h.size());
  return h;
}

// ----------------------------------------------------------------------------- SQLite, thinly
class Statement {
 public:
  Statement(sqlite3* db, const char* sql, const std::filesystem::path& file) : db_(db), file_(file) {
    if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK) fail("preparing a query");
  }
  ~Statement() { sqlite3_finalize(st_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(st_, i, v)); }
  Statement& bind(int i, const std::string& v) {
    return check(sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Statement& bind_blob(int i, const void* p, std::size_t n) {
    return check(sqlite3_bind_blob(st_, i, p, static_cast<int>(n), SQLITE_TRANSIENT));
  }
  bool step() {
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail("running a query");
  }
  std::int64_t integer(int c) const { return sqlite3_column_int64(st_, c); }
  std::string text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st_, c))) : std::string();
  }
  std::string blob(int c) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(st_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st_, c))) : std::string();
  }
  bool is_null(int c) const { return sqlite3_column_type(st_, c) == SQLITE_NULL; }

 private:
  Statement& check(int rc) {
    if (rc != SQLITE_OK) fail("binding a value");
    return *this;
  }
  [[noreturn]] void fail(const char* what) const {
    throw ProcessingError(fmt::format("{}: ledger error while {}: {}", file_.string(), what, sqlite3_errmsg(db_)));
  }
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  std::filesystem::path file_;
};

void exec(sqlite3* db, const char* sql, const std::filesystem::path& file) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw ProcessingError(fmt::format("{}: ledger error: {}", file.string(), msg));
  }
}

//! The first problem a replay met, and its entry.
struct ReplayProblem {
  std::int64_t seq = 0;
  std::string problem;
};

//! Why stored entry `seq` cannot follow `prev` in a chain signed by `pub` ("" when it can): out of
//! sequence, not linked to the previous hash, altered, or not signed by that key.
std::string link_problem(const std::array<std::uint8_t, 32>& prev, std::int64_t expected, std::int64_t seq, const std::string& kind,
                         const std::string& body, const std::string& prev_stored, const std::string& hash, const std::string& sig,
                         const std::array<std::uint8_t, 32>& pub) {
  if (seq != expected) return fmt::format("entry {} is missing (the next one stored is {})", expected, seq);
  if (prev_stored.size() != 32 || std::memcmp(prev_stored.data(), prev.data(), 32) != 0)
    return fmt::format("entry {} does not follow entry {} (its link to the previous hash differs)", seq, seq - 1);
  const auto h = entry_hash(prev, seq, kind, body);
  if (hash.size() != 32 || std::memcmp(hash.data(), h.data(), 32) != 0)
    return fmt::format("entry {} ({}) was altered: its content does not match its hash", seq, kind);
  if (sig.size() != 64 || crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.data()), h.data(), h.size(), pub.data()) != 0)
    return fmt::format("entry {} ({}) has an invalid signature", seq, kind);
  return "";
}

//! This ledger's entries after the state's last, each checked (link_problem(); the first naming
//! the ledger's key `public_hex`) and applied to the state by the ledger's rules. Stops at the
//! first problem: the state then holds what came before it. `count` (optional) counts the
//! entries read.
ReplayProblem replay(sqlite3* db, const std::filesystem::path& path, const std::string& public_hex, detail::ChainState& s,
                     std::int64_t* count = nullptr) {
  std::array<std::uint8_t, 32> pub;
  if (!unhex(public_hex, pub)) return {1, "the ledger's public key is damaged"};
  Statement q(db, "SELECT seq, kind, body, prev_hash, hash, signature FROM entries WHERE seq > ? ORDER BY seq", path);
  q.bind(1, s.seq);
  while (q.step()) {
    const std::int64_t seq = q.integer(0);
    if (count) ++*count;
    const std::string kind = q.text(1), body = q.text(2), hash = q.blob(4);
    if (std::string p = link_problem(s.head, s.seq + 1, seq, kind, body, q.blob(3), hash, q.blob(5), pub); !p.empty())
      return {std::min(seq, s.seq + 1), p};  // a missing entry is named, not the next one stored
    if (seq == 1) {
      const auto j = nlohmann::json::parse(body, nullptr, false);
      if (kind != "workshop" || j.is_discarded() || !j.contains("public_key") || j["public_key"] != public_hex)
        return {1, "the first entry does not name this ledger's public key"};
    }
    if (std::string p = detail::apply_entry(s, seq, kind, body); !p.empty()) return {seq, p};
    s.seq = seq;
    std::memcpy(s.head.data(), hash.data(), s.head.size());
  }
  return {};
}

// The query tables against what the entries say: each row, by its key, as a sentence, both ways.
using Rows = std::map<std::string, std::string>;

std::string subject_row(std::int64_t seq) { return fmt::format("added by entry {}", seq); }
std::string consent_row(const std::string& subject, const std::string& use, const std::string& until) {
  return fmt::format("subject '{}', {} use, valid until {}", subject, use, until);
}
std::string run_row(const std::string& use, bool closed, std::int64_t seq) {
  return fmt::format("{} use, {}, opened by entry {}", use, closed ? "closed" : "open", seq);
}
std::string piece_row(std::int64_t run, std::int64_t number, std::int64_t seq) { return fmt::format("run {} number {}, entry {}", run, number, seq); }
std::string release_row(bool accepted, std::int64_t seq) { return fmt::format("{}, entry {}", accepted ? "accepted" : "rejected", seq); }

//! The first difference between a table's rows and the entries' ("" when none), naming the table
//! and the row.
std::string rows_problem(const char* table, const char* key_name, const Rows& stored, const Rows& said) {
  for (const auto& [key, row] : stored) {
    const auto it = said.find(key);
    if (it == said.end()) return fmt::format("table {}: the row for {} {} ({}) is in no entry", table, key_name, key, row);
    if (it->second != row) return fmt::format("table {}: the row for {} {} says {}; the entries say {}", table, key_name, key, row, it->second);
  }
  for (const auto& [key, row] : said)
    if (!stored.count(key)) return fmt::format("table {}: no row for {} {} ({}), which the entries record", table, key_name, key, row);
  return "";
}

//! The subjects, consents and runs tables (what production reads) against the entries.
std::string production_tables_problem(sqlite3* db, const std::filesystem::path& path, const detail::ChainState& s) {
  Rows stored, said;
  for (Statement q(db, "SELECT code, seq FROM subjects", path); q.step();) stored[q.text(0)] = subject_row(q.integer(1));
  for (const auto& [code, seq] : s.subjects) said[code] = subject_row(seq);
  if (std::string p = rows_problem("subjects", "subject", stored, said); !p.empty()) return p;
  stored.clear();
  said.clear();
  for (Statement q(db, "SELECT seq, subject, use, valid_until FROM consents", path); q.step();)
    stored[std::to_string(q.integer(0))] = consent_row(q.text(1), q.text(2), q.text(3));
  for (const auto& [seq, c] : s.consents) said[std::to_string(seq)] = consent_row(c.subject, c.use, c.valid_until);
  if (std::string p = rows_problem("consents", "entry", stored, said); !p.empty()) return p;
  stored.clear();
  said.clear();
  for (Statement q(db, "SELECT run, use, closed, seq FROM runs", path); q.step();)
    stored[std::to_string(q.integer(0))] = run_row(q.text(1), q.integer(2) != 0, q.integer(3));
  for (const auto& [run, r] : s.runs) said[std::to_string(run)] = run_row(r.use, r.closed, r.seq);
  return rows_problem("runs", "run", stored, said);
}

//! Every query table of this ledger's own entries against them: production's, then pieces and
//! releases.
std::string tables_problem(sqlite3* db, const std::filesystem::path& path, const detail::ChainState& s) {
  if (std::string p = production_tables_problem(db, path, s); !p.empty()) return p;
  Rows stored, said;
  for (Statement q(db, "SELECT id, run, number, seq FROM pieces", path); q.step();)
    stored[format_id(static_cast<std::uint64_t>(q.integer(0)))] = piece_row(q.integer(1), q.integer(2), q.integer(3));
  for (const auto& [id, p] : s.pieces) said[format_id(id)] = piece_row(p.run, p.number, p.seq);
  if (std::string p = rows_problem("pieces", "piece", stored, said); !p.empty()) return p;
  stored.clear();
  said.clear();
  for (Statement q(db, "SELECT id, accepted, seq FROM releases", path); q.step();)
    stored[format_id(static_cast<std::uint64_t>(q.integer(0)))] = release_row(q.integer(1) != 0, q.integer(2));
  for (const auto& [id, r] : s.releases) said[format_id(id)] = release_row(r.accepted, r.seq);
  return rows_problem("releases", "piece", stored, said);
}

const char* kSchema = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries(
  seq INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL,
  signature BLOB NOT NULL);
CREATE TABLE subjects(code TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE);
CREATE TABLE consents(seq INTEGER PRIMARY KEY, subject TEXT NOT NULL, use TEXT NOT NULL, valid_until TEXT NOT NULL);
CREATE TABLE runs(run INTEGER PRIMARY KEY, use TEXT NOT NULL, closed INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL UNIQUE);
CREATE TABLE pieces(id INTEGER PRIMARY KEY, run INTEGER NOT NULL, number INTEGER NOT NULL, seq INTEGER NOT NULL UNIQUE,
                    UNIQUE(run, number));
CREATE TABLE releases(id INTEGER PRIMARY KEY, accepted INTEGER NOT NULL, seq INTEGER NOT NULL UNIQUE);
CREATE INDEX consents_by_subject ON consents(subject);
)sql";

// Version 2: other workshops' entries, imported as they are (their own hashes and signatures).
const char* kForeignSchema = R"sql(
CREATE TABLE IF NOT EXISTS foreign_entries(
  workshop TEXT NOT NULL,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  prev_hash BLOB NOT NULL,
  hash BLOB NOT NULL,
  signature BLOB NOT NULL,
  PRIMARY KEY(workshop, seq));
CREATE TABLE IF NOT EXISTS foreign_pieces(id INTEGER PRIMARY KEY, workshop TEXT NOT NULL, seq INTEGER NOT NULL);
)sql";

}  // namespace

// ------------------------------------------------------------------------------ signing keys
std::string utc_time(std::chrono::system_clock::time_point when) {
  const std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string utc_now() { return utc_time(std::chrono::system_clock::now()); }

bool unhex(const std::string& h, std::uint8_t* out, std::size_t n) {
  std::size_t len = 0;
  return h.size() == 2 * n && sodium_hex2bin(out, n, h.data(), h.size(), nullptr, &len, nullptr) == 0 && len == n;
}

std::string hex(const std::uint8_t* p, std::size_t n) {
  std::string s(2 * n + 1, '\0');
  sodium_bin2hex(s.data(), s.size(), p, n);
  s.pop_back();
  return s;
}

SigningKey SigningKey::generate() {
  init_sodium();
  SigningKey k;
  crypto_sign_keypair(k.public_.data(), k.secret_.data());
  k.public_hex_ = hex(k.public_.data(), k.public_.size());
  return k;
}

std::array<std::uint8_t, 64> SigningKey::sign(const std::array<std::uint8_t, 32>& m) const {
  std::array<std::uint8_t, 64> sig;
  crypto_sign_detached(sig.data(), nullptr, m.data(), m.size(), secret_.data());
  return sig;
}

void write_signing_key(const std::filesystem::path& path, const SigningKey& key) {
  std::string text = fmt::format("tracecast-signing-key 1\npublic {}\nsecret {}\n", key.public_hex_,
                                 hex(key.secret_.data(), key.secret_.size()));
  write_secret_file(path, text, "signing key");
  sodium_memzero(text.data(), text.size());
}

SigningKey read_signing_key(const std::filesystem::path& path) {
  init_sodium();
  std::string text = read_secret_file(path, "signing key");
  std::istringstream f(text);
  sodium_memzero(text.data(), text.size());
  std::string magic, version, pk, pub, sk, sec;
  f >> magic >> version >> pk >> pub >> sk >> sec;
  SigningKey k;
  if (magic != "tracecast-signing-key" || version != "1" || pk != "public" || sk != "secret" ||
      !unhex(pub, k.public_) || !unhex(sec, k.secret_))
    throw InputError(path, "not a tracecast signing key file");
  std::array<std::uint8_t, 32> derived;
  crypto_sign_ed25519_sk_to_pk(derived.data(), k.secret_.data());
  if (derived != k.public_) throw InputError(path, "signing key is damaged: its public half does not match its secret");
  k.public_hex_ = pub;
  sodium_memzero(sec.data(), sec.size());
  return k;
}

std::string use_name(Use u) {
  switch (u) {
    case Use::Film: return "film";
    case Use::Medical: return "medical";
    default: return "other";
  }
}

std::optional<Use> parse_use(const std::string& s) {
  if (s == "film") return Use::Film;
  if (s == "medical") return Use::Medical;
  if (s == "other") return Use::Other;
  return std::nullopt;
}

// ------------------------------------------------------------------------------------ ledger
struct Ledger::Impl {
  std::filesystem::path path;
  sqlite3* db = nullptr;
  const SigningKey* signer = nullptr;
  std::uint32_t maker = 0;
  std::string public_hex;
  mutable detail::ChainState cache;  //!< the entries replayed so far (current())

  ~Impl() {
    if (db) sqlite3_close(db);
  }

  void require_signer() const {
    if (!signer) throw InputError(path, "writing to the ledger needs the workshop's signing key");
    if (signer->public_hex() != public_hex)
      throw InputError(path, "the signing key given is not this ledger's (public keys differ)");
  }

  //! Appends an entry (inside the caller's transaction); returns its seq.
  std::int64_t append(const std::string& kind, const nlohmann::json& body_json) {
    std::int64_t seq = 1;
    std::array<std::uint8_t, 32> prev{};
    {
      Statement last(db, "SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1", path);
      if (last.step()) {
        seq = last.integer(0) + 1;
        const std::string h = last.blob(1);
        if (h.size() != prev.size()) throw ProcessingError(path.string() + ": ledger's last entry has a damaged hash");
        std::memcpy(prev.data(), h.data(), prev.size());
      }
    }
    const std::string body = body_json.dump();
    const auto hash = entry_hash(prev, seq, kind, body);
    const auto sig = signer->sign(hash);
    Statement ins(db, "INSERT INTO entries(seq, kind, body, prev_hash, hash, signature) VALUES(?,?,?,?,?,?)", path);
    ins.bind(1, seq).bind(2, kind).bind(3, body).bind_blob(4, prev.data(), prev.size()).bind_blob(5, hash.data(), hash.size());
    ins.bind_blob(6, sig.data(), sig.size());
    ins.step();
    return seq;
  }

  //! What the entries say, up to the last one: replayed once, then only the entries added since
  //! (each checked, link, hash, signature and rules). InputError when an entry does not verify, or
  //! when one replayed before has since been rewritten: nothing is made from such a ledger.
  const detail::ChainState& current() const {
    if (cache.seq > 0) {
      Statement q(db, "SELECT hash FROM entries WHERE seq = ?", path);
      q.bind(1, cache.seq);
      if (!q.step() || q.blob(0) != std::string(reinterpret_cast<const char*>(cache.head.data()), cache.head.size()))
        throw InputError(path, fmt::format("entry {} has changed since this ledger was read (its history was rewritten): nothing is made from it; "
                                           "see 'tracecast ledger verify'",
                                           cache.seq));
    }
    if (const ReplayProblem p = replay(db, path, public_hex, cache); !p.problem.empty())
      throw InputError(path, "the ledger does not verify (" + p.problem + "): nothing is made from it until it does; see 'tracecast ledger verify'");
    return cache;
  }

  //! The consents a piece of `run` on `today` is made under, read from the entries: the subject's,
  //! and the likeness subject's when the piece copies another person's face (0 when it does not).
  //! InputError naming what is missing (consent_for()), when the likeness subject is the subject,
  //! or when the tables production reads differ from the entries (an edited table is refused,
  //! never obeyed).
  std::pair<std::int64_t, std::int64_t> production_consents(std::uint32_t run, const std::string& subject, const std::string& likeness,
                                                            const std::string& today) const {
    if (!likeness.empty() && likeness == subject)
      throw InputError(fmt::format("the likeness subject is the subject '{}': a piece of one's own face has no likeness subject", subject));
    const detail::ChainState& s = current();
    if (const std::string p = production_tables_problem(db, path, s); !p.empty())
      throw InputError(path, "the ledger's tables differ from its entries (" + p + "): nothing is made from it until they agree; see 'tracecast ledger verify'");
    const detail::ConsentCheck own = detail::consent_for(s, run, subject, today);
    if (!own.refusal.empty()) throw InputError(path, own.refusal);
    if (likeness.empty()) return {own.entry, 0};
    const detail::ConsentCheck other = detail::consent_for(s, run, likeness, today);
    if (!other.refusal.empty()) throw InputError(path, other.refusal);
    return {own.entry, other.entry};
  }

  //! Runs `fn` in a read transaction: one consistent snapshot even while other processes append.
  template <class F>
  auto read(F&& fn) const {
    exec(db, "BEGIN", path);
    struct EndRead {
      sqlite3* db;
      ~EndRead() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
    } end_read{db};
    return fn();
  }

  //! Runs `fn` in an IMMEDIATE transaction (writers queue on the file lock), committing at the
  //! end; rolls back on any exception.
  template <class F>
  auto write(F&& fn) {
    require_signer();
    exec(db, "BEGIN IMMEDIATE", path);
    try {
      auto result = fn();
      exec(db, "COMMIT", path);
      return result;
    } catch (...) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
};

Ledger::Ledger(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Ledger::~Ledger() = default;
Ledger::Ledger(Ledger&&) noexcept = default;
Ledger& Ledger::operator=(Ledger&&) noexcept = default;

namespace {
sqlite3* open_db(const std::filesystem::path& path, bool create) {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_FULLMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    const std::string msg = db ? sqlite3_errmsg(db) : "cannot open";
    if (db) sqlite3_close(db);
    throw InputError(path, "cannot open the ledger: " + msg);
  }
  sqlite3_busy_timeout(db, 60000);
  // WAL: readers never block the writer and a killed process cannot leave a half-written
  // transaction; NORMAL sync keeps every committed transaction across a process crash.
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", nullptr, nullptr, nullptr);
  return db;
}
}  // namespace

void Ledger::create(const std::filesystem::path& path, const SigningKey& key, std::uint32_t maker,
                    const std::string& workshop_name) {
  init_sodium();
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) throw InputError(path, "already exists; a ledger is never overwritten");
  if (maker >= (1u << 16)) throw InputError(fmt::format("maker number {} does not fit 16 bits", maker));
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->db = open_db(path, true);
  impl->signer = &key;
  impl->maker = maker;
  impl->public_hex = key.public_hex();
  exec(impl->db, "BEGIN IMMEDIATE", path);
  try {
    exec(impl->db, kSchema, path);
    exec(impl->db, kForeignSchema, path);
    for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
             {"schema_version", std::to_string(kSchemaVersion)}, {"maker", std::to_string(maker)}, {"public_key", key.public_hex()}}) {
      Statement s(impl->db, "INSERT INTO meta(key, value) VALUES(?, ?)", path);
      s.bind(1, k).bind(2, v).step();
    }
    impl->append("workshop", {{"maker", maker}, {"name", workshop_name}, {"public_key", key.public_hex()},
                              {"schema_version", kSchemaVersion}, {"time_utc", utc_now()}});
    exec(impl->db, "COMMIT", path);
  } catch (...) {
    sqlite3_exec(impl->db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

Ledger Ledger::open(const std::filesystem::path& path, const SigningKey* signer) {
  init_sodium();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw InputError(path, "no ledger here (create one with 'tracecast ledger init')");
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->db = open_db(path, false);
  impl->signer = signer;
  std::string version;
  try {
    Statement s(impl->db, "SELECT key, value FROM meta", path);
    while (s.step()) {
      if (s.text(0) == "schema_version") version = s.text(1);
      if (s.text(0) == "maker") impl->maker = static_cast<std::uint32_t>(std::stoul(s.text(1)));
      if (s.text(0) == "public_key") impl->public_hex = s.text(1);
    }
  } catch (const ProcessingError&) {
    throw InputError(path, "not a tracecast ledger (no meta table)");
  }
  if (version.empty()) throw InputError(path, "not a tracecast ledger (no schema version)");
  // Migrations from older schema versions go here, each in its own transaction; newer files are
  // refused rather than misread.
  if (std::stoi(version) > kSchemaVersion)
    throw InputError(path, fmt::format("ledger schema version {} is newer than this tracecast reads ({})", version, kSchemaVersion));
  if (std::stoi(version) < 2) {  // 1 -> 2: the tables for imported workshops (meta is not signed)
    exec(impl->db, "BEGIN IMMEDIATE", path);
    try {
      exec(impl->db, kForeignSchema, path);
      exec(impl->db, "UPDATE meta SET value = '2' WHERE key = 'schema_version'", path);
      exec(impl->db, "COMMIT", path);
    } catch (...) {
      sqlite3_exec(impl->db, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
  return Ledger(std::move(impl));
}

std::uint32_t Ledger::maker() const { return impl_->maker; }
std::string Ledger::public_key_hex() const { return impl_->public_hex; }

void Ledger::add_operator(const std::string& code, const std::string& name) {
  if (code.empty()) throw InputError("an operator needs a code");
  impl_->write([&] { return impl_->append("operator", {{"code", code}, {"name", name}, {"time_utc", utc_now()}}); });
}

void Ledger::register_key(const std::string& key_id) {
  if (key_id.size() != 16) throw InputError("a marking key id is 16 hexadecimal digits");
  impl_->write([&] { return impl_->append("key", {{"key_id", key_id}, {"time_utc", utc_now()}}); });
}

void Ledger::add_subject(const std::string& code) {
  if (code.empty()) throw InputError("a subject needs a pseudonymous code");
  impl_->write([&] {
    if (impl_->current().subjects.count(code)) throw InputError(impl_->path, "subject '" + code + "' is already in the ledger");
    const std::int64_t seq = impl_->append("subject", {{"code", code}, {"time_utc", utc_now()}});
    Statement ins(impl_->db, "INSERT INTO subjects(code, seq) VALUES(?, ?)", impl_->path);
    ins.bind(1, code).bind(2, seq).step();
    return seq;
  });
}

std::int64_t Ledger::add_consent(const std::string& subject, Use use, const std::string& valid_until,
                                 const std::string& document_sha256_hex, const std::string& given_by) {
  if (!valid_date(valid_until)) throw InputError("consent validity must be a date YYYY-MM-DD, got '" + valid_until + "'");
  std::array<std::uint8_t, 32> doc;
  if (!unhex(document_sha256_hex, doc)) throw InputError("the consent document's hash must be 64 hexadecimal digits (SHA-256)");
  if (given_by.empty()) throw InputError("a consent needs the name of who gave it");
  return impl_->write([&] {
    if (!impl_->current().subjects.count(subject)) throw InputError(impl_->path, "no subject '" + subject + "' in the ledger");
    const std::int64_t seq = impl_->append("consent", {{"subject", subject},
                                                       {"use", use_name(use)},
                                                       {"valid_until", valid_until},
                                                       {"document_sha256", document_sha256_hex},
                                                       {"given_by", given_by},
                                                       {"time_utc", utc_now()}});
    Statement ins(impl_->db, "INSERT INTO consents(seq, subject, use, valid_until) VALUES(?,?,?,?)", impl_->path);
    ins.bind(1, seq).bind(2, subject).bind(3, use_name(use)).bind(4, valid_until).step();
    return seq;
  });
}

std::uint32_t Ledger::open_run(Use use, const std::string& client, const std::string& prescriber,
                               const std::string& operator_code) {
  if (use == Use::Medical && prescriber.empty()) throw InputError("a medical run needs its prescriber");
  return impl_->write([&] {
    const auto run = static_cast<std::uint32_t>(impl_->current().runs.size() + 1);
    if (run >= (1u << 24)) throw ProcessingError(impl_->path.string() + ": the ledger has used all run numbers");
    const std::int64_t seq = impl_->append("run", {{"run", run},
                                                   {"use", use_name(use)},
                                                   {"client", client},
                                                   {"prescriber", prescriber},
                                                   {"operator", operator_code},
                                                   {"time_utc", utc_now()}});
    Statement ins(impl_->db, "INSERT INTO runs(run, use, closed, seq) VALUES(?,?,0,?)", impl_->path);
    ins.bind(1, run).bind(2, use_name(use)).bind(3, seq).step();
    return run;
  });
}

void Ledger::close_run(std::uint32_t run) {
  impl_->write([&] {
    const auto& runs = impl_->current().runs;
    const auto it = runs.find(run);
    if (it == runs.end()) throw InputError(impl_->path, fmt::format("no run {} in the ledger", run));
    if (it->second.closed) throw InputError(impl_->path, fmt::format("run {} is already closed", run));
    const std::int64_t seq = impl_->append("run-closed", {{"run", run}, {"time_utc", utc_now()}});
    Statement up(impl_->db, "UPDATE runs SET closed = 1 WHERE run = ?", impl_->path);
    up.bind(1, run).step();
    return seq;
  });
}

Piece Ledger::record_piece(std::uint32_t run, const std::string& subject, const std::string& key_id,
                           const nlohmann::json& details, const std::string& today_in, const std::string& likeness) {
  const std::string today = today_in.empty() ? utc_today() : today_in;
  if (!valid_date(today)) throw InputError("date must be YYYY-MM-DD, got '" + today + "'");
  return impl_->write([&] {
    const auto [consent, likeness_consent] = impl_->production_consents(run, subject, likeness, today);
    const std::int64_t number = std::int64_t(impl_->current().runs.at(run).pieces) + 1;  // the run is known: it has a consent
    if (number >= (1 << 24)) throw ProcessingError(impl_->path.string() + fmt::format(": run {} has used all piece numbers", run));
    const std::uint64_t id = pack(PieceId{impl_->maker, run, static_cast<std::uint32_t>(number)});
    nlohmann::json body = {{"id", id},           {"run", run},         {"number", number},        {"subject", subject},
                           {"consent_entry", consent}, {"key_id", key_id}, {"details", details}, {"date", today},
                           {"time_utc", utc_now()}};
    if (!likeness.empty()) body.update({{"likeness_subject", likeness}, {"likeness_consent_entry", likeness_consent}});
    const std::int64_t seq = impl_->append("piece", body);
    Statement ins(impl_->db, "INSERT INTO pieces(id, run, number, seq) VALUES(?,?,?,?)", impl_->path);
    ins.bind(1, static_cast<std::int64_t>(id)).bind(2, run).bind(3, number).bind(4, seq).step();
    return Piece{id, seq};
  });
}

void Ledger::release_piece(std::uint64_t id, bool accepted, const nlohmann::json& checks, const std::string& released_by,
                           const std::string& note) {
  if (released_by.empty()) throw InputError("a release needs the name of who released the piece");
  impl_->write([&] {
    const detail::ChainState& s = impl_->current();
    if (!s.pieces.count(id)) throw InputError(impl_->path, fmt::format("no piece {} in the ledger", format_id(id)));
    if (s.releases.count(id)) throw InputError(impl_->path, fmt::format("piece {} was already released", format_id(id)));
    const std::int64_t seq = impl_->append("release", {{"id", id},
                                                       {"accepted", accepted},
                                                       {"checks", checks},
                                                       {"released_by", released_by},
                                                       {"note", note},
                                                       {"time_utc", utc_now()}});
    Statement ins(impl_->db, "INSERT INTO releases(id, accepted, seq) VALUES(?,?,?)", impl_->path);
    ins.bind(1, static_cast<std::int64_t>(id)).bind(2, accepted ? 1 : 0).bind(3, seq).step();
    return seq;
  });
}

namespace {

//! One workshop's chain read back as records: the workshop, its operators, runs (with their
//! closing), consents, and pieces (with their consent, outputs and release).
struct Gathered {
  nlohmann::json workshop;
  std::map<std::uint32_t, nlohmann::json> runs;
  std::map<std::uint64_t, nlohmann::json> pieces;
};

Gathered gather(const std::vector<Entry>& chain) {
  using nlohmann::json;
  Gathered g;
  std::map<std::string, json> consents, operators;
  for (const Entry& e : chain) {
    const json b = json::parse(e.body, nullptr, false);
    if (b.is_discarded()) continue;
    if (e.kind == "workshop") {
      const std::string key = b.value("public_key", std::string());
      std::array<std::uint8_t, 32> raw;
      g.workshop = {{"maker", b["maker"]},
                    {"name", b["name"]},
                    {"public_key", key},
                    {"key_fingerprint", unhex(key, raw) ? json(key_fingerprint(key)) : json()}};
    }
    if (e.kind == "operator") operators[b.value("code", std::string())] = b;
    if (e.kind == "consent") consents[std::to_string(e.seq)] = b;
    if (e.kind == "run") {
      const std::string op = b.value("operator", std::string());
      g.runs[b.value("run", 0u)] = {{"run", b["run"]},
                                    {"use", b["use"]},
                                    {"client", b["client"]},
                                    {"prescriber", b["prescriber"]},
                                    {"operator", b["operator"]},
                                    {"operator_name", operators.count(op) ? operators[op]["name"] : json()},
                                    {"opened_utc", b["time_utc"]},
                                    {"closed_utc", nullptr},
                                    {"entry", e.seq}};
    }
    if (e.kind == "run-closed") {
      const auto it = g.runs.find(b.value("run", 0u));
      if (it != g.runs.end()) it->second["closed_utc"] = b["time_utc"];
    }
    if (e.kind == "piece") {
      const auto id = b["id"].get<std::uint64_t>();
      // A consent entry as the record shows it; null when the ledger does not hold it.
      const auto consent_of = [&](const char* key) {
        const std::string at = std::to_string(b.value(key, std::int64_t(0)));
        if (!consents.count(at)) return json();
        const json& c = consents[at];
        return json{{"entry", b[key]},
                    {"use", c["use"]},
                    {"valid_until", c["valid_until"]},
                    {"document_sha256", c["document_sha256"]},
                    {"given_by", c["given_by"]}};
      };
      const json likeness = b.contains("likeness_subject")
                                ? json{{"subject", b["likeness_subject"]}, {"consent", consent_of("likeness_consent_entry")}}
                                : json();
      g.pieces[id] = {{"id", format_id(id)},
                      {"id_value", id},
                      {"run", b["run"]},
                      {"number", b["number"]},
                      {"subject", b["subject"]},
                      {"made_utc", b["time_utc"]},
                      {"marking_key_id", b["key_id"]},
                      {"details", b["details"]},
                      {"consent", consent_of("consent_entry")},
                      {"likeness", likeness},
                      {"outputs", nullptr},
                      {"release", nullptr},
                      {"entry", e.seq}};
    }
    if (e.kind == "outputs") {
      const auto it = g.pieces.find(b["id"].get<std::uint64_t>());
      if (it != g.pieces.end()) it->second["outputs"] = {{"files", b["files"]}, {"recorded_utc", b["time_utc"]}, {"entry", e.seq}};
    }
    if (e.kind == "release") {
      const auto it = g.pieces.find(b["id"].get<std::uint64_t>());
      if (it != g.pieces.end())
        it->second["release"] = {{"accepted", b["accepted"]},
                                 {"checks", b["checks"]},
                                 {"released_by", b["released_by"]},
                                 {"note", b["note"]},
                                 {"released_utc", b["time_utc"]},
                                 {"entry", e.seq}};
    }
  }
  return g;
}

}  // namespace

nlohmann::json Ledger::device_history(std::uint32_t run) const {
  using nlohmann::json;
  const Gathered g = gather(entries());
  const auto r = g.runs.find(run);
  if (r == g.runs.end()) throw InputError(impl_->path, fmt::format("no run {} in the ledger", run));
  json list = json::array();
  std::size_t made = 0, accepted = 0, rejected = 0;
  for (const auto& [id, p] : g.pieces) {
    if (p["run"].get<std::uint32_t>() != run) continue;
    ++made;
    if (!p["release"].is_null()) (p["release"]["accepted"].get<bool>() ? accepted : rejected) += 1;
    list.push_back(p);
  }
  const VerifyResult v = verify();
  return {{"workshop", g.workshop},
          {"run", r->second},
          {"quantities", {{"made", made}, {"accepted", accepted}, {"rejected", rejected},
                          {"awaiting_release", made - accepted - rejected}}},
          {"pieces", list},
          {"ledger", {{"file", impl_->path.string()}, {"entries", v.entries}, {"verified", v.ok}, {"problem", v.problem}}},
          {"exported_utc", utc_now()}};
}

std::optional<nlohmann::json> Ledger::piece_record(std::uint64_t id) const {
  const std::optional<Entry> found = find_piece(id);
  if (!found) return std::nullopt;
  std::vector<Entry> chain;
  if (found->workshop.empty()) {
    chain = entries();
  } else {
    Statement s(impl_->db, "SELECT seq, kind, body, hash FROM foreign_entries WHERE workshop = ? ORDER BY seq", impl_->path);
    s.bind(1, found->workshop);
    while (s.step()) {
      const std::string h = s.blob(3);
      chain.push_back({s.integer(0), s.text(1), s.text(2), hex(reinterpret_cast<const std::uint8_t*>(h.data()), h.size()), found->workshop});
    }
  }
  const Gathered g = gather(chain);
  const auto p = g.pieces.find(id);
  if (p == g.pieces.end()) return std::nullopt;
  const auto r = g.runs.find(p->second["run"].get<std::uint32_t>());
  const VerifyResult v = verify();
  return nlohmann::json{{"piece", p->second},
                        {"run", r == g.runs.end() ? nlohmann::json() : r->second},
                        {"workshop", g.workshop},
                        {"imported", !found->workshop.empty()},
                        {"ledger", {{"file", impl_->path.string()}, {"entries", v.entries}, {"verified", v.ok}, {"problem", v.problem}}}};
}

void Ledger::check_production(std::uint32_t run, const std::string& subject, const std::string& today_in, const std::string& likeness) const {
  const std::string today = today_in.empty() ? utc_today() : today_in;
  if (!valid_date(today)) throw InputError("date must be YYYY-MM-DD, got '" + today + "'");
  impl_->read([&] { return impl_->production_consents(run, subject, likeness, today); });
}

void Ledger::record_outputs(std::uint64_t id, const nlohmann::json& files) {
  if (!files.is_object() || files.empty()) throw InputError("a piece's outputs are a non-empty map of file names to SHA-256");
  impl_->write([&] {
    const detail::ChainState& s = impl_->current();
    if (!s.pieces.count(id)) throw InputError(impl_->path, fmt::format("no piece {} in the ledger", format_id(id)));
    if (s.outputs.count(id)) throw InputError(impl_->path, fmt::format("the outputs of piece {} are already recorded", format_id(id)));
    return impl_->append("outputs", {{"id", id}, {"files", files}, {"time_utc", utc_now()}});
  });
}

namespace {

constexpr char kCheckpointFormat[] = "tracecast-checkpoint 1";
constexpr char kCheckpointDomain[] = "tracecast checkpoint v1";

}  // namespace

std::array<std::uint8_t, 32> domain_hash(const std::string& domain, const std::string& data) {
  init_sodium();
  std::array<std::uint8_t, 32> h;
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, h.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(domain.data()), domain.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  crypto_generichash_final(&st, h.data(), h.size());
  return h;
}

std::string sha256_hex(const std::string& bytes) {
  init_sodium();
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return hex(h, sizeof h);
}

std::string key_fingerprint(const std::string& public_hex) {
  init_sodium();
  std::array<std::uint8_t, 32> key;
  if (!unhex(public_hex, key)) throw InputError("not a workshop public key (64 hexadecimal digits): '" + public_hex + "'");
  const auto h = domain_hash("tracecast key fingerprint v1", std::string(key.begin(), key.end()));
  std::string out;
  for (int g = 0; g < 8; ++g) out += (g ? "-" : "") + hex(h.data() + 2 * g, 2);
  return out;
}

std::optional<std::string> parse_fingerprint(const std::string& text) {
  std::string digits;
  for (char c : text) {
    if (c == '-' || c == ':' || c == ' ') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    digits += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (digits.size() != 32) return std::nullopt;
  std::string out;
  for (int g = 0; g < 8; ++g) out += (g ? "-" : "") + digits.substr(static_cast<std::size_t>(4 * g), 4);
  return out;
}

nlohmann::json Ledger::checkpoint() const {
  impl_->require_signer();
  nlohmann::json body = impl_->read([&] {
    const detail::ChainState& s = impl_->current();
    return nlohmann::json{{"format", kCheckpointFormat},
                          {"workshop", impl_->public_hex},
                          {"key_fingerprint", key_fingerprint(impl_->public_hex)},
                          {"maker", impl_->maker},
                          {"entries", s.seq},
                          {"head_hash", hex(s.head.data(), s.head.size())},
                          {"time_utc", utc_now()}};
  });
  const auto sig = impl_->signer->sign(domain_hash(kCheckpointDomain, body.dump()));
  body["signature"] = hex(sig.data(), sig.size());
  return body;
}

std::string checkpoint_signature_problem(const nlohmann::json& cp) {
  init_sodium();
  if (!cp.is_object() || cp.value("format", std::string()) != kCheckpointFormat) return "not a tracecast ledger checkpoint";
  nlohmann::json body = cp;
  body.erase("signature");
  std::array<std::uint8_t, 32> key;
  std::array<std::uint8_t, 64> sig;
  std::array<std::uint8_t, 32> head;
  const auto text = [&](const char* f) { return cp.contains(f) && cp[f].is_string() ? cp[f].get<std::string>() : std::string(); };
  if (!unhex(text("workshop"), key) || !unhex(text("signature"), sig) || !unhex(text("head_hash"), head) || !cp.contains("entries") ||
      !cp["entries"].is_number_integer() || cp["entries"].get<std::int64_t>() < 1)
    return "the checkpoint is malformed (workshop key, entries, head hash or signature)";
  const auto h = domain_hash(kCheckpointDomain, body.dump());
  if (crypto_sign_verify_detached(sig.data(), h.data(), h.size(), key.data()) != 0) return "the checkpoint's signature is invalid";
  return "";
}

std::string Ledger::checkpoint_problem(const nlohmann::json& cp) const {
  if (std::string p = checkpoint_signature_problem(cp); !p.empty()) return p;
  const std::string workshop = cp["workshop"].get<std::string>(), head = cp["head_hash"].get<std::string>();
  if (workshop != impl_->public_hex)
    return fmt::format("the checkpoint was signed by key {}, this ledger by key {}: its history was re-signed with another key",
                       key_fingerprint(workshop), key_fingerprint(impl_->public_hex));
  const auto n = cp["entries"].get<std::int64_t>();
  return impl_->read([&]() -> std::string {
    Statement s(impl_->db, "SELECT hash FROM entries WHERE seq = ?", impl_->path);
    s.bind(1, n);
    if (!s.step()) return fmt::format("the checkpoint holds {} entries, which this ledger no longer has: it was truncated", n);
    const std::string stored = s.blob(0);
    if (hex(reinterpret_cast<const std::uint8_t*>(stored.data()), stored.size()) != head)
      return fmt::format("entry {} is not the one the checkpoint of {} holds: the history up to it was rewritten", n,
                         cp.value("time_utc", std::string("?")));
    return "";
  });
}

std::string file_sha256(const std::filesystem::path& file) {
  init_sodium();
  std::ifstream f(file, std::ios::binary);
  if (!f) throw InputError(file, "cannot open");
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  std::vector<char> buf(1 << 16);
  while (f.read(buf.data(), static_cast<std::streamsize>(buf.size())) || f.gcount() > 0)
    crypto_hash_sha256_update(&st, reinterpret_cast<const unsigned char*>(buf.data()), static_cast<unsigned long long>(f.gcount()));
  if (f.bad()) throw InputError(file, "read error");
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&st, h);
  return hex(h, sizeof h);
}

std::vector<Entry> Ledger::entries() const {
  std::vector<Entry> out;
  Statement s(impl_->db, "SELECT seq, kind, body, hash FROM entries ORDER BY seq", impl_->path);
  while (s.step()) {
    const std::string h = s.blob(3);
    out.push_back({s.integer(0), s.text(1), s.text(2), hex(reinterpret_cast<const std::uint8_t*>(h.data()), h.size()), ""});
  }
  return out;
}

std::vector<SignedEntry> Ledger::signed_entries(std::int64_t after) const {
  return impl_->read([&] {
    std::vector<SignedEntry> out;
    Statement s(impl_->db, "SELECT seq, kind, body, prev_hash, hash, signature FROM entries WHERE seq > ? ORDER BY seq", impl_->path);
    s.bind(1, after);
    const auto hx = [](const std::string& b) { return hex(reinterpret_cast<const std::uint8_t*>(b.data()), b.size()); };
    while (s.step()) out.push_back({s.integer(0), s.text(1), s.text(2), hx(s.blob(3)), hx(s.blob(4)), hx(s.blob(5))});
    return out;
  });
}

void to_json(nlohmann::json& j, const SignedEntry& e) {
  j = {{"seq", e.seq}, {"kind", e.kind}, {"body", e.body}, {"prev_hash", e.prev_hash}, {"hash", e.hash}, {"signature", e.signature}};
}

void from_json(const nlohmann::json& j, SignedEntry& e) {
  if (!j.is_object()) throw InputError("a ledger entry is not an object");
  const auto text = [&](const char* f) {
    if (!j.contains(f) || !j[f].is_string()) throw InputError(fmt::format("a ledger entry's '{}' is missing or not a string", f));
    return j[f].get<std::string>();
  };
  if (!j.contains("seq") || !j["seq"].is_number_integer()) throw InputError("a ledger entry's 'seq' is missing or not an integer");
  e = {j["seq"].get<std::int64_t>(), text("kind"), text("body"), text("prev_hash"), text("hash"), text("signature")};
}

struct ChainCheck::Impl {
  std::string public_hex;
  std::array<std::uint8_t, 32> pub{};
  bool key_ok = false;
  detail::ChainState state;
};

ChainCheck::ChainCheck(const std::string& public_hex) : impl_(std::make_unique<Impl>()) {
  init_sodium();
  impl_->public_hex = public_hex;
  impl_->key_ok = unhex(public_hex, impl_->pub);
}
ChainCheck::~ChainCheck() = default;
ChainCheck::ChainCheck(ChainCheck&&) noexcept = default;
ChainCheck& ChainCheck::operator=(ChainCheck&&) noexcept = default;

std::string ChainCheck::append(const SignedEntry& e) {
  if (!impl_->key_ok) return "the workshop's public key is not 64 hex digits";
  detail::ChainState& s = impl_->state;
  std::array<std::uint8_t, 32> prev, hash;
  std::array<std::uint8_t, 64> sig;
  if (!unhex(e.prev_hash, prev) || !unhex(e.hash, hash) || !unhex(e.signature, sig))
    return fmt::format("entry {}: its hashes or signature are not hex of the right length", e.seq);
  const std::string as_blob = [](const auto& a) { return std::string(reinterpret_cast<const char*>(a.data()), a.size()); }(prev);
  std::string p = link_problem(s.head, s.seq + 1, e.seq, e.kind, e.body, as_blob, std::string(reinterpret_cast<const char*>(hash.data()), 32),
                               std::string(reinterpret_cast<const char*>(sig.data()), 64), impl_->pub);
  if (p.empty() && e.seq == 1) {
    const auto j = nlohmann::json::parse(e.body, nullptr, false);
    if (e.kind != "workshop" || j.is_discarded() || j.value("public_key", std::string()) != impl_->public_hex)
      p = "the first entry does not name the workshop's public key";
  }
  if (!p.empty()) return p;
  detail::ChainState next = s;  // the rules applied to a copy: a refused entry leaves the chain as it was
  if (std::string r = detail::apply_entry(next, e.seq, e.kind, e.body); !r.empty()) return r;
  next.seq = e.seq;
  next.head = hash;
  s = std::move(next);
  return "";
}

std::int64_t ChainCheck::entries() const { return impl_->state.seq; }
std::string ChainCheck::head_hex() const { return hex(impl_->state.head.data(), impl_->state.head.size()); }
std::uint32_t ChainCheck::maker() const { return impl_->state.maker; }

std::optional<Entry> Ledger::find_piece(std::uint64_t id) const {
  Statement s(impl_->db, "SELECT e.seq, e.kind, e.body, e.hash FROM pieces p JOIN entries e ON e.seq = p.seq WHERE p.id = ?",
              impl_->path);
  s.bind(1, static_cast<std::int64_t>(id));
  if (s.step()) {
    const std::string h = s.blob(3);
    return Entry{s.integer(0), s.text(1), s.text(2), hex(reinterpret_cast<const std::uint8_t*>(h.data()), h.size()), ""};
  }
  Statement f(impl_->db,
              "SELECT e.seq, e.kind, e.body, e.hash, e.workshop FROM foreign_pieces p JOIN foreign_entries e "
              "ON e.workshop = p.workshop AND e.seq = p.seq WHERE p.id = ?",
              impl_->path);
  f.bind(1, static_cast<std::int64_t>(id));
  if (!f.step()) return std::nullopt;
  const std::string h = f.blob(3);
  return Entry{f.integer(0), f.text(1), f.text(2), hex(reinterpret_cast<const std::uint8_t*>(h.data()), h.size()), f.text(4)};
}

ImportResult Ledger::import_from(const std::filesystem::path& other_path) {
  impl_->require_signer();
  const Ledger other = Ledger::open(other_path);
  if (other.public_key_hex() == impl_->public_hex) throw InputError(other_path, "is this workshop's own ledger");
  if (other.maker() == impl_->maker)
    throw InputError(other_path, fmt::format("uses this workshop's maker number {}: the two workshops' identifiers would collide",
                                             impl_->maker));
  const VerifyResult v = other.verify();
  if (!v.ok) throw InputError(other_path, "does not verify, so it is not imported: " + v.problem);
  struct Row {
    std::int64_t seq;
    std::string kind, body, prev, hash, sig;
  };
  std::vector<Row> rows;
  {
    Statement s(other.impl_->db, "SELECT seq, kind, body, prev_hash, hash, signature FROM entries ORDER BY seq", other_path);
    while (s.step()) rows.push_back({s.integer(0), s.text(1), s.text(2), s.blob(3), s.blob(4), s.blob(5)});
  }
  const std::string workshop = other.public_key_hex();
  return impl_->write([&] {
    std::size_t held = 0;
    {
      Statement have(impl_->db, "SELECT seq, hash FROM foreign_entries WHERE workshop = ? ORDER BY seq", impl_->path);
      have.bind(1, workshop);
      while (have.step()) {
        if (held >= rows.size() || rows[held].seq != have.integer(0) || rows[held].hash != have.blob(1))
          throw InputError(other_path, fmt::format("its entry {} differs from the one imported before: its history was rewritten",
                                                   held + 1));
        ++held;
      }
    }
    for (std::size_t k = held; k < rows.size(); ++k) {
      const Row& r = rows[k];
      Statement ins(impl_->db,
                    "INSERT INTO foreign_entries(workshop, seq, kind, body, prev_hash, hash, signature) VALUES(?,?,?,?,?,?,?)",
                    impl_->path);
      ins.bind(1, workshop).bind(2, r.seq).bind(3, r.kind).bind(4, r.body);
      ins.bind_blob(5, r.prev.data(), r.prev.size()).bind_blob(6, r.hash.data(), r.hash.size()).bind_blob(7, r.sig.data(), r.sig.size());
      ins.step();
      if (r.kind == "piece") {
        const auto j = nlohmann::json::parse(r.body, nullptr, false);
        const auto id = static_cast<std::int64_t>(j.value("id", std::uint64_t(0)));
        Statement local(impl_->db, "SELECT 1 FROM pieces WHERE id = ?", impl_->path);
        local.bind(1, id);
        if (local.step())
          throw InputError(other_path, fmt::format("its piece {:016x} has the identifier of a piece of this workshop", id));
        Statement p(impl_->db, "INSERT INTO foreign_pieces(id, workshop, seq) VALUES(?,?,?)", impl_->path);
        p.bind(1, id).bind(2, workshop).bind(3, r.seq);
        p.step();
      }
    }
    const std::string head = rows.empty() ? "" : hex(reinterpret_cast<const std::uint8_t*>(rows.back().hash.data()), rows.back().hash.size());
    impl_->append("import", {{"workshop", workshop},
                             {"maker", other.maker()},
                             {"entries", static_cast<std::int64_t>(rows.size())},
                             {"head_hash", head},
                             {"file", other_path.filename().string()},
                             {"time_utc", utc_now()}});
    return ImportResult{workshop, other.maker(), static_cast<std::int64_t>(rows.size() - held), static_cast<std::int64_t>(rows.size())};
  });
}

namespace {

//! The first problem found, and where; later ones are not reported.
struct Findings {
  VerifyResult& r;
  void bad(std::int64_t seq, std::string problem) {
    if (r.ok) {
      r.ok = false;
      r.first_bad_seq = seq;
      r.problem = std::move(problem);
    }
  }
};

//! Imported workshops' chains: each checks against its own key, from its first entry (which names
//! that key), and is replayed by the ledger's rules as its own workshop's. Returns each
//! workshop's entry hashes (hex, by seq); gathers their piece entries (the imported piece index
//! they must match).
std::map<std::string, std::vector<std::string>> check_foreign_chains(sqlite3* db, const std::filesystem::path& path, Findings& f,
                                                                     Rows& foreign_pieces) {
  std::map<std::string, std::vector<std::string>> hashes;
  Statement s(db, "SELECT workshop, seq, kind, body, prev_hash, hash, signature FROM foreign_entries ORDER BY workshop, seq", path);
  std::string current;
  std::array<std::uint8_t, 32> wpub{};
  detail::ChainState state;
  bool broken = false;
  while (s.step()) {
    const std::string w = s.text(0);
    const std::string name = "imported workshop " + w.substr(0, 16);
    if (w != current) {
      current = w;
      state = detail::ChainState{};
      broken = !unhex(w, wpub);
      if (broken) f.bad(0, name + ": its key is damaged");
    }
    if (broken) continue;
    const std::int64_t seq = s.integer(1);
    const std::string kind = s.text(2), body = s.text(3), hash = s.blob(5);
    std::string problem = link_problem(state.head, state.seq + 1, seq, kind, body, s.blob(4), hash, s.blob(6), wpub);
    if (problem.empty() && seq == 1) {
      const auto j = nlohmann::json::parse(body, nullptr, false);
      if (kind != "workshop" || j.is_discarded() || j.value("public_key", std::string()) != w) problem = "its first entry does not name its key";
    }
    if (problem.empty()) problem = detail::apply_entry(state, seq, kind, body);
    if (!problem.empty()) {
      f.bad(seq, name + ": " + problem);
      broken = true;
      continue;
    }
    if (kind == "piece") {
      const auto j = nlohmann::json::parse(body, nullptr, false);
      foreign_pieces[format_id(j.value("id", std::uint64_t(0)))] = fmt::format("workshop {}, entry {}", w.substr(0, 16), seq);
    }
    state.seq = seq;
    std::memcpy(state.head.data(), hash.data(), state.head.size());
    hashes[w].push_back(hex(state.head.data(), state.head.size()));
  }
  return hashes;
}

//! Every import entry of ours attests a prefix of the stored chain, and nothing is stored beyond
//! the last; the imported piece index is the image of the imported piece entries, both ways.
void check_attestations(sqlite3* db, const std::filesystem::path& path, const std::map<std::string, std::vector<std::string>>& hashes,
                        const detail::ChainState& facts, const Rows& foreign_pieces, Findings& f) {
  static const std::vector<std::pair<std::int64_t, std::string>> kNone;
  for (const auto& [w, list] : hashes) {
    const std::string name = "imported workshop " + w.substr(0, 16);
    std::int64_t last = 0;
    const auto it = facts.attested.find(w);
    for (const auto& [n, head] : it == facts.attested.end() ? kNone : it->second) {
      if (n < 1 || n > static_cast<std::int64_t>(list.size()) || list[static_cast<std::size_t>(n - 1)] != head)
        f.bad(0, fmt::format("{}: an import entry attests {} entries ending in {}, which the stored chain does not have", name, n, head.substr(0, 16)));
      last = std::max(last, n);
    }
    if (static_cast<std::int64_t>(list.size()) != last)
      f.bad(0, fmt::format("{}: {} entries are stored but import entries attest {}", name, list.size(), last));
  }
  for (const auto& [w, list] : facts.attested)
    if (!w.empty() && !hashes.count(w)) f.bad(0, fmt::format("imported workshop {}: attested by an import entry but not stored", w.substr(0, 16)));
  Rows stored;
  for (Statement q(db, "SELECT id, workshop, seq FROM foreign_pieces", path); q.step();)
    stored[format_id(static_cast<std::uint64_t>(q.integer(0)))] = fmt::format("workshop {}, entry {}", q.text(1).substr(0, 16), q.integer(2));
  if (std::string p = rows_problem("foreign_pieces", "piece", stored, foreign_pieces); !p.empty()) f.bad(0, p);
}

}  // namespace

VerifyResult Ledger::verify() const {
  VerifyResult r;
  Findings f{r};
  return impl_->read([&] {
    detail::ChainState facts;
    if (const ReplayProblem p = replay(impl_->db, impl_->path, impl_->public_hex, facts, &r.entries); !p.problem.empty()) {
      f.bad(p.seq, p.problem);
      return r;
    }
    if (const std::string p = tables_problem(impl_->db, impl_->path, facts); !p.empty()) f.bad(0, p);
    Rows foreign_pieces;
    const auto hashes = check_foreign_chains(impl_->db, impl_->path, f, foreign_pieces);
    check_attestations(impl_->db, impl_->path, hashes, facts, foreign_pieces, f);
    return r;
  });
}

}  // namespace tracecast::ledger
