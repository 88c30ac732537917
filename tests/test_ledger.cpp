// The production ledger: refusals, tamper evidence, concurrent writers, kill -9 during writes.
#include <catch2/catch.hpp>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <random>
#include <set>

#include "fixtures.h"
#include "tracecast/ledger/ledger.h"
#include "tracecast/mesh/errors.h"

using namespace tracecast;
using namespace tracecast::ledger;

namespace {

const std::string kDoc(64, 'a');  // SHA-256 of a consent document, as hex

struct Fixture {
  std::filesystem::path dir, file;
  SigningKey key = SigningKey::generate();
  std::uint32_t run = 0;
  explicit Fixture(const std::string& name) : dir(test::temp_dir(name)), file(dir / "workshop.ledger") {
    Ledger::create(file, key, 42, "Test workshop");
    Ledger l = Ledger::open(file, &key);
    l.add_operator("op1", "Operator One");
    l.add_subject("S-001");
    l.add_consent("S-001", Use::Film, "2099-12-31", kDoc, "S-001 in person");
    run = l.open_run(Use::Film, "Studio X", "", "op1");
  }
};

void raw_exec(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  INFO(sql << ": " << (err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

//! Flips the low bit of byte `at` (negative: from the end) of one column of one entry, keeping
//! the column's type (text or blob).
void flip_byte(const std::filesystem::path& file, std::int64_t seq, const std::string& column, int at) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, ("SELECT " + column + ", typeof(" + column + ") FROM entries WHERE seq = ?").c_str(), -1,
                             &st, nullptr) == SQLITE_OK);
  sqlite3_bind_int64(st, 1, seq);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  const bool is_text = std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 1))) == "text";
  const auto* p = static_cast<const char*>(sqlite3_column_blob(st, 0));
  std::string v(p, static_cast<std::size_t>(sqlite3_column_bytes(st, 0)));
  sqlite3_finalize(st);
  REQUIRE(!v.empty());
  const std::size_t i = at >= 0 ? static_cast<std::size_t>(at) : v.size() - static_cast<std::size_t>(-at);
  v[i] = static_cast<char>(v[i] ^ 1);
  REQUIRE(sqlite3_prepare_v2(db, ("UPDATE entries SET " + column + " = ? WHERE seq = ?").c_str(), -1, &st, nullptr) == SQLITE_OK);
  if (is_text) sqlite3_bind_text(st, 1, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  else sqlite3_bind_blob(st, 1, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, seq);
  REQUIRE(sqlite3_step(st) == SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(db);
}


//! Appends an entry the way the ledger's format (docs/formats.md) says, signed with the
//! workshop's own key: a history written by other means than the ledger's, with valid hashes and
//! signatures. Computed here from the format, not by the ledger's code.
void append_signed(const std::filesystem::path& file, const SigningKey& key, const std::string& kind, const nlohmann::json& body) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  const std::int64_t seq = sqlite3_column_int64(st, 0) + 1;
  std::array<std::uint8_t, 32> prev{};
  std::memcpy(prev.data(), sqlite3_column_blob(st, 1), 32);
  sqlite3_finalize(st);
  const std::string text = body.dump(), domain = "tracecast ledger entry v1";
  std::string message = domain + std::string(prev.begin(), prev.end());
  for (int i = 0; i < 8; ++i) message += static_cast<char>(static_cast<std::uint64_t>(seq) >> (8 * i));
  message += kind + std::string(1, '\0') + text;
  std::array<std::uint8_t, 32> hash;
  crypto_generichash(hash.data(), hash.size(), reinterpret_cast<const unsigned char*>(message.data()), message.size(), nullptr, 0);
  const auto sig = key.sign(hash);
  REQUIRE(sqlite3_prepare_v2(db, "INSERT INTO entries(seq, kind, body, prev_hash, hash, signature) VALUES(?,?,?,?,?,?)", -1, &st, nullptr) ==
          SQLITE_OK);
  sqlite3_bind_int64(st, 1, seq);
  sqlite3_bind_text(st, 2, kind.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, text.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_blob(st, 4, prev.data(), 32, SQLITE_TRANSIENT);
  sqlite3_bind_blob(st, 5, hash.data(), 32, SQLITE_TRANSIENT);
  sqlite3_bind_blob(st, 6, sig.data(), 64, SQLITE_TRANSIENT);
  REQUIRE(sqlite3_step(st) == SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

//! The fixture with what the tamperings below edit: S-002's film consent expired, S-003's for
//! medical use, run 2 closed, and a released piece in the open run.
struct TamperFixture : Fixture {
  std::uint64_t released = 0;
  std::uint32_t closed_run = 0;
  explicit TamperFixture(const std::string& name) : Fixture(name) {
    Ledger l = Ledger::open(file, &key);
    l.add_subject("S-002");
    l.add_consent("S-002", Use::Film, "2020-01-01", kDoc, "S-002");
    l.add_subject("S-003");
    l.add_consent("S-003", Use::Medical, "2099-01-01", kDoc, "S-003");
    closed_run = l.open_run(Use::Film, "Studio Y", "", "op1");
    l.close_run(closed_run);
    released = l.record_piece(run, "S-001", "0123456789abcdef", {}).id;
    l.release_piece(released, true, {{"printable", true}}, "QA");
  }
};

}  // namespace

TEST_CASE("pieces are recorded with their consent; refusals record nothing", "[ledger]") {
  Fixture f("ledger-refusals");
  Ledger l = Ledger::open(f.file, &f.key);
  const Piece p = l.record_piece(f.run, "S-001", "0123456789abcdef", {{"input_sha256", kDoc}});
  CHECK(p.id == ((std::uint64_t(42) << 48) | (std::uint64_t(f.run) << 24) | 1));
  CHECK(l.find_piece(p.id)->kind == "piece");
  CHECK_FALSE(l.find_piece(p.id + 1));
  const std::size_t before = l.entries().size();

  CHECK_THROWS_WITH(l.record_piece(f.run, "S-404", "0123456789abcdef", {}), Catch::Contains("no consent"));
  l.add_subject("S-002");
  l.add_consent("S-002", Use::Film, "2020-01-01", kDoc, "S-002");
  l.add_subject("S-003");
  l.add_consent("S-003", Use::Medical, "2099-01-01", kDoc, "S-003");
  const std::size_t with_subjects = l.entries().size();
  CHECK(with_subjects == before + 4);
  CHECK_THROWS_WITH(l.record_piece(f.run, "S-002", "0123456789abcdef", {}), Catch::Contains("expired"));
  CHECK_THROWS_WITH(l.record_piece(f.run, "S-003", "0123456789abcdef", {}), Catch::Contains("another use"));
  CHECK_THROWS_WITH(l.record_piece(999, "S-001", "0123456789abcdef", {}), Catch::Contains("no run 999"));
  l.close_run(f.run);
  CHECK_THROWS_WITH(l.record_piece(f.run, "S-001", "0123456789abcdef", {}), Catch::Contains("closed"));
  CHECK(l.entries().size() == with_subjects + 1);  // only the closing entry
  CHECK_THROWS_AS(l.open_run(Use::Medical, "Clinic", "", "op1"), InputError);  // medical needs a prescriber
  CHECK(l.verify().ok);

  // Reading and verifying need no key; writing needs this ledger's key.
  Ledger reader = Ledger::open(f.file);
  CHECK(reader.verify().ok);
  CHECK_THROWS_WITH(reader.add_subject("S-9"), Catch::Contains("signing key"));
  const SigningKey other = SigningKey::generate();
  Ledger wrong = Ledger::open(f.file, &other);
  CHECK_THROWS_WITH(wrong.add_subject("S-9"), Catch::Contains("not this ledger's"));
  CHECK_THROWS_AS(Ledger::create(f.file, f.key, 1, "again"), InputError);
}

TEST_CASE("a likeness piece records both people and needs both consents; a refusal records nothing", "[ledger]") {
  Fixture f("ledger-likeness");
  Ledger l = Ledger::open(f.file, &f.key);
  l.add_subject("L-001");  // whose face is copied: no consent yet
  l.add_subject("L-002");
  l.add_consent("L-002", Use::Medical, "2099-01-01", kDoc, "L-002");  // for another use
  const std::size_t before = l.entries().size();
  CHECK_THROWS_WITH(l.check_production(f.run, "S-001", "", "L-001"), Catch::Contains("no consent recorded for subject 'L-001'"));
  CHECK_THROWS_WITH(l.record_piece(f.run, "S-001", "0123456789abcdef", {}, "", "L-001"), Catch::Contains("'L-001'"));
  CHECK_THROWS_WITH(l.record_piece(f.run, "S-001", "0123456789abcdef", {}, "", "L-002"), Catch::Contains("another use"));
  CHECK_THROWS_WITH(l.record_piece(f.run, "S-001", "0123456789abcdef", {}, "", "L-404"), Catch::Contains("no consent"));
  CHECK_THROWS_WITH(l.record_piece(f.run, "S-001", "0123456789abcdef", {}, "", "S-001"), Catch::Contains("own face"));
  CHECK(l.entries().size() == before);  // nothing recorded
  const std::int64_t consent = l.add_consent("L-001", Use::Film, "2099-12-31", std::string(64, 'b'), "L-001 in person");
  l.check_production(f.run, "S-001", "", "L-001");
  const Piece p = l.record_piece(f.run, "S-001", "0123456789abcdef", {}, "", "L-001");
  const auto rec = l.piece_record(p.id);
  REQUIRE(rec);
  const auto& piece = (*rec)["piece"];
  CHECK(piece["subject"] == "S-001");
  CHECK(piece["consent"]["given_by"] == "S-001 in person");
  CHECK(piece["likeness"]["subject"] == "L-001");
  CHECK(piece["likeness"]["consent"]["entry"] == consent);
  CHECK(piece["likeness"]["consent"]["document_sha256"] == std::string(64, 'b'));
  CHECK(piece["likeness"]["consent"]["use"] == "film");
  // A piece of the subject's own face has no likeness.
  const Piece own = l.record_piece(f.run, "S-001", "0123456789abcdef", {});
  CHECK((*l.piece_record(own.id))["piece"]["likeness"].is_null());
  CHECK(l.verify().ok);
}

TEST_CASE("tampering with any byte of any entry, deleting or reordering entries is detected and named", "[ledger]") {
  Fixture f("ledger-tamper");
  {
    Ledger l = Ledger::open(f.file, &f.key);
    for (int i = 0; i < 4; ++i) l.record_piece(f.run, "S-001", "0123456789abcdef", {{"n", i}});
    REQUIRE(l.verify().ok);
  }
  const std::int64_t n = static_cast<std::int64_t>(Ledger::open(f.file).entries().size());
  REQUIRE(n == 9);
  const auto copy = f.dir / "copy.ledger";
  int detected = 0, cases = 0;
  for (std::int64_t seq = 1; seq <= n; ++seq)
    for (const char* column : {"kind", "body", "prev_hash", "hash", "signature"})
      for (int at : {0, -1}) {
        std::filesystem::copy_file(f.file, copy, std::filesystem::copy_options::overwrite_existing);
        flip_byte(copy, seq, column, at);
        ++cases;
        const VerifyResult r = Ledger::open(copy).verify();
        INFO("seq " << seq << " column " << column << " byte " << at << ": " << r.problem);
        CHECK_FALSE(r.ok);
        CHECK(r.first_bad_seq == seq);
        detected += !r.ok && r.first_bad_seq == seq;
      }
  std::printf("ledger: %d of %d single-byte alterations detected at the entry altered\n", detected, cases);

  std::filesystem::copy_file(f.file, copy, std::filesystem::copy_options::overwrite_existing);
  raw_exec(copy, "DELETE FROM entries WHERE seq = 5");
  VerifyResult r = Ledger::open(copy).verify();
  CHECK_FALSE(r.ok);
  CHECK(r.first_bad_seq == 5);
  CHECK(r.problem.find("missing") != std::string::npos);

  std::filesystem::copy_file(f.file, copy, std::filesystem::copy_options::overwrite_existing);
  raw_exec(copy, "DELETE FROM entries WHERE seq = 9");  // the last one: caught by the piece index
  CHECK_FALSE(Ledger::open(copy).verify().ok);

  std::filesystem::copy_file(f.file, copy, std::filesystem::copy_options::overwrite_existing);
  raw_exec(copy, "UPDATE entries SET seq = -seq WHERE seq IN (6, 7); UPDATE entries SET seq = 7 WHERE seq = -6; "
                 "UPDATE entries SET seq = 6 WHERE seq = -7;");
  r = Ledger::open(copy).verify();
  CHECK_FALSE(r.ok);
  CHECK(r.first_bad_seq == 6);
}

TEST_CASE("the tables production reads are the entries': six one-statement edits are named by verify and refused by production", "[ledger]") {
  TamperFixture f("ledger-tables");
  REQUIRE(Ledger::open(f.file).verify().ok);
  const auto copy = f.dir / "copy.ledger";
  struct Case {
    const char* what;
    std::string sql, table;
    std::function<void(Ledger&)> production;  // what the edit would let through; must throw
  };
  const std::vector<Case> cases = {
      {"a consent's validity extended", "UPDATE consents SET valid_until = '2100-01-01' WHERE subject = 'S-002'", "consents",
       [&](Ledger& l) { l.record_piece(f.run, "S-002", "0123456789abcdef", {}); }},
      {"a consent's use changed", "UPDATE consents SET use = 'film' WHERE subject = 'S-003'", "consents",
       [&](Ledger& l) { l.check_production(f.run, "S-003"); }},
      {"a run's use changed", "UPDATE runs SET use = 'medical' WHERE run = " + std::to_string(f.run), "runs",
       [&](Ledger& l) { l.record_piece(f.run, "S-001", "0123456789abcdef", {}); }},
      {"a closed run reopened", "UPDATE runs SET closed = 0 WHERE run = " + std::to_string(f.closed_run), "runs",
       [&](Ledger& l) { l.record_piece(f.closed_run, "S-001", "0123456789abcdef", {}); }},
      {"a release deleted", "DELETE FROM releases", "releases",
       [&](Ledger& l) { l.release_piece(f.released, false, {}, "someone else"); }},
      {"a subject row changed", "UPDATE subjects SET code = 'S-009' WHERE code = 'S-001'", "subjects",
       [&](Ledger& l) { l.check_production(f.run, "S-001"); }},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    std::filesystem::copy_file(f.file, copy, std::filesystem::copy_options::overwrite_existing);
    raw_exec(copy, c.sql);
    Ledger l = Ledger::open(copy, &f.key);
    const VerifyResult r = l.verify();
    INFO(r.problem);
    CHECK_FALSE(r.ok);
    CHECK(r.problem.find("table " + c.table) != std::string::npos);
    const std::size_t before = l.entries().size();
    CHECK_THROWS_AS(c.production(l), InputError);
    CHECK(l.entries().size() == before);  // a refusal records nothing
  }
  // Untouched, the same calls behave as the entries say: expired, another use, made, closed, released once.
  Ledger l = Ledger::open(f.file, &f.key);
  CHECK_THROWS_WITH(l.record_piece(f.run, "S-002", "0123456789abcdef", {}), Catch::Contains("expired"));
  CHECK_THROWS_WITH(l.check_production(f.run, "S-003"), Catch::Contains("another use"));
  CHECK_THROWS_WITH(l.record_piece(f.closed_run, "S-001", "0123456789abcdef", {}), Catch::Contains("closed"));
  CHECK_THROWS_WITH(l.release_piece(f.released, false, {}, "someone else"), Catch::Contains("already released"));
  CHECK_NOTHROW(l.record_piece(f.run, "S-001", "0123456789abcdef", {}));
  CHECK(l.verify().ok);
}

TEST_CASE("entries signed with the workshop's key but breaking the ledger's rules are named, and production stops", "[ledger]") {
  TamperFixture f("ledger-rules");
  const auto copy = f.dir / "copy.ledger";
  const std::int64_t expired_consent = 7;  // S-002's (entries: workshop, op1, S-001, its consent, run, S-002, its consent, …)
  REQUIRE(Ledger::open(f.file).entries()[expired_consent - 1].kind == "consent");
  const std::uint64_t next = f.released + 1;
  struct Case {
    const char* what;
    std::string kind;
    nlohmann::json body;
    std::string named;
  };
  const std::vector<Case> cases = {
      {"a piece under an expired consent", "piece",
       {{"id", next}, {"run", f.run}, {"number", 2}, {"subject", "S-002"}, {"consent_entry", expired_consent}, {"key_id", "0123456789abcdef"},
        {"details", {}}, {"date", "2026-01-01"}, {"time_utc", "2026-01-01T00:00:00Z"}},
       "expired"},
      {"a piece in a closed run", "piece",
       {{"id", next}, {"run", f.closed_run}, {"number", 1}, {"subject", "S-001"}, {"consent_entry", 4}, {"key_id", "0123456789abcdef"},
        {"details", {}}, {"date", "2026-01-01"}, {"time_utc", "2026-01-01T00:00:00Z"}},
       "closed"},
      {"a piece numbered twice", "piece",
       {{"id", f.released}, {"run", f.run}, {"number", 1}, {"subject", "S-001"}, {"consent_entry", 4}, {"key_id", "0123456789abcdef"},
        {"details", {}}, {"date", "2026-01-01"}, {"time_utc", "2026-01-01T00:00:00Z"}},
       "next number was 2"},
      {"a second release", "release", {{"id", f.released}, {"accepted", false}, {"checks", {}}, {"released_by", "x"}, {"note", ""}, {"time_utc", "2026-01-01T00:00:00Z"}},
       "second time"},
      {"a consent for an unknown subject", "consent",
       {{"subject", "S-404"}, {"use", "film"}, {"valid_until", "2099-01-01"}, {"document_sha256", kDoc}, {"given_by", "x"}, {"time_utc", "2026-01-01T00:00:00Z"}},
       "not recorded before it"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    std::filesystem::copy_file(f.file, copy, std::filesystem::copy_options::overwrite_existing);
    const std::int64_t seq = static_cast<std::int64_t>(Ledger::open(copy).entries().size()) + 1;
    append_signed(copy, f.key, c.kind, c.body);
    Ledger l = Ledger::open(copy, &f.key);
    const VerifyResult r = l.verify();
    INFO(r.problem);
    CHECK_FALSE(r.ok);
    CHECK(r.first_bad_seq == seq);
    CHECK(r.problem.find(c.named) != std::string::npos);
    CHECK_THROWS_WITH(l.record_piece(f.run, "S-001", "0123456789abcdef", {}), Catch::Contains("does not verify"));
    CHECK(static_cast<std::int64_t>(l.entries().size()) == seq);
  }
  // The helper itself writes what the ledger accepts: a piece that keeps every rule verifies.
  std::filesystem::copy_file(f.file, copy, std::filesystem::copy_options::overwrite_existing);
  append_signed(copy, f.key, "piece",
                {{"id", next}, {"run", f.run}, {"number", 2}, {"subject", "S-001"}, {"consent_entry", 4}, {"key_id", "0123456789abcdef"},
                 {"details", {}}, {"date", "2026-01-01"}, {"time_utc", "2026-01-01T00:00:00Z"}});
  raw_exec(copy, "INSERT INTO pieces(id, run, number, seq) VALUES(" + std::to_string(next) + ", " + std::to_string(f.run) + ", 2, " +
                     std::to_string(Ledger::open(copy).entries().size()) + ")");
  const VerifyResult ok = Ledger::open(copy).verify();
  INFO(ok.problem);
  CHECK(ok.ok);
}

TEST_CASE("a signed checkpoint: the ledger extends it, and a truncated or rewritten history does not", "[ledger]") {
  Fixture f("ledger-checkpoint");
  Ledger l = Ledger::open(f.file, &f.key);
  l.record_piece(f.run, "S-001", "0123456789abcdef", {});
  const nlohmann::json cp = l.checkpoint();
  CHECK(cp["entries"] == 6);
  CHECK(cp["key_fingerprint"] == key_fingerprint(f.key.public_hex()));
  CHECK(l.checkpoint_problem(cp).empty());
  l.record_piece(f.run, "S-001", "0123456789abcdef", {});
  CHECK(l.checkpoint_problem(cp).empty());  // grown past it
  CHECK_THROWS_WITH(Ledger::open(f.file).checkpoint(), Catch::Contains("signing key"));

  nlohmann::json edited = cp;
  edited["entries"] = 5;
  CHECK(l.checkpoint_problem(edited).find("signature is invalid") != std::string::npos);
  CHECK(l.checkpoint_problem(nlohmann::json{{"format", "other"}}).find("not a tracecast") != std::string::npos);

  const auto copy = f.dir / "copy.ledger";
  std::filesystem::copy_file(f.file, copy, std::filesystem::copy_options::overwrite_existing);
  raw_exec(copy, "DELETE FROM entries WHERE seq >= 6; DELETE FROM pieces;");
  CHECK(Ledger::open(copy).verify().ok);  // a consistent, shorter history: only the checkpoint tells
  CHECK(Ledger::open(copy).checkpoint_problem(cp).find("truncated") != std::string::npos);
  // Rewritten and re-signed with the same key from entry 6 on: a piece of another subject in its place.
  Ledger(Ledger::open(copy, &f.key)).add_subject("S-777");
  CHECK(Ledger::open(copy).verify().ok);
  CHECK(Ledger::open(copy).checkpoint_problem(cp).find("rewritten") != std::string::npos);

  // Fingerprints: 8 groups of 4 hex digits; read back however they are typed.
  const std::string fp = key_fingerprint(f.key.public_hex());
  CHECK(fp.size() == 39);
  CHECK(parse_fingerprint(fp) == fp);
  std::string typed;
  for (char c : fp) typed += c == '-' ? ' ' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(parse_fingerprint(typed) == fp);
  CHECK_FALSE(parse_fingerprint(fp.substr(1)));
  CHECK_FALSE(parse_fingerprint(fp + "0"));
  CHECK(key_fingerprint(SigningKey::generate().public_hex()) != fp);
}

TEST_CASE("10,000 identifiers from 4 concurrent processes: all distinct, all recorded, chain verifies", "[ledger]") {
  Fixture f("ledger-concurrent");
  constexpr int kProcesses = 4, kEach = 2500;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int status = 0;
      try {
        Ledger l = Ledger::open(f.file, &f.key);
        for (int i = 0; i < kEach; ++i) l.record_piece(f.run, "S-001", "0123456789abcdef", {{"process", p}, {"i", i}});
      } catch (...) {
        status = 1;
      }
      ::_exit(status);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  Ledger l = Ledger::open(f.file);
  std::set<std::uint64_t> ids;
  std::size_t pieces = 0;
  for (const Entry& e : l.entries())
    if (e.kind == "piece") {
      ++pieces;
      ids.insert(nlohmann::json::parse(e.body)["id"].get<std::uint64_t>());
    }
  CHECK(pieces == kProcesses * kEach);
  CHECK(ids.size() == kProcesses * kEach);
  CHECK(*ids.rbegin() - *ids.begin() == kProcesses * kEach - 1);  // numbers 1…10,000 without gaps
  const auto t0 = std::chrono::steady_clock::now();
  const VerifyResult r = l.verify();
  std::printf("ledger: verify replayed %lld entries in %.2f s (chain, signatures, rules, tables)\n", static_cast<long long>(r.entries),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  CHECK(r.ok);
}

TEST_CASE("kill -9 during writes, 100 times: the ledger opens, verifies and keeps every committed piece", "[ledger][slow]") {
  Fixture f("ledger-kill");
  std::mt19937 rng(12345);
  std::set<std::uint64_t> committed;
  for (int round = 0; round < 100; ++round) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      try {
        Ledger l = Ledger::open(f.file, &f.key);
        for (int i = 0;; ++i) {
          const Piece p = l.record_piece(f.run, "S-001", "0123456789abcdef", {{"round", round}, {"i", i}});
          // Reported only after the commit returned.
          if (::write(fds[1], &p.id, sizeof p.id) != sizeof p.id) ::_exit(2);
        }
      } catch (...) {
        ::_exit(1);
      }
    }
    ::close(fds[1]);
    ::usleep(std::uniform_int_distribution<int>(500, 20000)(rng));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    std::uint64_t id;
    while (::read(fds[0], &id, sizeof id) == sizeof id) committed.insert(id);
    ::close(fds[0]);
    Ledger l = Ledger::open(f.file);
    const VerifyResult r = l.verify();
    INFO("round " << round << ": " << r.problem);
    REQUIRE(r.ok);
  }
  Ledger l = Ledger::open(f.file);
  std::size_t missing = 0;
  for (std::uint64_t id : committed) missing += !l.find_piece(id);
  std::printf("ledger: 100 kills; %zu committed pieces reported, %zu missing after the kills\n", committed.size(), missing);
  CHECK(missing == 0);
  CHECK(committed.size() > 100);
}

TEST_CASE("device history record: pieces, consents, releases and quantities of a run", "[ledger]") {
  Fixture f("ledger-history");
  Ledger l = Ledger::open(f.file, &f.key);
  const Piece a = l.record_piece(f.run, "S-001", "0123456789abcdef", {{"outputs", {{"mold.3mf", kDoc}}}});
  const Piece b = l.record_piece(f.run, "S-001", "0123456789abcdef", {});
  l.record_piece(f.run, "S-001", "0123456789abcdef", {});
  l.release_piece(a.id, true, {{"min_wall_mm", 1.4}}, "QA");
  l.release_piece(b.id, false, {{"min_wall_mm", 0.3}}, "QA", "wall too thin");
  CHECK_THROWS_WITH(l.release_piece(a.id, false, {}, "QA"), Catch::Contains("already released"));
  CHECK_THROWS_WITH(l.release_piece(a.id + 100, true, {}, "QA"), Catch::Contains("no piece"));
  const nlohmann::json h = l.device_history(f.run);
  CHECK(h["quantities"]["made"] == 3);
  CHECK(h["quantities"]["accepted"] == 1);
  CHECK(h["quantities"]["rejected"] == 1);
  CHECK(h["quantities"]["awaiting_release"] == 1);
  CHECK(h["run"]["use"] == "film");
  CHECK(h["pieces"][0]["id"] == "002a-000001-000001");
  CHECK(h["pieces"][0]["consent"]["valid_until"] == "2099-12-31");
  CHECK(h["pieces"][0]["details"]["outputs"]["mold.3mf"] == kDoc);
  CHECK(h["pieces"][1]["release"]["note"] == "wall too thin");
  CHECK(h["ledger"]["verified"] == true);
  CHECK_THROWS_AS(l.device_history(77), InputError);
}

TEST_CASE("importing another workshop's ledger keeps both chains verifiable and its pieces findable", "[ledger]") {
  Fixture a("ledger-import-a");
  const auto dir_b = test::temp_dir("ledger-import-b");
  const auto file_b = dir_b / "other.ledger";
  const SigningKey key_b = SigningKey::generate();
  Ledger::create(file_b, key_b, 7, "Other workshop");
  std::uint64_t piece_b = 0;
  {
    Ledger b = Ledger::open(file_b, &key_b);
    b.add_subject("T-1");
    b.add_consent("T-1", Use::Medical, "2099-12-31", kDoc, "T-1 in person");
    const std::uint32_t run = b.open_run(Use::Medical, "Clinic", "Dr B", "opb");
    piece_b = b.record_piece(run, "T-1", "0123456789abcdef", {{"note", "prosthesis"}}).id;
  }
  Ledger la = Ledger::open(a.file, &a.key);
  const ImportResult first = la.import_from(file_b);
  CHECK(first.maker == 7);
  CHECK(first.added == first.total);
  CHECK(la.verify().ok);
  const auto found = la.find_piece(piece_b);
  REQUIRE(found);
  CHECK(found->workshop == Ledger::open(file_b).public_key_hex());
  // The other workshop goes on; a second import brings only what is new.
  {
    Ledger b = Ledger::open(file_b, &key_b);
    b.add_subject("T-2");
  }
  const ImportResult second = la.import_from(file_b);
  CHECK(second.added == 1);
  CHECK(second.total == first.total + 1);
  CHECK(la.verify().ok);
  // Refusals: the same maker number, this workshop's own ledger, a ledger that does not verify.
  const auto file_c = dir_b / "same-maker.ledger";
  const SigningKey key_c = SigningKey::generate();
  Ledger::create(file_c, key_c, 42, "Same maker");
  CHECK_THROWS_WITH(la.import_from(file_c), Catch::Contains("maker number 42"));
  CHECK_THROWS_WITH(la.import_from(a.file), Catch::Contains("own ledger"));
  raw_exec(file_b, "UPDATE entries SET body = replace(body, 'Clinic', 'Clinik') WHERE kind = 'run'");
  CHECK_THROWS_WITH(la.import_from(file_b), Catch::Contains("does not verify"));
  // Tampering with an imported entry inside this ledger is found and the workshop named.
  raw_exec(a.file, "UPDATE foreign_entries SET body = replace(body, 'prosthesis', 'prosthesiz') WHERE kind = 'piece'");
  const VerifyResult v = Ledger::open(a.file).verify();
  CHECK_FALSE(v.ok);
  CHECK(v.problem.find("imported workshop") != std::string::npos);
  CHECK(v.problem.find("altered") != std::string::npos);
  // Deleting an imported entry is found too.
  raw_exec(a.file, "UPDATE foreign_entries SET body = replace(body, 'prosthesiz', 'prosthesis') WHERE kind = 'piece'");
  CHECK(Ledger::open(a.file).verify().ok);
  raw_exec(a.file, "DELETE FROM foreign_entries WHERE seq = (SELECT MAX(seq) FROM foreign_entries)");
  CHECK_FALSE(Ledger::open(a.file).verify().ok);
}

TEST_CASE("a piece's record: checks before work, outputs once after, and the full record for its identifier", "[ledger]") {
  Fixture f("ledger-record");
  Ledger l = Ledger::open(f.file, &f.key);
  // The pipeline's check records nothing and refuses what record_piece refuses.
  const std::size_t before = l.entries().size();
  CHECK_NOTHROW(l.check_production(f.run, "S-001"));
  CHECK_THROWS_WITH(l.check_production(f.run, "S-404"), Catch::Contains("no consent"));
  CHECK_THROWS_WITH(l.check_production(f.run, "S-001", "2100-01-01"), Catch::Contains("expired"));
  CHECK_THROWS_WITH(l.check_production(f.run + 1, "S-001"), Catch::Contains("no run"));
  CHECK(l.entries().size() == before);

  const Piece p = l.record_piece(f.run, "S-001", "0123456789abcdef", {{"inputs", {{"face.ply", kDoc}}}});
  const nlohmann::json files = {{"mold.3mf", std::string(64, 'b')}, {"mold-shell.stl", std::string(64, 'c')}};
  CHECK_THROWS_WITH(l.record_outputs(p.id + 1, files), Catch::Contains("no piece"));
  CHECK_THROWS_AS(l.record_outputs(p.id, nlohmann::json::object()), InputError);
  l.record_outputs(p.id, files);
  CHECK_THROWS_WITH(l.record_outputs(p.id, files), Catch::Contains("already recorded"));
  l.release_piece(p.id, true, {{"printable", true}}, "QA");

  const auto rec = Ledger::open(f.file).piece_record(p.id);  // reading needs no key
  REQUIRE(rec);
  const nlohmann::json& piece = (*rec)["piece"];
  CHECK(piece["id"] == "002a-000001-000001");
  CHECK(piece["subject"] == "S-001");
  CHECK(piece["consent"]["use"] == "film");
  CHECK(piece["consent"]["given_by"] == "S-001 in person");
  CHECK(piece["details"]["inputs"]["face.ply"] == kDoc);
  CHECK(piece["outputs"]["files"] == files);
  CHECK(piece["release"]["accepted"] == true);
  CHECK((*rec)["run"]["client"] == "Studio X");
  CHECK((*rec)["run"]["operator_name"] == "Operator One");
  CHECK((*rec)["workshop"]["name"] == "Test workshop");
  CHECK((*rec)["imported"] == false);
  CHECK((*rec)["ledger"]["verified"] == true);
  CHECK_FALSE(l.piece_record(p.id + 1));
  CHECK(l.device_history(f.run)["pieces"][0]["outputs"]["files"] == files);

  CHECK(l.verify().ok);
}

TEST_CASE("an imported workshop's piece has its full record too", "[ledger]") {
  Fixture a("ledger-record-a");
  const auto dir = test::temp_dir("ledger-record-c");
  const SigningKey key_c = SigningKey::generate();
  Ledger::create(dir / "c.ledger", key_c, 9, "Workshop C");
  std::uint64_t id = 0;
  {
    Ledger c = Ledger::open(dir / "c.ledger", &key_c);
    c.add_operator("oc", "Carol");
    c.add_subject("P-7");
    c.add_consent("P-7", Use::Medical, "2099-12-31", kDoc, "P-7's guardian");
    const std::uint32_t run = c.open_run(Use::Medical, "Clinic", "Dr C", "oc");
    id = c.record_piece(run, "P-7", "0123456789abcdef", {}).id;
    c.record_outputs(id, {{"ear-mold.3mf", kDoc}});
  }
  Ledger la = Ledger::open(a.file, &a.key);
  CHECK_FALSE(la.piece_record(id));
  la.import_from(dir / "c.ledger");
  const auto rec = la.piece_record(id);
  REQUIRE(rec);
  CHECK((*rec)["imported"] == true);
  CHECK((*rec)["workshop"]["name"] == "Workshop C");
  CHECK((*rec)["run"]["prescriber"] == "Dr C");
  CHECK((*rec)["run"]["operator_name"] == "Carol");
  CHECK((*rec)["piece"]["consent"]["given_by"] == "P-7's guardian");
  CHECK((*rec)["piece"]["outputs"]["files"]["ear-mold.3mf"] == kDoc);
}
