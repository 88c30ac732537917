// Tracing through the registry at scale, against tracing locally with the right key.
//
//   bench_registry [--workshops N] [--pieces P] [--runs R] [--concurrent C] [--db sqlite|postgresql://…]
//
// Builds N workshops' ledgers of P pieces each (defaults 1,000 × 100: 100,000 pieces), enrols them
// all in a registry served here (one escrowed marking key each), stamps one of workshop N/2's
// pieces into the generated appliance and writes a simulated scan of its cast (one view's points,
// 20 µm noise, any pose). Then, in the same run, R times each, by the tracecast binary as a user
// runs it:
//   local:    tracecast trace SCAN --key THAT_WORKSHOPS_KEY --ledger ITS_LEDGER
//   registry: tracecast trace SCAN --registry URL --case BENCH (analysed here, read there under
//             all N keys)
// and prints the medians and their ratio (goal ≤ 1.5), then C traces sent at once through the
// registry's client, which waits out a full queue's 503 (none may be lost), with their wall time. docs/methods/registry.md quotes the output.
#include <fmt/format.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "tracecast/ledger/ledger.h"
#include "tracecast/mesh/appliance.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/piece_id.h"
#include "tracecast/registry/registry.h"
#include "tracecast/scan/synthetic_face.h"
#include "tracecast/watermark/attacks.h"
#include "tracecast/watermark/mark.h"

using namespace tracecast;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

//! Runs a command; its exit code.
int sh(const std::string& cmd) {
  const int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

struct Args {
  int workshops = 1000, pieces = 100, runs = 5, concurrent = 100;
  std::string db;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--workshops") a.workshops = std::stoi(v);
    else if (k == "--pieces") a.pieces = std::stoi(v);
    else if (k == "--runs") a.runs = std::stoi(v);
    else if (k == "--concurrent") a.concurrent = std::stoi(v);
    else if (k == "--db") a.db = v;
    else throw std::runtime_error("unknown option " + k);
  }
  return a;
}

