// The mark against the attack suite: per attack, raw bit error rate, exact-identifier success and
// false identifiers over many random identifiers and keys; false positives on unmarked surfaces
// and under wrong keys; imperceptibility; detection time of a 1 M-point scan.
//
//   bench_watermark [--trials N] [--fp-keys N] [--host generated|nefertiti|both|mask] [--rows a,b,…]
//                   [--first-trial K] [--scale-sweep] [--area-sweep] [--front-scan]
//
// Trial t of row r uses seed 1000 r + t + 1 (identifier, key, attack); --first-trial K runs trials
// K … K + N − 1, so a failed trial printed on stderr can be run again alone.
//
// --scale-sweep: instead of the table, exact-ID success per scale factor (0.5 … 2, random
// rotation and shift), N trials each: where the detector's working scales hand over.
// --area-sweep: instead of the table, exact-ID success of pieces of the stamped appliance cut off
// by a random plane across the front, by the marked area they keep (in tiles): how small a piece
// the mark can be read from.
// --front-scan: instead of the table, exact-ID success from one frontal view of a simulated scanner
// (0.2 mm points, 20 µm noise along each ray), a new key and identifier per trial. With --host mask
// (a full-head mask, the wearer's own head 2.5 mm out, from a generated head without ears): what a
// scan of the cast mask on a head sees of it.
//
// Prints a Markdown table per host (docs/methods/watermark.md quotes it).
#include <fmt/format.h>
#include <open3d/geometry/PointCloud.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tracecast/mesh/appliance.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/random.h"
#include "tracecast/mesh/repair.h"
#include "tracecast/scan/simulator.h"
#include "tracecast/scan/synthetic_face.h"
#include "tracecast/scan/synthetic_head.h"
#include "tracecast/sculpt/mask.h"
#include "tracecast/watermark/attacks.h"
#include "tracecast/watermark/mark.h"
#include "tracecast/watermark/payload.h"

using namespace tracecast;
using namespace tracecast::watermark;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

Key key_of(std::uint64_t seed) {
  SplitMix64 r{seed * 7919 + 17};
  std::array<std::uint8_t, 32> s{};
  for (auto& b : s) b = static_cast<std::uint8_t>(r.next());
  return Key::from_secret(s);
}

std::uint64_t id_of(std::uint64_t seed) {
  SplitMix64 r{seed * 104729 + 5};
  return pack({static_cast<std::uint32_t>(r.next() & 0xFFFF), static_cast<std::uint32_t>(r.next() & 0xFFFFFF),
               static_cast<std::uint32_t>(r.next() & 0xFFFFFF)});
}

//! A random unit vector within `deg` of `axis`.
Vec3 near(const Vec3& axis, double deg, SplitMix64& r) {
  const Vec3 e1 = (std::abs(axis.x()) < 0.9 ? Vec3::UnitX() : Vec3::UnitY()).cross(axis).normalized(), e2 = axis.cross(e1);
  const double a = deg * 3.14159265358979 / 180 * std::sqrt(r.uniform()), phi = 2 * 3.14159265358979 * r.uniform();
  return (std::cos(a) * axis + std::sin(a) * (std::cos(phi) * e1 + std::sin(phi) * e2)).normalized();
}
Vec3 across(const Vec3& axis, SplitMix64& r) {
  const Vec3 e1 = (std::abs(axis.x()) < 0.9 ? Vec3::UnitX() : Vec3::UnitY()).cross(axis).normalized(), e2 = axis.cross(e1);
  const double phi = 2 * 3.14159265358979 * r.uniform();
  return std::cos(phi) * e1 + std::sin(phi) * e2;
}

struct Scan {
  Mesh mesh;
  std::vector<Vec3> points;  // used when mesh has no triangles
};

using Attack = std::function<Scan(const Mesh& stamped, const Vec3& front, std::uint64_t seed)>;

struct Row {
  std::string name;
  Attack attack;
};

