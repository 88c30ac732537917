// The tracecast binary: exit codes, JSON output, atomic outputs, on generated and real files.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "fixtures.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/units.h"
#include "tracecast/print/printer.h"
#include "tracecast/watermark/attacks.h"
#include "tracecast/watermark/mark.h"

using namespace tracecast;
using test::Run;
using test::run;
using test::run_env;
using test::Workshop;

namespace {

//! What admesh says of an STL (its check, nothing written).
std::string admesh_report(const std::string& stl) {
  FILE* p = ::popen(("admesh " + stl + " 2>&1").c_str(), "r");
  REQUIRE(p);
  std::string out;
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  ::pclose(p);
  return out;
}
}  // namespace

TEST_CASE("cli: usage errors exit 2, help exits 0", "[cli]") {
  CHECK(run("").code == 2);
  CHECK(run("frobnicate").code == 2);
  CHECK(run("info").code == 2);
  CHECK(run("info x.ply --units furlong").code == 2);
  const Run h = run("--help");
  CHECK(h.code == 0);
  CHECK(h.out.find("Exit codes") != std::string::npos);
  CHECK(run("info --help").code == 0);
}

TEST_CASE("cli: info on a generated mesh, text and JSON", "[cli]") {
  const auto dir = test::temp_dir("cli-info");
  io::write_mesh(dir / "cube.stl", test::cube(150));
  const Run t = run("info " + (dir / "cube.stl").string());
  REQUIRE(t.code == 0);
  CHECK(t.out.find("watertight       yes") != std::string::npos);
  const Run j = run("info --json " + (dir / "cube.stl").string());
  REQUIRE(j.code == 0);
  const auto doc = nlohmann::json::parse(j.out);
  CHECK(doc["vertices"] == 8);
  CHECK(doc["faces"] == 12);
  CHECK(doc["watertight"] == true);
  CHECK(doc["genus"] == 0);
  CHECK(doc["volume_mm3"].get<double>() == Approx(150.0 * 150 * 150));
  CHECK(doc["units"]["unit"] == "mm");
  CHECK(run("info -q " + (dir / "cube.stl").string()).out.empty());
}

