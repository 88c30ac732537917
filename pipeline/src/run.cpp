#include "tracecast/pipeline/run.h"

#include <tbb/parallel_invoke.h>

#include <fmt/format.h>
#include <sodium.h>

#include <chrono>
#include <map>
#include <set>
#include <fstream>
#include <sstream>

#include "report_html.h"
#include "tracecast/ledger/ledger.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/face.h"
#include "tracecast/mesh/report_json.h"
#include "tracecast/version.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/render.h"
#include "tracecast/mesh/repair.h"
#include "tracecast/mesh/units.h"
#include "tracecast/scan/register.h"
#include "tracecast/sculpt/ear.h"
#include "tracecast/sculpt/mask.h"
#include "tracecast/watermark/payload.h"

namespace tracecast::pipeline {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr int kStageVersion = 21;  // bump when a stage's outputs change for the same inputs

std::string sha256_text(const std::string& s) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, reinterpret_cast<const unsigned char*>(s.data()), s.size());
  char hex[2 * crypto_hash_sha256_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  return hex;
}

json read_json_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return nullptr;
  std::stringstream ss;
  ss << f.rdbuf();
  return json::parse(ss.str(), nullptr, false);
}

//! The stages of one run: each is redone only when the hash of what it depends on changed or one
//! of its files is missing or altered.
class Stages {
 public:
  Stages(fs::path out, int count, std::function<void(const StageEvent&)> progress)
      : out_(std::move(out)), state_(out_ / ".tracecast"), count_(count), progress_(std::move(progress)) {
    fs::create_directories(state_);
  }
  fs::path file(const std::string& name) const { return out_ / name; }
  std::string hash_of(const std::string& name) const { return ledger::file_sha256(file(name)); }

  //! `key`: everything the outputs depend on; `outputs`: file names in the output folder, to
  //! which the work may add more in its result's "output_files" (files whose number it decides).
  json run(const std::string& name, const json& key_json, const std::vector<std::string>& outputs, const std::function<json()>& work) {
    const std::string key = sha256_text(json{{"stage", name}, {"version", kStageVersion}, {"key", key_json}}.dump());
    const fs::path record_file = state_ / (name + ".json");
    const json record = read_json_file(record_file);
    StageEvent ev;
    ev.stage = name;
    ev.index = ++index_;
    ev.count = count_;
    ev.expected_s = record.is_object() ? record.value("seconds", 0.0) : 0.0;
    if (progress_) progress_(ev);
    const auto t0 = std::chrono::steady_clock::now();
    json result;
    bool cached = record.is_object() && record.value("key", "") == key;
    if (cached)
      for (const std::string& o : with_declared(outputs, record["result"])) {
        std::error_code ec;
        if (!fs::is_regular_file(file(o), ec) || record["outputs"].value(o, "") != hash_of(o)) {
          cached = false;
          break;
        }
      }
    double seconds = 0;
    if (cached) {
      result = record["result"];
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } else {
      result = work();
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      json hashes = json::object();
      for (const std::string& o : with_declared(outputs, result)) hashes[o] = hash_of(o);
      // The record last: an interrupted stage has none, and is redone.
      write_file_atomically(record_file, json{{"key", key}, {"outputs", hashes}, {"result", result}, {"seconds", seconds}}.dump(2) + "\n");
    }
    timings_.push_back({{"stage", name}, {"seconds", seconds}, {"cached", cached},
                        {"last_run_s", cached ? record.value("seconds", 0.0) : seconds}});
    ev.kind = StageEvent::Done;
    ev.cached = cached;
    ev.seconds = seconds;
    if (progress_) progress_(ev);
    return result;
  }
  const json& timings() const { return timings_; }

 private:
  static std::vector<std::string> with_declared(std::vector<std::string> outputs, const json& result) {
    if (result.is_object() && result.contains("output_files"))
      for (const json& f : result["output_files"]) outputs.push_back(f.get<std::string>());
    return outputs;
  }
  fs::path out_, state_;
  int count_, index_ = 0;
  std::function<void(const StageEvent&)> progress_;
  json timings_ = json::array();
};

json scan_summary(const scan::ViewsScan& s, const std::vector<fs::path>& inputs) {
  std::vector<std::string> names;
  for (const fs::path& p : inputs) names.push_back(p.filename().string());
  json j = s.report;
  j["registration"] = s.registration ? scan::registration_json(*s.registration, names) : json();
  return j;
}

}  // namespace

