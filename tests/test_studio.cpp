// The studio's server, driven over HTTP on this machine: its refusals (token, paths, upload size,
// address) and what it builds, against the libraries called directly.
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sodium.h>
#include <thread>

#include "browser.h"
#include "fixtures.h"
#include "tracecast/mesh/appliance.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/face.h"
#include "tracecast/mesh/io.h"
#include "tracecast/ledger/ledger.h"
#include "tracecast/pipeline/run.h"
#include "tracecast/studio/studio.h"

// Last: it brings <resolv.h>, whose `_res` macro breaks Eigen's headers included after it.
#include <httplib.h>

using namespace tracecast;
using nlohmann::json;

namespace {

//! A studio serving on a free port of `host` for the scope's length.
struct Running {
  studio::Studio server;
  int port;
  std::thread thread;
  explicit Running(studio::StudioOptions o) : server(std::move(o)), port(server.bind()), thread([this] { server.serve(); }) {}
  ~Running() {
    server.stop();
    thread.join();
  }
  httplib::Headers auth() const { return {{"X-Tracecast-Token", server.token()}}; }
};

studio::StudioOptions options_in(const std::string& name) {
  studio::StudioOptions o;
  o.port = 0;
  o.workshop = test::temp_dir(name);
  return o;
}

//! A non-loopback IPv4 address of this machine, if it has one.
std::string outside_address() {
  ifaddrs* all = nullptr;
  if (getifaddrs(&all) != 0) return "";
  std::string found;
  for (ifaddrs* a = all; a && found.empty(); a = a->ifa_next)
    if (a->ifa_addr && a->ifa_addr->sa_family == AF_INET) {
      char text[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, text, sizeof text);
      if (std::strncmp(text, "127.", 4) != 0) found = text;
    }
  freeifaddrs(all);
  return found;
}

//! The studio's mesh bytes ("TCM1", counts, float32 positions, uint32 corners) as a Mesh.
Mesh parse_mesh(const std::string& b) {
  REQUIRE(b.size() >= 12);
  REQUIRE(b.compare(0, 4, "TCM1") == 0);
  std::uint32_t nv = 0, nf = 0;
  std::memcpy(&nv, b.data() + 4, 4);
  std::memcpy(&nf, b.data() + 8, 4);
  REQUIRE(b.size() == 12 + 12 * std::size_t(nv) + 12 * std::size_t(nf));
  Mesh m;
  for (std::uint32_t i = 0; i < nv; ++i) {
    float p[3];
    std::memcpy(p, b.data() + 12 + 12 * std::size_t(i), 12);
    m.vertices.emplace_back(p[0], p[1], p[2]);
  }
  for (std::uint32_t f = 0; f < nf; ++f) {
    std::uint32_t t[3];
    std::memcpy(t, b.data() + 12 + 12 * std::size_t(nv) + 12 * std::size_t(f), 12);
    m.triangles.push_back({static_cast<std::int32_t>(t[0]), static_cast<std::int32_t>(t[1]), static_cast<std::int32_t>(t[2])});
  }
  return m;
}

//! Through the server: the bundled example scan opened, its upper-face appliance built.
void build_example(httplib::Client& c, const Running& s) {
  const std::string scan_bytes = test::read_bytes(std::filesystem::path(TRACECAST_SOURCE_DIR) / "assets" / "example-scan.ply");
  REQUIRE(c.Post("/api/scan?name=example-scan.ply", s.auth(), scan_bytes, "application/octet-stream")->status == 200);
  REQUIRE(c.Post("/api/appliance", s.auth(), R"({"region": "upper_face", "openings": ["eyes"]})", "application/json")->status == 200);
}

//! In the studio's workshop folder: the ledger with subject EX-001's film consent and run 1, and
//! the workshop's signing and marking keys.
void set_up_workshop_in(const std::filesystem::path& folder) {
  pipeline::Recipe w;
  w.production = {folder / "workshop.ledger", folder / "workshop.sign", folder / "workshop.key", 1, "EX-001", ""};
  pipeline::Setup setup;
  setup.maker = 1;
  setup.workshop = "Test workshop";
  setup.client = "Test production";
  setup.operator_code = "OP-1";
  setup.consent_document = std::filesystem::path(TRACECAST_SOURCE_DIR) / "assets" / "example-consent.txt";
  setup.consent_valid_until = "2099-12-31";
  setup.consent_given_by = "EX-001";
  w.setup = setup;
  REQUIRE(pipeline::set_up_workshop(w));
}

//! The ledger's piece entries: their subjects, in order.
std::vector<std::string> pieces_of(const std::filesystem::path& ledger) {
  std::vector<std::string> subjects;
  for (const ledger::Entry& e : ledger::Ledger::open(ledger).entries())
    if (e.kind == "piece") subjects.push_back(json::parse(e.body).value("subject", ""));
  return subjects;
}

//! Each printed piece of the session's last mold (mold-*.stl among `files`), downloaded and checked
//! by `tracecast check` on the resin printer: passing, or with `verdicts` (piece name → printable,
//! as the page showed it) giving the verdict the page gave. Returns how many there were.
int check_downloaded_pieces(httplib::Client& c, const Running& s, const json& files, const std::filesystem::path& into,
                            const std::map<std::string, bool>* verdicts = nullptr) {
  int pieces = 0;
  for (const json& f : files) {
    const std::string name = f.get<std::string>();
    if (name.rfind("mold-", 0) != 0 || name.find(".stl") == std::string::npos) continue;
    const auto file = c.Get("/api/run/" + name, s.auth());
    REQUIRE(file);
    REQUIRE(file->status == 200);
    const auto local = into / ("downloaded-" + name);
    { std::ofstream(local, std::ios::binary) << file->body; }
    INFO(name);
    const int rc = std::system((std::string(TRACECAST_BIN) + " check " + local.string() + " --printer resin -q").c_str());
    const std::string piece = name.substr(5, name.size() - 9);  // mold-NAME.stl
    if (verdicts) {
      REQUIRE(verdicts->count(piece));
      CHECK((rc == 0) == verdicts->at(piece));
    } else {
      CHECK(rc == 0);
    }
    ++pieces;
  }
  return pieces;
}

}  // namespace

