// Multi-part molds (print/multipart.h), measured by the tests' own rays and distances, not by
// the mold's report: each part a valid solid, released along its own pull, the cavity exactly the
// piece, the keys seated.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <unordered_set>

#include "cli_run.h"
#include "fixtures.h"
#include "mold_fixtures.h"
#include "solid_checks.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/level_set.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/point_hash.h"
#include "tracecast/print/mold.h"
#include "tracecast/print/multipart.h"
#include "tracecast/scan/synthetic_head.h"
#include "tracecast/sculpt/ear.h"

using namespace tracecast;

namespace {

struct EarCase {
  Mesh head, ear;
  print::Mold mold;
};

//! A head lacking its left ear, the ear made for it, and its mold as needed (computed once).
const EarCase& ear_case() {
  static const EarCase c = [] {
    EarCase e;
    scan::HeadParams right;
    right.ears = "right";
    e.head = scan::SyntheticHead(right).mesh(1.5);
    e.ear = sculpt::make_ear(e.head, {});
    e.mold = print::design_mold(e.ear, e.head, {});
    return e;
  }();
  return c;
}

std::vector<Vec3> centres(const Mesh& m) {
  std::vector<Vec3> c;
  for (const Tri& t : m.triangles) c.push_back((m.vertices[t[0]] + m.vertices[t[1]] + m.vertices[t[2]]) / 3.0);
  return c;
}

double area(const Mesh& m, const Tri& t) {
  return 0.5 * (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).norm();
}

//! Where along `d` from `o` a closed surface is entered and left: the first hit, and the next.
std::pair<double, double> passage(const SurfaceQuery& q, const Vec3& o, const Vec3& d) {
  const RayHit in = q.cast({o}, {d})[0];
  if (!in.hit) return {-1, -1};
  const RayHit out = q.cast({Vec3(o + (in.t + 1e-3) * d)}, {d})[0];
  return {in.t, out.hit ? in.t + 1e-3 + out.t : in.t};
}

}  // namespace

TEST_CASE("level sets on one grid: two parts of a ball meet on one surface, vertex for vertex", "[mold]") {
  // The multi-part mold's parts are zero levels of fields sampled together; where two parts' fields
  // are each other's negatives (a parting surface), the grid gives both the same vertices there.
  const double r = 10;
  const FieldFn halves = [&](const std::vector<Vec3>& pts) {
    std::vector<double> v;
    for (const Vec3& p : pts) {
      const double split = p.x() + 0.3 * p.y() - 0.1 * p.z() * p.z() / r;  // a curved parting surface
      v.push_back(std::max(p.norm() - r, split));
      v.push_back(std::max(p.norm() - r, -split));
    }
    return v;
  };
  Aabb box;
  box.add(Vec3::Constant(-12));
  box.add(Vec3::Constant(12));
  const std::vector<Mesh> parts = level_set_surfaces(halves, 2, box, 0.8, 2.0);
  REQUIRE(parts.size() == 2);
  double total = 0;
  for (const Mesh& m : parts) {
    const MeshInfo info = test::check_solid(m);
    REQUIRE(info.volume_mm3);
    total += *info.volume_mm3;
  }
  const Mesh whole = level_set_surface([&](const std::vector<Vec3>& pts) {
    std::vector<double> v;
    for (const Vec3& p : pts) v.push_back(p.norm() - r);
    return v;
  }, box, 0.8, 2.0);
  // No overlap; a gap only in the groove where the parting surface meets the ball's (within a cell
  // of it one field's envelope term, not its parting term, sets the crossing on an edge).
  CHECK(total <= signed_volume(whole) + 1e-6);
  CHECK(total >= 0.995 * signed_volume(whole));
  // Every vertex of one half on the parting surface, over two and a half cells inside the ball, is one
  // of the other's.
  std::size_t on = 0, shared = 0;
  for (const Vec3& v : parts[0].vertices) {
    if (v.norm() > r - 2.0) continue;
    ++on;
    double nearest = 1e9;
    for (const Vec3& w : parts[1].vertices) nearest = std::min(nearest, (v - w).norm());
    shared += nearest < 1e-9;
  }
  CHECK(on > 100);
  CHECK(shared == on);
}