std::vector<Row> rows() {
  auto mesh = [](Mesh m) { return Scan{std::move(m), {}}; };
  return {
      {"none", [=](const Mesh& m, const Vec3&, std::uint64_t) { return mesh(m); }},
      {"similarity (rotation, shift ±200 mm, scale 0.5–2) + unit change (every other trial in m)",
       [=](const Mesh& m, const Vec3&, std::uint64_t s) {
         Mesh t = transformed(m, random_similarity(s));
         if (s % 2) scale(t, 0.001);
         return mesh(std::move(t));
       }},
      {"point cloud, 0.2 mm spacing, density varying 1–2×",
       [=](const Mesh& m, const Vec3&, std::uint64_t s) { return Scan{{}, resample_points(m, 0.2, 1.0, s).points}; }},
      {"isotropic remesh, 0.3 mm edges", [=](const Mesh& m, const Vec3&, std::uint64_t) { return mesh(remesh_isotropic(m, 0.3, 2)); }},
      {"SDF voxelisation + re-extraction, 0.2 mm", [=](const Mesh& m, const Vec3&, std::uint64_t) { return mesh(sdf_resample(m, 0.2)); }},
      {"noise along the normal σ = 10 µm", [=](const Mesh& m, const Vec3&, std::uint64_t s) { return mesh(normal_noise(m, 0.010, s)); }},
      {"noise along the normal σ = 20 µm", [=](const Mesh& m, const Vec3&, std::uint64_t s) { return mesh(normal_noise(m, 0.020, s)); }},
      {"Gaussian smoothing σ = 0.25 mm", [=](const Mesh& m, const Vec3&, std::uint64_t) { return mesh(gaussian_smooth(m, 0.25)); }},
      {"planar crop to 50 % of the area (random cut across the face)",
       [=](const Mesh& m, const Vec3& f, std::uint64_t s) {
         SplitMix64 r{s};
         return mesh(planar_crop(m, across(f, r), 0.5));
       }},
      {"single-view visibility crop (view within 30° of the front)",
       [=](const Mesh& m, const Vec3& f, std::uint64_t s) {
         SplitMix64 r{s};
         return mesh(visibility_crop(m, near(f, 30, r)));
       }},
      {"resin print: 50 µm layers along a random direction + 35 µm XY pixels",
       [=](const Mesh& m, const Vec3&, std::uint64_t s) {
         SplitMix64 r{s};
         const Vec3 d = Vec3(r.normal(), r.normal(), r.normal()).normalized();
         return mesh(print_simulation(m, d, 0.050, 0.035));
       }},
      {"combined: similarity + remesh 0.3 mm + 20 µm noise + 50 % planar crop",
       [=](const Mesh& m, const Vec3& f, std::uint64_t s) {
         SplitMix64 r{s};
         Mesh t = planar_crop(normal_noise(remesh_isotropic(m, 0.3, 2), 0.020, s), across(f, r), 0.5);
         return mesh(transformed(t, random_similarity(s + 1)));
       }},
  };
}

struct Host {
  std::string name;
  Mesh appliance;
  Mesh wearer;  //!< the head a mask is worn on (seen through its openings), or empty
};

//! The marked area (faces whose three vertices moved) among the faces planar_crop() keeps.
double marked_area_kept(const Stamped& st, const Vec3& cut, double keep) {
  const Mesh& m = st.mesh;
  const std::vector<char> kept = planar_crop_faces(m, cut, keep);
  double marked = 0;
  for (std::size_t f = 0; f < m.triangles.size(); ++f) {
    const Tri& t = m.triangles[f];
    if (kept[f] && st.displacement_mm[t[0]] != 0 && st.displacement_mm[t[1]] != 0 && st.displacement_mm[t[2]] != 0)
      marked += 0.5 * (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).norm();
  }
  return marked;
}

int popcount_errors(const Detection& d, std::uint64_t id) {
  const auto code = encode(id);
  int wrong = 0;
  for (std::size_t i = 0; i < d.soft.size(); ++i)
    if (d.soft[i] != 0 && (d.soft[i] > 0) != (code[i] == 1)) ++wrong;
  return wrong;
}

