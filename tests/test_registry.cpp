// The registry: the same suite on SQLite and on a real PostgreSQL the test starts itself; its HTTP
// API driven by a client as a workshop and an investigator would; refusals; load; kill -9.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <future>
#include <glob.h>
#include <map>
#include <random>
#include <thread>

#include "cli_run.h"
#include "fixtures.h"
#include "tracecast/mesh/io.h"
#include "tracecast/ledger/ledger.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/piece_id.h"
#include "tracecast/registry/registry.h"
#include "tracecast/scan/synthetic_face.h"
#include "tracecast/mesh/appliance.h"
#include "tracecast/watermark/attacks.h"
#include "tracecast/watermark/mark.h"

// Last: it brings <resolv.h>, whose `_res` macro breaks Eigen's headers included after it.
#include <httplib.h>

using namespace tracecast;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

//! A PostgreSQL server of its own in a temporary folder on a free port (initdb, pg_ctl), run as
//! the postgres user when the test runs as root; stopped when the test process ends.
class Postgres {
 public:
  static Postgres& instance() {
    static Postgres pg;
    return pg;
  }
  std::string url(const std::string& db) {
    run_as("createdb -h 127.0.0.1 -p " + std::to_string(port_) + " -U postgres " + db);
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + db;
  }
  ~Postgres() { run_as("pg_ctl -D " + (dir_ / "data").string() + " -m immediate stop >/dev/null"); }

 private:
  Postgres() : dir_(test::temp_dir("registry-postgres")) {
    ::chmod(dir_.parent_path().c_str(), 0755);  // the tests' folder: the postgres user must reach its own
    ::chmod(dir_.c_str(), 0777);
    if (::geteuid() == 0) REQUIRE(std::system(("chown postgres " + dir_.string()).c_str()) == 0);
    REQUIRE(run_as("initdb -D " + (dir_ / "data").string() + " -A trust -U postgres --no-sync -E UTF8 >" + (dir_ / "initdb.log").string() + " 2>&1") == 0);
    for (port_ = 55000 + ::getpid() % 1000;; ++port_) {
      const std::string opts = "-p " + std::to_string(port_) + " -k " + dir_.string() + " -c listen_addresses=127.0.0.1";
      if (run_as("pg_ctl -D " + (dir_ / "data").string() + " -o '" + opts + "' -l " + (dir_ / "log").string() + " -w start >/dev/null") == 0) break;
      REQUIRE(port_ < 55000 + ::getpid() % 1000 + 20);
    }
  }
  int run_as(const std::string& cmd) const {
    const std::string bin = bindir() + "/";
    const std::string full = ::geteuid() == 0 ? "runuser -u postgres -- " + bin + cmd : bin + cmd;
    return std::system(full.c_str());
  }
  static std::string bindir() {
    glob_t g;
    std::string found;
    if (::glob("/usr/lib/postgresql/*/bin/initdb", 0, nullptr, &g) == 0 && g.gl_pathc > 0) found = fs::path(g.gl_pathv[g.gl_pathc - 1]).parent_path();
    globfree(&g);
    return found;
  }
  fs::path dir_;
  int port_ = 0;
};

//! A registry served in this process on a free port, with its first administrator token.
struct Served {
  fs::path dir;
  std::unique_ptr<registry::Registry> reg;
  std::string admin;
  std::function<void()> stop;
  std::thread thread;
  int port = 0;