TEST_CASE("cli: bad input exits 3 with a one-line reason naming the file", "[cli]") {
  const auto dir = test::temp_dir("cli-bad");
  test::write_bytes(dir / "bad.ply", "ply\nformat ascii 1.0\nelement vertex 1000000000000\nend_header\n");
  const Run r = run("info " + (dir / "bad.ply").string());
  CHECK(r.code == 3);
  CHECK(r.err.find((dir / "bad.ply").string()) != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(run("info " + (dir / "missing.obj").string()).code == 3);
}

TEST_CASE("cli: convert writes atomically and keeps the old file on failure", "[cli]") {
  const auto dir = test::temp_dir("cli-convert");
  io::write_mesh(dir / "in.ply", test::uv_sphere(100, 10, 20));
  REQUIRE(run("convert -q " + (dir / "in.ply").string() + " " + (dir / "out.3mf").string()).code == 0);
  const std::string good = test::read_bytes(dir / "out.3mf");
  CHECK(io::read_mesh(dir / "out.3mf").mesh.triangles.size() == test::uv_sphere(100, 10, 20).triangles.size());
  test::write_bytes(dir / "broken.ply", "ply\nformat ascii 1.0\n");
  CHECK(run("convert " + (dir / "broken.ply").string() + " " + (dir / "out.3mf").string()).code == 3);
  CHECK(test::read_bytes(dir / "out.3mf") == good);
  CHECK(run("convert " + (dir / "in.ply").string() + " " + (dir / "out.off").string()).code == 3);  // not writable
  CHECK(run("convert " + (dir / "in.ply").string() + " /nonexistent-dir/out.ply").code == 4);
}

TEST_CASE("cli: synth face is deterministic", "[cli]") {
  const auto dir = test::temp_dir("cli-synth");
  REQUIRE(run("synth face -q -o " + (dir / "a.ply").string() + " --spacing 2 --seed 3").code == 0);
  REQUIRE(run("synth face -q -o " + (dir / "b.ply").string() + " --spacing 2 --seed 3").code == 0);
  CHECK(test::read_bytes(dir / "a.ply") == test::read_bytes(dir / "b.ply"));
  const Run j = run("info --json " + (dir / "a.ply").string());
  const auto doc = nlohmann::json::parse(j.out);
  CHECK(doc["boundary_loops"] == 1);
  CHECK(doc["units"]["unit"] == "mm");
}

TEST_CASE("cli: info on every real scan and both corrupt GLBs", "[cli][shared]") {
  const auto dir = *test::shared_scans();
  auto info = [&](const char* f) { return nlohmann::json::parse(run("info --json " + (dir / f).string()).out); };
  const auto n = info("nefertiti.obj");
  CHECK(n["vertices"] == 49971);
  CHECK(n["faces"] == 99938);
  CHECK(n["watertight"] == true);
  const auto ig = info("igea.ply");
  CHECK(ig["vertices"] == 134345);
  CHECK(ig["units"]["unit"] == "m");
  const auto f = info("face.obj");
  CHECK(f["watertight"] == false);
  CHECK(f["boundary_loops"].get<int>() > 0);
  CHECK(info("decimated-max.obj")["watertight"] == true);
  for (const char* bad : {"corrupt/facecap-utf8-mangled.glb", "corrupt/leeperrysmith-utf8-mangled.glb"}) {
    const Run r = run("info " + (dir / bad).string());
    CHECK(r.code == 3);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
}

TEST_CASE("cli: key new writes a 0600 key and prints only its id", "[cli]") {
  const auto dir = test::temp_dir("cli-key");
  const std::string key = (dir / "w.key").string();
  const Run r = run("key new -o " + key + " --json");
  REQUIRE(r.code == 0);
  const auto doc = nlohmann::json::parse(r.out);
  const std::string id = doc["key_id"];
  CHECK(id.size() == 16);
  const std::string file = test::read_bytes(key);
  const std::string secret = file.substr(file.find("secret ") + 7, 64);
  CHECK(r.out.find(secret) == std::string::npos);
  CHECK(r.err.find(secret) == std::string::npos);
  CHECK(run("key id " + key).out == id + "\n");
  CHECK(run("key new -o " + key).code == 3);  // never overwritten
  CHECK(run("key id " + (dir / "missing.key").string()).code == 3);
  CHECK(run("key").code == 2);
}

TEST_CASE("cli: scan a simulated raw scan; bad scans exit 3 and write nothing", "[cli]") {
  const auto dir = test::temp_dir("cli-scan");
  const std::string raw = (dir / "raw.ply").string(), out = (dir / "face.ply").string(), rep = (dir / "scan.json").string();
  REQUIRE(run("synth scan -q -o " + raw + " --spacing 1 --noise 0.05 --outliers 0.01 --unit cm --random-pose").code == 0);
  const Run r = run("scan " + raw + " -o " + out + " --report " + rep + " --json");
  REQUIRE(r.code == 0);
  const auto doc = nlohmann::json::parse(test::read_bytes(rep));
  CHECK(doc == nlohmann::json::parse(r.out));
  CHECK(doc["units"]["unit"] == "cm");
  CHECK(doc["accuracy_mm"]["p95"].get<double>() < 0.1);
  CHECK(doc["points"]["removed_statistical_outliers"].get<int>() + doc["points"]["removed_radius_outliers"].get<int>() > 0);
  CHECK(io::read_mesh(out).mesh.triangles.size() == doc["surface"]["faces"].get<std::size_t>());

  // A handful of points, and a pebble-sized object: exit 3, no output, no report.
  PointCloud few;
  for (int i = 0; i < 10; ++i) few.points.push_back(Vec3(i, 0, 0));
  io::write_point_cloud(dir / "few.ply", few);
  const Run f = run("scan " + (dir / "few.ply").string() + " -o " + (dir / "x.ply").string() + " --report " +
                    (dir / "x.json").string());
  CHECK(f.code == 3);
  CHECK(f.err.find("too few points") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "x.ply"));
  CHECK_FALSE(std::filesystem::exists(dir / "x.json"));
  CHECK(run("scan " + raw + " -o " + out + " --crop cylinder:1").code == 2);
}

TEST_CASE("cli: ledger from init to a recorded piece; refusals and tampering exit 3", "[cli]") {
  const auto dir = test::temp_dir("cli-ledger");
  const std::string env = "env TRACECAST_LEDGER=" + (dir / "shop.ledger").string() +
                          " TRACECAST_SIGNING_KEY=" + (dir / "shop.sign").string() + " ";
  auto tc = [&](const std::string& args) { return run_env(env, args); };
  REQUIRE(tc("ledger init --maker 7 --name Shop -q").code == 0);
  REQUIRE(tc("key new -q -o " + (dir / "m.key").string()).code == 0);
  test::write_bytes(dir / "consent.txt", "I agree.");
  REQUIRE(tc("ledger subject S-1 -q").code == 0);
  REQUIRE(tc("ledger consent -q --subject S-1 --use film --valid-until 2099-01-01 --document " + (dir / "consent.txt").string() +
             " --given-by S-1").code == 0);
  const Run opened = tc("ledger run open --use film --client Studio --json");
  REQUIRE(opened.code == 0);
  CHECK(nlohmann::json::parse(opened.out)["run"] == 1);
  const Run piece = tc("ledger piece --json --run 1 --subject S-1 --key " + (dir / "m.key").string());
  REQUIRE(piece.code == 0);
  CHECK(nlohmann::json::parse(piece.out)["id"] == "0007-000001-000001");
  CHECK(tc("ledger piece --run 1 --subject S-2 --key " + (dir / "m.key").string()).code == 3);  // no consent
  CHECK(tc("ledger run open --use medical --client Clinic").code == 3);                         // no prescriber
  CHECK(tc("ledger release -q --piece 0007-000001-000001 --accepted --by QA").code == 0);
  CHECK(tc("ledger release -q --piece 0007-000001-000001 --rejected --by QA").code == 3);  // once only
  REQUIRE(tc("ledger export -q --run 1 -o " + (dir / "run1.csv").string()).code == 0);
  const std::string csv = test::read_bytes(dir / "run1.csv");
  CHECK(csv.rfind("id,number,subject", 0) == 0);
  CHECK(csv.find("\n0007-000001-000001,1,S-1,") != std::string::npos);
  CHECK(csv.find(",accepted,QA,") != std::string::npos);
  CHECK(tc("ledger verify -q").code == 0);
  CHECK(run("ledger verify").code == 3);  // no ledger given
  // Alter the file itself, as a disk editor would, in text only the piece entry (5) holds.
  std::string bytes = test::read_bytes(dir / "shop.ledger");
  const auto pos = bytes.find("\"consent_entry\":3");  // in the piece entry only
  REQUIRE(pos != std::string::npos);
  REQUIRE(bytes.find("\"consent_entry\":3", pos + 1) == std::string::npos);
  bytes[pos + 16] = '4';
  test::write_bytes(dir / "shop.ledger", bytes);
  const Run v = tc("ledger verify --json");
  CHECK(v.code == 3);
  INFO(v.err);
  CHECK(v.err.find("entry 5") != std::string::npos);
}

TEST_CASE("cli: repair fills a small hole, reports it, and refuses bad input", "[cli]") {
  const auto dir = test::temp_dir("cli-repair");
  Mesh s = test::uv_sphere(50, 30, 60);
  Mesh holed = s;
  holed.triangles.clear();
  for (const Tri& t : s.triangles)
    if ((s.vertices[t[0]] - Vec3(50, 0, 0)).norm() > 5) holed.triangles.push_back(t);
  io::write_mesh(dir / "holed.ply", holed);
  const Run r = run("repair " + (dir / "holed.ply").string() + " -o " + (dir / "fixed.ply").string() + " --report " +
                    (dir / "r.json").string() + " -q");
  REQUIRE(r.code == 0);
  const auto doc = nlohmann::json::parse(test::read_bytes(dir / "r.json"));
  REQUIRE(doc["holes"].size() == 1);
  CHECK(doc["holes"][0]["filled"] == true);
  CHECK(nlohmann::json::parse(run("info --json " + (dir / "fixed.ply").string()).out)["watertight"] == true);
  test::write_bytes(dir / "bad.obj", "v 0 0 0\nv 1 0 0\nf 1 2 3\n");
  CHECK(run("repair " + (dir / "bad.obj").string() + " -o " + (dir / "x.ply").string()).code == 3);
  CHECK_FALSE(std::filesystem::exists(dir / "x.ply"));
  CHECK(run("repair " + (dir / "holed.ply").string() + " -o " + (dir / "x.ply").string() + " --max-hole -1").code == 2);
}

TEST_CASE("cli: appliance, mirror and landmarks on the bundled example; bad specs write nothing", "[cli][slow]") {
  const auto dir = test::temp_dir("cli-appliance");
  const std::string face = std::string(TRACECAST_SOURCE_DIR) + "/assets/example-face.ply";
  const Run a = run("appliance " + face + " -o " + (dir / "mask.ply").string() + " --report " + (dir / "r.json").string() + " --json");
  INFO(a.err);
  REQUIRE(a.code == 0);
  const auto j = nlohmann::json::parse(a.out);
  CHECK(j["solid"]["closed"] == true);
  CHECK(j["solid"]["self_intersections"] == 0);
  CHECK(j["boundary_loops"] == 6);
  CHECK(j["interior_thickness_mm"]["min"].get<double>() >= 1.9);
  CHECK(j["interior_thickness_mm"]["max"].get<double>() <= 2.1);
  CHECK(j["edge_thickness_max_mm"].get<double>() <= 0.1);
  CHECK(nlohmann::json::parse(test::read_bytes(dir / "r.json")) == j);
  CHECK(io::read_mesh((dir / "mask.ply").string()).mesh.triangles.size() == j["solid"]["faces"].get<std::size_t>());

  const Run l = run("landmarks " + face + " --json");
  REQUIRE(l.code == 0);
  const auto lj = nlohmann::json::parse(l.out);
  CHECK(lj["landmarks_mm"]["eye_left"][0].get<double>() > 15);
  CHECK(lj["landmarks_mm"]["eye_right"][0].get<double>() < -15);

  // Bad input: exit 3, one clear line, nothing written.
  const std::string out = (dir / "bad.ply").string();
  auto refused = [&](const std::string& args, const char* says) {
    const Run r = run("appliance " + face + " -o " + out + " " + args);
    CHECK(r.code == 3);
    CHECK(r.err.find(says) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(out));
  };
  test::write_bytes(dir / "thin.json", R"({"thickness_mm": -1})");
  refused("--spec " + (dir / "thin.json").string(), "\"thickness_mm\" = -1 is out of range (0, 30] mm");
  refused("--region elbow", "unknown region");
  test::write_bytes(dir / "far.json", R"({"region": {"outline": [[400, 400], [450, 400], [450, 450]]}})");
  refused("--spec " + (dir / "far.json").string(), "does not cover");
  test::write_bytes(dir / "typo.json", R"({"thicknes_mm": 2})");
  refused("--spec " + (dir / "typo.json").string(), "unknown key");
  // A sculpt that does not overlap the face.
  io::Geometry g = io::read_mesh(face);
  for (Vec3& v : g.mesh.vertices) v += Vec3(0, 0, -400);
  io::write_mesh((dir / "far-sculpt.ply").string(), g.mesh);
  refused("--sculpt " + (dir / "far-sculpt.ply").string(), "does not overlap");
  refused("--front 1,0,0", "--front lies across");

  // Mirror on a symmetric face finds no defect (and says how to mark one).
  const Run m = run("mirror " + face + " -o " + out);
  CHECK(m.code == 3);
  CHECK(m.err.find("no defect found") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out));
}

