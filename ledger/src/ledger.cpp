#include "tracecast/ledger/ledger.h"

#include <fmt/format.h>
#include <sodium.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>
#include <map>
#include <set>

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

std::string hex(const std::uint8_t* p, std::size_t n) {
  std::string s(2 * n + 1, '\0');
  sodium_bin2hex(s.data(), s.size(), p, n);
  s.pop_back();
  return s;
}

template <std::size_t N>
bool unhex(const std::string& h, std::array<std::uint8_t, N>& out) {
  std::size_t len = 0;
  return h.size() == 2 * N && sodium_hex2bin(out.data(), N, h.data(), h.size(), nullptr, &len, nullptr) == 0 && len == N;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
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

  //! The consent entry that allows making a piece of `subject` in `run` on `today`; InputError
  //! naming what is missing otherwise (unknown or closed run, unknown subject, no consent, expired
  //! consent, consent for another use).
  std::int64_t production_consent(std::uint32_t run, const std::string& subject, const std::string& today) const {
    std::string use;
    {
      Statement s(db, "SELECT use, closed FROM runs WHERE run = ?", path);
      s.bind(1, run);
      if (!s.step()) throw InputError(path, fmt::format("no run {} in the ledger: open a run first", run));
      if (s.integer(1)) throw InputError(path, fmt::format("run {} is closed: no more pieces can be made in it", run));
      use = s.text(0);
    }
    std::int64_t consent = 0;
    {
      Statement s(db, "SELECT seq, use, valid_until FROM consents WHERE subject = ? ORDER BY seq", path);
      s.bind(1, subject);
      bool any = false, other_use = false, expired = false;
      while (s.step()) {
        any = true;
        if (s.text(1) != use) {
          other_use = true;
          continue;
        }
        if (s.text(2) < today) {
          expired = true;
          continue;
        }
        consent = s.integer(0);
      }
      if (!consent) {
        if (!any) throw InputError(path, fmt::format("no consent recorded for subject '{}'", subject));
        if (expired)
          throw InputError(path, fmt::format("the consent of subject '{}' for {} use has expired", subject, use));
        if (other_use)
          throw InputError(path, fmt::format("subject '{}' consented to another use, not to {} use (run {})",
                                                    subject, use, run));
      }
    }
    return consent;
  }

  //! The consents a piece of `run` on `today` is made under: the subject's, and the likeness
  //! subject's when the piece copies another person's face (0 when it does not). InputError as
  //! production_consent() says, or when the likeness subject is the subject.
  std::pair<std::int64_t, std::int64_t> production_consents(std::uint32_t run, const std::string& subject, const std::string& likeness,
                                                            const std::string& today) const {
    if (!likeness.empty() && likeness == subject)
      throw InputError(fmt::format("the likeness subject is the subject '{}': a piece of one's own face has no likeness subject", subject));
    const std::int64_t own = production_consent(run, subject, today);
    return {own, likeness.empty() ? 0 : production_consent(run, likeness, today)};
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
    {
      Statement s(impl_->db, "SELECT 1 FROM subjects WHERE code = ?", impl_->path);
      s.bind(1, code);
      if (s.step()) throw InputError(impl_->path, "subject '" + code + "' is already in the ledger");
    }
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
    {
      Statement s(impl_->db, "SELECT 1 FROM subjects WHERE code = ?", impl_->path);
      s.bind(1, subject);
      if (!s.step()) throw InputError(impl_->path, "no subject '" + subject + "' in the ledger");
    }
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
    std::uint32_t run = 1;
    {
      Statement s(impl_->db, "SELECT COALESCE(MAX(run), 0) + 1 FROM runs", impl_->path);
      s.step();
      run = static_cast<std::uint32_t>(s.integer(0));
    }
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
    {
      Statement s(impl_->db, "SELECT closed FROM runs WHERE run = ?", impl_->path);
      s.bind(1, run);
      if (!s.step()) throw InputError(impl_->path, fmt::format("no run {} in the ledger", run));
      if (s.integer(0)) throw InputError(impl_->path, fmt::format("run {} is already closed", run));
    }
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
    std::int64_t number = 1;
    {
      Statement s(impl_->db, "SELECT COALESCE(MAX(number), 0) + 1 FROM pieces WHERE run = ?", impl_->path);
      s.bind(1, run).step();
      number = s.integer(0);
    }
    if (number >= (1 << 24)) throw ProcessingError(impl_->path.string() + fmt::format(": run {} has used all piece numbers", run));
    const std::uint64_t id = pack(PieceId{impl_->maker, run, static_cast<std::uint32_t>(number)});
    nlohmann::json body = {{"id", id},           {"run", run},         {"number", number},        {"subject", subject},
                           {"consent_entry", consent}, {"key_id", key_id}, {"details", details}, {"time_utc", utc_now()}};
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
    {
      Statement s(impl_->db, "SELECT 1 FROM pieces WHERE id = ?", impl_->path);
      s.bind(1, static_cast<std::int64_t>(id));
      if (!s.step()) throw InputError(impl_->path, fmt::format("no piece {} in the ledger", format_id(id)));
    }
    {
      Statement s(impl_->db, "SELECT 1 FROM releases WHERE id = ?", impl_->path);
      s.bind(1, static_cast<std::int64_t>(id));
      if (s.step()) throw InputError(impl_->path, fmt::format("piece {} was already released", format_id(id)));
    }
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
    if (e.kind == "workshop") g.workshop = {{"maker", b["maker"]}, {"name", b["name"]}, {"public_key", b["public_key"]}};
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
  impl_->production_consents(run, subject, likeness, today);
}

void Ledger::record_outputs(std::uint64_t id, const nlohmann::json& files) {
  if (!files.is_object() || files.empty()) throw InputError("a piece's outputs are a non-empty map of file names to SHA-256");
  impl_->write([&] {
    {
      Statement s(impl_->db, "SELECT 1 FROM pieces WHERE id = ?", impl_->path);
      s.bind(1, static_cast<std::int64_t>(id));
      if (!s.step()) throw InputError(impl_->path, fmt::format("no piece {} in the ledger", format_id(id)));
    }
    {
      Statement s(impl_->db, "SELECT 1 FROM entries WHERE kind = 'outputs' AND json_extract(body, '$.id') = ?", impl_->path);
      s.bind(1, static_cast<std::int64_t>(id));
      if (s.step()) throw InputError(impl_->path, fmt::format("the outputs of piece {} are already recorded", format_id(id)));
    }
    return impl_->append("outputs", {{"id", id}, {"files", files}, {"time_utc", utc_now()}});
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

//! What the ledger's own entries say, for the checks of the derived tables and the imports.
struct ChainFacts {
  std::map<std::int64_t, nlohmann::json> pieces_by_seq;
  std::size_t release_entries = 0;
  std::set<std::uint64_t> piece_ids, output_ids;
  std::map<std::string, std::vector<std::pair<std::int64_t, std::string>>> attested;  // workshop -> (entries, head hash)
};

//! What an entry of a verified link adds: its piece, a piece's files (after the piece, once),
//! a release, an import's attestation.
void note_entry(std::int64_t seq, const std::string& kind, const std::string& body, ChainFacts& facts, Findings& f) {
  if (kind == "piece") {
    facts.pieces_by_seq[seq] = nlohmann::json::parse(body, nullptr, false);
    if (!facts.pieces_by_seq[seq].is_discarded()) facts.piece_ids.insert(facts.pieces_by_seq[seq].value("id", std::uint64_t(0)));
  }
  if (kind == "outputs") {
    const auto j = nlohmann::json::parse(body, nullptr, false);
    const std::uint64_t id = j.is_discarded() ? 0 : j.value("id", std::uint64_t(0));
    if (!facts.piece_ids.count(id)) f.bad(seq, fmt::format("entry {} (outputs) names a piece not recorded before it", seq));
    else if (!facts.output_ids.insert(id).second) f.bad(seq, fmt::format("entry {} (outputs) records the files of a piece a second time", seq));
  }
  if (kind == "release") ++facts.release_entries;
  if (kind == "import") {
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_discarded())
      facts.attested[j.value("workshop", std::string())].emplace_back(j.value("entries", std::int64_t(0)), j.value("head_hash", std::string()));
  }
}

//! The ledger's own chain: every entry in sequence, linked to the one before, matching its hash,
//! signed by the ledger's key, the first naming that key. False when the chain breaks (nothing
//! after the break can be checked).
bool check_own_chain(sqlite3* db, const std::filesystem::path& path, const std::string& public_hex, const std::array<std::uint8_t, 32>& pub,
                     VerifyResult& r, Findings& f, ChainFacts& facts) {
  std::array<std::uint8_t, 32> prev{};
  std::int64_t expected = 1;
  Statement s(db, "SELECT seq, kind, body, prev_hash, hash, signature FROM entries ORDER BY seq", path);
  while (s.step()) {
    const std::int64_t seq = s.integer(0);
    ++r.entries;
    if (seq != expected) {
      f.bad(expected, fmt::format("entry {} is missing (the next one stored is {})", expected, seq));
      return false;
    }
    const std::string kind = s.text(1), body = s.text(2), prev_stored = s.blob(3), hash = s.blob(4), sig = s.blob(5);
    if (prev_stored.size() != 32 || std::memcmp(prev_stored.data(), prev.data(), 32) != 0) {
      f.bad(seq, fmt::format("entry {} does not follow entry {} (its link to the previous hash differs)", seq, seq - 1));
      return false;
    }
    const auto h = entry_hash(prev, seq, kind, body);
    if (hash.size() != 32 || std::memcmp(hash.data(), h.data(), 32) != 0) {
      f.bad(seq, fmt::format("entry {} ({}) was altered: its content does not match its hash", seq, kind));
      return false;
    }
    if (sig.size() != 64 || crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.data()), h.data(), h.size(), pub.data()) != 0) {
      f.bad(seq, fmt::format("entry {} ({}) has an invalid signature", seq, kind));
      return false;
    }
    if (seq == 1) {
      const auto j = nlohmann::json::parse(body, nullptr, false);
      if (kind != "workshop" || j.is_discarded() || !j.contains("public_key") || j["public_key"] != public_hex)
        f.bad(1, "the first entry does not name this ledger's public key");
    }
    note_entry(seq, kind, body, facts, f);
    prev = h;
    ++expected;
  }
  return true;
}

//! Derived tables: every piece row is the image of a piece entry, and the other way round; as
//! many release rows as release entries.
void check_derived_tables(sqlite3* db, const std::filesystem::path& path, const ChainFacts& facts, Findings& f) {
  {
    Statement s(db, "SELECT id, seq FROM pieces", path);
    std::size_t rows = 0;
    while (s.step()) {
      ++rows;
      const auto it = facts.pieces_by_seq.find(s.integer(1));
      if (it == facts.pieces_by_seq.end() || it->second.is_discarded() ||
          it->second.value("id", std::uint64_t(0)) != static_cast<std::uint64_t>(s.integer(0)))
        f.bad(s.integer(1), fmt::format("the piece index row for entry {} does not match the entry", s.integer(1)));
    }
    if (rows != facts.pieces_by_seq.size())
      f.bad(0, fmt::format("the piece index has {} rows for {} piece entries", rows, facts.pieces_by_seq.size()));
  }
  Statement s(db, "SELECT COUNT(*) FROM releases", path);
  s.step();
  if (static_cast<std::size_t>(s.integer(0)) != facts.release_entries)
    f.bad(0, fmt::format("the release index has {} rows for {} release entries", s.integer(0), facts.release_entries));
}

//! Imported workshops' chains: each checks against its own key, from its first entry (which names
//! that key). Returns each workshop's entry hashes (hex, by seq); counts their piece entries.
std::map<std::string, std::vector<std::string>> check_foreign_chains(sqlite3* db, const std::filesystem::path& path, Findings& f,
                                                                     std::size_t& foreign_pieces) {
  std::map<std::string, std::vector<std::string>> hashes;
  Statement s(db, "SELECT workshop, seq, kind, body, prev_hash, hash, signature FROM foreign_entries ORDER BY workshop, seq", path);
  std::string current;
  std::array<std::uint8_t, 32> wpub{}, foreign_prev{};
  std::int64_t expected_seq = 1;
  bool broken = false;
  while (s.step()) {
    const std::string w = s.text(0);
    const std::string name = "imported workshop " + w.substr(0, 16);
    if (w != current) {
      current = w;
      foreign_prev = {};
      expected_seq = 1;
      broken = !unhex(w, wpub);
      if (broken) f.bad(0, name + ": its key is damaged");
    }
    if (broken) continue;
    const std::int64_t seq = s.integer(1);
    const std::string kind = s.text(2), body = s.text(3), prev_stored = s.blob(4), hash = s.blob(5), sig = s.blob(6);
    const auto h = entry_hash(foreign_prev, seq, kind, body);
    std::string problem;
    if (seq != expected_seq) problem = fmt::format("entry {} is missing", expected_seq);
    else if (prev_stored.size() != 32 || std::memcmp(prev_stored.data(), foreign_prev.data(), 32) != 0)
      problem = fmt::format("entry {} does not follow entry {}", seq, seq - 1);
    else if (hash.size() != 32 || std::memcmp(hash.data(), h.data(), 32) != 0)
      problem = fmt::format("entry {} ({}) was altered: its content does not match its hash", seq, kind);
    else if (sig.size() != 64 || crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.data()), h.data(), h.size(), wpub.data()) != 0)
      problem = fmt::format("entry {} ({}) has an invalid signature", seq, kind);
    else if (seq == 1) {
      const auto j = nlohmann::json::parse(body, nullptr, false);
      if (kind != "workshop" || j.is_discarded() || j.value("public_key", std::string()) != w) problem = "its first entry does not name its key";
    }
    if (!problem.empty()) {
      f.bad(seq, name + ": " + problem);
      broken = true;
      continue;
    }
    if (kind == "piece") ++foreign_pieces;
    hashes[w].push_back(hex(h.data(), h.size()));
    foreign_prev = h;
    ++expected_seq;
  }
  return hashes;
}

