#include "tracecast/studio/studio.h"

#include <fmt/format.h>
#include <sodium.h>

#include <cstring>
#include <fstream>
#include <atomic>
#include <mutex>
#include <thread>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tracecast/mesh/appliance.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/face.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/report_json.h"
#include "tracecast/mesh/units.h"
#include "tracecast/pipeline/appliance_maps.h"
#include "tracecast/pipeline/recipe.h"
#include "tracecast/ledger/ledger.h"
#include "tracecast/print/mold.h"
#include "tracecast/watermark/key.h"
#include "tracecast/watermark/mark.h"
#include "tracecast/watermark/payload.h"
#include "tracecast/pipeline/run.h"
#include "tracecast/pipeline/web_assets.h"
#include "tracecast/scan/reconstruct.h"
#include "tracecast/scan/register.h"
#include "ledger_panel.h"

// Last: it brings <resolv.h>, whose `_res` macro breaks Eigen's headers included after it.
#include <httplib.h>

extern const char* const kStudioPage;  // studio/src/studio.html, embedded at build time

namespace tracecast::studio {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string random_token() {
  unsigned char bytes[24];
  randombytes_buf(bytes, sizeof bytes);
  char hex[2 * sizeof bytes + 1];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  return hex;
}

//! The token a request carries: the query's `token`, the X-Tracecast-Token header, or the cookie
//! the page was given.
std::string token_of(const httplib::Request& req) {
  if (req.has_param("token")) return req.get_param_value("token");
  if (req.has_header("X-Tracecast-Token")) return req.get_header_value("X-Tracecast-Token");
  const std::string cookies = req.get_header_value("Cookie");
  const std::string key = "tracecast_token=";
  for (std::size_t at = cookies.find(key); at != std::string::npos; at = cookies.find(key, at + 1))
    if (at == 0 || cookies[at - 1] == ' ' || cookies[at - 1] == ';') {
      const std::size_t from = at + key.size(), to = cookies.find(';', from);
      return cookies.substr(from, to == std::string::npos ? std::string::npos : to - from);
    }
  return "";
}

bool same_token(const std::string& given, const std::string& token) {
  return given.size() == token.size() && sodium_memcmp(given.data(), token.data(), token.size()) == 0;
}

//! A file name inside the session folder: letters, digits, '.', '_' and '-', no "..": anything
//! else (a path, an absolute path, a way out) is refused.
bool safe_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || name.find("..") != std::string::npos || name.front() == '.') return false;
  for (const char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

//! A path relative to the workshop folder, of plain names joined by '/': its last name, or empty
//! when it is anything else (absolute, "..", an empty or hidden part).
std::string plain_relative_path(const std::string& path) {
  std::string last;
  for (std::size_t from = 0;;) {
    const std::size_t to = path.find('/', from);
    last = path.substr(from, to == std::string::npos ? std::string::npos : to - from);
    if (!safe_name(last)) return "";
    if (to == std::string::npos) return last;
    from = to + 1;
  }
}

void reply_json(httplib::Response& res, const json& j, int status = 200) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message) { reply_json(res, {{"error", message}}, status); }

//! A mesh for the browser: "TCM1", vertex and triangle counts (uint32), then float32 positions
//! and uint32 corner indices, little-endian.
std::string mesh_bytes(const Mesh& m) {
  std::string out = "TCM1";
  const auto put32 = [&](std::uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  put32(static_cast<std::uint32_t>(m.vertices.size()));
  put32(static_cast<std::uint32_t>(m.triangles.size()));
  out.reserve(out.size() + 12 * m.vertices.size() + 12 * m.triangles.size());
  for (const Vec3& v : m.vertices)
    for (int k = 0; k < 3; ++k) {
      const float f = static_cast<float>(v[k]);
      out.append(reinterpret_cast<const char*>(&f), 4);
    }
  for (const Tri& t : m.triangles)
    for (int k = 0; k < 3; ++k) put32(static_cast<std::uint32_t>(t[k]));
  return out;
}

}  // namespace

struct Studio::Impl {
  StudioOptions options;
  std::string token = random_token();
  fs::path dir;
  int port = 0;
  httplib::Server server;
  std::atomic<bool> serving{false}, stop_asked{false};
  std::mutex work;  // one build at a time; the session's files change only under it
  ApplianceCache appliance_cache;  // the last build's cut skin, for the next edit on the same face (under `work`)