TEST_CASE("cli: mold writes a 3MF and one STL per part that admesh and PrusaSlicer accept; check reports them", "[cli][slicer][slow]") {
  const auto dir = test::temp_dir("cli-mold");
  const std::string face = std::string(TRACECAST_SOURCE_DIR) + "/assets/example-face.ply";
  const std::string piece = (dir / "nose.ply").string();
  REQUIRE(run("appliance " + face + " -o " + piece + " --region nose --openings nostrils -q").code == 0);
  const Workshop shop("cli-mold-shop");
  const Run m = shop.tc("mold " + piece + " --face " + face + " -o " + (dir / "mold.3mf").string() + shop.mold_flags + " --json");
  INFO(m.err);
  REQUIRE(m.code == 0);
  const auto j = nlohmann::json::parse(m.out);
  CHECK(j["files"].size() == 3);
  CHECK(j["casting"]["silicone_g"].get<double>() > j["casting"]["cavity_ml"].get<double>());
  // The 3MF holds two named objects in millimetres; each STL is one closed part.
  const io::Geometry g3 = io::read_mesh((dir / "mold.3mf").string());
  REQUIRE(g3.objects.size() == 2);
  CHECK(g3.objects[0].name == "core");
  CHECK(g3.objects[1].name == "shell");
  // Both parts printable (valid solids, every printed wall at least the printer's minimum, even
  // round the sprue on the nose's steep side), and check's verdict is the mold's own.
  const Run c = run("check " + (dir / "mold.3mf").string() + " --json");
  INFO(c.out);
  const auto cj = nlohmann::json::parse(c.out);
  REQUIRE(cj["parts"].size() == 2);
  CHECK(c.code == 0);
  CHECK(cj["printable"] == true);
  for (const auto& p : cj["parts"]) {
    CHECK(p["valid_solid"] == true);
    CHECK(p["walls_ok"] == (p["min_wall_mm"].get<double>() >= p["required_wall_mm"].get<double>()));
    CHECK(p["printable"] == (p["valid_solid"].get<bool>() && p["walls_ok"].get<bool>() && p["fits_build_volume"].get<bool>()));
  }
  for (std::size_t k = 0; k < 2; ++k) {  // the mold's own report says the same of the same parts
    CHECK(j["parts"][k]["printable"] == cj["parts"][k]["printable"]);
    CHECK(j["parts"][k]["min_wall_mm"].get<double>() == Approx(cj["parts"][k]["min_wall_mm"].get<double>()).margin(1e-6));
  }

  // Needs admesh and prusa-slicer: CTest's "slicer" test, reported as skipped where they are absent.
  REQUIRE(std::system("command -v admesh >/dev/null 2>&1 && command -v prusa-slicer >/dev/null 2>&1") == 0);
  for (const char* part : {"core", "shell"}) {
    const std::string stl = (dir / (std::string("mold-") + part + ".stl")).string();
    REQUIRE(std::filesystem::exists(stl));
    {
      const std::string out = admesh_report(stl);
      INFO(out);
      CHECK(out.find("Total disconnected facets        :     0") != std::string::npos);
      CHECK(out.find("Number of parts       :     1") != std::string::npos);
    }
    {
      const std::string gcode = (dir / (std::string(part) + ".gcode")).string(), sl1 = (dir / (std::string(part) + ".sl1")).string();
      CHECK(std::system(("prusa-slicer --export-gcode " + stl + " --output " + gcode + " >/dev/null 2>&1").c_str()) == 0);
      CHECK(std::filesystem::exists(gcode));
      // SLA with the resin profile's build plate (218 × 123 mm), supports off to keep the test short.
      CHECK(std::system(("prusa-slicer --printer-technology SLA --export-sla " + stl + " --output " + sl1 +
                         " --bed-shape 0x0,218x0,218x123,0x123 --display-width 218 --display-height 123"
                         " --display-pixels-x 7680 --display-pixels-y 4320 --max-print-height 250 --no-supports-enable"
                         " >/dev/null 2>&1")
                            .c_str()) == 0);
      CHECK(std::filesystem::exists(sl1));
    }
  }

  // The same piece for a printer 80 mm on each side: each part in sections, each section one part
  // for admesh, every section's pose within that bed, and PrusaSlicer slicing each on it (SLA:
  // the 80 × 80 mm display and 80 mm height).
  const Run ms = shop.tc("mold " + piece + " --face " + face + " -o " + (dir / "small.3mf").string() + shop.mold_flags +
                         " --build-volume 80,80,80 --json");
  INFO(ms.err);
  REQUIRE(ms.code == 0);
  const auto sj = nlohmann::json::parse(ms.out);
  const std::size_t sections = sj["sections"]["count"].get<std::size_t>();
  CHECK(sections >= 2);
  REQUIRE(sj["parts"].size() == 2 * sections);
  for (const auto& p : sj["parts"]) {
    const std::string name = p["name"].get<std::string>(), stl = (dir / ("small-" + name + ".stl")).string();
    INFO(name);
    REQUIRE(std::filesystem::exists(stl));
    io::ReadOptions mm;
    mm.units = Unit::Millimetre;  // as written (a small piece would otherwise be taken for centimetres)
    const Aabb box = bounding_box(io::read_mesh(stl, mm).mesh.vertices);
    CHECK((box.extent().array() <= 80.0).all());
    // On the bed as written: within its 80 × 80 mm, on z = 0, in its middle.
    CHECK((box.min.array() >= -1e-3).all());
    CHECK((box.max.array() <= 80.0 + 1e-3).all());
    CHECK(box.min.z() == Approx(0).margin(1e-4));
    CHECK((0.5 * (box.min + box.max)).head<2>().isApprox(Eigen::Vector2d(40, 40), 1e-3));
    CHECK(admesh_report(stl).find("Number of parts       :     1") != std::string::npos);
    const std::string sl1 = (dir / (name + ".sl1")).string();
    CHECK(std::system(("prusa-slicer --printer-technology SLA --export-sla " + stl + " --output " + sl1 +
                       " --bed-shape 0x0,80x0,80x80,0x80 --display-width 80 --display-height 80"
                       " --display-pixels-x 2560 --display-pixels-y 2560 --max-print-height 80 --no-supports-enable >/dev/null 2>&1")
                          .c_str()) == 0);
    CHECK(std::filesystem::exists(sl1));
  }
}