TEST_CASE("studio: every request needs the session's token; the page hands it on as a cookie", "[studio]") {
  Running s(options_in("studio-token"));
  httplib::Client c("127.0.0.1", s.port);
  for (const char* path : {"/", "/three.module.js", "/api/session", "/api/mesh/face", "/api/files/session.json"}) {
    INFO(path);
    const auto none = c.Get(path);
    REQUIRE(none);
    CHECK(none->status == 403);
    CHECK(none->body.find("token") != std::string::npos);
    const auto wrong = c.Get(path, {{"X-Tracecast-Token", std::string(s.server.token().size(), 'a')}});
    REQUIRE(wrong);
    CHECK(wrong->status == 403);
  }
  CHECK(c.Get("/?token=" + s.server.token().substr(1))->status == 403);  // a prefix is not the token
  const auto page = c.Get("/?token=" + s.server.token());
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->body.find("tracecast studio") != std::string::npos);
  const std::string cookie = page->get_header_value("Set-Cookie");
  CHECK(cookie.find("tracecast_token=" + s.server.token()) == 0);
  CHECK(cookie.find("HttpOnly") != std::string::npos);
  CHECK(cookie.find("SameSite=Strict") != std::string::npos);
  const auto session = c.Get("/api/session", {{"Cookie", "other=1; tracecast_token=" + s.server.token()}});
  REQUIRE(session);
  CHECK(session->status == 200);
  const json j = json::parse(session->body);
  CHECK(j["regions"].size() == region_preset_names().size());
  CHECK(j["appliance_options"]["options"].size() == appliance_option_table().describe()["options"].size());
  const auto three = c.Get("/three.module.js", s.auth());
  REQUIRE(three);
  CHECK(three->status == 200);
  CHECK(three->body.size() > 100000);
}