  json session() const {
    std::ifstream in(dir / "session.json");
    json j = json::object();
    if (in) j = json::parse(in, nullptr, false);
    return j.is_object() ? j : json::object();
  }
  void save(const json& j) const { write_file_atomically(dir / "session.json", j.dump(2) + "\n"); }

  bool authorized(const httplib::Request& req, httplib::Response& res) const {
    if (same_token(token_of(req), token)) return true;
    reply_error(res, 403, "forbidden: open the address tracecast studio printed (it carries this session's token)");
    return false;
  }

  void routes();
  void page(const httplib::Request& req, httplib::Response& res) const;
  void upload_scan(const httplib::Request& req, httplib::Response& res);
  void build_appliance(const httplib::Request& req, httplib::Response& res);
  void save_draft(const httplib::Request& req, httplib::Response& res);
  json compose_recipe(const json& body) const;
  json write_recipe(const json& body) const;
  json last_run() const;
  void save_recipe(const httplib::Request& req, httplib::Response& res);
  void run_recipe_here(const httplib::Request& req, httplib::Response& res);
  void send_from(const fs::path& folder, const std::string& what, const std::string& name, httplib::Response& res) const;
  json open_scan(const fs::path& file, const std::string& name, const std::string& units, Unit unit);
  void trace(const httplib::Request& req, httplib::Response& res);
  void send_mesh(const std::string& name, httplib::Response& res) const;
  void send_appliance_fields(httplib::Response& res) const;
};

void Studio::Impl::page(const httplib::Request& req, httplib::Response& res) const {
  // The token moves from the address into a cookie the page's own requests carry.
  res.set_header("Set-Cookie", "tracecast_token=" + token + "; HttpOnly; SameSite=Strict; Path=/");
  res.set_header("Cache-Control", "no-store");
  res.set_content(kStudioPage, "text/html; charset=utf-8");
}

//! POST /api/scan?name=FILE[&units=U]: the body is the scan file. Or POST /api/scan?path=DIR/FILE:
//! a scan already in the workshop folder (a relative path of plain names, no way out of it).
//! Either is kept in the session as inputs/FILE once it has been read and reconstructed (a file
//! that does not read leaves the session's inputs as they were), then analysed (landmarks).
void Studio::Impl::upload_scan(const httplib::Request& req, httplib::Response& res) {
  const bool by_path = req.has_param("path");
  const std::string given = by_path ? req.get_param_value("path") : req.get_param_value("name");
  const std::string name = by_path ? plain_relative_path(given) : (safe_name(given) ? given : "");
  if (name.empty())
    return reply_error(res, 400, fmt::format(by_path ? "\"{}\": a scan's path is relative to the workshop folder, of plain names (letters, digits, . _ -)"
                                                     : "\"{}\": a scan's name must be a plain file name (letters, digits, . _ -)",
                                             given));
  const std::string units = req.has_param("units") ? req.get_param_value("units") : "auto";
  const auto unit = parse_unit(units);
  if (!unit) return reply_error(res, 400, fmt::format("units \"{}\" unknown", units));
  const fs::path source = options.workshop / given;
  if (by_path && !fs::is_regular_file(source))
    return reply_error(res, 404, fmt::format("no file \"{}\" in the workshop folder {}", given, options.workshop.string()));
  const std::lock_guard<std::mutex> lock(work);
  fs::create_directories(dir / "uploading");
  const fs::path arrived = dir / "uploading" / name;  // its own name: the reader goes by the extension
  write_file_atomically(arrived, by_path ? read_file_or_empty(source) : req.body);
  const json scan = open_scan(arrived, name, units, *unit);
  fs::create_directories(dir / "inputs");
  fs::rename(arrived, dir / "inputs" / name);
  reply_json(res, scan);
}

//! Reconstructs the scan into face.ply and starts the session afresh on it.
json Studio::Impl::open_scan(const fs::path& file, const std::string& name, const std::string& units, Unit unit) {
  io::ReadOptions ro;
  ro.units = unit;
  const scan::ViewsScan scanned = scan::scan_views({io::read_geometry(file, ro).mesh}, scan::ReconstructOptions{});
  io::write_mesh(dir / "face.ply", scanned.surface);
  // Analysed as the file holds it (single precision), as every later step reads it.
  json s = session();
  s["scan"] = {{"input", name}, {"units", units}, {"report", scanned.report}, {"face", analyze_face(io::read_mesh(dir / "face.ply").mesh)}};
  s.erase("appliance");  // built on the face before, and drawn on it
  s.erase("draft");
  std::error_code ec;
  fs::remove(dir / "appliance.ply", ec);
  save(s);
  return s["scan"];
}