TEST_CASE("multi-part mold: an ear's mold is a core and shell parts, each a valid solid", "[mold][ear][slow]") {
  const EarCase& c = ear_case();
  const print::MoldReport& r = c.mold.report;
  CHECK(r.layout == "multi-part");
  REQUIRE(c.mold.parts.size() >= 3);  // a core and at least two shell parts
  CHECK(c.mold.parts[0].name == "core");
  REQUIRE(r.pulls.size() == c.mold.parts.size());
  for (const NamedMesh& p : c.mold.parts) {
    INFO(p.name);
    test::check_solid(p.mesh);
  }
  for (const NamedMesh& p : c.mold.print_parts) {
    INFO(p.name);
    const Vec3 size = bounding_box(p.mesh).extent();
    const Vec3 bed = print::MoldOptions{}.printer.build_volume_mm;
    CHECK((size.array() <= bed.array()).all());  // as written, on the printer's bed
    CHECK(bounding_box(p.mesh).min.z() == Approx(0).margin(1e-3));
  }
}

TEST_CASE("multi-part mold: two shell parts meet on a smooth parting surface, not a field of grid-sized blocks", "[mold][ear][slow]") {
  const EarCase& c = ear_case();
  // The parting surface between shell parts i and j: part i's faces whose corners are all part j's
  // vertices (the parts are level sets on one grid, meeting vertex for vertex). Across its inner
  // edges, the two faces' normals: a block's corner turns 90°, a smooth surface a few degrees.
  std::size_t edges = 0, sharp = 0;
  for (std::size_t i = 1; i < c.mold.parts.size(); ++i)
    for (std::size_t j = i + 1; j < c.mold.parts.size(); ++j) {
      const Mesh &a = c.mold.parts[i].mesh, &b = c.mold.parts[j].mesh;
      const std::unordered_set<Vec3, PointHash> on_b(b.vertices.begin(), b.vertices.end());
      std::map<std::pair<std::int32_t, std::int32_t>, std::vector<Vec3>> normals;  // part i's edges → normals of the contact faces on them
      for (const Tri& t : a.triangles) {
        if (!on_b.count(a.vertices[t[0]]) || !on_b.count(a.vertices[t[1]]) || !on_b.count(a.vertices[t[2]])) continue;
        const Vec3 n = (a.vertices[t[1]] - a.vertices[t[0]]).cross(a.vertices[t[2]] - a.vertices[t[0]]).normalized();
        for (int k = 0; k < 3; ++k) normals[std::minmax(t[k], t[(k + 1) % 3])].push_back(n);
      }
      for (const auto& [edge, n] : normals) {
        if (n.size() != 2) continue;
        ++edges;
        sharp += n[0].dot(n[1]) < 0.5;
      }
    }
  std::printf("multi-part parting surfaces between shell parts: %zu of %zu inner edges turn over 60°\n", sharp, edges);
  REQUIRE(edges > 1000);
  CHECK(static_cast<double>(sharp) < 0.02 * static_cast<double>(edges));  // 9 % before the shares were kept apart
}