  Served(const std::string& name, const std::string& db, registry::ServeOptions o = {}) : dir(test::temp_dir(name)) {
    registry::create_registry_key(dir / "registry.key");
    reg = std::make_unique<registry::Registry>(db, dir / "registry.key");
    admin = reg->bootstrap_administrator("admin");
    REQUIRE(admin.size() == 64);
    std::promise<int> ready;
    o.port = 0;
    thread = std::thread([&] { registry::serve(*reg, o, [&](int p) { ready.set_value(p); }, &stop); });
    port = ready.get_future().get();
  }
  ~Served() {
    stop();
    thread.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
  registry::Client client(const std::string& token) const { return registry::Client(url(), token); }
  std::string token(const std::string& role, const std::string& label, int maker = 0) const {
    json req = {{"role", role}, {"label", label}};
    if (maker) req["maker"] = maker;
    return client(admin).post("/v1/tokens", req)["token"];
  }
};

watermark::Key key_of(std::uint64_t seed) {
  std::array<std::uint8_t, 32> s{};
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::uint8_t>((seed * 2654435761u + i * 131) >> (i % 7));
  return watermark::Key::from_secret(s);
}

//! A workshop's ledger: maker number, a subject with a film consent, a film run and `pieces` pieces.
struct Shop {
  fs::path file;
  ledger::SigningKey signer = ledger::SigningKey::generate();
  watermark::Key key;
  std::uint32_t maker;
  Shop(const fs::path& dir, std::uint32_t m, std::uint64_t key_seed, int pieces = 1) : file(dir / fmt::format("shop{}.ledger", m)), key(key_of(key_seed)), maker(m) {
    ledger::Ledger::create(file, signer, m, fmt::format("Shop {}", m));
    ledger::Ledger b = book();
    b.add_subject("S-" + std::to_string(m));
    b.add_consent("S-" + std::to_string(m), ledger::Use::Film, "2099-12-31", std::string(64, 'a'), "S");
    b.open_run(ledger::Use::Film, "Studio", "", "");
    for (int i = 0; i < pieces; ++i) b.record_piece(1, "S-" + std::to_string(m), key.id(), json::object());
  }
  ledger::Ledger book() const { return ledger::Ledger::open(file, &signer); }
};

//! The HTTP status a call is refused with (0 when it is not).
template <class F>
int refused(F&& call) {
  try {
    call();
  } catch (const registry::Refusal& r) {
    INFO(r.what());
    return r.status();
  }
  return 0;
}

//! A simulated scan of a cast of `id` under `key`: 20 µm noise, any pose, 0.2 mm uneven points; its analysis.
json cast_scan_analysis(std::uint64_t id, const watermark::Key& key) {
  static const Mesh appliance = make_appliance(scan::SyntheticFace().mesh(0.8), ApplianceSpec{});
  const watermark::Stamped st = watermark::stamp(appliance, id, key, {});
  Mesh seen = watermark::normal_noise(st.mesh, 0.020, 3);
  seen = watermark::transformed(seen, watermark::random_similarity(11, 200.0, 1.0, 1.0));
  return watermark::analysis_to_json(watermark::analyze(watermark::resample_points(seen, 0.2, 0.5, 4).points));
}

std::int64_t held(const Served& s, const std::string& token) { return s.client(token).get("/v1/workshop")["entries"]; }

//! Enrolment, tracing, roles and the audit log, on the store `db`.
void enrol_and_trace(const std::string& name, const std::string& db) {
  Served s(name, db);
  Shop a(s.dir, 10, 1), b(s.dir, 11, 2);
  const std::string wa = s.token("workshop", "Shop A", 10), wb = s.token("workshop", "Shop B", 11), inv = s.token("investigator", "Det. Ray");
  const std::string pub = s.client(wa).get("/v1/registry-key")["public_key"];
  for (const auto& [shop, tok] : {std::pair<const Shop*, std::string>{&a, wa}, {&b, wb}}) {
    const json r = s.client(tok).post("/v1/enrol", registry::enrol_request(shop->book(), "Shop", {shop->key}, pub));
    CHECK(r["entries"] == 5);
    CHECK(r["pieces"] == 1);
    CHECK(r["keys_missing"].empty());
  }
  // Workshop B records a second piece and pushes it.
  const std::uint64_t id2 = b.book().record_piece(1, "S-11", b.key.id(), json::object()).id;
  CHECK(s.client(wb).post("/v1/push", registry::push_request(b.book(), held(s, wb), {}, pub))["added"] == 1);
  // An investigator who holds no key traces a scan of B's cast to B's piece, by its analysis alone.
  const json an = cast_scan_analysis(id2, b.key);
  CHECK_FALSE(an.contains("points"));
  const json t = s.client(inv).post("/v1/trace", {{"analysis", an}, {"case", "CASE-7"}});
  REQUIRE(t["found"] == true);
  CHECK(t["keys_tried"] == 2);
  CHECK(t["workshop"]["maker"] == 11);
  CHECK(t["workshop"]["log"]["verifies"] == true);
  CHECK(t["workshop"]["key_fingerprint"] == ledger::key_fingerprint(b.book().public_key_hex()));
  CHECK(t["piece"]["id"] == format_id(id2));
  CHECK(t["piece"]["use"] == "film");
  CHECK(t["piece"]["subject"] == "S-11");
  // The same reading as B's own key gives locally.
  const watermark::Detection local = watermark::read(watermark::analysis_from_json(an), b.key);
  CHECK(t["reading"]["confidence"].get<double>() == local.confidence);
  // Without a case reference, no subject code.
  const json t2 = s.client(inv).post("/v1/trace", {{"analysis", an}});
  CHECK_FALSE(t2["piece"].contains("subject"));
  // Roles: a workshop token cannot trace, no token is 401, an investigator cannot enrol or make tokens.
  CHECK(refused([&] { s.client(wa).post("/v1/trace", {{"analysis", an}}); }) == 403);
  CHECK(refused([&] { s.client("").post("/v1/trace", {{"analysis", an}}); }) == 401);
  CHECK(refused([&] { s.client(std::string(64, 'f')).post("/v1/trace", {{"analysis", an}}); }) == 401);
  CHECK(refused([&] { s.client(inv).post("/v1/tokens", {{"role", "administrator"}, {"label", "me"}}); }) == 403);
  CHECK(refused([&] { s.client(wa).post("/v1/enrol", registry::enrol_request(a.book(), "again", {a.key}, pub)); }) == 409);
  // The audit log holds both traces with who, the case, and the result; its chain holds.
  const json audit = s.client(s.admin).get("/v1/audit");
  CHECK(audit["verifies"] == true);
  int traces = 0;
  for (const json& row : audit["rows"])
    if (row["action"] == "trace") {
      ++traces;
      CHECK(row["label"] == "Det. Ray");
      CHECK(row["result"]["id"] == format_id(id2));
    }
  CHECK(traces == 2);
  CHECK(audit["rows"].dump().find("CASE-7") != std::string::npos);
  // Tokens are stored hashed: none of them is in the database.
  if (db.rfind("sqlite:", 0) == 0) {
    const std::string bytes = test::read_bytes(db.substr(7)) + test::read_bytes(db.substr(7) + "-wal");
    for (const std::string& tok : {s.admin, wa, wb, inv}) CHECK(bytes.find(tok) == std::string::npos);
  }
  struct stat st {};
  REQUIRE(::stat((s.dir / "registry.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // Tokens are listed by id, never by themselves; a revoked one is refused from then on.
  const json listed = s.client(s.admin).get("/v1/tokens");
  CHECK(listed["tokens"].size() == 4);
  for (const std::string& tok : {s.admin, wa, wb, inv}) CHECK(listed.dump().find(tok) == std::string::npos);
  std::string inv_id;
  for (const json& token : listed["tokens"])
    if (token["label"] == "Det. Ray") inv_id = token["id"];
  REQUIRE(inv_id.size() == 16);
  CHECK(s.client(s.admin).post("/v1/tokens/revoke", {{"id", inv_id}})["label"] == "Det. Ray");
  CHECK(refused([&] { s.client(inv).post("/v1/trace", {{"analysis", an}}); }) == 401);
  CHECK(refused([&] { s.client(s.admin).post("/v1/tokens/revoke", {{"id", inv_id}}); }) == 409);
  CHECK(refused([&] { s.client(s.admin).post("/v1/tokens/revoke", {{"id", std::string(16, '0')}}); }) == 404);
  CHECK(refused([&] { s.client(wa).get("/v1/tokens"); }) == 403);
  // A token made for a day answers; past its expiry it is refused.
  const json day = s.client(s.admin).post("/v1/tokens", {{"role", "investigator"}, {"label", "Day"}, {"valid_days", 1}});
  CHECK(day["expires_utc"].get<std::string>() > ledger::utc_now());
  CHECK(s.client(day["token"]).post("/v1/trace", {{"analysis", an}})["found"] == true);
  if (db.rfind("sqlite:", 0) == 0) {  // its expiry moved into the past, in the database itself
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.substr(7).c_str(), &h) == SQLITE_OK);
    const std::string sql = "UPDATE tokens SET expires_utc = '2001-01-01T00:00:00Z' WHERE substr(hash, 1, 16) = '" + day["id"].get<std::string>() + "'";
    CHECK(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(h);
    CHECK(refused([&] { s.client(day["token"]).post("/v1/trace", {{"analysis", an}}); }) == 401);
  }
}

//! Every bad request a 4xx with a message, and nothing stored; histories that do not extend the
//! held one refused and flagged.
void refusals(const std::string& name, const std::string& db) {
  Served s(name, db);
  Shop a(s.dir, 20, 3, 2);
  const std::string wa = s.token("workshop", "Shop A", 20), stranger = s.token("workshop", "Nobody", 99);
  const std::string pub = s.client(wa).get("/v1/registry-key")["public_key"];
  httplib::Client raw(s.url());
  raw.set_bearer_token_auth(wa);
  const auto status_of = [&](const std::string& path, const std::string& body) {
    const auto r = raw.Post(path.c_str(), body, "application/json");
    REQUIRE(r);
    const json j = json::parse(r->body, nullptr, false);
    CHECK((j.is_object() && j.contains("error")));
    return r->status;
  };
  CHECK(status_of("/v1/enrol", "{not json") == 400);
  json req = registry::enrol_request(a.book(), "Shop A", {a.key}, pub);
  json bad = req;
  bad["maker"] = "twenty";
  CHECK(status_of("/v1/enrol", bad.dump()) == 400);
  bad = req;
  bad["entries"][2]["body"] = "{\"code\":\"S-X\"}";
  CHECK(status_of("/v1/enrol", bad.dump()) == 400);
  bad = req;
  std::string sig = bad["checkpoint"]["signature"];
  sig[10] = sig[10] == '0' ? '1' : '0';
  bad["checkpoint"]["signature"] = sig;
  CHECK(status_of("/v1/enrol", bad.dump()) == 400);
  CHECK(refused([&] { s.client(stranger).post("/v1/push", registry::push_request(a.book(), 0, {}, pub)); }) == 404);
  CHECK(refused([&] { s.client(stranger).post("/v1/enrol", req); }) == 403);  // another maker's token
  CHECK(status_of("/v1/nowhere", "{}") == 404);
  bad = req;
  bad["marking_keys"].push_back(bad["marking_keys"][0]);  // the same key twice
  CHECK(status_of("/v1/enrol", bad.dump()) == 400);
  // Nothing of those was stored: the workshop is not enrolled yet.
  CHECK(refused([&] { s.client(wa).get("/v1/workshop"); }) == 404);
  REQUIRE(s.client(wa).post("/v1/enrol", req)["entries"] == 6);
  const json old_checkpoint = req["checkpoint"];
  // A replayed checkpoint, with nothing new: refused; the registry holds what it held.
  CHECK(refused([&] { s.client(wa).post("/v1/push", {{"checkpoint", old_checkpoint}, {"entries", json::array()}}); }) == 409);
  a.book().record_piece(1, "S-20", a.key.id(), json::object());
  // A pushed entry altered after it was signed: refused, flagged, nothing stored.
  json altered = registry::push_request(a.book(), 6, {}, pub);
  altered["entries"][0]["body"] = std::string(altered["entries"][0]["body"]).replace(std::string(altered["entries"][0]["body"]).find("S-20"), 4, "S-21");
  CHECK(refused([&] { s.client(wa).post("/v1/push", altered); }) == 409);
  CHECK(held(s, wa) == 6);
  // The history re-signed under a new key (the same maker number, the same story): refused.
  Shop forged(test::temp_dir(name + "-forged"), 20, 3, 3);
  CHECK(refused([&] { s.client(wa).post("/v1/push", registry::push_request(forged.book(), 6, {}, pub)); }) == 409);
  CHECK(held(s, wa) == 6);
  // An old checkpoint after a good push: refused as a truncation.
  REQUIRE(s.client(wa).post("/v1/push", registry::push_request(a.book(), 6, {}, pub))["entries"] == 7);
  CHECK(refused([&] { s.client(wa).post("/v1/push", {{"checkpoint", old_checkpoint}, {"entries", json::array()}}); }) == 409);
  CHECK(held(s, wa) == 7);
  // A trace now says the workshop's log does not verify: three refused pushes are on record.
  const std::string inv = s.token("investigator", "Det. Ray");
  const json t = s.client(inv).post("/v1/trace", {{"analysis", cast_scan_analysis(pack({20, 1, 1}), a.key)}});
  REQUIRE(t["found"] == true);
  CHECK(t["workshop"]["log"]["verifies"] == false);
  CHECK(t["workshop"]["log"]["flags"].size() == 3);
  // A malformed analysis: 400.
  CHECK(refused([&] { s.client(inv).post("/v1/trace", {{"analysis", {{"format", "tracecast-mark-analysis 1"}}}}); }) == 400);
  CHECK(refused([&] { s.client(inv).post("/v1/trace", {{"analysis", 5}}); }) == 400);
}

//! `tracecast registry serve` as a process of its own on a free port; its address.
std::string start_server(const fs::path& dir, const std::string& db, pid_t& pid, const std::string& port = " --port 0") {
  const fs::path out = dir / "serve.json";
  fs::remove(out);
  pid = ::fork();
  if (pid == 0) {
    const std::string cmd = std::string(TRACECAST_BIN) + " registry serve --json" + port + " --db " + db + " --key-file " + (dir / "registry.key").string() +
                            " >" + out.string() + " 2>/dev/null";
    ::execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 500; ++i) {
    const json j = json::parse(test::read_bytes(out), nullptr, false);
    if (j.is_object() && j.contains("url")) return j["url"].get<std::string>();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL("the registry did not start");
  return std::string();
}

}  // namespace

TEST_CASE("registry on SQLite: two workshops enrol, an investigator traces B's cast to B's piece, roles, audit", "[registry][slow]") {
  enrol_and_trace("registry-sqlite", "sqlite:" + (test::temp_dir("registry-sqlite-db") / "r.db").string());
}

TEST_CASE("registry on SQLite: bad requests refused with nothing stored; rewritten, re-signed, truncated pushes refused and flagged",
          "[registry][slow]") {
  refusals("registry-sqlite-refusals", "sqlite:" + (test::temp_dir("registry-sqlite-refusals-db") / "r.db").string());
}

TEST_CASE("registry on PostgreSQL: two workshops enrol, an investigator traces B's cast to B's piece, roles, audit", "[registry][postgresql]") {
  enrol_and_trace("registry-pg", Postgres::instance().url("trace"));
}

TEST_CASE("registry on PostgreSQL: bad requests refused with nothing stored; rewritten, re-signed, truncated pushes refused and flagged",
          "[registry][postgresql]") {
  refusals("registry-pg-refusals", Postgres::instance().url("refusals"));
}

TEST_CASE("registry: the mark's analysis as data reads as the analysis itself; malformed analyses named", "[registry][slow]") {
  const watermark::Key key = key_of(5);
  const json an = cast_scan_analysis(pack({7, 1, 2}), key);
  CHECK(an.dump().size() < 200000);
  const watermark::Analysis back = watermark::analysis_from_json(an);
  const watermark::Detection d = watermark::read(back, key);
  REQUIRE(d.outcome == watermark::Outcome::found);
  CHECK(d.id == pack({7, 1, 2}));
  CHECK(watermark::analysis_to_json(back) == an);
  json bad = an;
  bad["sum"] = "AAAA";
  CHECK_THROWS_WITH(watermark::analysis_from_json(bad), Catch::Contains("'sum' is not base64 of 4096 numbers"));
  bad = an;
  bad.erase("front");
  CHECK_THROWS_WITH(watermark::analysis_from_json(bad), Catch::Contains("'front' is missing"));
  CHECK_THROWS_AS(watermark::analysis_from_json(json::array()), InputError);
}

namespace {

//! 100 traces at once through the registry's client, none lost; a full queue's 503s.
void load(const std::string& name, const std::string& db, const std::string& queue_db) {
  registry::ServeOptions o;
  o.workers = 2;
  o.queue = 100;
  Served s(name, db, o);
  Shop a(s.dir, 30, 7);
  const std::string pub = s.client(s.admin).get("/v1/registry-key")["public_key"];
  // 100 escrowed keys, so that requests wait for the workers; 300 for the full queue below.
  std::vector<watermark::Key> keys{a.key};
  for (int i = 0; i < 299; ++i) keys.push_back(key_of(1000 + i));
  const std::vector<watermark::Key> hundred(keys.begin(), keys.begin() + 100);
  REQUIRE(s.client(s.token("workshop", "A", 30)).post("/v1/enrol", registry::enrol_request(a.book(), "A", hundred, pub))["marking_keys"] == 100);
  const std::string inv = s.token("investigator", "Det. Ray");
  const json body = {{"analysis", cast_scan_analysis(pack({30, 1, 1}), a.key)}, {"case", "LOAD"}};
  // Through the registry's own client, as `tracecast trace --registry` sends them.
  const auto burst = [&](int n) {
    std::vector<std::future<int>> answers;
    for (int i = 0; i < n; ++i)
      answers.push_back(std::async(std::launch::async, [&] {
        try {
          return s.client(inv).post("/v1/trace", body)["found"] == true ? 200 : 0;
        } catch (const registry::Refusal& r) {
          return r.status();
        } catch (const std::exception& e) {
          WARN("a trace got no answer: " << e.what());
          return -1;
        }
      }));
    std::map<int, int> by_status;
    for (auto& f : answers) ++by_status[f.get()];
    return by_status;
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto all = burst(100);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("registry load: 100 concurrent traces under 100 keys, 2 workers: %d answered 200 in %.1f s\n", all[200], secs);
  for (const auto& [status, n] : all) std::printf("  HTTP %d: %d\n", status, n);
  CHECK(all[200] == 100);
  std::size_t logged = 0;
  const json audit = s.client(s.admin).get("/v1/audit");
  for (const json& row : audit["rows"]) logged += row["case"] == "LOAD";
  INFO(audit.dump().substr(0, 2000));
  CHECK(logged == 100);
  // A registry whose queue holds 2: of 12 at once, those beyond the worker and the 2 waiting are
  // told to retry (HTTP 503 with Retry-After).
  registry::ServeOptions small;
  small.workers = 1;
  small.queue = 2;
  Served q(name + "-queue", queue_db, small);
  const std::string qpub = q.client(q.admin).get("/v1/registry-key")["public_key"];
  REQUIRE(q.client(q.token("workshop", "A", 30)).post("/v1/enrol", registry::enrol_request(a.book(), "A", keys, qpub))["marking_keys"] == 300);
  const std::string inv2 = q.token("investigator", "Det. Ray");
  std::vector<std::future<int>> answers;
  for (int i = 0; i < 12; ++i)
    answers.push_back(std::async(std::launch::async, [&] {
      httplib::Client c(q.url());
      c.set_bearer_token_auth(inv2);
      const auto r = c.Post("/v1/trace", body.dump(), "application/json");
      if (r && r->status == 503) CHECK(r->get_header_value("Retry-After") == "2");
      return r ? r->status : -1;
    }));
  int ok = 0, busy = 0;
  for (auto& f : answers) (f.get() == 200 ? ok : busy)++;
  std::printf("registry queue of 2: %d answered 200, %d answered 503\n", ok, busy);
  CHECK(ok + busy == 12);
  CHECK(ok >= 3);
  CHECK(busy >= 1);
}

}  // namespace

TEST_CASE("registry on SQLite: 100 concurrent traces, none lost; a full queue answers 503 with Retry-After", "[registry][slow]") {
  load("registry-load", "sqlite:" + (test::temp_dir("registry-load-db") / "r.db").string(),
       "sqlite:" + (test::temp_dir("registry-queue-db") / "r.db").string());
}

TEST_CASE("registry on PostgreSQL: 100 concurrent traces, none lost; a full queue answers 503 with Retry-After", "[registry][postgresql]") {
  load("registry-pg-load", Postgres::instance().url("load"), Postgres::instance().url("queue"));
}

namespace {

//! `tracecast registry serve` on `db`, killed with SIGKILL 50 times during a workshop's pushes.
void kills(const std::string& name, const std::string& db) {
  const fs::path dir = test::temp_dir(name);
  registry::create_registry_key(dir / "registry.key");
  std::string admin;
  {
    registry::Registry reg(db, dir / "registry.key");
    admin = reg.bootstrap_administrator("admin");
  }
  Shop a(dir, 40, 9);
  // The first start finds a free port; the restarts take the same one, so that the workshop's
  // client finds the registry again.
  pid_t pid = 0;
  std::string url = start_server(dir, db, pid);
  const std::string port = url.substr(url.rfind(':') + 1);
  const auto restart = [&] { return start_server(dir, db, pid, " --port " + port); };
  const std::string wa = registry::Client(url, admin).post("/v1/tokens", {{"role", "workshop"}, {"label", "A"}, {"maker", 40}})["token"];
  const std::string pub = registry::Client(url, wa).get("/v1/registry-key")["public_key"];
  REQUIRE(registry::Client(url, wa).post("/v1/enrol", registry::enrol_request(a.book(), "A", {a.key}, pub))["entries"] == 5);
  std::atomic<std::int64_t> acknowledged{5};
  std::atomic<int> interrupted{0};
  std::atomic<bool> stop{false};
  // The workshop pushes a new piece after another, through every kill.
  std::thread pusher([&] {
    while (!stop) {
      try {
        registry::Client c(url, wa);
        c.set_retries(0);
        const std::int64_t h = c.get("/v1/workshop")["entries"];
        ledger::Ledger book = a.book();
        if (book.entries().back().seq <= h) book.record_piece(1, "S-40", a.key.id(), json::object());
        const json r = c.post("/v1/push", registry::push_request(book, h, {}, pub));
        acknowledged = std::max<std::int64_t>(acknowledged, r["entries"].get<std::int64_t>());
      } catch (const std::exception&) {
        ++interrupted;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  });
  std::mt19937 rng(42);
  for (int round = 0; round < 50; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 150)(rng)));
    const std::int64_t before = acknowledged;  // read before the kill: anything acknowledged by then must survive it
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    restart();
    registry::Client c(url, wa);
    const std::int64_t h = c.get("/v1/workshop")["entries"];
    INFO("round " << round);
    REQUIRE(h >= before);  // nothing acknowledged is lost
  }
  stop = true;
  pusher.join();
  // The held chain verifies (a trace shows it), and the workshop's next push carries on from it.
  const std::int64_t h = registry::Client(url, wa).get("/v1/workshop")["entries"];
  CHECK(h >= acknowledged);
  if (a.book().entries().back().seq <= h) a.book().record_piece(1, "S-40", a.key.id(), json::object());
  const json r = registry::Client(url, wa).post("/v1/push", registry::push_request(a.book(), h, {}, pub));
  CHECK(r["entries"] == a.book().entries().back().seq);
  const std::string inv = registry::Client(url, admin).post("/v1/tokens", {{"role", "investigator"}, {"label", "I"}})["token"];
  const json t = registry::Client(url, inv).post("/v1/trace", {{"analysis", cast_scan_analysis(pack({40, 1, 1}), a.key)}});
  CHECK(t["workshop"]["log"]["verifies"] == true);
  CHECK(t["workshop"]["log"]["flags"].empty());
  CHECK(registry::Client(url, admin).get("/v1/audit")["verifies"] == true);
  std::printf("registry crash (%s): 50 kills, %lld entries acknowledged, %lld held, %d pushes interrupted\n", db.substr(0, db.find(':')).c_str(),
              static_cast<long long>(acknowledged), static_cast<long long>(h), interrupted.load());
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

}  // namespace

TEST_CASE("registry on SQLite: killed with SIGKILL during pushes 50 times, it loses nothing it acknowledged and keeps no half-written push",
          "[registry][slow]") {
  kills("registry-crash", "sqlite:" + (test::temp_dir("registry-crash-db") / "r.db").string());
}

TEST_CASE("registry on PostgreSQL: killed with SIGKILL during pushes 50 times, it loses nothing it acknowledged and keeps no half-written push",
          "[registry][postgresql]") {
  kills("registry-pg-crash", Postgres::instance().url("crash"));
}

TEST_CASE("cli: registry init, serve, token, enrol, push and trace --registry, with their exit codes", "[registry][cli][slow]") {
  const fs::path dir = test::temp_dir("registry-cli");
  const std::string db = "sqlite:" + (dir / "r.db").string(), key = (dir / "registry.key").string();
  CHECK(test::run("registry init --db mysql://x --key-file " + (dir / "other.key").string()).code == 3);
  const test::Run init = test::run("registry init --json --db " + db + " --key-file " + key);
  REQUIRE(init.code == 0);
  const std::string admin = json::parse(init.out)["administrator_token"];
  const test::Run again = test::run("registry init --db " + db + " --key-file " + key);
  CHECK(again.code == 3);
  CHECK(again.err.find("exists already") != std::string::npos);
  pid_t pid = 0;
  const std::string url = start_server(dir, db, pid);
  const std::string env = "env TRACECAST_REGISTRY=" + url + " TRACECAST_REGISTRY_TOKEN=";
  const test::Run tok = test::run_env(env + admin + " ", "registry token --json --role workshop --label Shop --maker 42");
  REQUIRE(tok.code == 0);
  const std::string shop_token = json::parse(tok.out)["token"];
  const test::Workshop shop("registry-cli-shop");  // maker 42, film run 1
  const std::string files = " --ledger " + (shop.dir / "shop.ledger").string() + " --signing-key " + (shop.dir / "shop.sign").string();
  const test::Run enrol = test::run_env(env + shop_token + " ", "registry enrol" + files + " --key " + (shop.dir / "shop.key").string());
  INFO(enrol.err);
  REQUIRE(enrol.code == 0);
  CHECK(enrol.out.find("enrolled maker 42") != std::string::npos);
  CHECK(test::run_env(env + shop_token + " ", "registry push" + files).out.find("nothing to push") != std::string::npos);
  const test::Run piece = shop.tc("ledger piece --json --run 1 --subject S-001 --key " + (shop.dir / "shop.key").string());
  REQUIRE(piece.code == 0);
  const test::Run push = test::run_env(env + shop_token + " ", "registry push" + files);
  CHECK(push.code == 0);
  CHECK(push.out.find("pushed 1 entries (1 pieces)") != std::string::npos);
  // A scan of the cast of that piece, traced by an investigator through the registry.
  const std::string inv = json::parse(test::run_env(env + admin + " ", "registry token --json --role investigator --label Det").out)["token"];
  const std::uint64_t id = parse_id(json::parse(piece.out)["id"].get<std::string>()).value();
  const Mesh appliance = make_appliance(scan::SyntheticFace().mesh(0.8), ApplianceSpec{});
  io::write_mesh(dir / "cast.ply", watermark::stamp(appliance, id, watermark::read_key(shop.dir / "shop.key")).mesh);
  const test::Run t = test::run_env(env + inv + " ", "trace " + (dir / "cast.ply").string() + " --case C-1");
  INFO(t.err);
  CHECK(t.code == 0);
  CHECK(t.out.find("workshop   Shop (maker 42)") != std::string::npos);
  CHECK(t.out.find("subject    S-001") != std::string::npos);
  const test::Run wrong = test::run_env(env + shop_token + " ", "trace " + (dir / "cast.ply").string());
  CHECK(wrong.code == 8);
  CHECK(wrong.err.find("HTTP 403") != std::string::npos);
  CHECK(test::run_env("env TRACECAST_REGISTRY=" + url + " ", "registry audit").code == 8);  // no token: 401
  const test::Run audit = test::run_env(env + admin + " ", "registry audit");
  CHECK(audit.code == 0);
  CHECK(audit.out.find("case C-1") != std::string::npos);
  CHECK(audit.out.find("audit log: chain verifies") != std::string::npos);
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
}

TEST_CASE("registry over HTTPS: a client that trusts its certificate is answered, one that does not is not", "[registry]") {
  const fs::path dir = test::temp_dir("registry-https");
  const std::string cert = (dir / "cert.pem").string(), key = (dir / "cert-key.pem").string();
  REQUIRE(std::system(("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key + " -out " + cert +
                       " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 2 >/dev/null 2>&1").c_str()) == 0);
  registry::ServeOptions o;
  o.cert = cert;
  o.cert_key = key;
  Served s("registry-https-served", "sqlite:" + (dir / "r.db").string(), o);
  const std::string url = "https://127.0.0.1:" + std::to_string(s.port);
  registry::Client trusting(url, s.admin, cert);
  CHECK(trusting.get("/v1/health")["status"] == "ok");
  CHECK(trusting.post("/v1/tokens", {{"role", "investigator"}, {"label", "I"}})["token"].get<std::string>().size() == 64);
  CHECK_THROWS_AS(registry::Client(url, s.admin).get("/v1/health"), ProcessingError);  // the system's authorities do not know it
  registry::Client plain(s.url(), s.admin);  // plain HTTP to the HTTPS port
  plain.set_retries(0);
  CHECK_THROWS_AS(plain.get("/v1/health"), ProcessingError);
  CHECK_THROWS_AS(registry::Client(url, s.admin, (dir / "none.pem").string()), InputError);
}