//! Workshop w's ledger (maker w + 1) with `pieces` pieces in one film run, and its marking key.
watermark::Key make_workshop(const fs::path& dir, int w, int pieces, const ledger::SigningKey& signer) {
  const watermark::Key key = watermark::Key::generate();
  const fs::path file = dir / fmt::format("w{}.ledger", w);
  ledger::Ledger::create(file, signer, static_cast<std::uint32_t>(w + 1), fmt::format("Workshop {}", w + 1));
  ledger::Ledger b = ledger::Ledger::open(file, &signer);
  b.register_key(key.id());
  b.add_subject("S-1");
  b.add_consent("S-1", ledger::Use::Film, "2099-12-31", std::string(64, 'a'), "S-1");
  b.open_run(ledger::Use::Film, "Studio", "", "");
  for (int p = 0; p < pieces; ++p) b.record_piece(1, "S-1", key.id(), nlohmann::json::object());
  return key;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  set_log_sink([](LogLevel, const std::string& m) { std::fprintf(stderr, "%s\n", m.c_str()); }, LogLevel::Warning);
  const fs::path dir = fs::temp_directory_path() / fmt::format("tracecast-bench-registry-{}", ::getpid());
  fs::create_directories(dir);
  const std::string bin = TRACECAST_BIN;
  const std::string db = a.db.empty() ? "sqlite:" + (dir / "registry.db").string() : a.db;
  registry::create_registry_key(dir / "registry.key");
  registry::Registry reg(db, dir / "registry.key");
  const std::string admin = reg.bootstrap_administrator("bench");
  std::function<void()> stop;
  std::promise<int> ready;
  std::thread server([&] { registry::serve(reg, {}, [&](int p) { ready.set_value(p); }, &stop); });
  const std::string url = fmt::format("http://127.0.0.1:{}", ready.get_future().get());
  registry::Client root(url, admin);
  const std::string pub = root.get("/v1/registry-key")["public_key"];

  // The workshops, their ledgers and their enrolment.
  auto t0 = Clock::now();
  const ledger::SigningKey signer = ledger::SigningKey::generate();
  const int chosen = a.workshops / 2;
  watermark::Key chosen_key = watermark::Key::generate();
  double ledgers_s = 0, enrol_s = 0;
  for (int w = 0; w < a.workshops; ++w) {
    const ledger::SigningKey own = w == chosen ? signer : ledger::SigningKey::generate();
    auto t1 = Clock::now();
    const watermark::Key key = make_workshop(dir, w, a.pieces, own);
    ledgers_s += since(t1);
    if (w == chosen) chosen_key = key;
    t1 = Clock::now();
    const std::string tok = root.post("/v1/tokens", {{"role", "workshop"}, {"label", fmt::format("W{}", w + 1)}, {"maker", w + 1}})["token"];
    const ledger::Ledger book = ledger::Ledger::open(dir / fmt::format("w{}.ledger", w), &own);
    registry::Client(url, tok).post("/v1/enrol", registry::enrol_request(book, fmt::format("Workshop {}", w + 1), {key}, pub));
    enrol_s += since(t1);
    if (w != chosen) fs::remove(dir / fmt::format("w{}.ledger", w));
  }
  fmt::print("{} workshops × {} pieces: ledgers {:.1f} s, enrolment {:.1f} s ({} store)\n", a.workshops, a.pieces, ledgers_s, enrol_s, reg.store_kind());
  std::fflush(stdout);
  watermark::write_key(dir / "chosen.key", chosen_key);

  // The cast of the chosen workshop's piece 1 and a scan of it.
  const std::uint64_t id = pack({static_cast<std::uint32_t>(chosen + 1), 1, 1});
  const Mesh appliance = make_appliance(scan::SyntheticFace().mesh(0.8), ApplianceSpec{});
  Mesh seen = watermark::normal_noise(watermark::visibility_crop(watermark::stamp(appliance, id, chosen_key).mesh, Vec3::UnitZ()), 0.020, 3);
  seen = watermark::transformed(seen, watermark::random_similarity(11, 200.0, 1.0, 1.0));
  const fs::path scan = dir / "cast-scan.ply";
  io::write_point_cloud(scan, watermark::resample_points(seen, 0.2, 0.5, 4));
  const std::string inv = root.post("/v1/tokens", {{"role", "investigator"}, {"label", "bench"}})["token"];

  const std::string local = fmt::format("{} trace -q {} --key {} --ledger {}", bin, scan.string(), (dir / "chosen.key").string(),
                                        (dir / fmt::format("w{}.ledger", chosen)).string());
  const std::string remote =
      fmt::format("env TRACECAST_REGISTRY_TOKEN={} {} trace -q {} --registry {} --case BENCH", inv, bin, scan.string(), url);
  std::vector<double> tl, tr;
  for (int r = 0; r < a.runs; ++r) {
    t0 = Clock::now();
    if (sh(local) != 0) throw std::runtime_error("the local trace did not find its piece");
    tl.push_back(since(t0));
    t0 = Clock::now();
    if (sh(remote) != 0) throw std::runtime_error("the registry's trace did not find the piece");
    tr.push_back(since(t0));
  }
  fmt::print("trace, median of {}: local with the right key {:.2f} s; through the registry under {} keys {:.2f} s; ratio {:.2f} (goal <= 1.5)\n",
             a.runs, median(tl), a.workshops, median(tr), median(tr) / median(tl));
  std::fflush(stdout);

  // Many at once, through the registry's client: none may be lost.
  const nlohmann::json body = {{"analysis", watermark::analysis_to_json(watermark::analyze(io::read_geometry(scan).mesh.vertices))}, {"case", "LOAD"}};
  t0 = Clock::now();
  std::vector<std::future<bool>> answers;
  for (int i = 0; i < a.concurrent; ++i)
    answers.push_back(std::async(std::launch::async, [&] { return registry::Client(url, inv).post("/v1/trace", body)["found"] == true; }));
  int found = 0;
  for (auto& f : answers) found += f.get();
  const double load_s = since(t0);
  fmt::print("{} traces at once under {} keys: {} answered with the piece in {:.1f} s ({:.2f} s each on average)\n", a.concurrent, a.workshops, found,
             load_s, load_s / a.concurrent);
  stop();
  server.join();
  fs::remove_all(dir);
  return found == a.concurrent ? 0 : 1;
}