TEST_CASE("multi-part mold: parts larger than the printer come out in sections that fit, hold the part, dowel holes coaxial across the cuts",
          "[mold][ear][slow]") {
  const EarCase& c = ear_case();
  print::MoldOptions o;
  o.printer.build_volume_mm = Vec3(80, 80, 80);
  const print::Mold m = print::design_mold(c.ear, c.head, o);
  const print::MoldReport& r = m.report;
  REQUIRE(r.part_sections.size() >= 2);
  std::map<std::string, double> whole, pieces;
  for (const NamedMesh& p : c.mold.parts) whole[p.name] = *measure(p.mesh, {false}).volume_mm3;
  // As written: each piece one closed part within 80 mm each way; put back in the mold frame,
  // the sections of each part (and the dowel holes drilled from them) hold the uncut part.
  std::vector<NamedMesh> back;
  for (std::size_t k = 0; k < m.print_parts.size(); ++k) {
    const NamedMesh& p = m.print_parts[k];
    INFO(p.name);
    const MeshInfo info = measure(p.mesh, {false});
    CHECK(info.watertight);
    CHECK(info.components == 1);
    CHECK((bounding_box(p.mesh).extent().array() <= 80.0).all());
    Mesh b = p.mesh;
    for (Vec3& v : b.vertices) v = r.print_from_mold[k].inverse() * v;
    pieces[p.name.substr(0, p.name.find('.'))] += *info.volume_mm3;
    back.push_back({p.name, std::move(b)});
  }
  double hole = 0;  // one dowel's two holes: a 32-gon prism each side of the cut
  hole = 2 * 0.5 * 32 * std::sin(2 * 3.14159265358979 / 32) * std::pow(0.5 * o.dowel_diameter_mm + o.printer.key_clearance_mm, 2) *
         (0.5 * o.dowel_length_mm + 0.5);
  // A boss adds at most its own 32-gon prism; every cut is pinned by two dowels at least.
  for (const print::PartSections& ps : r.part_sections) {
    INFO(ps.part);
    CHECK(ps.sections.count() >= 2);
    const double bosses = static_cast<double>(std::count_if(ps.sections.dowels.begin(), ps.sections.dowels.end(), [](const print::Dowel& d) { return d.boss; })) *
                          0.5 * 32 * std::sin(2 * 3.14159265358979 / 32) * std::pow(ps.sections.boss_radius_mm, 2) * 2 * ps.sections.boss_reach_mm;
    CHECK(pieces[ps.part] + hole * static_cast<double>(ps.sections.dowels.size()) >= whole[ps.part] * (1 - 1e-3));
    CHECK(pieces[ps.part] + hole * static_cast<double>(ps.sections.dowels.size()) <= whole[ps.part] * (1 + 1e-3) + bosses);
    const std::size_t cuts = ps.sections.cuts[0].size() + ps.sections.cuts[1].size() + ps.sections.cuts_z.size();
    CHECK(ps.sections.dowels.size() >= 2 * cuts);
  }
  for (const std::string& w : r.warnings) CHECK_THAT(w, !Catch::Contains("dowel(s) only"));
  // Dowels: rays from each dowel's axis out to the hole's wall, in both sections it joins, all at
  // the pin's radius and the clearance (the 32-gon's flats): a pin aligns them within it.
  double widest = 0, narrowest = 1e9, round = 1e9;
  std::size_t dowels = 0;
  for (const print::PartSections& ps : r.part_sections)
    for (const print::Dowel& d : ps.sections.dowels) {
      ++dowels;
      const Vec3 along = ps.frame.transpose() * Vec3::Unit(d.axis), centre = ps.frame.transpose() * d.centre;
      const Vec3 u = along.unitOrthogonal(), w = along.cross(u);
      for (double side : {-1.0, 1.0}) {
        const Vec3 inside = centre + side * 0.5 * ps.sections.hole_depth_mm * along;
        const NamedMesh* piece = nullptr;
        const double wall = ps.sections.hole_radius_mm + 0.01;  // the hole's wall round the axis: the piece it is in
        for (const NamedMesh& p : back)
          if (p.name.rfind(ps.part + ".", 0) == 0 && SurfaceQuery(p.mesh).distances({inside})[0] < wall) piece = &p;
        REQUIRE(piece);
        const SurfaceQuery q(piece->mesh);
        std::vector<Vec3> from(16, inside), dir;
        for (int k = 0; k < 16; ++k) {
          const double a = 2 * 3.14159265358979 * (k + 0.5) / 16;
          dir.push_back(std::cos(a) * u + std::sin(a) * w);
        }
        const std::vector<RayHit> hits = q.cast(from, dir);
        std::vector<Vec3> beyond;
        for (std::size_t k = 0; k < hits.size(); ++k) {
          REQUIRE(hits[k].hit);
          widest = std::max(widest, hits[k].t), narrowest = std::min(narrowest, hits[k].t);
          beyond.push_back(inside + (hits[k].t + 1e-3) * dir[k]);
        }
        // and on through the material round the hole to where it ends: a wall all round the pin
        const std::vector<RayHit> out = q.cast(beyond, dir);
        for (std::size_t k = 0; k < out.size(); ++k) {
          REQUIRE(out[k].hit);
          round = std::min(round, out[k].t + 1e-3);
        }
      }
    }
  REQUIRE(dowels >= 2);
  std::printf("multi-part sections: the thinnest wall round a dowel's hole %.2f mm\n", round);
  CHECK(round >= o.printer.min_wall_mm - 0.05);
  const double pin = 0.5 * o.dowel_diameter_mm, clearance = o.printer.key_clearance_mm;
  std::printf("multi-part sections: %zu pieces for %zu parts, %zu dowels; holes %.4f-%.4f mm about the shared axis (pin %.2f + %.2f)\n",
              m.print_parts.size(), m.parts.size(), dowels, narrowest, widest, pin, clearance);
  CHECK(narrowest >= pin + clearance - 0.01);
  CHECK(widest <= pin + clearance + 1e-3);
  // A printer no sectioning within max_sections fits: refused, naming the part.
  o.printer.build_volume_mm = Vec3(20, 20, 20);
  CHECK_THROWS_WITH(print::design_mold(c.ear, c.head, o), Catch::Contains("cannot be cut into sections that fit"));
}