TEST_CASE("cli: check calls a closed part printable, an open one or one with thin walls not (exit 4), and splits a file's objects", "[cli]") {
  const auto dir = test::temp_dir("cli-check");
  // Two 40 mm cubes as named objects of one 3MF, and an open disk alone.
  io::write_objects(dir / "two.3mf", {NamedMesh{"left", test::cube(40)}, NamedMesh{"right", test::cube(40, Vec3(60, 0, 0))}});
  io::write_mesh(dir / "open.stl", test::disk(30, 64));
  const Run ok = run("check " + (dir / "two.3mf").string() + " --json");
  REQUIRE(ok.code == 0);
  const auto j = nlohmann::json::parse(ok.out);
  CHECK(j["printable"] == true);
  REQUIRE(j["parts"].size() == 2);
  CHECK(j["parts"][1]["name"] == "right");
  CHECK(j["parts"][1]["faces"] == 12);
  CHECK(j["parts"][0]["resin_ml"].get<double>() == Approx(64.0).epsilon(1e-6));  // 40³ mm³
  const Run bad = run("check " + (dir / "open.stl").string());
  CHECK(bad.code == 4);
  CHECK(bad.out.find("NOT printable") != std::string::npos);
  CHECK(bad.out.find("the open is not a valid solid") != std::string::npos);
  CHECK(run("check " + (dir / "two.3mf").string() + " --printer laser").code == 2);

  // A closed plate 0.6 mm thick: a valid solid, but thinner than the resin printer's 1.0 mm wall.
  Mesh plate = test::cube(40);
  for (Vec3& v : plate.vertices) v.z() *= 0.6 / 40.0;
  io::write_mesh(dir / "plate.stl", plate);
  const Run thin = run("check " + (dir / "plate.stl").string() + " --units mm --json");
  CHECK(thin.code == 4);
  const auto tj = nlohmann::json::parse(thin.out);
  CHECK(tj["printable"] == false);
  const auto& tp = tj["parts"][0];
  CHECK(tp["valid_solid"] == true);
  CHECK(tp["walls_ok"] == false);
  CHECK(tp["min_wall_mm"].get<double>() == Approx(0.6).margin(1e-3));  // the verdict agrees with the figure
  CHECK(tp["min_wall_mm"].get<double>() < tp["required_wall_mm"].get<double>());
  CHECK(tp["thin_spots"].size() >= 1);
  // The same plate is thick enough for nothing coarser either: FDM asks 1.2 mm.
  CHECK(run("check " + (dir / "plate.stl").string() + " --units mm --printer fdm -q").code == 4);
  // --wall-map: the plate with every vertex red (its 0.6 mm walls are under the minimum), written
  // as a coloured PLY whatever the verdict; the two cubes' vertices grey.
  CHECK(run("check " + (dir / "plate.stl").string() + " --units mm -q --wall-map " + (dir / "plate-walls.ply").string()).code == 4);
  const Mesh map = io::read_mesh(dir / "plate-walls.ply").mesh;
  REQUIRE(map.colors.size() == map.vertices.size());
  REQUIRE(map.vertices.size() == 8);
  for (const Vec3& c : map.colors) CHECK((c.x() > 0.85 && c.y() < 0.15));
  CHECK(run("check " + (dir / "two.3mf").string() + " -q --wall-map " + (dir / "two-walls.ply").string()).code == 0);
  const Mesh cubes = io::read_mesh(dir / "two-walls.ply").mesh;
  REQUIRE(cubes.vertices.size() == 16);
  for (const Vec3& c : cubes.colors) CHECK(std::abs(c.x() - c.y()) < 0.02);
  // A map in a format without vertex colours is refused before any work, and nothing is written.
  CHECK(run("check " + (dir / "two.3mf").string() + " -q --wall-map " + (dir / "walls.stl").string()).code == 2);
  CHECK_FALSE(std::filesystem::exists(dir / "walls.stl"));
  // 1.5 mm passes the resin printer's minimum.
  for (Vec3& v : plate.vertices) v.z() *= 1.5 / 0.6;
  io::write_mesh(dir / "plate15.stl", plate);
  CHECK(run("check " + (dir / "plate15.stl").string() + " --units mm -q").code == 0);
}