struct BenchArgs {
  int trials = 50, fp_keys = 2000, first_trial = 0;
  bool sweep = false, area_sweep = false, front_scan = false;
  std::string host = "both";
  std::set<std::size_t> only;
};

//! "0,3,5" as a set of row numbers.
std::set<std::size_t> row_list(const std::string& list) {
  std::set<std::size_t> only;
  std::size_t p = 0;
  while (p < list.size()) {
    const std::size_t q = list.find(',', p);
    only.insert(static_cast<std::size_t>(std::atoi(list.substr(p, q - p).c_str())));
    if (q == std::string::npos) break;
    p = q + 1;
  }
  return only;
}

std::optional<BenchArgs> parse_args(int argc, char** argv) {
  BenchArgs b;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--trials" && i + 1 < argc) b.trials = std::atoi(argv[++i]);
    else if (a == "--fp-keys" && i + 1 < argc) b.fp_keys = std::atoi(argv[++i]);
    else if (a == "--host" && i + 1 < argc) b.host = argv[++i];
    else if (a == "--scale-sweep") b.sweep = true;
    else if (a == "--first-trial" && i + 1 < argc) b.first_trial = std::atoi(argv[++i]);
    else if (a == "--area-sweep") b.area_sweep = true;
    else if (a == "--front-scan") b.front_scan = true;
    else if (a == "--rows" && i + 1 < argc) b.only = row_list(argv[++i]);
    else return std::nullopt;
  }
  return b;
}

std::vector<Host> load_hosts(const std::string& which) {
  std::vector<Host> hosts;
  if (which == "generated" || which == "both") hosts.push_back({"generated face (full-face appliance, 2 mm)", make_appliance(scan::SyntheticFace().mesh(0.8), ApplianceSpec{})});
  if (which == "nefertiti" || which == "both") {
    const std::filesystem::path p = std::filesystem::path(TRACECAST_SOURCE_DIR) / ".." / "shared" / "scans" / "nefertiti.obj";
    if (std::filesystem::exists(p))
      hosts.push_back({"nefertiti.obj (full-face appliance, 2 mm)", make_appliance(io::read_mesh(p.string()).mesh, ApplianceSpec{})});
    else
      std::printf("(%s not found: nefertiti rows skipped)\n", p.string().c_str());
  }
  if (which == "mask") {
    scan::HeadParams hp;
    hp.ears = "none";
    const Mesh head = scan::SyntheticHead(hp).mesh(1.0);
    hosts.push_back({"full-head mask (the generated head's own, 2.5 mm), on the head", sculpt::make_mask(head, nullptr, {}), head});
  }
  return hosts;
}

//! The stamped piece and, if any, the head it is worn on, as one scene for the scanner.
Mesh scene(const Mesh& piece, const Mesh& wearer) {
  Mesh s = piece;
  const auto base = static_cast<std::int32_t>(s.vertices.size());
  s.vertices.insert(s.vertices.end(), wearer.vertices.begin(), wearer.vertices.end());
  for (const Tri& t : wearer.triangles) s.triangles.push_back({t[0] + base, t[1] + base, t[2] + base});
  return s;
}