TEST_CASE("multi-part mold: every part releases along its own pull, beyond what the report says must flex", "[mold][ear][slow]") {
  const EarCase& c = ear_case();
  const print::MoldReport& r = c.mold.report;
  const SurfaceQuery piece(c.ear);
  for (std::size_t k = 0; k < c.mold.parts.size(); ++k) {
    const NamedMesh& part = c.mold.parts[k];
    const print::PartPull& pull = r.pulls[k];
    INFO(part.name);
    REQUIRE(pull.part == part.name);
    REQUIRE(pull.direction);
    const Vec3 d = *pull.direction;
    // The part's faces on the piece's surface form the cavity; from each, along the pull: the
    // piece in the way is the cast that must flex.
    const std::vector<Vec3> at = centres(part.mesh);
    const std::vector<double> off = piece.distances(at);
    double formed = 0, held = 0, deepest = 0;
    for (std::size_t f = 0; f < at.size(); ++f) {
      if (off[f] > 1e-4) continue;
      const double a = area(part.mesh, part.mesh.triangles[f]);
      formed += a;
      const auto [enter, leave] = passage(piece, at[f] + 1e-3 * d, d);
      if (enter < 0) continue;
      held += a;
      deepest = std::max(deepest, leave - enter);
    }
    CHECK(formed > 0);
    CHECK(held <= 0.05 * formed + 1);                     // nearly all of it lets go
    CHECK(held <= 1.5 * pull.undercut_area_mm2 + 5);      // and what does not is what the report says
    CHECK(deepest <= pull.undercut_depth_mm + 0.5);
  }
}