TEST_CASE("cli: render, compare, landmarks, mirror, stamp, detect, trace and batch answer on small inputs", "[cli]") {
  // The quick tier's touch of the subcommands whose full tests are slow: each on an input small
  // enough to take a second or two, its answer checked.
  const auto dir = test::temp_dir("cli-quick");
  const std::string face = std::string(TRACECAST_SOURCE_DIR) + "/assets/example-face.ply";
  io::write_mesh(dir / "cube.ply", test::cube(40));
  const std::string cube = (dir / "cube.ply").string();
  REQUIRE(run("render -q " + cube + " -o " + (dir / "cube.png").string() + " --width 64").code == 0);
  CHECK(test::read_bytes(dir / "cube.png").substr(1, 3) == "PNG");
  const auto same = nlohmann::json::parse(run("compare --json " + cube + " " + cube).out);
  CHECK(same["hausdorff_mm"].get<double>() < 1e-9);
  const auto lm = nlohmann::json::parse(run("landmarks --json " + face).out);
  CHECK(lm["landmarks_mm"]["eye_left"][0].get<double>() > 15);  // the wearer's left is +x in the face frame
  const Run m = run("mirror " + face + " -o " + (dir / "m.ply").string());
  CHECK(m.code == 3);  // a symmetric face has no defect to restore
  CHECK(m.err.find("no defect found") != std::string::npos);
  const std::string key = (dir / "k.key").string();
  REQUIRE(run("key new -q -o " + key).code == 0);
  CHECK(run("stamp " + cube + " --id nonsense --key " + key + " -o " + (dir / "x.ply").string()).code == 3);
  const Run tiny = run("detect " + cube + " --key " + key);
  CHECK(tiny.code == 6);  // 12 triangles cannot carry a mark
  CHECK(run("trace " + cube + " --key " + key + " --ledger " + (dir / "none.ledger").string()).code == 3);
  // A batch whose one recipe is refused before any work: exit 4 and a summary that says why.
  test::write_bytes(dir / "bad.json", R"({"scan": {"inputs": ["absent.ply"]}})");
  test::write_bytes(dir / "list.csv", "name,recipe\nonly,bad.json\n");
  const Run b = run("batch --json " + (dir / "list.csv").string());
  CHECK(b.code == 4);
  const auto bj = nlohmann::json::parse(b.out);
  CHECK(bj["failed"] == 1);
  CHECK(bj["items"][0]["status"] == "refused");
  CHECK_FALSE(std::filesystem::exists(dir / "x.ply"));
}