//! POST /api/appliance: the body is a recipe's "appliance" section (JSON).
void Studio::Impl::build_appliance(const httplib::Request& req, httplib::Response& res) {
  const json body = json::parse(req.body, nullptr, false);
  if (!body.is_object()) return reply_error(res, 400, "the appliance's options must be a JSON object (a recipe's \"appliance\" section)");
  const ApplianceSpec spec = parse_appliance_spec(body, "appliance");
  validate(spec);
  const std::lock_guard<std::mutex> lock(work);
  if (!fs::exists(dir / "face.ply")) return reply_error(res, 409, "open a scan first: the appliance is built on its face");
  const Mesh face = io::read_mesh(dir / "face.ply").mesh;
  ApplianceReport report;
  const auto t0 = std::chrono::steady_clock::now();
  json s = session();
  // The face's analysis made when the scan was opened (landmarks, frame), unless the options turn
  // the frame (0.7 s of an edit's 2.4 s on the bundled example).
  std::optional<FaceAnalysis> known;
  if (!spec.face.front && !spec.face.up && s["scan"].contains("face")) known = s["scan"]["face"].get<FaceAnalysis>();
  io::write_mesh(dir / "appliance.ply", make_appliance(face, spec, nullptr, &report, known ? &*known : nullptr, &appliance_cache));
  json used = body;
  used.update(appliance_option_table().to_json(spec));
  s["appliance"] = {{"options", used},
                    {"report", report},
                    {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  save(s);
  reply_json(res, s["appliance"]);
}

//! POST /api/draft: what is being drawn and not built yet ({"outline": [[x, y, z], …],
//! "openings": [[[x, y, z], …], …], "zones": [{"points", "thickness_mm", "blend_mm"}, …], "paint":
//! [{"at": [x, y, z], "radius_mm", "thickness_mm", "strength"}, …]}, on the face), kept so that a
//! reload loses nothing.
void Studio::Impl::save_draft(const httplib::Request& req, httplib::Response& res) {
  const json body = json::parse(req.body, nullptr, false);
  const auto points = [](const json& list) {
    bool ok = list.is_array() && list.size() <= 10000;
    if (ok)
      for (const json& p : list) ok = ok && p.is_array() && p.size() == 3 && p[0].is_number() && p[1].is_number() && p[2].is_number();
    return ok;
  };
  bool ok = body.is_object() && body.contains("outline") && points(body["outline"]);
  if (ok && body.contains("openings")) {
    ok = body["openings"].is_array() && body["openings"].size() <= 100;
    for (const json& o : body["openings"]) ok = ok && points(o);
  }
  if (ok && body.contains("zones")) {
    ok = body["zones"].is_array() && body["zones"].size() <= 100;
    for (const json& z : body["zones"])
      ok = ok && z.is_object() && z.contains("points") && points(z["points"]) && z.value("thickness_mm", json()).is_number() &&
           z.value("blend_mm", json()).is_number();
  }
  if (ok && body.contains("paint")) {
    ok = body["paint"].is_array() && body["paint"].size() <= 20000;
    for (const json& d : body["paint"])
      ok = ok && d.is_object() && d.contains("at") && points(json::array({d["at"]})) && d.value("radius_mm", json()).is_number() &&
           d.value("thickness_mm", json()).is_number() && d.value("strength", json()).is_number();
  }
  if (!ok)
    return reply_error(res, 400,
                       "a draft is {\"outline\": [[x, y, z], …], \"openings\": [[[x, y, z], …], …], \"zones\": [{\"points\": [[x, y, z], …], "
                       "\"thickness_mm\": T, \"blend_mm\": B}, …], \"paint\": [{\"at\": [x, y, z], \"radius_mm\": R, \"thickness_mm\": T, "
                       "\"strength\": S}, …]} (at most 10,000 points each, 100 openings, 100 zones, 20,000 dabs)");
  const std::lock_guard<std::mutex> lock(work);
  json s = session();
  s["draft"] = body;
  save(s);
  reply_json(res, {{"points", body["outline"].size()}});
}

//! The session as a recipe (recipe.json beside it): the scan as uploaded, the appliance as built,
//! the mold's options and the production as the body gives them ({"mold": {…}, "production":
//! {"run", "subject", "likeness"}}), the workshop's ledger and keys (WORKSHOP/workshop.ledger,
//! .sign, .key), the output in run/. `tracecast run` on it makes the same appliance.
json Studio::Impl::compose_recipe(const json& body) const {
  const json s = session();
  if (!s.contains("scan") || !s.contains("appliance")) throw InputError(dir / "session.json", "open a scan and build the appliance first");
  const json mold = body.value("mold", json::object()), given = body.value("production", json::object());
  if (!mold.is_object() || !given.is_object()) throw InputError(dir / "recipe.json", "\"mold\" and \"production\" must be objects");
  json production = {{"ledger", "../workshop.ledger"}, {"signing_key", "../workshop.sign"}, {"mark_key", "../workshop.key"}};
  for (const char* k : {"run", "subject", "likeness"})
    if (given.contains(k) && !(given[k].is_string() && given[k].get<std::string>().empty())) production[k] = given[k];
  return {{"scan", {{"inputs", {"inputs/" + s["scan"]["input"].get<std::string>()}}, {"units", s["scan"]["units"]}}},
          {"appliance", s["appliance"]["options"]},
          {"mold", mold},
          {"production", production},
          {"output", "run"}};
}

//! Writes recipe.json from the body ({"mold", "production"}), which the session keeps for the page.
json Studio::Impl::write_recipe(const json& body) const {
  const json given = body.is_object() ? body : json::object();
  const json recipe = compose_recipe(given);
  write_file_atomically(dir / "recipe.json", recipe.dump(2) + "\n");
  json s = session();
  s["production"] = given;
  save(s);
  return recipe;
}

//! POST /api/recipe: the session saved as recipe.json (checked as `tracecast run` reads it).
void Studio::Impl::save_recipe(const httplib::Request& req, httplib::Response& res) {
  const json body = json::parse(req.body, nullptr, false);
  const std::lock_guard<std::mutex> lock(work);
  reply_json(res, write_recipe(body));
}

//! POST /api/run: the recipe saved and run (`tracecast run`): the consent gate, the stamped and
//! recorded mold, the previews and report.html, in run/. A refusal records nothing.
void Studio::Impl::run_recipe_here(const httplib::Request& req, httplib::Response& res) {
  const json body = json::parse(req.body, nullptr, false);
  const std::lock_guard<std::mutex> lock(work);
  write_recipe(body);
  pipeline::run_recipe(pipeline::read_recipe(dir / "recipe.json"));
  reply_json(res, last_run());
}

//! The mold made last (run/report.json): its identifier, pieces, printer, casting sheet (the
//! report's silicone mix, pull, sections, bolts and mark) and files; null if none.
json Studio::Impl::last_run() const {
  std::ifstream in(dir / "run" / "report.json");
  const json r = json::parse(in, nullptr, false);
  if (!r.is_object() || !r.contains("mold")) return nullptr;
  json files = json::array();
  for (const auto& e : fs::directory_iterator(dir / "run"))
    if (e.is_regular_file()) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  json parts = json::array();
  for (const json& p : r["mold"]["parts"])
    parts.push_back({{"name", p["name"]}, {"printable", p["printable"]}, {"resin_ml", p["resin_ml"]}, {"min_wall_mm", p["min_wall_mm"]},
                     {"print_size_mm", p["print_size_mm"]}, {"file", "mold-" + p["name"].get<std::string>() + ".stl"}});
  const json& m = r["mold"];
  return {{"id", m["mark"]["id"]},
          {"parts", parts},
          {"printer", m["options"]["printer_profile"]},
          {"casting", {{"mix", m["casting"]},
                       {"pull", m["pull"]},
                       {"sections", m.value("sections", json())},
                       {"bolts", m.value("bolts", json())},
                       {"mark", {{"tiles", m["mark"]["tiles"]}, {"marked_area_mm2", m["mark"]["marked_area_mm2"]}}}}},
          {"files", files},
          {"total_s", r["total_s"]}};
}

//! POST /api/trace?name=FILE: the body is a scan of a cast (or a printed part); the identifier is
//! read under the workshop's marking key and looked up in its ledger, as `tracecast trace` does.
void Studio::Impl::trace(const httplib::Request& req, httplib::Response& res) {
  const std::string name = req.get_param_value("name");
  if (!safe_name(name)) return reply_error(res, 400, fmt::format("\"{}\": a scan's name must be a plain file name (letters, digits, . _ -)", name));
  const fs::path ledger_file = options.workshop / "workshop.ledger", key_file = options.workshop / "workshop.key";
  for (const fs::path& f : {ledger_file, key_file})
    if (!fs::exists(f)) return reply_error(res, 409, fmt::format("no {} in the workshop folder: tracing reads the workshop's key and ledger", f.filename().string()));
  const std::lock_guard<std::mutex> lock(work);
  fs::create_directories(dir / "traced");
  const fs::path scan = dir / "traced" / name;
  write_file_atomically(scan, req.body);
  const Mesh m = io::read_geometry(scan).mesh;
  const watermark::Detection d = watermark::detect(m, watermark::read_key(key_file));
  json out = {{"scan", name}, {"outcome", watermark::outcome_name(d.outcome)}, {"reason", d.reason}, {"record", nullptr}};
  if (d.outcome == watermark::Outcome::found) {
    out["id"] = watermark::format_id(d.id);
    out["confidence"] = d.confidence;
    if (const auto record = ledger::Ledger::open(ledger_file).piece_record(d.id)) out["record"] = *record;
  }
  reply_json(res, out);
}

//! GET /api/files/NAME and /api/run/NAME: a file of the session, or of its run (the mold's 3MF and
//! STLs, report.html, …): a download, or a page for report.html.
void Studio::Impl::send_from(const fs::path& folder, const std::string& what, const std::string& name, httplib::Response& res) const {
  if (!safe_name(name)) return reply_error(res, 400, fmt::format("\"{}\": not a file of {} (a plain file name, no path)", name, what));
  const fs::path file = folder / name;
  if (!fs::is_regular_file(file)) return reply_error(res, 404, fmt::format("no file \"{}\" in {}", name, what));
  if (file.extension() == ".html") return res.set_content(read_file_or_empty(file), "text/html; charset=utf-8");
  res.set_header("Content-Disposition", "attachment; filename=\"" + name + "\"");
  res.set_content(read_file_or_empty(file), "application/octet-stream");
}

//! GET /api/fields/appliance: the thickness and draft maps report.html shows, per vertex of the
//! appliance as /api/mesh/appliance sends it. The draft is towards the pull of the mold made last
//! (run/report.json), or before any mold towards the face's front, near which the pull is chosen.
void Studio::Impl::send_appliance_fields(httplib::Response& res) const {
  if (!fs::exists(dir / "appliance.ply")) return reply_error(res, 404, "no appliance yet");
  const json s = session();
  Vec3 pull = s["scan"]["face"].get<FaceAnalysis>().frame.axes.col(2);  // z: the face's front
  std::string towards = "the face's front (no mold yet)";
  std::ifstream run_report(dir / "run" / "report.json");
  if (const json r = json::parse(run_report, nullptr, false); r.is_object() && r.contains("mold")) {
    pull = json_vec(r["mold"]["pull"]["direction"]);
    towards = "the pull of the mold made last";
  }
  const Mesh appliance = io::read_mesh(dir / "appliance.ply").mesh, face = io::read_mesh(dir / "face.ply").mesh;
  reply_json(res, {{"fields", pipeline::appliance_fields(appliance, face, pull)}, {"ramps", pipeline::colour_ramps()}, {"draft_towards", towards}});
}

void Studio::Impl::send_mesh(const std::string& name, httplib::Response& res) const {
  if (name != "face" && name != "appliance") return reply_error(res, 404, fmt::format("no mesh \"{}\" (face, appliance)", name));
  const fs::path file = dir / (name + ".ply");
  if (!fs::exists(file)) return reply_error(res, 404, fmt::format("no {} yet", name));
  res.set_content(mesh_bytes(io::read_mesh(file).mesh), "application/octet-stream");
}

void Studio::Impl::routes() {
  // Every request, the page's own assets included, carries the token.
  server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    return authorized(req, res) ? httplib::Server::HandlerResponse::Unhandled : httplib::Server::HandlerResponse::Handled;
  });
  server.set_payload_max_length(options.max_upload_mb << 20);
  // SO_REUSEADDR only (a restart need not wait out TIME_WAIT): the library's default also sets
  // SO_REUSEPORT, with which a second server, anyone's, could listen on the same port beside it.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (res.status != 413) {  // the routes' own refusals carry their message; the server's get one here
      if (res.body.empty())
        reply_error(res, res.status,
                    res.status == 404 ? fmt::format("no such address: {}", req.path)
                                      : fmt::format("the request could not be read (HTTP {}): a POST needs a body and its Content-Length", res.status));
      return;
    }
    if (req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0)
      reply_error(res, 413, "send the scan as the request's body with Content-Type application/octet-stream (a form-encoded body is limited to 8 KB)");
    else
      reply_error(res, 413, fmt::format("the upload is larger than the studio's limit of {} MB (tracecast studio --max-upload)", options.max_upload_mb));
  });
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const InputError& x) {
      reply_error(res, 400, x.what());
    } catch (const std::exception& x) {
      reply_error(res, 500, x.what());
    }
  });
  server.Get("/", [this](const httplib::Request& req, httplib::Response& res) { page(req, res); });
  server.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  server.Get("/three.module.js", [](const httplib::Request&, httplib::Response& res) { res.set_content(kThreeModuleJs, "text/javascript"); });
  server.Get("/api/session", [this](const httplib::Request&, httplib::Response& res) {
    reply_json(res, {{"session", session()},
                     {"run", last_run()},
                     {"appliance_options", appliance_option_table().describe()},
                     {"regions", region_preset_names()},
                     {"openings", feature_preset_names()},
                     {"mold_options", print::mold_option_table().describe()},
                     {"workshop", {{"folder", options.workshop.string()}, {"ledger", fs::exists(options.workshop / "workshop.ledger")}}}});
  });
  server.Post("/api/scan", [this](const httplib::Request& req, httplib::Response& res) { upload_scan(req, res); });
  server.Post("/api/appliance", [this](const httplib::Request& req, httplib::Response& res) { build_appliance(req, res); });
  server.Post("/api/draft", [this](const httplib::Request& req, httplib::Response& res) { save_draft(req, res); });
  server.Post("/api/recipe", [this](const httplib::Request& req, httplib::Response& res) { save_recipe(req, res); });
  server.Post("/api/run", [this](const httplib::Request& req, httplib::Response& res) { run_recipe_here(req, res); });
  server.Post("/api/trace", [this](const httplib::Request& req, httplib::Response& res) { trace(req, res); });
  server.Get("/api/ledger", [this](const httplib::Request&, httplib::Response& res) {
    const std::lock_guard<std::mutex> lock(work);
    reply_json(res, detail::ledger_view(options.workshop));
  });
  server.Post(R"(/api/ledger/([a-z-]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const json body = json::parse(req.body, nullptr, false);
    if (!body.is_object()) return reply_error(res, 400, "the request is not a JSON object");
    const std::lock_guard<std::mutex> lock(work);
    reply_json(res, detail::ledger_change(options.workshop, req.matches[1], body));
  });
  server.Get(R"(/api/run/(.*))", [this](const httplib::Request& req, httplib::Response& res) { send_from(dir / "run", "this session's run", req.matches[1], res); });
  server.Get("/api/fields/appliance", [this](const httplib::Request&, httplib::Response& res) { send_appliance_fields(res); });
  server.Get(R"(/api/mesh/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) { send_mesh(req.matches[1], res); });
  server.Get(R"(/api/files/(.*))", [this](const httplib::Request& req, httplib::Response& res) { send_from(dir, "this session", req.matches[1], res); });
}