TEST_CASE("multi-part mold: the cavity is the ear, enclosed by the parts, with sprue and vents", "[mold][ear][slow]") {
  const EarCase& c = ear_case();
  const print::MoldReport& r = c.mold.report;
  std::vector<SurfaceQuery> parts;
  for (const NamedMesh& p : c.mold.parts) parts.emplace_back(p.mesh);
  auto inside_any = [&](const std::vector<Vec3>& pts) {
    std::vector<char> in(pts.size(), 0);
    for (const SurfaceQuery& q : parts) {
      const std::vector<double> s = q.signed_distances(pts);
      for (std::size_t i = 0; i < pts.size(); ++i) in[i] = in[i] || s[i] < 0;
    }
    return in;
  };
  // Nothing of any part inside the piece: a grid of points 0.3 mm apart inside it.
  const Aabb box = bounding_box(c.ear);
  std::vector<Vec3> grid;
  for (double x = box.min.x(); x < box.max.x(); x += 0.3)
    for (double y = box.min.y(); y < box.max.y(); y += 0.3)
      for (double z = box.min.z(); z < box.max.z(); z += 0.3) grid.emplace_back(x, y, z);
  const std::vector<double> sp = SurfaceQuery(c.ear).signed_distances(grid);
  std::vector<Vec3> interior;
  for (std::size_t i = 0; i < grid.size(); ++i)
    if (sp[i] < -0.02) interior.push_back(grid[i]);
  const std::vector<char> intruded = inside_any(interior);
  const auto intrusions = std::count(intruded.begin(), intruded.end(), 1);
  INFO(intrusions << " of " << interior.size() << " points inside the ear lie in a part");
  CHECK(static_cast<double>(intrusions) <= 0.001 * static_cast<double>(interior.size()));
  const double piece_ml = signed_volume(c.ear) / 1000.0;
  CHECK(r.appliance_ml == Approx(piece_ml).epsilon(1e-6));
  // Everything round it is a part: points 0.05 mm off its surface, except at the sprue and vents.
  const std::vector<Vec3> n = [&] {
    std::vector<Vec3> out;
    for (const Tri& t : c.ear.triangles)
      out.push_back((c.ear.vertices[t[1]] - c.ear.vertices[t[0]]).cross(c.ear.vertices[t[2]] - c.ear.vertices[t[0]]).normalized());
    return out;
  }();
  const std::vector<Vec3> at = centres(c.ear);
  std::vector<Vec3> outside;
  std::vector<double> weight;
  for (std::size_t f = 0; f < at.size(); ++f) {
    bool channel = false;
    for (const Vec3& v : r.vent_bottoms) channel = channel || (at[f] - v).norm() < 2.0;
    channel = channel || (at[f] - r.sprue_bottom).norm() < 6.0;
    if (!channel) outside.push_back(at[f] + 0.05 * n[f]), weight.push_back(area(c.ear, c.ear.triangles[f]));
  }
  const std::vector<char> covered = inside_any(outside);
  double open = 0, total = 0;
  for (std::size_t i = 0; i < outside.size(); ++i) total += weight[i], open += covered[i] ? 0 : weight[i];
  INFO(open << " mm² of " << total << " mm² of the ear's surface not against a part");
  // The grooves where three parts meet at the cavity (flash, under a grid step wide): 1.23 mm², 0.03 %,
  // measured (no piece the booleans cut off is given to another part on this ear).
  CHECK(open <= 0.002 * total);
  std::printf("multi-part mold of the ear: %.2f mm² of %.0f mm² not against a part (measured here), the report's open cavity %.2f mm² (up to %.3f mm)\n",
              open, total, r.open_cavity_mm2, r.open_cavity_max_mm);
  // The report's figure (the ear's vertices more than 0.05 mm off every part) agrees with this one
  // (points 0.05 mm out from its faces' centres in no part): 0.88 and 1.23 mm² measured.
  CHECK(r.open_cavity_mm2 == Approx(open).margin(0.5 + 0.5 * open));
  CHECK(r.sprue_bottom.norm() > 0);
  CHECK(!r.vent_bottoms.empty());
}