//! Found identifiers from one frontal view of a simulated scanner (0.2 mm points, 20 µm noise) of
//! the stamped piece (on its wearer's head, for a mask: the skin shows through the openings).
void front_scan(const StampPlan& plan, const Mesh& host, const Mesh& wearer, int first_trial, int trials) {
  std::printf("| trial | identifier | found | confidence | scan points | carrier area (mm²) | s |\n|---|---|---|---|---|---|---|\n");
  Aabb box;
  for (const Vec3& v : host.vertices) box.add(v);
  int ok = 0;
  for (int t = first_trial; t < first_trial + trials; ++t) {
    const std::uint64_t seed = 99000 + static_cast<std::uint64_t>(t);
    const Key key = key_of(seed);
    const std::uint64_t id = id_of(seed);
    scan::SimulatorOptions so;
    so.views = scan::views_around(box, {0.0});
    so.spacing_mm = 0.2;
    so.noise_mm = 0.02;
    so.seed = seed;
    const scan::SimulatedScan sc = scan::simulate_scan(scene(apply_stamp(plan, id, key, false).mesh, wearer), so);
    const double ts = now();
    const Detection d = detect(sc.cloud.points, key);
    const bool found = d.outcome == Outcome::found && d.id == id;
    ok += found;
    std::printf("| %d | %016llx | %s | %.3f | %zu | %.0f | %.1f |\n", t, static_cast<unsigned long long>(id),
                found ? "yes" : (d.outcome == Outcome::found ? "WRONG" : outcome_name(d.outcome)), d.confidence, sc.cloud.points.size(),
                d.carrier_area_mm2, now() - ts);
    if (!found) std::fprintf(stderr, "trial %d: %s\n", t, d.reason.c_str());
    std::fflush(stdout);
  }
  std::printf("\nexact identifier: %d of %d\n", ok, trials);
}

//! Found identifiers and the scale found, for the stamp scaled from 0.5 to 2.
void scale_sweep(const StampPlan& plan, int trials) {
  std::printf("| scale | trials | exact ID | found at scale | s / trial |\n|---|---|---|---|---|\n");
  for (const double sc : {0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 1.0, 1.15, 1.3, 1.45, 1.6, 1.8, 2.0}) {
    int ok = 0;
    double time = 0, found_scale = 0;
    for (int t = 0; t < trials; ++t) {
      const std::uint64_t seed = 77000 + static_cast<std::uint64_t>(t) * 13 + static_cast<std::uint64_t>(sc * 100);
      const Key key = key_of(seed);
      const std::uint64_t id = id_of(seed);
      Similarity sim = random_similarity(seed);
      sim.scale = sc;
      const Mesh m = transformed(apply_stamp(plan, id, key, false).mesh, sim);
      const double ts = now();
      const Detection d = detect(m, key);
      time += now() - ts;
      ok += d.outcome == Outcome::found && d.id == id;
      found_scale += d.scale / trials;
      if (std::getenv("TRACECAST_DEBUG")) std::fprintf(stderr, "scale %.2f #%d: %s %s\n", sc, t, outcome_name(d.outcome), d.reason.c_str());
    }
    std::printf("| %.2f | %d | %d/%d | %.3f | %.1f |\n", sc, trials, ok, trials, found_scale, time / trials);
    std::fflush(stdout);
  }
}

//! Found identifiers on pieces cut down to a share of the appliance.
void area_sweep(const StampPlan& plan, int trials) {
  std::printf("| kept | marked tiles kept (mean) | trials | exact ID | no mark | insufficient | false IDs |\n|---|---|---|---|---|---|---|\n");
  for (const double keep : {0.08, 0.12, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5}) {
    int ok = 0, none = 0, small = 0, wrong = 0;
    double tiles = 0;
    for (int t = 0; t < trials; ++t) {
      const std::uint64_t seed = 88000 + static_cast<std::uint64_t>(t) * 17 + static_cast<std::uint64_t>(keep * 1000);
      const Key key = key_of(seed);
      const std::uint64_t id = id_of(seed);
      const Stamped st = apply_stamp(plan, id, key, false);
      SplitMix64 r{seed};
      const Vec3 cut = across(st.report.front, r);
      const Mesh piece = planar_crop(st.mesh, cut, keep);
      tiles += marked_area_kept(st, cut, keep) / (19.2 * 19.2) / trials;
      const Detection d = detect(transformed(piece, random_similarity(seed, 200, 1, 1)), key);
      if (d.outcome == Outcome::found) (d.id == id ? ok : wrong)++;
      else if (d.outcome == Outcome::no_mark) ++none;
      else ++small;
    }
    std::printf("| %.0f %% | %.1f | %d | %d/%d | %d | %d | %d |\n", 100 * keep, tiles, trials, ok, trials, none, small, wrong);
    std::fflush(stdout);
  }
}

