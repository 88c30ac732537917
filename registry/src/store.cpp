#include "store.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <sqlite3.h>


#include "tracecast/ledger/ledger.h"
#include "tracecast/mesh/errors.h"

namespace tracecast::registry::detail {

namespace {

// The registry's schema, one migration per entry, applied in order and never edited once
// released: a change is a new migration. Columns are TEXT or BIGINT so the same SQL runs on both
// stores; hashes, keys and signatures are lowercase hex.
const char* const kMigrations[] = {
    // 1: tokens, workshops and their escrowed keys, their logs, pieces, flags, the audit log.
    R"sql(
CREATE TABLE tokens(hash TEXT PRIMARY KEY, role TEXT NOT NULL, label TEXT NOT NULL, maker BIGINT NOT NULL, created_utc TEXT NOT NULL);
CREATE TABLE workshops(maker BIGINT PRIMARY KEY, public_key TEXT NOT NULL UNIQUE, name TEXT NOT NULL, enrolled_utc TEXT NOT NULL,
  entries BIGINT NOT NULL, head_hash TEXT NOT NULL, checkpoint TEXT NOT NULL);
CREATE TABLE marking_keys(key_id TEXT PRIMARY KEY, maker BIGINT NOT NULL, sealed TEXT NOT NULL);
CREATE TABLE entries(maker BIGINT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL, prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL, signature TEXT NOT NULL, PRIMARY KEY(maker, seq));
CREATE TABLE pieces(id BIGINT PRIMARY KEY, maker BIGINT NOT NULL, run BIGINT NOT NULL, run_use TEXT NOT NULL, made_utc TEXT NOT NULL,
  subject TEXT NOT NULL, likeness TEXT NOT NULL);
CREATE TABLE flags(maker BIGINT NOT NULL, time_utc TEXT NOT NULL, problem TEXT NOT NULL);
CREATE TABLE audit(seq BIGINT PRIMARY KEY, time_utc TEXT NOT NULL, role TEXT NOT NULL, label TEXT NOT NULL, action TEXT NOT NULL,
  case_ref TEXT NOT NULL, result TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX pieces_by_maker ON pieces(maker);
CREATE INDEX flags_by_maker ON flags(maker);
)sql",
    // 2: tokens that expire, and tokens revoked.
    R"sql(
ALTER TABLE tokens ADD COLUMN expires_utc TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN revoked_utc TEXT NOT NULL DEFAULT '';
)sql",
};

std::string first_words(const std::string& sql) {
  std::string s = sql.substr(0, sql.find_first_of("(\n", 6));
  return s.size() > 60 ? s.substr(0, 60) : s;
}

//! `$N` → `?N`, SQLite's numbered parameter (our SQL has no '$' inside literals).
std::string sqlite_sql(const std::string& sql) {
  std::string s = sql;
  for (char& c : s)
    if (c == '$') c = '?';
  return s;
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const std::string& path) : path_(path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
      const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw InputError(path, "cannot open the registry's database: " + why);
    }
    sqlite3_busy_timeout(db_, 60000);
    // WAL with FULL: a commit is on disk before the push that made it is answered.
    query("PRAGMA journal_mode=WAL");
    query("PRAGMA synchronous=FULL");
  }
  ~SqliteStore() override { sqlite3_close(db_); }

  std::vector<Row> run(const std::string& sql, const std::vector<std::string>& params) override {
    sqlite3_stmt* st = nullptr;
    const std::string text = sqlite_sql(sql);
    const char* tail = text.c_str();
    std::vector<Row> rows;
    while (tail && *tail) {  // a migration is several statements
      if (sqlite3_prepare_v2(db_, tail, -1, &st, &tail) != SQLITE_OK) fail(sql);
      if (!st) break;
      for (std::size_t i = 0; i < params.size() && static_cast<int>(i) < sqlite3_bind_parameter_count(st); ++i)
        sqlite3_bind_text(st, static_cast<int>(i + 1), params[i].c_str(), -1, SQLITE_TRANSIENT);
      int rc;
      while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        Row r;
        for (int c = 0; c < sqlite3_column_count(st); ++c) {
          const auto* v = sqlite3_column_text(st, c);
          r.push_back(v ? std::optional<std::string>(reinterpret_cast<const char*>(v)) : std::nullopt);
        }
        rows.push_back(std::move(r));
      }
      sqlite3_finalize(st);
      if (rc != SQLITE_DONE) fail(sql);
    }
    return rows;
  }
  std::string kind() const override { return "sqlite"; }

 protected:
  void begin() override { query("BEGIN IMMEDIATE"); }

 private:
  [[noreturn]] void fail(const std::string& sql) {
    throw ProcessingError(fmt::format("registry database {}: {}: {}", path_, first_words(sql), sqlite3_errmsg(db_)));
  }
  std::string path_;
  sqlite3* db_ = nullptr;
};