TEST_CASE("multi-part mold: keys are seated in their sockets with the printer's clearance", "[mold][ear][slow]") {
  const EarCase& c = ear_case();
  const print::MoldReport& r = c.mold.report;
  REQUIRE(r.key_centres.size() >= 3);
  std::vector<SurfaceQuery> parts;
  for (const NamedMesh& p : c.mold.parts) parts.emplace_back(p.mesh);
  const double clearance = print::MoldOptions{}.printer.key_clearance_mm;
  REQUIRE(r.key_radii_mm.size() == r.key_centres.size());
  auto sphere = [&](const Vec3& centre, double rad) {
    std::vector<Vec3> pts;
    for (int i = 0; i < 400; ++i) {
      const double z = 1 - (i + 0.5) / 200.0, rr = std::sqrt(1 - z * z), ph = 2.39996323 * i;
      pts.push_back(centre + rad * Vec3(rr * std::cos(ph), rr * std::sin(ph), z));
    }
    return pts;
  };
  for (std::size_t n = 0; n < r.key_centres.size(); ++n) {
    const Vec3& k = r.key_centres[n];
    const double radius = r.key_radii_mm[n];
    CHECK(radius >= 1);
    // The ball belongs to the one part its centre lies in; all of it (less the grid's chords) is
    // that part's, and no other part comes within half the clearance of it.
    std::vector<std::size_t> owners;
    for (std::size_t q = 0; q < parts.size(); ++q)
      if (parts[q].signed_distances({k})[0] < 0) owners.push_back(q);
    REQUIRE(owners.size() == 1);
    const std::vector<double> ball = parts[owners[0]].signed_distances(sphere(k, radius - 0.05));
    CHECK(*std::max_element(ball.begin(), ball.end()) < 0);
    const std::vector<Vec3> gap = sphere(k, radius + 0.5 * clearance);
    for (std::size_t q = 0; q < parts.size(); ++q) {
      if (q == owners[0]) continue;
      const std::vector<double> s = parts[q].signed_distances(gap);
      CHECK(*std::min_element(s.begin(), s.end()) > 0);
    }
  }
}

TEST_CASE("multi-part mold: the grid is the one given, else half the wall, at most 1 mm up to 150 mm across and 1.5 mm beyond", "[mold]") {
  print::MoldOptions o;
  const Mesh ear_sized = test::uv_sphere(40, 24, 48), head_sized = test::uv_sphere(110, 24, 48);  // 80 and 220 mm across
  CHECK(print::stages::multipart_grid_mm(o, ear_sized) == 1.0);
  CHECK(print::stages::multipart_grid_mm(o, head_sized) == 1.5);
  o.wall_mm = 2.4;
  CHECK(print::stages::multipart_grid_mm(o, ear_sized) == 1.0);
  CHECK(print::stages::multipart_grid_mm(o, head_sized) == Approx(1.2));
  o.grid_mm = 0.8;
  CHECK(print::stages::multipart_grid_mm(o, head_sized) == 0.8);
  // The option itself: 0 (chosen) or 0.3 to 3 mm.
  o.grid_mm = 0.2;
  CHECK_FALSE(print::mold_option_table().check(o).empty());
  o.grid_mm = 0;
  CHECK(print::mold_option_table().check(o).empty());
}

TEST_CASE("multi-part mold: a piece open along a plane, its edge not quite flat (a remeshed mask's neck), is poured there, no part over the edge",
          "[mold][slow]") {
  // The skin a capsule (a head), the piece a 2.5 mm wall over it above z = 10 (a mask), cut off
  // by a surface that waves ±0.25 mm about that plane, the way a remeshing leaves a mask's neck.
  const Vec3 a(0, 0, 0), b(0, 0, 40);
  auto skin_d = [&](const Vec3& p) {
    const double t = std::clamp((p - a).dot(b - a) / (b - a).squaredNorm(), 0.0, 1.0);
    return (p - (a + t * (b - a))).norm() - 22.0;
  };
  auto edge = [](const Vec3& p) { return 10.0 + 0.25 * std::sin(p.x() / 2.3) * std::cos(p.y() / 1.9); };
  const Aabb box{Vec3(-30, -30, -30), Vec3(30, 30, 70)};
  const Mesh skin = level_set_surface(
      [&](const std::vector<Vec3>& p) {
        std::vector<double> v;
        for (const Vec3& q : p) v.push_back(skin_d(q));
        return v;
      },
      box, 0.8);
  const Mesh piece = level_set_surface(
      [&](const std::vector<Vec3>& p) {
        std::vector<double> v;
        for (const Vec3& q : p) v.push_back(std::max(std::abs(skin_d(q) - 1.25) - 1.25, edge(q) - q.z()));
        return v;
      },
      box, 0.6);
  print::MoldOptions o = test::bare_mold();
  o.parts = 3;
  o.grid_mm = 1.0;
  const print::Mold mold = print::design_mold(piece, skin, o);
  const print::MoldReport& r = mold.report;
  CHECK(r.open_pour);
  double lowest = 1e9;  // the edge, in the mold frame
  Mesh piece_in_mold = piece;
  for (Vec3& v : piece_in_mold.vertices) v = r.frame * v;
  const Vec3 down = r.frame * Vec3(0, 0, -1);
  for (const Vec3& v : piece_in_mold.vertices) lowest = std::min(lowest, -down.dot(v));
  // No part reaches the edge (no film closes the opening), and the cavity is closed elsewhere.
  for (const NamedMesh& part : mold.parts) {
    double part_lowest = 1e9;
    for (const Vec3& v : part.mesh.vertices) part_lowest = std::min(part_lowest, -down.dot(v));
    INFO(part.name << ": lowest " << part_lowest << " mm against the piece's edge at " << lowest);
    CHECK(part_lowest >= lowest + print::stages::kOpenShort - 1e-6);
    CHECK(part_lowest <= lowest + 3.0);
  }
  INFO("open cavity " << r.open_cavity_mm2 << " mm², up to " << r.open_cavity_max_mm);
  CHECK(r.open_cavity_mm2 < 1.0);
}