//! The attack table: a row per attack; returns analyses of marked scans for the false-positive rows.
std::vector<Analysis> attack_table(const StampPlan& plan, const BenchArgs& args) {
  const std::vector<Row> all_rows = rows();
  const int trials = args.trials, first_trial = args.first_trial;
  const std::set<std::size_t>& only = args.only;
  std::printf("| attack | trials | raw bit errors | exact ID | false IDs | s / trial |\n|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  std::vector<Analysis> marked_analyses;
  for (std::size_t ri = 0; ri < all_rows.size(); ++ri) {
    if (!only.empty() && !only.count(ri)) continue;
    const Row& row = all_rows[ri];
    int ok = 0, false_ids = 0;
    double bits = 0, errors = 0, time = 0;
    for (int t = first_trial; t < first_trial + trials; ++t) {
      const std::uint64_t seed = 1000 * ri + static_cast<std::uint64_t>(t) + 1;
      const Key key = key_of(seed);
      const std::uint64_t id = id_of(seed);
      const Stamped st = apply_stamp(plan, id, key, false);
      const Scan scan = row.attack(st.mesh, st.report.front, seed);
      const double ts = now();
      const Analysis an = scan.mesh.triangles.empty() ? analyze(scan.points) : analyze(scan.mesh);
      const Detection d = read(an, key);
      time += now() - ts;
      if (d.outcome == Outcome::found) (d.id == id ? ok : false_ids)++;
      if (!d.soft.empty()) {
        errors += popcount_errors(d, id);
        bits += 204;
      } else {
        errors += 102;
        bits += 204;
      }
      if (ri == 0 && t < 5) marked_analyses.push_back(an);
      if (d.outcome != Outcome::found || d.id != id || std::getenv("TRACECAST_DEBUG"))
        std::fprintf(stderr, "row %zu trial %d (seed %llu): %s, %s; scale %.3f, lattice contrast %.2f, area %.0f mm², %zu samples\n", ri, t,
                     static_cast<unsigned long long>(seed), outcome_name(d.outcome), d.reason.c_str(), d.scale, d.lattice_contrast, d.area_mm2, d.samples);
    }
    std::printf("| %s | %d | %.2f %% | %.0f %% (%d/%d) | %d | %.1f |\n", row.name.c_str(), trials, 100 * errors / std::max(bits, 1.0),
                100.0 * ok / trials, ok, trials, false_ids, time / trials);
    std::fflush(stdout);
  }
  return marked_analyses;
}

//! The false positives' row.
void false_positives(const Host& host, const std::vector<Analysis>& marked_analyses, int fp_keys) {
  // False positives: unmarked pieces (the appliance, and a second generated face) and marked
  // pieces read under keys that did not stamp them. The analysis does not depend on the key, so
  // each surface is analysed once and read under many keys.
  int found = 0, trials_fp = 0;
  std::vector<Analysis> unmarked;
  unmarked.push_back(analyze(host.appliance));
  unmarked.push_back(analyze(transformed(host.appliance, random_similarity(99))));
  unmarked.push_back(analyze(scan::SyntheticFace(scan::FaceParams{150, 210, 80, 24, 0.12, 4, 7, false}).mesh(0.3)));
  for (const Analysis& a : unmarked)
    for (int k = 0; k < fp_keys; ++k) {
      found += read(a, key_of(500000 + static_cast<std::uint64_t>(k))).outcome == Outcome::found;
      ++trials_fp;
    }
  const int unmarked_trials = trials_fp;
  for (const Analysis& a : marked_analyses)
    for (int k = 0; k < fp_keys; ++k) {
      found += read(a, key_of(900000 + static_cast<std::uint64_t>(k))).outcome == Outcome::found;
      ++trials_fp;
    }
  std::printf("| unmarked surfaces (%d trials) and wrong keys on marked ones (%d trials) | %d | — | — | %d | — |\n", unmarked_trials,
              trials_fp - unmarked_trials, trials_fp, found);
}

//! Detection time of a 1 M-point scan, marked and not.
void large_scan(const StampPlan& plan, const Host& host) {
  // Detection time of a 1 M-point scan (a point cloud of the stamped piece), against a peer
  // measured in the same run: Open3D estimating the normals of the same cloud (12 nearest
  // neighbours, as the detector's plane fits), the first step of any scan processing.
  const Stamped st = apply_stamp(plan, id_of(1), key_of(1), false);
  PointCloud pc = resample_points(st.mesh, 0.1, 0.5, 3);
  pc.points.resize(std::min<std::size_t>(pc.points.size(), 1000000));
  const double ts = now();
  const Detection d = detect(pc.points, key_of(1));
  const double t_detect = now() - ts;
  open3d::geometry::PointCloud o3d;
  o3d.points_ = pc.points;
  const double tn = now();
  o3d.EstimateNormals(open3d::geometry::KDTreeSearchParamKNN(12));
  const double t_normals = now() - tn;
  std::printf("\n1 M-point scan: %zu points, detection %.2f s wall (%s%s)", pc.points.size(), t_detect, outcome_name(d.outcome),
              d.outcome == Outcome::found && d.id == id_of(1) ? ", exact ID" : "");
  for (const auto& [k, t] : d.timings) std::printf(", %s %.2f", k.c_str(), t);
  std::printf("\npeer: Open3D EstimateNormals (KNN 12) on the same points %.2f s wall; detection / peer = %.2f\n", t_normals,
              t_detect / std::max(t_normals, 1e-9));
  // The same scan without the mark: no clear lattice at the stamp's scale, so every working
  // scale and both axes are searched before "no mark found".
  PointCloud bare = resample_points(host.appliance, 0.1, 0.5, 3);
  bare.points.resize(std::min<std::size_t>(bare.points.size(), 1000000));
  const double tu = now();
  const Detection du = detect(bare.points, key_of(1));
  const double t_bare = now() - tu;
  std::printf("unmarked (the unstamped piece, %zu points): %.2f s wall (%s)", bare.points.size(), t_bare, outcome_name(du.outcome));
  for (const auto& [k, t] : du.timings) std::printf(", %s %.2f", k.c_str(), t);
  std::printf("; / peer = %.2f\n", t_bare / std::max(t_normals, 1e-9));
}

}  // namespace