TEST_CASE("studio: the workshop's ledger made and kept from the page: subjects, consents with their documents, runs, operators", "[studio]") {
  Running s(options_in("studio-ledger"));
  const std::filesystem::path shop = s.server.session_dir().parent_path();
  httplib::Client c("127.0.0.1", s.port);
  const auto post = [&](const std::string& what, const json& body) {
    const auto r = c.Post(("/api/ledger/" + what).c_str(), s.auth(), body.dump(), "application/json");
    REQUIRE(r);
    return std::make_pair(r->status, json::parse(r->body));
  };
  CHECK(json::parse(c.Get("/api/ledger", s.auth())->body)["exists"] == false);
  // Before the ledger exists, nothing but its creation; a bad maker number is named.
  CHECK(post("subject", {{"code", "S-1"}}).first == 400);
  const auto bad_maker = post("init", {{"maker", "seventy"}, {"name", "Shop"}});
  CHECK(bad_maker.first == 400);
  CHECK(bad_maker.second["error"].get<std::string>().find("'maker' must be a whole number") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(shop / "workshop.ledger"));
  const auto made = post("init", {{"maker", "77"}, {"name", "Studio Shop"}});
  REQUIRE(made.first == 200);
  CHECK(made.second["ledger"]["workshop"]["maker"] == 77);
  CHECK(post("init", {{"maker", 78}, {"name", "again"}}).first == 400);  // never overwritten
  REQUIRE(post("operator", {{"code", "op1"}, {"name", "Alex Moreau"}}).first == 200);
  REQUIRE(post("subject", {{"code", "S-1"}}).first == 200);
  CHECK(post("subject", {{"code", "S-1"}}).first == 400);  // already there
  // A consent with its signed document: the document kept under its SHA-256, the hash in the ledger.
  const std::string doc = "S-1 agrees to a film appliance. Signed, S-1.";
  std::string b64(sodium_base64_ENCODED_LEN(doc.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(b64.data(), b64.size(), reinterpret_cast<const unsigned char*>(doc.data()), doc.size(), sodium_base64_VARIANT_ORIGINAL);
  b64.pop_back();
  const json consent = {{"subject", "S-1"}, {"use", "film"}, {"valid_until", "2099-12-31"}, {"given_by", "S-1"}, {"document_name", "consent S-1.txt"},
                        {"document_base64", b64}};
  json unknown = consent;
  unknown["subject"] = "S-2";
  CHECK(post("consent", unknown).first == 400);
  CHECK_FALSE(std::filesystem::exists(shop / "consents"));  // nothing kept for a refusal
  const auto recorded = post("consent", consent);
  REQUIRE(recorded.first == 200);
  const json& view = recorded.second["ledger"];
  REQUIRE(view["consents"].size() == 1);
  const std::string sha = view["consents"][0]["document_sha256"];
  std::filesystem::path kept;
  for (const auto& e : std::filesystem::directory_iterator(shop / "consents")) kept = e.path();
  CHECK(test::read_bytes(kept) == doc);
  CHECK(ledger::file_sha256(kept) == sha);
  // A run opened and closed; a medical run needs its prescriber.
  CHECK(post("run", {{"use", "medical"}, {"client", "Clinic"}}).first == 400);
  REQUIRE(post("run", {{"use", "film"}, {"client", "Studio X"}, {"operator", "op1"}}).first == 200);
  const auto closed = post("run-close", {{"run", "1"}});
  REQUIRE(closed.first == 200);
  CHECK(closed.second["ledger"]["runs"][0]["closed"] == true);
  CHECK(post("run-close", {{"run", 1}}).first == 400);
  CHECK(post("nonsense", json::object()).first == 400);
  // What the page did is the ledger's own record, and it verifies.
  const ledger::Ledger book = ledger::Ledger::open(shop / "workshop.ledger");
  CHECK(book.verify().ok);
  CHECK(book.maker() == 77);
  CHECK(book.entries().size() == 7);  // workshop, key, operator, subject, consent, run, run-closed: nothing of what was refused
  CHECK(json::parse(c.Get("/api/ledger", s.auth())->body)["verify"]["ok"] == true);
}

TEST_CASE("studio: file requests and uploads take plain file names only; nothing is written outside the session", "[studio]") {
  Running s(options_in("studio-paths"));
  httplib::Client c("127.0.0.1", s.port);
  { std::ofstream(s.server.session_dir().parent_path() / "secret.txt") << "outside"; }
  for (const char* path : {"/api/files/..%2Fsecret.txt", "/api/files/../secret.txt", "/api/files/%2Fetc%2Fpasswd", "/api/files//etc/passwd",
                           "/api/files/inputs%2F..%2F..%2Fsecret.txt", "/api/files/.hidden", "/api/files/a%5Cb"}) {
    INFO(path);
    const auto r = c.Get(path, s.auth());
    REQUIRE(r);
    CHECK((r->status == 400 || r->status == 404));
    CHECK(r->body.find("outside") == std::string::npos);
  }
  CHECK(c.Get("/api/files/..%2Fsecret.txt", s.auth())->body.find("plain file name") != std::string::npos);
  // Tracing needs the workshop's key and ledger: this folder has neither.
  const auto no_ledger = c.Post("/api/trace?name=cast.ply", s.auth(), "ply\n", "application/octet-stream");
  REQUIRE(no_ledger);
  CHECK(no_ledger->status == 409);
  CHECK(c.Post("/api/trace?name=..%2Fcast.ply", s.auth(), "ply\n", "application/octet-stream")->status == 400);
  for (const char* name : {"..%2Fescaped.ply", "%2Ftmp%2Fescaped.ply", "sub%2Fx.ply", ".."}) {
    INFO(name);
    const auto r = c.Post(std::string("/api/scan?name=") + name, s.auth(), "ply\n", "application/octet-stream");
    REQUIRE(r);
    CHECK(r->status == 400);
  }
  CHECK_FALSE(std::filesystem::exists(s.server.session_dir().parent_path() / "escaped.ply"));
  // A scan by its path in the workshop folder: relative, of plain names, inside it.
  for (const char* path : {"..%2Fsecret.txt", "%2Fetc%2Fpasswd", "session%2F..%2F..%2Fsecret.txt", "a%2F%2Fb.ply", "scans%2F.hidden"}) {
    INFO(path);
    const auto r = c.Post(std::string("/api/scan?path=") + path, s.auth(), "", "application/octet-stream");
    REQUIRE(r);
    CHECK(r->status == 400);
  }
  CHECK(c.Post("/api/scan?path=scans%2Fnone.ply", s.auth(), "", "application/octet-stream")->status == 404);
  CHECK_FALSE(std::filesystem::exists("/tmp/escaped.ply"));
  // What the server itself refuses carries a message too: an address it does not have, and a POST
  // without its length (sent by hand: the client library always gives one).
  const auto unknown = c.Get("/api/nothing", s.auth());
  REQUIRE(unknown);
  CHECK(unknown->status == 404);
  CHECK(json::parse(unknown->body)["error"].get<std::string>().find("/api/nothing") != std::string::npos);
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(s.port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
    const std::string request = "POST /api/scan?path=scans%2Fnone.ply HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Tracecast-Token: " +
                                s.server.token() + "\r\nConnection: close\r\n\r\n";
    REQUIRE(::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
    std::string answer;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) answer.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    INFO(answer);
    CHECK(answer.rfind("HTTP/1.1 400", 0) == 0);
    CHECK(answer.find("a POST needs a body and its Content-Length") != std::string::npos);
  }
  // A plain name of the session is served.
  const auto ok = c.Get("/api/session", s.auth());
  REQUIRE(ok);
  CHECK(ok->status == 200);
}

TEST_CASE("studio: an upload over the limit is refused with a message, and nothing is kept", "[studio]") {
  studio::StudioOptions o = options_in("studio-limit");
  o.max_upload_mb = 1;
  Running s(o);
  httplib::Client c("127.0.0.1", s.port);
  const auto big = c.Post("/api/scan?name=big.ply", s.auth(), std::string((1u << 20) + 1, 'x'), "application/octet-stream");
  REQUIRE(big);
  CHECK(big->status == 413);
  CHECK(json::parse(big->body)["error"].get<std::string>().find("limit of 1 MB") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(s.server.session_dir() / "inputs" / "big.ply"));
  // A form-encoded body is told how to send a scan.
  const auto form = c.Post("/api/scan?name=f.ply", s.auth(), std::string(9000, 'x'), "application/x-www-form-urlencoded");
  REQUIRE(form);
  CHECK(form->status == 413);
  CHECK(form->body.find("application/octet-stream") != std::string::npos);
}

TEST_CASE("studio: listens on the loopback address unless asked for another", "[studio]") {
  const std::string outside = outside_address();
  if (outside.empty()) {
    WARN("this machine has no non-loopback IPv4 address: the reachability checks are skipped");
    return;
  }
  {
    Running s(options_in("studio-loopback"));
    httplib::Client here("127.0.0.1", s.port);
    CHECK(here.Get("/", s.auth())->status == 200);
    httplib::Client there(outside, s.port);
    there.set_connection_timeout(2);
    CHECK_FALSE(there.Get("/", s.auth()));  // refused: nothing listens there
  }
  studio::StudioOptions o = options_in("studio-any");
  o.host = "0.0.0.0";  // asked for
  Running s(o);
  httplib::Client there(outside, s.port);
  there.set_connection_timeout(2);
  const auto r = there.Get("/", s.auth());
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("studio: the face and appliance built through the server are the libraries' own; the session outlives the server", "[studio][slow]") {
  const studio::StudioOptions o = options_in("studio-build");
  const std::string scan_bytes = test::read_bytes(std::filesystem::path(TRACECAST_SOURCE_DIR) / "assets" / "example-scan.ply");
  const json spec_json = {{"region", "upper_face"}, {"openings", {"eyes"}}, {"thickness_mm", 2.5}};
  Mesh served;
  {
    Running s(o);
    httplib::Client c("127.0.0.1", s.port);
    c.set_read_timeout(120);
    const auto early = c.Post("/api/appliance", s.auth(), spec_json.dump(), "application/json");
    REQUIRE(early);
    CHECK(early->status == 409);  // no scan yet
    const auto bad = c.Post("/api/scan?name=notes.ply", s.auth(), "hello\n", "application/octet-stream");
    REQUIRE(bad);
    CHECK(bad->status == 400);
    CHECK(bad->body.find("notes.ply") != std::string::npos);
    const auto scan = c.Post("/api/scan?name=example-scan.ply", s.auth(), scan_bytes, "application/octet-stream");
    REQUIRE(scan);
    REQUIRE(scan->status == 200);
    const json sj = json::parse(scan->body);
    CHECK(sj["report"]["accuracy_mm"]["p95"].get<double>() < 0.1);
    CHECK(sj["face"]["landmarks_mm"].contains("nose_tip"));
    // A file that does not read, under the same name, leaves the session's input as it was.
    const auto spoilt = c.Post("/api/scan?name=example-scan.ply", s.auth(), "ply\nnot a mesh\n", "application/octet-stream");
    REQUIRE(spoilt);
    CHECK(spoilt->status == 400);
    CHECK(test::read_bytes(s.server.session_dir() / "inputs" / "example-scan.ply") == scan_bytes);
    const auto wrong = c.Post("/api/appliance", s.auth(), R"({"region": "elbow"})", "application/json");
    REQUIRE(wrong);
    CHECK(wrong->status == 400);
    CHECK(wrong->body.find("elbow") != std::string::npos);
    const auto built = c.Post("/api/appliance", s.auth(), spec_json.dump(), "application/json");
    REQUIRE(built);
    REQUIRE(built->status == 200);
    CHECK(json::parse(built->body)["options"]["thickness_mm"] == 2.5);
    const auto mesh = c.Get("/api/mesh/appliance", s.auth());
    REQUIRE(mesh);
    REQUIRE(mesh->status == 200);
    served = parse_mesh(mesh->body);
    const auto file = c.Get("/api/files/appliance.ply", s.auth());
    REQUIRE(file);
    CHECK(file->status == 200);
    CHECK(file->body == test::read_bytes(s.server.session_dir() / "appliance.ply"));
    // The thickness map, per vertex of the mesh sent: its own values decoded; the body's 2.5 mm.
    const auto fields = c.Get("/api/fields/appliance", s.auth());
    REQUIRE(fields);
    REQUIRE(fields->status == 200);
    const json th = json::parse(fields->body)["fields"]["thickness"];
    const std::string b64 = th["values"];
    std::vector<unsigned char> raw(b64.size());
    std::size_t n = 0;
    REQUIRE(sodium_base642bin(raw.data(), raw.size(), b64.data(), b64.size(), nullptr, &n, nullptr, sodium_base64_VARIANT_ORIGINAL) == 0);
    REQUIRE(n == 4 * served.vertices.size());
    std::vector<float> t(served.vertices.size());
    std::memcpy(t.data(), raw.data(), n);
    std::sort(t.begin(), t.end());
    CHECK(t.back() == Approx(2.5).margin(0.05));   // the thickest: the body
    CHECK(t.front() < 0.01);                       // the inner surface, on the skin
    CHECK(th["max"].get<double>() == Approx(2.5).margin(0.05));
  }
  // The libraries called directly on the face the server kept, with the same options.
  const Mesh face = io::read_mesh(o.workshop / "session" / "face.ply").mesh;
  const Mesh direct = make_appliance(face, parse_appliance_spec(spec_json, "test"));
  REQUIRE(served.vertices.size() == direct.vertices.size());
  CHECK(served.triangles == direct.triangles);
  double worst = 0;
  for (std::size_t i = 0; i < direct.vertices.size(); ++i) worst = std::max(worst, (served.vertices[i] - direct.vertices[i]).norm());
  CHECK(worst < 1e-4);  // the mesh travels in single precision
  // A scan opened by its path in the workshop folder: copied into the session, the same face.
  {
    std::filesystem::create_directories(o.workshop / "scans");
    std::filesystem::copy_file(std::filesystem::path(TRACECAST_SOURCE_DIR) / "assets" / "example-scan.ply", o.workshop / "scans" / "again.ply");
    Running s(o);
    httplib::Client c("127.0.0.1", s.port);
    c.set_read_timeout(120);
    const std::string before = test::read_bytes(o.workshop / "session" / "face.ply");
    const auto r = c.Post("/api/scan?path=scans%2Fagain.ply", s.auth(), "", "application/octet-stream");
    REQUIRE(r);
    REQUIRE(r->status == 200);
    CHECK(json::parse(r->body)["input"] == "again.ply");
    CHECK(std::filesystem::exists(o.workshop / "session" / "inputs" / "again.ply"));
    CHECK(test::read_bytes(o.workshop / "session" / "face.ply") == before);
    // It starts the session afresh: the appliance is gone until built again.
    CHECK_FALSE(std::filesystem::exists(o.workshop / "session" / "appliance.ply"));
    REQUIRE(c.Post("/api/appliance", s.auth(), spec_json.dump(), "application/json")->status == 200);
  }
  // A new server on the same workshop: the session is as it was left.
  Running again(o);
  httplib::Client c("127.0.0.1", again.port);
  const json session = json::parse(c.Get("/api/session", again.auth())->body)["session"];
  CHECK(session["scan"]["input"] == "again.ply");
  CHECK(session["appliance"]["options"]["thickness_mm"] == 2.5);
  CHECK(c.Get("/api/mesh/appliance", again.auth())->body.size() == 12 + 12 * direct.vertices.size() + 12 * direct.triangles.size());
}

TEST_CASE("studio: a thickness zone drawn and a stroke painted on the face are kept in the draft, and the appliance is that thick there, as the library makes it",
          "[studio][slow]") {
  const studio::StudioOptions o = options_in("studio-zone");
  Running s(o);
  httplib::Client c("127.0.0.1", s.port);
  c.set_read_timeout(120);
  const std::string scan_bytes = test::read_bytes(std::filesystem::path(TRACECAST_SOURCE_DIR) / "assets" / "example-scan.ply");
  REQUIRE(c.Post("/api/scan?name=example-scan.ply", s.auth(), scan_bytes, "application/octet-stream")->status == 200);
  const Mesh face = io::read_mesh(s.server.session_dir() / "face.ply").mesh;
  const FaceAnalysis fa = analyze_face(face);
  // A square 30 mm wide on the forehead, 45 mm over the nose tip, its corners the front-most skin
  // there (as clicks on the face land): in the face frame, then in the file's coordinates.
  const Vec3 nose = fa.landmarks.nose_tip;
  auto on_skin = [&](double x, double y) {
    Vec3 best(0, 0, -1e9);
    for (const Vec3& v : face.vertices) {
      const Vec3 q = fa.frame.to_local(v);
      if (std::hypot(q.x() - x, q.y() - y) < 1.0 && q.z() > best.z()) best = q;
    }
    return fa.frame.to_world(best);
  };
  json points = json::array();
  for (const auto& [dx, dy] : std::vector<std::pair<double, double>>{{-15, 30}, {15, 30}, {15, 60}, {-15, 60}}) {
    const Vec3 p = on_skin(nose.x() + dx, nose.y() + dy);
    points.push_back({p.x(), p.y(), p.z()});
  }
  const json zone = {{"points", points}, {"thickness_mm", 0.8}, {"blend_mm", 4}};
  // The draft keeps it; a zone without its thickness is refused with the draft's format.
  REQUIRE(c.Post("/api/draft", s.auth(), json{{"outline", json::array()}, {"zones", {zone}}}.dump(), "application/json")->status == 200);
  CHECK(json::parse(c.Get("/api/session", s.auth())->body)["session"]["draft"]["zones"][0] == zone);
  const auto bad = c.Post("/api/draft", s.auth(), json{{"outline", json::array()}, {"zones", {{{"points", points}}}}}.dump(), "application/json");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(bad->body.find("thickness_mm") != std::string::npos);
  // A brush stroke on the other side of the forehead: three dabs, kept in the draft too; a dab
  // without its strength is refused with the draft's format.
  json paint = json::array();
  for (double dx : {-44.0, -40.0, -36.0}) {
    const Vec3 p = on_skin(nose.x() + dx, nose.y() + 45);
    paint.push_back({{"at", {p.x(), p.y(), p.z()}}, {"radius_mm", 10}, {"thickness_mm", 4}, {"strength", 1}});
  }
  REQUIRE(c.Post("/api/draft", s.auth(), json{{"outline", json::array()}, {"zones", {zone}}, {"paint", paint}}.dump(), "application/json")->status == 200);
  CHECK(json::parse(c.Get("/api/session", s.auth())->body)["session"]["draft"]["paint"] == paint);
  const auto bad_dab = c.Post("/api/draft", s.auth(), json{{"outline", json::array()}, {"paint", {{{"at", {0, 0, 0}}, {"radius_mm", 5}, {"thickness_mm", 2}}}}}.dump(),
                              "application/json");
  REQUIRE(bad_dab);
  CHECK(bad_dab->status == 400);
  CHECK(bad_dab->body.find("\\\"paint\\\"") != std::string::npos);
  // Built as the page sends it: a recipe's appliance section with the zone among thickness_zones
  // and the stroke as thickness_paint.
  const json spec_json = {{"region", "upper_face"}, {"openings", {"eyes"}}, {"thickness_mm", 2.5},
                          {"thickness_zones", {{{"zone", {{"points", points}}}, {"thickness_mm", 0.8}, {"blend_mm", 4}}}},
                          {"thickness_paint", paint}};
  const auto built = c.Post("/api/appliance", s.auth(), spec_json.dump(), "application/json");
  REQUIRE(built);
  REQUIRE(built->status == 200);
  const Mesh served = parse_mesh(c.Get("/api/mesh/appliance", s.auth())->body);
  const Mesh direct = make_appliance(face, parse_appliance_spec(spec_json, "test"));
  REQUIRE(served.vertices.size() == direct.vertices.size());
  CHECK(served.triangles == direct.triangles);
  // Measured here: how far the appliance stands off the skin within 6 mm of the zone's middle, and
  // 30 mm to the side of it, outside the zone.
  const SurfaceQuery skin(face);
  auto thickest_near = [&](const Vec3& at) {
    std::vector<Vec3> near;
    for (const Vec3& v : served.vertices)
      if ((v - at).norm() < 6) near.push_back(v);
    REQUIRE(near.size() > 10);
    const std::vector<double> d = skin.distances(near);
    return *std::max_element(d.begin(), d.end());
  };
  CHECK(thickest_near(on_skin(nose.x(), nose.y() + 45)) == Approx(0.8).margin(0.1));
  CHECK(thickest_near(on_skin(nose.x() + 40, nose.y() + 45)) == Approx(2.5).margin(0.15));
  CHECK(thickest_near(on_skin(nose.x() - 40, nose.y() + 45)) == Approx(4.0).margin(0.15));
}

TEST_CASE("studio: the page runs in a real browser, restores the session and draws the face and the appliance", "[studio][chromium][slow]") {
  REQUIRE(std::system("command -v chromium >/dev/null 2>&1") == 0);
  const studio::StudioOptions o = options_in("studio-browser");
  Running s(o);
  httplib::Client c("127.0.0.1", s.port);
  c.set_read_timeout(120);
  build_example(c, s);
  const auto shot = o.workshop / "studio.png";
  const test::BrowserRun b = test::open_in_chromium(s.server.url(), shot);
  REQUIRE(b.ran);
  INFO("console errors: " << b.console_errors.size() << (b.console_errors.empty() ? "" : ", first: " + b.console_errors.front()));
  CHECK(b.console_errors.empty());
  CHECK(b.rendered);
  // The 3D view (right of the 340 px panel) shows the face and the appliance on its grey.
  CHECK(test::share_not(shot, 450, 150, 1300, 850, {0xe8, 0xe8, 0xe8}) > 0.2);
  if (const char* docs = std::getenv("TRACECAST_DOC_IMAGES")) std::filesystem::copy_file(shot, std::filesystem::path(docs) / "studio.png",
                                                                                           std::filesystem::copy_options::overwrite_existing);
}

TEST_CASE("studio: the mold made through the consent gate, recorded, printable and checked; a subject without consent is refused, nothing recorded",
          "[studio][slow]") {
  const studio::StudioOptions o = options_in("studio-mold");
  set_up_workshop_in(o.workshop);
  Running s(o);
  httplib::Client c("127.0.0.1", s.port);
  c.set_read_timeout(300);
  build_example(c, s);
  const auto ledger_bytes = [&] { return test::read_bytes(o.workshop / "workshop.ledger"); };
  // Refused: a subject the ledger holds no consent for. The answer says why; the ledger is as it was.
  const std::string before = ledger_bytes();
  const auto refused = c.Post("/api/run", s.auth(), R"({"mold": {"resolution_mm": 1.0}, "production": {"run": 1, "subject": "NOBODY"}})",
                              "application/json");
  REQUIRE(refused);
  CHECK(refused->status == 400);
  INFO(refused->body);
  CHECK(refused->body.find("NOBODY") != std::string::npos);
  CHECK(ledger_bytes() == before);
  CHECK_FALSE(std::filesystem::exists(s.server.session_dir() / "run" / "mold.3mf"));
  // Made: the consenting subject.
  const auto made = c.Post("/api/run", s.auth(), R"({"mold": {"resolution_mm": 1.0}, "production": {"run": 1, "subject": "EX-001"}})",
                           "application/json");
  REQUIRE(made);
  INFO(made->body);
  REQUIRE(made->status == 200);
  const json r = json::parse(made->body);
  CHECK(r["id"].is_string());
  CHECK(ledger_bytes() != before);
  for (const char* f : {"mold.3mf", "report.html", "report.json", "appliance.ply", "appliance-marked.ply"})
    CHECK(std::find(r["files"].begin(), r["files"].end(), f) != r["files"].end());
  // The casting sheet: the silicone to weigh out is the cavity's, the marked appliance's volume
  // measured here, at the silicone's density and waste; A and B half each.
  const json& mix = r["casting"]["mix"];
  const double cast_ml = signed_volume(io::read_mesh(s.server.session_dir() / "run" / "appliance-marked.ply").mesh) / 1000.0;
  CHECK(mix["cavity_ml"].get<double>() == Approx(cast_ml).epsilon(0.002));
  CHECK(mix["silicone_g"].get<double>() ==
        Approx(cast_ml * mix["density_g_ml"].get<double>() * (1 + mix["waste_fraction"].get<double>())).epsilon(0.002));
  CHECK(mix["part_a_g"].get<double>() + mix["part_b_g"].get<double>() == Approx(mix["silicone_g"].get<double>()));
  CHECK(r["casting"]["pull"]["direction"].size() == 3);
  CHECK(r["casting"]["mark"]["tiles"].get<double>() > 0);
  // Downloaded, each printed piece passes `tracecast check` on the resin printer.
  CHECK(check_downloaded_pieces(c, s, r["files"], o.workshop) >= 2);
  CHECK(pieces_of(o.workshop / "workshop.ledger") == std::vector<std::string>{"EX-001"});
  // Traced: the cast's shape (the marked appliance, as the cavity carries it) read back to the record.
  const auto cast = c.Get("/api/run/appliance-marked.ply", s.auth());
  REQUIRE(cast);
  const auto traced = c.Post("/api/trace?name=cast.ply", s.auth(), cast->body, "application/octet-stream");
  REQUIRE(traced);
  INFO(traced->body.substr(0, 400));
  REQUIRE(traced->status == 200);
  const json tr = json::parse(traced->body);
  CHECK(tr["id"] == r["id"]);
  CHECK(tr["record"]["piece"]["subject"] == "EX-001");
  CHECK(tr["record"]["workshop"]["name"] == "Test workshop");
  // The recipe it saved, run by `tracecast run`, built the same appliance as the studio did.
  const Mesh studio_built = io::read_mesh(s.server.session_dir() / "appliance.ply").mesh, run_built = io::read_mesh(s.server.session_dir() / "run" / "appliance.ply").mesh;
  REQUIRE(studio_built.vertices.size() == run_built.vertices.size());
  double worst = 0;
  for (std::size_t i = 0; i < run_built.vertices.size(); ++i) worst = std::max(worst, (studio_built.vertices[i] - run_built.vertices[i]).norm());
  CHECK(worst <= 0.01);
}

TEST_CASE("studio: a second server cannot listen on a port the first holds", "[studio]") {
  Running first(options_in("studio-port-1"));
  studio::StudioOptions o = options_in("studio-port-2");
  o.port = first.port;
  studio::Studio second(o);
  CHECK_THROWS_AS(second.bind(), ProcessingError);
}

TEST_CASE("studio: a person's session in the browser: scan, outline by clicks, thickness, appliance; the mold refused without consent, made with it, taken away",
          "[studio][chromium][slow]") {
  REQUIRE(std::system("command -v chromium >/dev/null 2>&1") == 0);
  REQUIRE(std::system("command -v node >/dev/null 2>&1") == 0);
  const std::filesystem::path source(TRACECAST_SOURCE_DIR);
  REQUIRE(std::filesystem::exists(source / "web" / "node_modules" / "puppeteer-core"));  // scripts/setup.sh installs it
  const studio::StudioOptions o = options_in("studio-person");
  set_up_workshop_in(o.workshop);
  Running s(o);
  const auto shot = o.workshop / "studio-plate.png", log = o.workshop / "e2e.json";
  const std::string cmd = "node " + (source / "tests" / "studio_e2e.cjs").string() + " '" + s.server.url() + "' " +
                          (source / "assets" / "example-scan.ply").string() + " " + shot.string() + " NOBODY EX-001 " +
                          (s.server.session_dir() / "run" / "appliance-marked.ply").string() + " > " + log.string();
  const int rc = std::system(cmd.c_str());
  const std::string out = test::read_bytes(log);
  INFO(out);
  REQUIRE(rc == 0);
  const json r = json::parse(out);
  CHECK(r["console_errors"].empty());
  CHECK(r["points"] == 10);
  CHECK(r["after_undo"] == 9);
  CHECK(r["after_redo"] == 10);
  CHECK(r["region"] == "drawn");
  CHECK(r["error"] == "");
  CHECK(r["edits"].size() == 10);
  std::vector<double> t = r["edits"].get<std::vector<double>>();
  std::sort(t.begin(), t.end());
  const auto span = [](std::vector<double> v) { std::sort(v.begin(), v.end()); return fmt::format("median {:.2f} s, max {:.2f} s", v[v.size() / 2], v.back()); };
  std::printf("studio: appliance preview after an edit (bundled example, drawn outline): median %.2f s, max %.2f s; of which 5 thickness edits %s, "
              "5 outline points dragged %s (the server's build %s); first build %.2f s\n",
              0.5 * (t[4] + t[5]), t.back(), span(r["thickness_edits"]).c_str(), span(r["outline_edits"]).c_str(),
              span(r["outline_server_s"]).c_str(), r["builds"][0].get<double>());
  // Each drag moved the outline the server built from (so each of those builds cut the skin again).
  const auto built = r["outlines_built"].get<std::vector<std::string>>();
  REQUIRE(built.size() == 6);
  REQUIRE(r["outline_server_s"].size() == 5);
  for (std::size_t k = 1; k < built.size(); ++k) CHECK(built[k] != built[k - 1]);
  // The appliance as the server kept it: the outline as clicked, on the face's surface.
  const json session = json::parse(test::read_bytes(s.server.session_dir() / "session.json"));
  const json& region = session["appliance"]["options"]["region"];
  REQUIRE(region.contains("points"));
  REQUIRE(region["points"].size() == 10);
  CHECK(session["appliance"]["options"]["thickness_mm"].get<double>() == Approx(3.0));
  // The opening drawn with five clicks: in the options beside the eyes' preset, a hole in the piece.
  CHECK(r["outline_count"].get<std::string>().find("1 opening(s) drawn") != std::string::npos);
  const json& openings = session["appliance"]["options"]["openings"];
  REQUIRE(openings.size() == 2);
  CHECK(openings[0] == "eyes");
  REQUIRE(openings[1].contains("points"));
  CHECK(openings[1]["points"].size() == 5);
  CHECK(session["appliance"]["report"]["boundary_loops"] == 4);  // the outline, two eyes, the drawn opening
  // The thickness zone drawn with four clicks, at the thickness set for it.
  CHECK(r["outline_count"].get<std::string>().find("1 thickness zone(s) drawn") != std::string::npos);
  const json& zones = session["appliance"]["options"]["thickness_zones"];
  REQUIRE(zones.size() == 1);
  CHECK(zones[0]["zone"]["points"].size() == 4);
  CHECK(zones[0]["thickness_mm"] == 1.2);
  // The brush stroke: dabs a third of the radius apart, at the brush's thickness and strength.
  CHECK(r["outline_count"].get<std::string>().find("brush dab(s) painted") != std::string::npos);
  const json& paint = session["appliance"]["options"]["thickness_paint"];
  REQUIRE(paint.size() >= 3);
  CHECK(paint[0]["thickness_mm"] == 3.5);
  CHECK(paint[0]["strength"] == 1);
  std::vector<Vec3> clicked;
  for (const json& d : paint) clicked.emplace_back(d["at"][0].get<double>(), d["at"][1].get<double>(), d["at"][2].get<double>());
  for (const json& p : region["points"]) clicked.emplace_back(p[0].get<double>(), p[1].get<double>(), p[2].get<double>());
  for (const json& p : openings[1]["points"]) clicked.emplace_back(p[0].get<double>(), p[1].get<double>(), p[2].get<double>());
  const Mesh face = io::read_mesh(s.server.session_dir() / "face.ply").mesh;
  double off = 0;
  for (const double d : SurfaceQuery(face).distances(clicked)) off = std::max(off, d);
  CHECK(off < 0.01);  // each click landed on the face (the browser holds it in single precision)
  // The refusal, in the page; one piece recorded, the consenting subject's.
  CHECK(r["refused"].get<std::string>().find("NOBODY") != std::string::npos);
  CHECK(r["refusal_logged"] == 1);
  CHECK(r["made_error"] == "");
  CHECK(pieces_of(o.workshop / "workshop.ledger") == std::vector<std::string>{"EX-001"});
  // The session's recipe, as the run made it, built the appliance the page showed (outline,
  // opening, zone and brush stroke included).
  const Mesh studio_built = io::read_mesh(s.server.session_dir() / "appliance.ply").mesh, run_built = io::read_mesh(s.server.session_dir() / "run" / "appliance.ply").mesh;
  REQUIRE(studio_built.vertices.size() == run_built.vertices.size());
  double worst = 0;
  for (std::size_t i = 0; i < run_built.vertices.size(); ++i) worst = std::max(worst, (studio_built.vertices[i] - run_built.vertices[i]).norm());
  CHECK(worst <= 0.01);
  // The files the page's links fetched; `tracecast check` gives each piece the verdict the page
  // showed. (Whether this drawn piece's mold is printable varies with the mark's relief, a new
  // marking key each run: its shell's thinnest wall was 2.72 mm in one run, 0.66 mm in another.)
  std::map<std::string, bool> verdicts;
  for (const json& row : r["mold_rows"]) {
    const std::string text = row;
    for (const char* piece : {"core", "shell"})
      if (text.rfind(piece, 0) == 0) verdicts[piece] = text.find("NOT printable") == std::string::npos;
  }
  REQUIRE(verdicts.size() == 2);
  // The casting sheet in the page gives the run's report's silicone.
  std::map<std::string, std::string> casting;
  for (const json& row : r["casting_rows"]) casting[row[0].get<std::string>()] = row[1].get<std::string>();
  std::ifstream report_file(s.server.session_dir() / "run" / "report.json");
  const json report = json::parse(report_file);
  CHECK(casting["silicone to mix"].rfind(fmt::format("{:.1f} g", report["mold"]["casting"]["silicone_g"].get<double>()), 0) == 0);
  CHECK(casting.count("resin to print") == 1);
  CHECK(casting.count("pull") == 1);
  for (const char* f : {"mold.3mf", "mold-core.stl", "mold-shell.stl", "report.html", "appliance-marked.ply"}) {
    INFO(f);
    CHECK(r["downloads"].value(f, 0) > 1000);
  }
  httplib::Client c("127.0.0.1", s.port);
  json files = json::array();
  for (const auto& [name, size] : r["downloads"].items()) files.push_back(name);
  CHECK(check_downloaded_pieces(c, s, files, o.workshop, &verdicts) == 2);
  // Traced in the page: the cast's scan read back to the piece, its subject and consent.
  const std::string id = r["mold_rows"][0].get<std::string>().substr(std::string("identifier").size());
  CHECK(r["trace_rows"]["reading"].get<std::string>().find(id) != std::string::npos);
  CHECK(r["trace_rows"]["subject"] == "EX-001");
  CHECK(r["trace_rows"]["consent"].get<std::string>().find("film use until 2099-12-31") != std::string::npos);
  if (const char* docs = std::getenv("TRACECAST_DOC_IMAGES"))
    for (const auto& [taken, doc] : {std::pair{"studio-plate.png", "studio-plate.png"}, std::pair{"studio-plate-outline.png", "studio-outline.png"}})
      std::filesystem::copy_file(o.workshop / taken, std::filesystem::path(docs) / doc, std::filesystem::copy_options::overwrite_existing);
}

TEST_CASE("studio: a server stopped the moment it was started stops", "[studio]") {
  // The library's own stop() did nothing before its loop had begun: the server then served on and
  // the thread waiting for it never returned (seen once in a full run of the suite).
  const studio::StudioOptions o = options_in("studio-stop");
  for (int i = 0; i < 40; ++i) Running s(o);
  SUCCEED("40 servers started and stopped at once");
}