TEST_CASE("multi-part mold: --parts forces the count; 1, and more than 2 on an open skin, are refused", "[mold][ear][slow]") {
  const EarCase& c = ear_case();
  print::MoldOptions o;
  o.parts = 4;
  o.grid_mm = 1.0;  // the count is what is checked here: a coarser grid, no keys or channels
  o.keys = 0;
  o.sprue_diameter_mm = o.vent_diameter_mm = 0;
  const print::Mold m = print::design_mold(c.ear, c.head, o);
  CHECK(m.parts.size() == 4);
  o.parts = 1;
  CHECK_THROWS_AS(print::design_mold(c.ear, c.head, o), InputError);
  // A forced multi-part mold needs a closed skin (its signed distance parts core from shell).
  Mesh open = c.head;
  open.triangles.resize(open.triangles.size() - 50);
  o.parts = 3;
  CHECK_THROWS_WITH(print::design_mold(c.ear, open, o), Catch::Contains("needs the face to be a closed surface"));
  // A piece whose parts' grid would outgrow the level sets (the ear and head twelve times as
  // large: a box of nearly a metre; a bust's head and shoulders at 1 mm) is refused before the walls,
  // naming --grid and a step that fits.
  Mesh big_ear = c.ear, big_head = c.head;
  for (Mesh* big : {&big_ear, &big_head})
    for (Vec3& v : big->vertices) v *= 12.0;
  o.grid_mm = 1.0;
  CHECK_THROWS_WITH(print::design_mold(big_ear, big_head, o), Catch::Contains("over the 150 M the level sets take: use --grid"));
}