bool set_up_workshop(const Recipe& recipe) {
  const Production& p = recipe.production;
  if (!recipe.setup || fs::exists(p.ledger)) return false;
  const Setup& s = *recipe.setup;
  for (const fs::path& f : {p.ledger, p.signing_key, p.mark_key})
    if (!f.parent_path().empty()) fs::create_directories(f.parent_path());
  if (!fs::exists(p.signing_key)) ledger::write_signing_key(p.signing_key, ledger::SigningKey::generate());
  if (!fs::exists(p.mark_key)) watermark::write_key(p.mark_key, watermark::Key::generate());
  const ledger::SigningKey signer = ledger::read_signing_key(p.signing_key);
  ledger::Ledger::create(p.ledger, signer, s.maker, s.workshop);
  ledger::Ledger book = ledger::Ledger::open(p.ledger, &signer);
  book.register_key(watermark::read_key(p.mark_key).id());
  if (!s.operator_code.empty()) book.add_operator(s.operator_code, s.operator_name);
  book.add_subject(p.subject);
  const ledger::Use use = *ledger::parse_use(s.use);
  book.add_consent(p.subject, use, s.consent_valid_until, ledger::file_sha256(s.consent_document), s.consent_given_by);
  book.open_run(use, s.client, s.prescriber, s.operator_code);
  return true;
}

namespace {

//! What a stage builds on is read from the files (the same whether the stage before was redone or
//! reused); the pictures may take this run's meshes from memory instead of reading them back.
struct StageFiles {
  Stages& stages;
  std::map<std::string, Mesh> made_here;
  Mesh load(const std::string& name) const { return io::read_mesh(stages.file(name)).mesh; }
  Mesh load_for_pictures(const std::string& name) const {
    const auto it = made_here.find(name);
    return it != made_here.end() ? it->second : load(name);
  }
  void keep(const std::string& name, Mesh m) {
    io::write_mesh(stages.file(name), m);
    made_here[name] = std::move(m);
  }
};

//! 1. scan → face. A mask's or an ear's head given as one closed surface is used as it is: the
//! reconstruction's cleaning and trimming open a closed head where it is thin (the ear's rim: a
//! generated head came back with 3 holes), and those pieces need it closed.
json scan_stage(StageFiles& f, const Recipe& recipe, const json& inputs) {
  return f.stages.run("scan", {{"inputs", inputs}, {"options", recipe.scan_options}, {"piece", recipe.piece}}, {"face.ply"}, [&] {
    io::ReadOptions ro;
    ro.units = *parse_unit(recipe.units);
    std::vector<Mesh> views;
    for (const fs::path& s : recipe.scans) views.push_back(io::read_geometry(s, ro).mesh);
    if (recipe.piece != "appliance" && views.size() == 1) {
      MeasureOptions mo;
      mo.self_intersections = false;
      const MeshInfo info = measure(views.front(), mo);
      if (info.watertight && info.components == 1) {
        io::write_mesh(f.stages.file("face.ply"), views.front());
        return json{{"used_as_is", "a closed surface: not reconstructed"}, {"surface", info}};
      }
    }
    scan::ViewsScan scanned = scan::scan_views(views, recipe.reconstruct);
    io::write_mesh(f.stages.file("face.ply"), scanned.surface);
    return scan_summary(scanned, recipe.scans);
  });
}

//! The piece's file and its stamped copy: appliance.ply, mask.ply or ear.ply.
std::string piece_file(const Recipe& r) { return r.piece + ".ply"; }
std::string marked_file(const Recipe& r) { return r.piece + "-marked.ply"; }

//! A level set's surface, as a mask or an ear comes out, has slivers that the mark's relief folds
//! into crossings (the mold then refuses it): remeshed first, as `tracecast repair --remesh-edge`
//! does (docs/user-guide.md, tracecast ear and mask), to the edges given there.
constexpr double kEarRemeshMm = 0.4, kMaskRemeshMm = 1.0;
Mesh remeshed_for_the_mark(const Mesh& piece, double edge_mm, json& report) {
  RepairOptions o;
  o.remesh_edge_mm = edge_mm;
  RepairReport r;
  Mesh out = repair(piece, o, &r);
  report["remesh"] = r;
  return out;
}

//! 2. face → the piece: an appliance, a mask (the face is the wearer's head) or an ear (the face is
//! the head lacking it). The report holds the face's analysis where the piece made one: an
//! appliance's "face", a mask's "wearer".
json piece_stage(StageFiles& f, const Recipe& recipe, const json& likeness_input) {
  Stages& st = f.stages;
  const json key = {{"face", st.hash_of("face.ply")}, {"piece", recipe.piece}, {"options", recipe.appliance_options}, {"likeness", likeness_input}};
  return st.run(recipe.piece, key, {piece_file(recipe)}, [&]() -> json {
    const Mesh face = f.load("face.ply");
    json j;
    if (recipe.piece == "mask") {
      std::optional<Mesh> likeness;
      io::ReadOptions ro;
      ro.units = *parse_unit(recipe.units);
      if (!recipe.likeness_scan.empty()) likeness = io::read_geometry(recipe.likeness_scan, ro).mesh;
      sculpt::MaskReport r;
      const Mesh mask = sculpt::make_mask(face, likeness ? &*likeness : nullptr, recipe.mask, &r);
      j = r;
      io::write_mesh(st.file(piece_file(recipe)), remeshed_for_the_mark(mask, kMaskRemeshMm, j));
    } else if (recipe.piece == "ear") {
      sculpt::EarReport r;
      const Mesh ear = sculpt::make_ear(face, recipe.ear, &r);
      j = r;
      io::write_mesh(st.file(piece_file(recipe)), remeshed_for_the_mark(ear, kEarRemeshMm, j));
    } else {
      ApplianceReport ar;
      io::write_mesh(st.file(piece_file(recipe)), make_appliance(face, recipe.appliance, nullptr, &ar));
      j = ar;
    }
    return j;
  });
}

//! The mold's files: the package and the pieces' at once (each writer builds its file in memory);
//! a piece file of an earlier mold with other sections, which is not one of this mold's, removed.
std::vector<std::string> write_mold_files(StageFiles& f, const fs::path& output, const print::Mold& m) {
  std::vector<std::string> files{f.stages.file("mold.3mf").string()};
  std::set<std::string> pieces;
  for (const NamedMesh& part : m.print_parts) {
    files.push_back(f.stages.file("mold-" + part.name + ".stl").string());
    pieces.insert("mold-" + part.name + ".stl");
  }
  tbb::parallel_invoke([&] { io::write_objects(f.stages.file("mold.3mf"), m.print_parts); },
                       [&] {
                         for (const NamedMesh& part : m.print_parts) f.keep("mold-" + part.name + ".stl", part.mesh);
                       });
  for (const auto& e : fs::directory_iterator(output)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("mold-", 0) == 0 && e.path().extension() == ".stl" && !pieces.count(name)) fs::remove(e.path());
  }
  return files;
}