//! Every import entry of ours attests a prefix of the stored chain, and nothing is stored beyond
//! the last; as many imported piece rows as imported piece entries.
void check_attestations(sqlite3* db, const std::filesystem::path& path, const std::map<std::string, std::vector<std::string>>& hashes,
                        const ChainFacts& facts, std::size_t foreign_pieces, Findings& f) {
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
  Statement c(db, "SELECT COUNT(*) FROM foreign_pieces", path);
  c.step();
  if (static_cast<std::size_t>(c.integer(0)) != foreign_pieces)
    f.bad(0, fmt::format("the imported piece index has {} rows for {} imported piece entries", c.integer(0), foreign_pieces));
}

}  // namespace

VerifyResult Ledger::verify() const {
  VerifyResult r;
  Findings f{r};
  std::array<std::uint8_t, 32> pub;
  if (!unhex(impl_->public_hex, pub)) {
    f.bad(1, "the ledger's public key is damaged");
    return r;
  }
  // A read transaction: one consistent snapshot even while other processes append.
  exec(impl_->db, "BEGIN", impl_->path);
  struct EndRead {
    sqlite3* db;
    ~EndRead() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
  } end_read{impl_->db};
  ChainFacts facts;
  if (!check_own_chain(impl_->db, impl_->path, impl_->public_hex, pub, r, f, facts)) return r;
  check_derived_tables(impl_->db, impl_->path, facts, f);
  std::size_t foreign_pieces = 0;
  const auto hashes = check_foreign_chains(impl_->db, impl_->path, f, foreign_pieces);
  check_attestations(impl_->db, impl_->path, hashes, facts, foreign_pieces, f);
  return r;
}

}  // namespace tracecast::ledger