TEST_CASE("cli: an ear's mold in three parts, stamped and recorded; an ear the mark folds is refused, nothing written", "[mold][ear][cli][slow]") {
  const EarCase& c = ear_case();
  const test::Workshop shop("cli-ear-mold");
  // A fixed marking key: the mark's relief depends on the key, and with a fresh random key each
  // run the refusal below once did not happen (in one full suite of several; 8 of 8 random keys
  // refused when tried alone). This key folds the slivers (measured: the folded ear refused, exit 4).
  test::write_bytes(shop.dir / "shop.key", "tracecast-key 1\n"
                                           "id 1405f1358f41b432\n"
                                           "secret 85c3a1ee18dbfb28f6e400c933da44cca4cf5172468fde52c4674853d57c0cbc\n");
  const auto head = shop.dir / "head.ply", folded = shop.dir / "ear.ply", ear = shop.dir / "ear-r.ply";
  io::write_mesh(head, c.head);
  io::write_mesh(folded, c.ear);
  REQUIRE(shop.tc("repair -q " + folded.string() + " -o " + ear.string() + " --remesh-edge 0.4").code == 0);
  const auto out = shop.dir / "m.3mf";
  const test::Run r = shop.tc("mold " + ear.string() + " --face " + head.string() + " -o " + out.string() + shop.mold_flags + " --json");
  REQUIRE(r.code == 0);
  const nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["layout"] == "multi-part");
  CHECK(j["grid_mm"] == 1.0);  // the default grid for a piece under 150 mm across, the wall 3 mm
  REQUIRE(j["pulls"].size() >= 3);
  CHECK(j["pulls"][0]["part"] == "core");
  for (const auto& p : j["parts"]) CHECK(std::filesystem::exists(shop.dir / ("m-" + p["name"].get<std::string>() + ".stl")));
  CHECK(std::filesystem::exists(out));
  CHECK(!j["mark"]["id"].is_null());
  // A printer too small for any sectioning of a part within max_sections: refused (exit 4) naming
  // the part, nothing written, and nothing recorded (the parts' solids are planned first; on a 3 mm
  // grid, which is all the refusal needs).
  {
    const std::size_t entries = shop.entries();
    const auto tiny = shop.dir / "tiny.3mf";
    const test::Run small = shop.tc("mold " + ear.string() + " --face " + head.string() + " -o " + tiny.string() + shop.mold_flags +
                                    " --build-volume 20,20,20 --grid 3");
    INFO(small.err);
    CHECK(small.code == 4);
    CHECK(small.err.find("cannot be cut into sections that fit the resin printer (20 × 20 × 20 mm)") != std::string::npos);
    CHECK((small.err.find("the core (") != std::string::npos || small.err.find("the shell-") != std::string::npos));
    CHECK(!std::filesystem::exists(tiny));
    CHECK(!std::filesystem::exists(shop.dir / "tiny-core.stl"));
    CHECK(!std::filesystem::exists(shop.dir / "tiny-core.1.stl"));
    CHECK(shop.entries() == entries);
  }
  // The level set's own surface, stamped, crosses itself: refused with the way out, and the
  // piece's record says no mold was released.
  const auto bad = shop.dir / "bad.3mf";
  const test::Run b = shop.tc("mold " + folded.string() + " --face " + head.string() + " -o " + bad.string() + shop.mold_flags);
  CHECK(b.code == 4);
  CHECK(b.err.find("remesh") != std::string::npos);
  CHECK(!std::filesystem::exists(bad));
  CHECK(!std::filesystem::exists(shop.dir / "bad-core.stl"));
}

TEST_CASE("multi-part mold: PrusaSlicer slices every part of an ear's mold on the resin printer's bed", "[mold][ear][slicer][slow]") {
  // Needs prusa-slicer: CTest's "slicer" test, reported as skipped where it is absent.
  REQUIRE(std::system("command -v prusa-slicer >/dev/null 2>&1") == 0);
  const EarCase& c = ear_case();
  const auto dir = test::temp_dir("ear-mold-slice");
  const Vec3 bed = print::MoldOptions{}.printer.build_volume_mm;
  for (const NamedMesh& p : c.mold.print_parts) {
    INFO(p.name);
    const std::string stl = (dir / (p.name + ".stl")).string(), sl1 = (dir / (p.name + ".sl1")).string();
    // As written: on the bed (within its display, on z = 0), where a slicer opening the file finds it.
    const Aabb box = bounding_box(p.mesh.vertices);
    CHECK((box.min.array() >= -1e-3).all());
    CHECK((box.max.array() <= bed.array() + 1e-3).all());
    CHECK(box.min.z() == Approx(0).margin(1e-4));
    io::write_mesh(stl, p.mesh);
    // SLA on the display and height of the resin profile, as written (no turning by the slicer).
    const std::string cmd = fmt::format(
        "prusa-slicer --printer-technology SLA --export-sla {} --output {} --bed-shape 0x0,{:g}x0,{:g}x{:g},0x{:g} --display-width {:g} "
        "--display-height {:g} --display-pixels-x 7680 --display-pixels-y 4320 --max-print-height {:g} --no-supports-enable >/dev/null 2>&1",
        stl, sl1, bed.x(), bed.x(), bed.y(), bed.y(), bed.x(), bed.y(), bed.z());
    CHECK(std::system(cmd.c_str()) == 0);
    CHECK(std::filesystem::exists(sl1));
  }
}