//! 3. appliance → stamped, recorded mold (a new mold is a new piece). The face's analysis is the
//! one the appliance stage made on the same face (its report's `face`).
json mold_stage(StageFiles& f, const Recipe& recipe, Workshop& shop, const json& inputs, const json& piece_result) {
  Stages& st = f.stages;
  const std::string piece = piece_file(recipe), marked = marked_file(recipe);
  const std::vector<std::string> mold_files = {"mold.3mf", marked};  // and an STL per piece (output_files)
  json mold_key = {{"appliance", st.hash_of(piece)},
                   {"face", st.hash_of("face.ply")},
                   {"options", recipe.mold_options},
                   {"production",
                    {{"ledger", fs::absolute(recipe.production.ledger).lexically_normal().string()},
                     {"workshop", shop.book().public_key_hex()},
                     {"run", recipe.production.run},
                     {"subject", recipe.production.subject},
                     {"mark_key", shop.mark_key().id()}}}};
  if (!recipe.production.likeness.empty()) mold_key["production"]["likeness"] = recipe.production.likeness;
  return st.run("mold", mold_key, mold_files, [&] {
    const Mesh face = f.load("face.ply"), appliance = f.load(piece);
    json ins = {{st.file("face.ply").string(), st.hash_of("face.ply")}, {st.file(piece).string(), st.hash_of(piece)}};
    for (const auto& i : inputs) ins[i["file"].get<std::string>()] = i["sha256"];
    const char* analysed = piece_result.contains("face") ? "face" : "wearer";
    const std::optional<FaceAnalysis> analysis =
        piece_result.contains(analysed) ? std::optional<FaceAnalysis>(piece_result.at(analysed).get<FaceAnalysis>()) : std::nullopt;
    const TraceableMold made = make_traceable_mold(
        shop, appliance, face, recipe.mold, ins, [&](const print::Mold& m) { return write_mold_files(f, recipe.output, m); }, {},
        analysis ? &*analysis : nullptr);
    f.keep(marked, made.marked);
    const print::SiliconeMix mix = print::silicone_to_mix(made.mold.report.appliance_ml * 1000.0, recipe.silicone);
    json r = mold_report_json(made.mold, recipe.mold, mix);
    r["output_files"] = json::array();
    for (const NamedMesh& part : made.mold.print_parts) r["output_files"].push_back("mold-" + part.name + ".stl");
    r["mark"] = mark_json(made, shop);
    r["files"] = made.outputs;
    return r;
  });
}