TEST_CASE("cli: mold refuses bad pieces, missing records and refused productions, writing and recording nothing", "[cli]") {
  const Workshop shop("cli-mold-bad");
  const auto& dir = shop.dir;
  const std::string face = std::string(TRACECAST_SOURCE_DIR) + "/assets/example-face.ply";
  const std::string out = (dir / "m.3mf").string();
  std::size_t entries_now = shop.entries();
  auto refused = [&](const Run& r, const std::string& why) {
    INFO(r.err);
    CHECK(r.code == 3);
    CHECK(r.err.find(why) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(out));
    CHECK_FALSE(std::filesystem::exists(dir / "m-core.stl"));
    CHECK(shop.entries() == entries_now);
  };
  // An open surface as the "appliance".
  refused(shop.tc("mold " + face + " --face " + face + " -o " + out + shop.mold_flags), "not a closed");
  // An appliance moved off the face.
  const std::string piece = (dir / "nose.ply").string();
  REQUIRE(run("appliance " + face + " -o " + piece + " --region nose --openings none -q").code == 0);
  io::Geometry g = io::read_mesh(piece);
  for (Vec3& v : g.mesh.vertices) v += Vec3(0, 0, 10);
  io::write_mesh((dir / "moved.ply").string(), g.mesh);
  refused(shop.tc("mold " + (dir / "moved.ply").string() + " --face " + face + " -o " + out + shop.mold_flags), "does not sit on this face");
  refused(shop.tc("mold " + piece + " --face " + face + " -o " + (dir / "m.stl").string() + shop.mold_flags), ".3mf");
  // Printers: an unknown name (the known ones listed), a build volume that is not one: usage
  // errors on the command line (exit 2; in a recipe, exit 3: test_run.cpp).
  for (const auto& [flag, why] : {std::pair<std::string, std::string>{" --printer photon", "is not one of resin, resin-small, resin-large, fdm, fdm-256, fdm-360"},
                                  {" --build-volume 200,100", "not \"profile\" or W,D,H in mm"}}) {
    const Run r = shop.tc("mold " + piece + " --face " + face + " -o " + out + shop.mold_flags + flag);
    INFO(r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find(why) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(out));
    CHECK(shop.entries() == entries_now);
  }
  // A printer too small for any section of the part: exit 4 naming the part, no file written,
  // nothing recorded (the mold is planned before the ledger allocates the piece).
  {
    const Run small = shop.tc("mold " + piece + " --face " + face + " -o " + out + shop.mold_flags + " --build-volume 25,25,25 --resolution 1");
    INFO(small.err);
    CHECK(small.code == 4);
    CHECK(small.err.find("cannot be cut into sections that fit the resin printer (25 × 25 × 25 mm)") != std::string::npos);
    CHECK((small.err.find("the core (") != std::string::npos || small.err.find("the shell (") != std::string::npos));
    CHECK_FALSE(std::filesystem::exists(out));
    CHECK_FALSE(std::filesystem::exists(dir / "m-core.stl"));
    CHECK_FALSE(std::filesystem::exists(dir / "m-core-1.stl"));
    CHECK(shop.tc("ledger verify -q").code == 0);
    CHECK(shop.entries() == entries_now);
  }
  // No ledger, run, subject or marking key: every missing one named.
  const Run bare = run("mold " + piece + " --face " + face + " -o " + out);
  refused(bare, "missing: --ledger (or TRACECAST_LEDGER), --signing-key (or TRACECAST_SIGNING_KEY), --run, --subject, --mark-key");
  refused(shop.tc("mold " + piece + " --face " + face + " -o " + out + " --run 1"), "missing: --subject");
  // The ledger refuses: no consent, consent for another use, closed run.
  refused(shop.tc("mold " + piece + " --face " + face + " -o " + out + " --run 1 --subject S-404"), "no consent recorded for subject 'S-404'");
  // A likeness piece: the person whose face is copied needs a consent for the use too.
  REQUIRE(shop.tc("ledger subject -q L-001").code == 0);
  entries_now = shop.entries();
  refused(shop.tc("mold " + piece + " --face " + face + " -o " + out + shop.mold_flags + " --likeness L-001"),
          "no consent recorded for subject 'L-001'");
  // Given one, `ledger piece` records both people, and the run's history shows them.
  REQUIRE(shop.tc("ledger consent -q --subject L-001 --use film --valid-until 2099-12-31 --given-by L-001 --document " +
                  (dir / "consent.txt").string()).code == 0);
  const Run both = shop.tc("ledger piece --json --run 1 --subject S-001 --likeness L-001 --key " + (dir / "shop.key").string());
  REQUIRE(both.code == 0);
  const auto history = nlohmann::json::parse(shop.tc("ledger export --run 1").out);
  CHECK(history["pieces"].back()["subject"] == "S-001");
  CHECK(history["pieces"].back()["likeness"]["subject"] == "L-001");
  CHECK(history["pieces"].back()["likeness"]["consent"]["given_by"] == "L-001");
  const std::string csv = shop.tc("ledger export --run 1 --csv").out;
  CHECK(csv.find(",likeness_subject,likeness_consent_use,likeness_consent_valid_until,likeness_consent_document_sha256\n") !=
        std::string::npos);
  CHECK(csv.find(",L-001,film,2099-12-31,") != std::string::npos);
  entries_now = shop.entries();
  REQUIRE(shop.tc("ledger run open -q --use medical --client Clinic --prescriber Dr.A").code == 0);
  const std::size_t with_run2 = shop.entries();
  CHECK(with_run2 == entries_now + 1);
  const Run medical = shop.tc("mold " + piece + " --face " + face + " -o " + out + " --run 2 --subject S-001");
  CHECK(medical.code == 3);
  CHECK(medical.err.find("another use") != std::string::npos);
  REQUIRE(shop.tc("ledger run close -q 1").code == 0);
  const Run closed = shop.tc("mold " + piece + " --face " + face + " -o " + out + shop.mold_flags);
  CHECK(closed.code == 3);
  CHECK(closed.err.find("run 1 is closed") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out));
  CHECK(shop.entries() == with_run2 + 1);  // the closing only
  CHECK(shop.tc("ledger verify -q").code == 0);
}