int main(int argc, char** argv) {
  // TRACECAST_DEBUG=1: the libraries' debug log (the detector's candidates and scales) on stderr.
  if (std::getenv("TRACECAST_DEBUG"))
    tracecast::set_log_sink([](tracecast::LogLevel, const std::string& text) { std::fprintf(stderr, "%s\n", text.c_str()); },
                            tracecast::LogLevel::Debug);
  const std::optional<BenchArgs> args = parse_args(argc, argv);
  if (!args) {
    std::fprintf(stderr, "usage: bench_watermark [--trials N] [--fp-keys N] [--host generated|nefertiti|both|mask] [--rows 0,1,…] [--first-trial K] [--scale-sweep] [--area-sweep] [--front-scan]\n");
    return 2;
  }
  for (const Host& host : load_hosts(args->host)) {
    const double t0 = now();
    const auto plan = plan_stamp(host.appliance);
    const Stamped first = apply_stamp(*plan, id_of(0), key_of(0), true);
    std::printf("\n## %s\n\nstamp: %.0f mm² marked (%.1f tiles), max displacement %.1f µm, RMS %.1f µm, Hausdorff %.4f mm; plan %.1f s\n\n",
                host.name.c_str(), first.report.marked_area_mm2, first.report.tiles, first.report.max_displacement_um,
                first.report.rms_displacement_um, first.report.hausdorff_mm, now() - t0);
    if (args->front_scan) {
      front_scan(*plan, host.appliance, host.wearer, args->first_trial, args->trials);
    } else if (args->sweep) {
      scale_sweep(*plan, args->trials);
    } else if (args->area_sweep) {
      area_sweep(*plan, args->trials);
    } else {
      false_positives(host, attack_table(*plan, *args), args->fp_keys);
      large_scan(*plan, host);
    }
  }
  return 0;
}