//! The top of the head in the piece's report: the face frame of an appliance's face or a mask's
//! wearer; the file's +y for an ear (its report has no frame).
Vec3 picture_up(const json& piece_result) {
  for (const char* who : {"face", "wearer"})
    if (piece_result.contains(who) && piece_result[who].contains("frame")) return json_vec(piece_result[who]["frame"]["y_up"]);
  return Vec3::UnitY();
}

//! 4. previews and the 3D view's data
json previews_stage(StageFiles& f, const Recipe& recipe, const json& mold_result, const json& piece_result) {
  Stages& st = f.stages;
  const std::vector<std::string> preview_files = {"preview-face.png", "preview-" + recipe.piece + ".png", "preview-core.png", "preview-shell.png",
                                                  "preview-mark.png", "viewer.json"};
  json preview_key = json::object();
  for (const std::string& name : {std::string("face.ply"), piece_file(recipe), marked_file(recipe)}) preview_key[name] = st.hash_of(name);
  for (const json& o : mold_result["output_files"]) preview_key[o.get<std::string>()] = st.hash_of(o.get<std::string>());
  preview_key["pull"] = mold_result["pull"]["direction"];
  const Vec3 up = picture_up(piece_result);
  preview_key["up"] = {up.x(), up.y(), up.z()};
  return st.run("previews", preview_key, preview_files, [&] {
    return make_previews(recipe.output, mold_result, [&](const std::string& name) { return f.load_for_pictures(name); }, recipe.piece, up);
  });
}

}  // namespace

RunResult run_recipe(const Recipe& recipe, const std::function<void(const StageEvent&)>& progress) {
  const auto t_start = std::chrono::steady_clock::now();
  const bool created = set_up_workshop(recipe);
  // Every check a mold needs, before any work: ledger, keys, open run, valid consent.
  Workshop shop(recipe.production);
  fs::create_directories(recipe.output);
  Stages stages(recipe.output, 5, progress);
  StageFiles files{stages, {}};

  json inputs = json::array();
  for (const fs::path& s : recipe.scans) inputs.push_back({{"file", s.string()}, {"sha256", ledger::file_sha256(s)}});
  const json scan_result = scan_stage(files, recipe, inputs);
  json likeness_input;
  if (!recipe.likeness_scan.empty()) {
    likeness_input = {{"file", recipe.likeness_scan.string()}, {"sha256", ledger::file_sha256(recipe.likeness_scan)}};
    inputs.push_back(likeness_input);
  }
  const json piece_result = piece_stage(files, recipe, likeness_input);
  const json mold_result = mold_stage(files, recipe, shop, inputs, piece_result);
  RunResult out;
  out.id = watermark::parse_id(mold_result["mark"]["id"].get<std::string>()).value_or(0);
  const json previews = previews_stage(files, recipe, mold_result, piece_result);

  // 5. the report (always: it holds this run's timings and the ledger's record as it is now)
  json report;
  stages.run("report", {{"run", std::chrono::system_clock::now().time_since_epoch().count()}}, {"report.json", "report.html"}, [&] {
    report = {{"recipe", recipe.echo},
              {"recipe_file", recipe.file.string()},
              {"output", recipe.output.string()},
              {"created_workshop", created},
              {"scan", scan_result},
              {"piece", recipe.piece},
              {recipe.piece, piece_result},
              {"mold", mold_result},
              {"previews", previews},
              {"record", shop.book().piece_record(out.id).value_or(json())},
              {"software", kSoftware}};
    report["stages"] = stages.timings();
    report["total_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    write_file_atomically(stages.file("report.json"), report.dump(2) + "\n");
    write_file_atomically(stages.file("report.html"), report_html(report, read_json_file(stages.file("viewer.json")), recipe.output));
    return json{{"id", mold_result["mark"]["id"]}};
  });
  report["stages"] = stages.timings();  // with the report stage itself
  out.report = report;
  return out;
}

}  // namespace tracecast::pipeline