class PostgresStore final : public Store {
 public:
  explicit PostgresStore(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string why = PQerrorMessage(conn_);
      while (!why.empty() && why.back() == '\n') why.pop_back();
      PQfinish(conn_);
      throw InputError("cannot connect to the registry's database (postgresql): " + why);
    }
    query("SET client_min_messages TO WARNING");
  }
  ~PostgresStore() override { PQfinish(conn_); }

  std::vector<Row> run(const std::string& sql, const std::vector<std::string>& params) override {
    std::vector<const char*> values;
    for (const std::string& p : params) values.push_back(p.c_str());
    PGresult* r = params.empty() ? PQexec(conn_, sql.c_str())
                                 : PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0);
    const ExecStatusType status = PQresultStatus(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      std::string why = PQresultErrorMessage(r);
      while (!why.empty() && why.back() == '\n') why.pop_back();
      PQclear(r);
      throw ProcessingError(fmt::format("registry database (postgresql): {}: {}", first_words(sql), why));
    }
    std::vector<Row> rows;
    for (int i = 0; i < PQntuples(r); ++i) {
      Row row;
      for (int c = 0; c < PQnfields(r); ++c)
        row.push_back(PQgetisnull(r, i, c) ? std::nullopt : std::optional<std::string>(PQgetvalue(r, i, c)));
      rows.push_back(std::move(row));
    }
    PQclear(r);
    return rows;
  }
  std::string kind() const override { return "postgresql"; }

 protected:
  void begin() override { query("BEGIN ISOLATION LEVEL SERIALIZABLE"); }

 private:
  PGconn* conn_;
};

void migrate(Store& s) {
  s.query("CREATE TABLE IF NOT EXISTS migrations(version BIGINT PRIMARY KEY, applied_utc TEXT NOT NULL)");
  const int have = schema_version(s);
  const int known = static_cast<int>(sizeof kMigrations / sizeof *kMigrations);
  if (have > known)
    throw InputError(fmt::format("the registry's database has schema version {}; this tracecast knows up to {} (a newer tracecast made it)", have, known));
  for (int v = have + 1; v <= known; ++v)
    s.transaction([&] {
      s.query(kMigrations[v - 1]);
      s.query("INSERT INTO migrations(version, applied_utc) VALUES($1, $2)", {std::to_string(v), ledger::utc_now()});
    });
}

}  // namespace

void Store::transaction(const std::function<void()>& fn) {
  begin();
  try {
    fn();
  } catch (...) {
    try {
      query("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
  query("COMMIT");
}

int schema_version(Store& store) {
  const auto rows = store.query("SELECT max(version) FROM migrations");
  return rows.empty() || !rows[0][0] ? 0 : std::stoi(*rows[0][0]);
}

std::unique_ptr<Store> open_store(const std::string& url) {
  std::unique_ptr<Store> s;
  if (url.rfind("sqlite:", 0) == 0 && url.size() > 7)
    s = std::make_unique<SqliteStore>(url.substr(7));
  else if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0)
    s = std::make_unique<PostgresStore>(url);
  else
    throw InputError(fmt::format("--db '{}': a registry database is sqlite:PATH or postgresql://…", url));
  migrate(*s);
  return s;
}

}  // namespace tracecast::registry::detail