TEST_CASE("cli: ledger checkpoint, and verify --expect-key and --checkpoint catch a history re-signed with a new key (exit 3)", "[cli]") {
  const auto dir = test::temp_dir("cli-ledger-checkpoint");
  const std::string env = "env TRACECAST_LEDGER=" + (dir / "shop.ledger").string() +
                          " TRACECAST_SIGNING_KEY=" + (dir / "shop.sign").string() + " ";
  auto tc = [&](const std::string& args) { return run_env(env, args); };
  const std::string cp = (dir / "shop.checkpoint").string();
  REQUIRE(tc("ledger init --maker 9 --name Shop -q").code == 0);
  REQUIRE(tc("ledger subject S-1 -q").code == 0);
  REQUIRE(tc("ledger checkpoint -q -o " + cp).code == 0);
  const auto checkpoint = nlohmann::json::parse(test::read_bytes(cp));
  CHECK(checkpoint["entries"] == 2);
  const Run v = tc("ledger verify --json");
  REQUIRE(v.code == 0);
  const std::string fp = nlohmann::json::parse(v.out)["key_fingerprint"];
  CHECK(fp.size() == 39);
  CHECK(fp == checkpoint["key_fingerprint"]);
  REQUIRE(tc("ledger subject S-2 -q").code == 0);  // the chain grows past the checkpoint: it still extends it
  const Run pinned = tc("ledger verify --expect-key " + fp + " --checkpoint " + cp);
  INFO(pinned.err);
  CHECK(pinned.code == 0);
  CHECK(pinned.out.find(fp) != std::string::npos);
  std::string upper = fp;
  for (char& c : upper) c = c == '-' ? ':' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(tc("ledger verify -q --expect-key " + upper).code == 0);  // typed another way
  const Run other = tc("ledger verify --expect-key " + std::string(32, '0'));
  CHECK(other.code == 3);
  CHECK(other.err.find("not the expected") != std::string::npos);
  CHECK(tc("ledger verify --expect-key zz").code == 2);
  CHECK(tc("ledger checkpoint -q -o " + (dir / "no" / "cp").string()).code != 0);

  // The workshop rewrites its history under a new key: the new ledger verifies on its own, not
  // against the key or the checkpoint kept elsewhere.
  std::filesystem::rename(dir / "shop.ledger", dir / "old.ledger");
  std::filesystem::rename(dir / "shop.sign", dir / "old.sign");
  REQUIRE(tc("ledger init --maker 9 --name Shop -q").code == 0);
  REQUIRE(tc("ledger subject S-1 -q").code == 0);
  CHECK(tc("ledger verify -q").code == 0);
  const Run by_key = tc("ledger verify --expect-key " + fp);
  CHECK(by_key.code == 3);
  CHECK(by_key.err.find("re-signed") != std::string::npos);
  const Run by_checkpoint = tc("ledger verify --checkpoint " + cp);
  CHECK(by_checkpoint.code == 3);
  INFO(by_checkpoint.err);
  CHECK(by_checkpoint.err.find("re-signed with another key") != std::string::npos);
}