Studio::Studio(StudioOptions o) : impl_(std::make_unique<Impl>()) {
  if (sodium_init() < 0) throw ProcessingError("studio: libsodium could not start");
  impl_->options = std::move(o);
  impl_->dir = impl_->options.workshop / "session";
  std::error_code ec;
  fs::create_directories(impl_->dir, ec);
  if (ec || !fs::is_directory(impl_->dir)) throw InputError(impl_->options.workshop, "cannot hold the studio's session: " + ec.message());
  impl_->routes();
}

Studio::~Studio() { stop(); }

int Studio::bind() {
  Impl& m = *impl_;
  m.port = m.options.port == 0 ? m.server.bind_to_any_port(m.options.host) : (m.server.bind_to_port(m.options.host, m.options.port) ? m.options.port : -1);
  if (m.port < 0) throw ProcessingError(fmt::format("studio: cannot listen on {}:{} (in use, or not an address of this machine)", m.options.host, m.options.port));
  return m.port;
}

void Studio::serve() {
  Impl& m = *impl_;
  m.serving = true;
  if (!m.stop_asked) m.server.listen_after_bind();
  m.serving = false;
}

// The library's stop() does nothing before its loop has started: a stop asked for in that moment
// waits for the loop (a server stopped right after it was started otherwise served on forever).
void Studio::stop() {
  Impl& m = *impl_;
  m.stop_asked = true;
  while (m.serving && !m.server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  m.server.stop();
}
std::string Studio::url() const { return fmt::format("http://{}:{}/?token={}", impl_->options.host, impl_->port, impl_->token); }
const std::string& Studio::token() const { return impl_->token; }
const fs::path& Studio::session_dir() const { return impl_->dir; }

}  // namespace tracecast::studio