TEST_CASE("cli: ledger import of another workshop's ledger, then both verify", "[cli]") {
  const auto dir = test::temp_dir("cli-ledger-import");
  auto at = [&](const std::string& name) {
    return "env TRACECAST_LEDGER=" + (dir / (name + ".ledger")).string() + " TRACECAST_SIGNING_KEY=" + (dir / (name + ".sign")).string() + " ";
  };
  REQUIRE(run_env(at("a"), "ledger init --maker 1 --name A -q").code == 0);
  REQUIRE(run_env(at("b"), "ledger init --maker 2 --name B -q").code == 0);
  REQUIRE(run_env(at("b"), "ledger subject S-9 -q").code == 0);
  const Run r = run_env(at("a"), "ledger import " + (dir / "b.ledger").string() + " --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["maker"] == 2);
  CHECK(j["added"] == 2);  // workshop entry and the subject
  CHECK(run_env(at("a"), "ledger verify -q").code == 0);
  CHECK(run_env(at("a"), "ledger import " + (dir / "a.ledger").string()).code == 3);  // its own ledger
  CHECK(run_env(at("a"), "ledger import " + (dir / "missing.ledger").string()).code == 3);
}

TEST_CASE("cli: stamp then detect the exact identifier; wrong key exits 5, a tiny scan 6, a bad key 3", "[cli][slow]") {
  const auto dir = test::temp_dir("cli-mark");
  const std::string face = (std::filesystem::path(TRACECAST_SOURCE_DIR) / "assets" / "example-face.ply").string();
  const std::string mask = (dir / "mask.ply").string(), stamped = (dir / "stamped.ply").string(), key = (dir / "w.key").string(),
                    other = (dir / "o.key").string(), rep = (dir / "stamp.json").string();
  REQUIRE(run("appliance -q " + face + " -o " + mask + " --region upper_face").code == 0);
  REQUIRE(run("key new -q -o " + key).code == 0);
  REQUIRE(run("key new -q -o " + other).code == 0);
  const Run s = run("stamp " + mask + " --id 002a-000101-000007 --key " + key + " -o " + stamped + " --report " + rep + " --json");
  REQUIRE(s.code == 0);
  const auto sd = nlohmann::json::parse(s.out);
  CHECK(sd["max_displacement_um"].get<double>() <= 40.0 + 1e-9);
  CHECK(nlohmann::json::parse(test::read_bytes(rep)) == sd);
  const Run d = run("detect " + stamped + " --key " + other + " --key " + key + " --json");
  REQUIRE(d.code == 0);
  const auto dd = nlohmann::json::parse(d.out);
  CHECK(dd["id"] == "002a-000101-000007");
  CHECK(dd["run"] == 257);
  CHECK(dd["false_positive_bound"].get<double>() < 1e-9);
  CHECK(run("detect " + stamped + " --key " + other).code == 5);
  CHECK(run("detect " + mask + " --key " + key).code == 5);
  // A sparse cloud: too little to carry a mark, said so (not "no mark").
  const std::string sparse = (dir / "sparse.ply").string();
  REQUIRE(run("synth scan -q -o " + sparse + " --spacing 2").code == 0);
  const Run tiny = run("detect " + sparse + " --key " + key);
  CHECK(tiny.code == 6);
  CHECK(tiny.out.find("insufficient surface") != std::string::npos);
  test::write_bytes(dir / "bad.key", "tracecast-key 1\nid 00\nsecret 12\n");
  CHECK(run("detect " + stamped + " --key " + (dir / "bad.key").string()).code == 3);
  CHECK(run("stamp " + mask + " --id nonsense --key " + key + " -o " + (dir / "x.ply").string()).code == 3);
  CHECK(!std::filesystem::exists(dir / "x.ply"));
}

TEST_CASE("cli: mold stamps the identifier the ledger allocates; trace reads the printed shell back to its record", "[cli][slow]") {
  const Workshop shop("cli-mold-trace");
  const auto& dir = shop.dir;
  const std::string face = (std::filesystem::path(TRACECAST_SOURCE_DIR) / "assets" / "example-face.ply").string();
  const std::string mask = (dir / "mask.ply").string(), mold = (dir / "m.3mf").string(), rep = (dir / "m.json").string();
  REQUIRE(run("appliance -q " + face + " -o " + mask + " --region upper_face").code == 0);
  // A 1 mm grid: the mark, the ledger and the trace are what this tests, not the mold's detail.
  const Run made = shop.tc("mold -q " + mask + " --face " + face + " -o " + mold + shop.mold_flags + " --resolution 1 --report " + rep);
  INFO(made.err);
  REQUIRE(made.code == 0);
  const auto doc = nlohmann::json::parse(test::read_bytes(rep));
  CHECK(doc["mark"]["id"] == "002a-000001-000001");
  CHECK(doc["mark"]["max_displacement_um"].get<double>() <= 40.0 + 1e-9);
  CHECK(doc["mark"]["subject"] == "S-001");
  CHECK(doc["mark"]["workshop_key_fingerprint"] == nlohmann::json::parse(shop.tc("ledger verify --json").out)["key_fingerprint"]);
  // The ledger holds the piece with its inputs' and outputs' hashes (the files as written).
  const auto history = nlohmann::json::parse(shop.tc("ledger export --run 1").out);
  REQUIRE(history["pieces"].size() == 1);
  const auto& piece = history["pieces"][0];
  CHECK(piece["details"]["inputs"][face].get<std::string>().size() == 64);
  // And every option the mark was made with: the stamp table's keys, at the production defaults.
  CHECK(piece["details"]["mark_parameters"] == watermark::stamp_option_table().to_json(watermark::StampOptions{}));
  CHECK(piece["details"]["mark_parameters"].size() == watermark::stamp_option_table().keys().size());
  const std::string shell = (dir / "m-shell.stl").string();
  FILE* p = ::popen(("sha256sum " + shell).c_str(), "r");
  REQUIRE(p);
  std::array<char, 65> hash{};
  REQUIRE(std::fread(hash.data(), 1, 64, p) == 64);
  ::pclose(p);
  CHECK(piece["outputs"]["files"][shell] == std::string(hash.data(), 64));
  CHECK(piece["outputs"]["files"].size() == 3);

  // A simulated scan of the printed shell (the cavity side, as one view sees it; 20 µm noise, any
  // pose, 0.2 mm uneven points) traces back to the record.
  {
    const io::Geometry printed = io::read_mesh(shell);
    using namespace tracecast::watermark;
    // Seen from its cavity side, whichever way it lies to fit the printer.
    Mesh seen = normal_noise(visibility_crop(printed.mesh, print::open_side(printed.mesh)), 0.020, 3);
    seen = transformed(seen, random_similarity(11, 200.0, 1.0, 1.0));
    io::write_point_cloud(dir / "shell-scan.ply", resample_points(seen, 0.2, 0.5, 4));
  }
  const std::string key = (dir / "shop.key").string(), scan = (dir / "shell-scan.ply").string();
  const Run t = shop.tc("trace " + scan + " --key " + key + " --json");
  INFO(t.err);
  REQUIRE(t.code == 0);
  const auto tj = nlohmann::json::parse(t.out);
  CHECK(tj["scan"]["id"] == "002a-000001-000001");
  CHECK(tj["record"]["piece"]["subject"] == "S-001");
  CHECK(tj["record"]["piece"]["outputs"]["files"][shell] == std::string(hash.data(), 64));
  CHECK(tj["record"]["run"]["client"] == "Studio");
  CHECK(tj["record"]["run"]["operator"] == "op1");
  CHECK(tj["record"]["run"]["operator_name"] == "Alex Moreau");
  CHECK(tj["record"]["piece"]["consent"]["use"] == "film");
  CHECK(tj["record"]["ledger"]["verified"] == true);
  // A piece recorded by hand (ledger piece) and stamped apart, copying another person's face (a
  // likeness, with that person's own consent): the text record shows both people.
  REQUIRE(shop.tc("ledger subject -q L-001").code == 0);
  REQUIRE(shop.tc("ledger consent -q --subject L-001 --use film --valid-until 2099-06-30 --given-by L-001 --document " +
                  (dir / "consent.txt").string()).code == 0);
  const Run recorded = shop.tc("ledger piece --json --run 1 --subject S-001 --likeness L-001 --key " + key);
  REQUIRE(recorded.code == 0);
  const std::string hand_id = nlohmann::json::parse(recorded.out)["id"];
  CHECK(hand_id == "002a-000001-000002");
  const std::string by_hand = (dir / "by-hand.ply").string();
  REQUIRE(run("stamp -q " + mask + " --id " + hand_id + " --key " + key + " -o " + by_hand).code == 0);
  const Run text = shop.tc("trace " + by_hand + " --key " + key);
  INFO(text.out);
  CHECK(text.code == 0);
  CHECK(text.out.find(hand_id) != std::string::npos);
  CHECK(text.out.find("subject    S-001") != std::string::npos);
  CHECK(text.out.find("consent    film use until 2099-12-31") != std::string::npos);
  CHECK(text.out.find("likeness   L-001 (the face the piece copies)\n  consent    film use until 2099-06-30, given by L-001") !=
        std::string::npos);
  CHECK(text.out.find("release    awaiting release") != std::string::npos);
  CHECK(text.out.find("chain, signatures, rules and tables verified") != std::string::npos);
  const std::string fingerprint = nlohmann::json::parse(shop.tc("ledger verify --json").out)["key_fingerprint"];
  CHECK(text.out.find("\n  key        " + fingerprint + "\n") != std::string::npos);
  // A piece marked under this key but not recorded in this ledger: the mark is read, exit 7.
  const std::string stray = (dir / "stray.ply").string();
  REQUIRE(run("stamp -q " + mask + " --id 002a-000009-000001 --key " + key + " -o " + stray).code == 0);
  const Run foreign = shop.tc("trace " + stray + " --key " + key);
  CHECK(foreign.code == 7);
  CHECK(foreign.out.find("002a-000009-000001") != std::string::npos);
  CHECK(foreign.out.find("not in") != std::string::npos);
  // An unmarked surface: no mark (5); a missing ledger: exit 3 before any analysis.
  CHECK(shop.tc("trace " + mask + " --key " + key).code == 5);
  CHECK(run("trace " + mask + " --key " + key + " --ledger " + (dir / "none.ledger").string()).code == 3);
}
