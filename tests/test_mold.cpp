// The two-part mold: the cavity is the appliance, every part is a valid solid, keys fit with the
// printer's clearance, the sprue and vents open into the cavity; files that slicers accept.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <set>

#include <cstdio>
#include <cstdlib>

#include "fixtures.h"
#include "mold_fixtures.h"
#include "tracecast/mesh/appliance.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/print/mold.h"
#include "tracecast/print/mold_stages.h"
#include "tracecast/scan/synthetic_face.h"

using namespace tracecast;

namespace {

void check_parts(const print::Mold& m) {
  REQUIRE(m.parts.size() == 2);
  REQUIRE(m.report.sections.count() == 1);  // sectioned molds: their own test
  for (const NamedMesh& p : m.parts) {
    INFO(p.name);
    const MeshInfo i = measure(p.mesh, {false});
    CHECK(i.watertight);
    CHECK(i.edge_manifold);
    CHECK(i.vertex_manifold);
    REQUIRE(i.volume_mm3);
    CHECK(*i.volume_mm3 > 0);
    CHECK(i.components == 1);
    CHECK(count_self_intersections(p.mesh) == 0);
  }
  // What is written: coordinates exact in single precision (STL and 3MF store floats), so that the
  // checks made on them hold for the files.
  REQUIRE(m.print_parts.size() == 2);
  for (const NamedMesh& p : m.print_parts) {
    INFO(p.name);
    std::size_t off_float = 0;
    for (const Vec3& v : p.mesh.vertices)
      for (int k = 0; k < 3; ++k) {
        const volatile float f = static_cast<float>(v[k]);  // through memory: see single_precision()
        off_float += static_cast<double>(f) != v[k];
      }
    CHECK(off_float == 0);
    CHECK(count_self_intersections(p.mesh) == 0);
    // No two vertices on one point: an STL reader would weld them into a pinch.
    std::set<std::array<double, 3>> points;
    for (const Vec3& v : p.mesh.vertices) points.insert({v.x(), v.y(), v.z()});
    CHECK(points.size() == p.mesh.vertices.size());
  }
}

double box_ml(const print::MoldReport& r) { return (r.box_max - r.box_min).prod() / 1000; }

//! The appliance in the mold's frame.
Mesh in_mold_frame(const Mesh& appliance, const print::MoldReport& r) {
  Mesh a = appliance;
  for (Vec3& v : a.vertices) v = r.frame * v;
  return a;
}

//! Faces of a part that lie on the appliance's surface (every corner within `tol`, 0.1 µm, of it):
//! the cavity's walls in that part.
std::vector<char> on_cavity(const Mesh& part, const SurfaceQuery& appliance, double tol = 1e-4) {
  std::vector<Vec3> corners;
  for (const Tri& t : part.triangles)
    for (std::int32_t v : t) corners.push_back(part.vertices[static_cast<std::size_t>(v)]);
  const std::vector<double> d = appliance.distances(corners);
  std::vector<char> on(part.triangles.size(), 0);
  for (std::size_t f = 0; f < on.size(); ++f) on[f] = d[3 * f] < tol && d[3 * f + 1] < tol && d[3 * f + 2] < tol;
  return on;
}

//! The cavity's volume from the parts alone (ml): the core's and the shell's walls on the
//! appliance together close the cavity (the parting surface crosses the appliance's rim), so
//! their signed volume, turned inside out, is the cavity's, whatever shape the parts have
//! outside it.
//! `tol`: how far from the appliance a wall's corners may be (more for parts rounded to floats).
double cavity_ml(const print::Mold& m, const Mesh& appliance, double tol = 1e-4) {
  const SurfaceQuery q(in_mold_frame(appliance, m.report));
  double v = 0;
  for (const NamedMesh& p : m.parts) {
    const std::vector<char> on = on_cavity(p.mesh, q, tol);
    for (std::size_t f = 0; f < on.size(); ++f) {
      if (!on[f]) continue;
      const Tri& t = p.mesh.triangles[f];
      v -= p.mesh.vertices[t[0]].dot(p.mesh.vertices[t[1]].cross(p.mesh.vertices[t[2]])) / 6.0;
    }
  }
  return v / 1000.0;
}

print::MoldOptions bare() { return test::bare_mold(); }

struct Made {
  Mesh face, appliance;
};
const Made& generated() {
  static const Made m = [] {
    Made x;
    x.face = scan::SyntheticFace().mesh(0.8);
    x.appliance = make_appliance(x.face, ApplianceSpec{});
    return x;
  }();
  return m;
}

}  // namespace

TEST_CASE("mold on a generated face: the cavity is the appliance, both parts valid", "[mold][slow]") {
  const Made& g = generated();
  print::MoldOptions o = bare();
  o.style = "block";
  const print::Mold m = print::design_mold(g.appliance, g.face, o);
  check_parts(m);
  const double appliance_ml = m.report.appliance_ml;
  double core = 0, shell = 0;
  for (const NamedMesh& p : m.parts) (p.name == "core" ? core : shell) = *measure(p.mesh, {false}).volume_mm3 / 1000;
  const double cavity = box_ml(m.report) - core - shell;
  std::printf("mold (bare, block): cavity %.4f ml (from the cavity's walls %.4f ml), appliance %.4f ml (%.3f %%); undercut %.1f mm² (frontal %.1f mm²)\n",
              cavity, cavity_ml(m, g.appliance), appliance_ml, 100 * (cavity / appliance_ml - 1), m.report.undercut_area_mm2,
              m.report.undercut_area_frontal_mm2);
  CHECK(cavity == Approx(appliance_ml).epsilon(5e-5));  // 0.001 % measured
  CHECK(cavity_ml(m, g.appliance) == Approx(cavity).epsilon(5e-5));  // the two measures agree on a block
  CHECK(m.report.undercut_area_mm2 <= m.report.undercut_area_frontal_mm2);
}

TEST_CASE("conformal mold: the cavity is the appliance, walls the wall's thickness, a fraction of the block's resin", "[mold][slow]") {
  const Made& g = generated();
  print::MoldOptions o = bare();  // conformal by default, the resin printer's 3 mm wall
  const print::Mold m = print::design_mold(g.appliance, g.face, o);
  check_parts(m);
  REQUIRE(o.style == "conformal");
  const double wall = o.wall_mm;
  CHECK(wall == 3.0);
  const double cavity = cavity_ml(m, g.appliance);
  std::printf("conformal (bare): cavity %.4f ml, appliance %.4f ml (%.4f %%)\n", cavity, m.report.appliance_ml,
              100 * (cavity / m.report.appliance_ml - 1));
  CHECK(cavity == Approx(m.report.appliance_ml).epsilon(5e-4));  // the 0.05 %
  {  // Every point of the appliance's surface is on a part: no void opens on the cavity (a fin on
     // every cast), however small its volume (on decimated-max, 420 of the inner surface's 87,674
     // points lay up to 0.72 mm off the core).
    const Mesh a = in_mold_frame(g.appliance, m.report);
    std::vector<double> off(a.vertices.size(), 1e9);
    for (const NamedMesh& p : m.parts) {
      const std::vector<double> d = SurfaceQuery(p.mesh).distances(a.vertices);
      for (std::size_t i = 0; i < d.size(); ++i) off[i] = std::min(off[i], d[i]);
    }
    const double worst = *std::max_element(off.begin(), off.end());
    std::printf("conformal (bare): the appliance's %zu vertices at most %.2g mm off the parts\n", off.size(), worst);
    CHECK(worst < 1e-3);
    // The report's closure agrees: nothing open. With the shell left out its check finds the
    // appliance's outer surface open (about half its area), its inner one closed by the core.
    CHECK(m.report.open_cavity_mm2 == 0);
    const Mesh* core = &m.parts.front().mesh;
    REQUIRE(m.parts.front().name == "core");
    const double open = print::stages::open_cavity(a, {core}, {}).first, total = surface_area(a);
    std::printf("conformal (bare): without the shell %.0f of the appliance's %.0f mm² open\n", open, total);
    CHECK(open > 0.35 * total);
    CHECK(open < 0.65 * total);
  }
  // Walls, measured here: from points on the cavity's walls where the appliance is at least
  // 1 mm thick (past the feathered band: the cutting edge at the rim is another matter), straight
  // through the part (down through the core, up through the shell) to where the ray leaves it.
  const SurfaceQuery appliance(in_mold_frame(g.appliance, m.report));
  for (const NamedMesh& p : m.parts) {
    const bool core = p.name == "core";
    const std::vector<char> on = on_cavity(p.mesh, appliance);
    std::vector<Vec3> from, dir;
    for (std::size_t f = 0; f < on.size(); f += 7) {
      if (!on[f]) continue;
      const Tri& t = p.mesh.triangles[f];
      const Vec3 n = (p.mesh.vertices[t[1]] - p.mesh.vertices[t[0]]).cross(p.mesh.vertices[t[2]] - p.mesh.vertices[t[0]]);
      // Faces with the part under them (core) or over them (shell); not the steep ones, along
      // which a vertical ray would run.
      if ((core ? 1.0 : -1.0) * n.normalized().z() < 0.5) continue;
      from.push_back((p.mesh.vertices[t[0]] + p.mesh.vertices[t[1]] + p.mesh.vertices[t[2]]) / 3 + Vec3(0, 0, core ? -1e-3 : 1e-3));
      dir.push_back(core ? Vec3(-Vec3::UnitZ()) : Vec3(Vec3::UnitZ()));
    }
    {  // keep the points where the appliance across them (against the ray) is 1 mm thick or more
      std::vector<Vec3> into(from.size()), back(from.size());
      for (std::size_t k = 0; k < from.size(); ++k) into[k] = from[k] - 2e-3 * dir[k], back[k] = -dir[k];
      const auto across = appliance.cast(into, back);
      std::vector<Vec3> f2, d2;
      for (std::size_t k = 0; k < from.size(); ++k)
        if (across[k].hit && across[k].t >= 1.0) f2.push_back(from[k]), d2.push_back(dir[k]);
      from.swap(f2);
      dir.swap(d2);
    }
    const auto exits = SurfaceQuery(p.mesh).cast(from, dir);
    double thinnest = 1e9;
    std::size_t at = 0;
    for (std::size_t k = 0; k < exits.size(); ++k)
      if (exits[k].hit && exits[k].t < thinnest) thinnest = exits[k].t, at = k;
    INFO("thinnest at " << from[at].transpose());
    std::printf("conformal %s: %zu rays from the cavity, thinnest wall along the pull %.3f mm (wall %.1f)\n", p.name.c_str(), from.size(),
                thinnest, wall);
    CHECK(from.size() > 300);
    CHECK(thinnest >= 0.97 * wall);
  }
  // The same mold as blocks holds several times more resin.
  o.style = "block";
  const print::Mold block = print::design_mold(g.appliance, g.face, o);
  double conformal_ml = 0, block_ml = 0;
  for (const NamedMesh& p : m.parts) conformal_ml += *measure(p.mesh, {false}).volume_mm3 / 1000;
  for (const NamedMesh& p : block.parts) block_ml += *measure(p.mesh, {false}).volume_mm3 / 1000;
  std::printf("conformal %.0f ml of resin against %.0f ml as blocks\n", conformal_ml, block_ml);
  CHECK(conformal_ml < 0.5 * block_ml);
}

TEST_CASE("mold features: keys fit with the printer's clearance, sprue and vents open into the cavity", "[mold][slow]") {
  const Made& g = generated();
  print::MoldOptions o;  // defaults: 4 keys, resin clearance 0.1 mm, sprue, vents, gutter, slots
  const print::Mold m = print::design_mold(g.appliance, g.face, o);
  check_parts(m);
  const print::MoldReport& r = m.report;
  const Mesh& core = m.parts[0].mesh;
  const Mesh& shell = m.parts[1].mesh;
  REQUIRE(r.key_centres.size() == 4);
  // Male keys: points on the core's hemispheres sit the clearance away from the shell's hollows.
  const SurfaceQuery to_shell(shell), to_core(core);
  std::vector<Vec3> bumps;
  for (const Vec3& c : r.key_centres)
    for (int a = 0; a < 12; ++a)
      for (double el : {30.0, 60.0, 85.0}) {
        const double t = a * M_PI / 6, e = el * M_PI / 180;
        bumps.push_back(c + o.key_radius_mm * Vec3(std::cos(e) * std::cos(t), std::cos(e) * std::sin(t), std::sin(e)));
      }
  const DistanceStats on_core = summarize(to_core.distances(bumps));
  const std::vector<double> gaps = to_shell.distances(bumps);
  std::printf("keys: male surface within %.4f mm of the core; gap to the shell %.4f..%.4f mm (clearance %.2f)\n", on_core.max,
              *std::min_element(gaps.begin(), gaps.end()), *std::max_element(gaps.begin(), gaps.end()), o.printer.key_clearance_mm);
  CHECK(on_core.max < 0.05);
  for (double d : gaps) CHECK(d == Approx(o.printer.key_clearance_mm).margin(0.03));
  // The appliance in the mold frame.
  Mesh a = g.appliance;
  for (Vec3& v : a.vertices) v = r.frame * v;
  const SurfaceQuery to_appliance(a);
  // Sprue and vents: they start inside the cavity and nothing of the shell is in their way: the
  // vents straight up, the sprue to its bend and from there straight up.
  std::vector<Vec3> starts{r.sprue_bend};
  starts.insert(starts.end(), r.vent_bottoms.begin(), r.vent_bottoms.end());
  REQUIRE(r.vent_bottoms.size() >= 1);
  const auto up = to_shell.cast(starts, std::vector<Vec3>(starts.size(), Vec3::UnitZ()));
  for (std::size_t k = 0; k < starts.size(); ++k) CHECK_FALSE(up[k].hit);  // open to the top
  const Vec3 slant = r.sprue_bend - r.sprue_bottom;
  const auto along = to_shell.cast({r.sprue_bottom}, {slant.normalized()});
  CHECK((!along[0].hit || along[0].t > slant.norm()));
  std::vector<Vec3> mouths{r.sprue_bottom};
  mouths.insert(mouths.end(), r.vent_bottoms.begin(), r.vent_bottoms.end());
  for (double d : to_appliance.distances(mouths)) CHECK(d < 0.35);  // at the cavity's ceiling
  // Vents are at local high points of the cavity's ceiling: nothing of the appliance within 5 mm
  // around a vent is higher.
  for (const Vec3& v : r.vent_bottoms) {
    double higher = 0;
    for (const Vec3& p : a.vertices)
      if ((p - v).head<2>().norm() < 5) higher = std::max(higher, p.z() - v.z());
    CHECK(higher < 0.5);
  }
  std::printf("features: sprue at (%.1f, %.1f, %.1f), %zu vents, gutter %.2f ml; void %.2f ml = cavity %.2f + extras\n",
              r.sprue_bottom.x(), r.sprue_bottom.y(), r.sprue_bottom.z(), r.vent_bottoms.size(), r.gutter_ml, r.void_ml,
              r.appliance_ml);
  CHECK(r.void_ml > r.appliance_ml + r.gutter_ml);

  // Bolts: measured on the parts, a hole straight through both at each bolt, as wide as the bolt
  // plus the clearance; round it, the bosses stack from the core's skirt edge to the shell's.
  const print::Bolts& bolts = r.bolts;
  REQUIRE(bolts.bolts.size() >= 4);
  CHECK(bolts.hole_radius_mm == Approx(0.5 * o.bolt_diameter_mm + o.printer.key_clearance_mm));
  double worst_stack = 0, narrowest = 1e9, widest = 0;
  for (const print::Bolt& b : bolts.bolts) {
    const Vec3 below(b.centre.x(), b.centre.y(), r.box_min.z() - 5), above(b.centre.x(), b.centre.y(), r.box_max.z() + 5);
    CHECK_FALSE(to_core.cast({below}, {Vec3::UnitZ()})[0].hit);
    CHECK_FALSE(to_shell.cast({below}, {Vec3::UnitZ()})[0].hit);
    for (int k = 0; k < 8; ++k) {  // round the hole, in the boss's wall: no longer a stack than the bolt is for
      const Vec3 in_wall = (bolts.hole_radius_mm + 0.5 * o.wall_mm) * Vec3(std::cos(k * M_PI / 4), std::sin(k * M_PI / 4), 0);
      const auto core_up = to_core.cast({below + in_wall}, {Vec3::UnitZ()})[0];
      const auto shell_down = to_shell.cast({above + in_wall}, {-Vec3::UnitZ()})[0];
      REQUIRE(core_up.hit);
      REQUIRE(shell_down.hit);
      const double stack = (above.z() - shell_down.t) - (below.z() + core_up.t);
      worst_stack = std::max(worst_stack, stack - (b.roof_z - b.floor_z));
      CHECK(stack >= o.frame_depth_mm);  // two skirts deep, or down to the core's flat base where that is nearer
    }
    for (int k = 0; k < 8; ++k) {  // the hole's wall, in the core's boss 3 mm under the parting surface
      const Vec3 dir(std::cos(k * M_PI / 4 + 0.1), std::sin(k * M_PI / 4 + 0.1), 0);
      const auto side = to_core.cast({b.centre - 3 * Vec3::UnitZ()}, {dir})[0];
      REQUIRE(side.hit);
      narrowest = std::min(narrowest, side.t), widest = std::max(widest, side.t);
    }
  }
  std::printf("bolts: %zu, hole radius %.3f..%.3f mm (%.3f asked), stack up to %.1f mm, over the report's by up to %.4f mm\n", bolts.bolts.size(),
              narrowest, widest, bolts.hole_radius_mm, bolts.grip_mm(), worst_stack);
  CHECK(narrowest >= bolts.hole_radius_mm * std::cos(M_PI / 32) - 1e-3);
  CHECK(widest <= bolts.hole_radius_mm + 1e-3);
  CHECK(worst_stack < 0.01);
  CHECK(bolts.length_mm() >= bolts.grip_mm() + 1.5 * o.bolt_diameter_mm);
}

TEST_CASE("mold refuses an open appliance and one made on another face", "[mold][slow]") {
  const Made& g = generated();
  Mesh open = g.appliance;
  open.triangles.resize(open.triangles.size() - 10);
  CHECK_THROWS_WITH(print::design_mold(open, g.face), Catch::Contains("not a closed"));
  Mesh moved = g.appliance;
  for (Vec3& v : moved.vertices) v += Vec3(0, 0, 8);
  CHECK_THROWS_WITH(print::design_mold(moved, g.face), Catch::Contains("does not sit on this face"));
  print::MoldOptions o;
  o.keys = 2;
  CHECK_THROWS_AS(print::design_mold(g.appliance, g.face, o), InputError);
  // A build volume shallower than the parts: no cut across the pull helps; refused, naming the part.
  o = bare();
  o.resolution_mm = 1.0;
  o.printer.build_volume_mm = Vec3(60, 60, 60);
  CHECK_THROWS_WITH(print::design_mold(g.appliance, g.face, o), Catch::Contains("mold: the shell (") && Catch::Contains("cannot be cut into sections"));
  // Deep enough, but sections not allowed: refused too.
  o.max_sections = 1;
  o.printer.build_volume_mm = Vec3(100, 100, 100);
  CHECK_THROWS_WITH(print::design_mold(g.appliance, g.face, o), Catch::Contains("more sections than max_sections = 1 allows"));
}

TEST_CASE("sectioned mold: pieces that fit the printer, put back together they hold the cavity, dowel holes coaxial within the clearance",
          "[mold][slow]") {
  const Made& g = generated();
  print::MoldOptions o;  // keys, sprue, vents and pry slots: the cuts must keep clear of them
  o.resolution_mm = 1.0;
  o.printer.build_volume_mm = Vec3(130, 110, 120);
  const print::Mold m = print::design_mold(g.appliance, g.face, o);
  const print::Sections& s = m.report.sections;
  const std::size_t n = s.count();
  std::printf("sections: %zu per part (%zu x cuts, %zu y cuts), %zu dowels; part %.0f x %.0f x %.0f mm\n", n, s.cuts[0].size(), s.cuts[1].size(),
              s.dowels.size(), s.part_size_mm.x(), s.part_size_mm.y(), s.part_size_mm.z());
  REQUIRE(n >= 2);
  REQUIRE(m.print_parts.size() == 2 * n);
  REQUIRE(m.report.print_from_mold.size() == 2 * n);
  CHECK(s.dowels.size() >= 2 * 2 * (s.cuts[0].size() + s.cuts[1].size()));  // two per cut in each part at least
  // Each piece: one closed solid that fits the printer as written (its own box, measured here).
  std::vector<NamedMesh> back;  // the pieces in the mold frame
  for (std::size_t k = 0; k < m.print_parts.size(); ++k) {
    const NamedMesh& p = m.print_parts[k];
    INFO(p.name);
    CHECK(p.name == fmt::format("{}-{}", k < n ? "core" : "shell", k % n + 1));
    const MeshInfo i = measure(p.mesh, {false});
    CHECK(i.watertight);
    CHECK(i.components == 1);
    CHECK(count_self_intersections(p.mesh) == 0);
    const Aabb box = bounding_box(p.mesh.vertices);
    const Vec3 size = box.extent();
    CHECK((size.array() <= o.printer.build_volume_mm.array()).all());
    // On the bed (z = 0), on a flat face, the flatter of its two sides along z.
    double bed = 0, top = 0;
    for (const Tri& t : p.mesh.triangles) {
      const Vec3 &a = p.mesh.vertices[t[0]], &b = p.mesh.vertices[t[1]], &c = p.mesh.vertices[t[2]];
      const double area = 0.5 * (b - a).cross(c - a).norm();
      if (std::max({a.z(), b.z(), c.z()}) < 1e-3) bed += area;
      if (std::min({a.z(), b.z(), c.z()}) > box.max.z() - 1e-3) top += area;
    }
    CHECK(std::abs(box.min.z()) < 1e-4);
    CHECK(bed > 100.0);
    CHECK(bed >= top);
    Mesh b = p.mesh;
    for (Vec3& v : b.vertices) v = m.report.print_from_mold[k].inverse() * v;
    back.push_back({p.name, std::move(b)});
  }
  // Put back together: the pieces of each part hold its volume, lie between their cuts, and with
  // the other part's pieces close the cavity, which is still the appliance.
  for (const std::string part : {"core", "shell"}) {
    double whole = 0, pieces = 0;
    for (const NamedMesh& p : m.parts)
      if (p.name == part) whole = *measure(p.mesh, {false}).volume_mm3;
    for (const NamedMesh& p : back)
      if (p.name.rfind(part, 0) == 0) pieces += *measure(p.mesh, {false}).volume_mm3;
    INFO(part);
    CHECK(pieces == Approx(whole).epsilon(1e-4));
  }
  // Each piece lies on one side of each cut, but for the land where the cut turns to meet the
  // cavity square: no further across than that and the 0.5 mm it runs on past the surface.
  const double land = print::stages::cut_land_mm(o.printer) + 0.5;
  for (const NamedMesh& p : back) {
    const Aabb b = bounding_box(p.mesh.vertices);
    for (int axis : {0, 1})
      for (double c : s.cuts[static_cast<std::size_t>(axis)]) {
        INFO(p.name << " against the cut at " << c);
        CHECK((b.max[axis] <= c + land + 1e-3 || b.min[axis] >= c - land - 1e-3));
      }
  }
  print::Mold together;
  together.report = m.report;
  together.parts = back;
  // (The sprue and vents open the cavity's surface: its walls' signed volume is then the same
  // open surface's in the whole parts, not the appliance's.)
  const double cavity = cavity_ml(together, g.appliance, 1e-3), whole = cavity_ml(m, g.appliance, 1e-3);  // the pieces as written: in single precision
  std::printf("sections put back together: cavity walls %.4f ml, in the uncut parts %.4f ml\n", cavity, whole);
  CHECK(cavity == Approx(whole).epsilon(5e-4));
  // Dowels: from points on each dowel's axis, rays out to the hole's wall in both pieces it joins:
  // the same radius on both sides (the pin's plus the clearance), so a pin aligns them within it;
  // and along the axis each hole is as deep as planned.
  double widest = 0, narrowest = 1e9;
  for (const print::Dowel& d : s.dowels) {
    Vec3 along = Vec3::Zero();
    along[d.axis] = 1;
    for (double side : {-1.0, 1.0}) {
      const Vec3 inside = d.centre + side * 0.5 * s.hole_depth_mm * along;
      const NamedMesh* piece = nullptr;
      for (const NamedMesh& p : back)
        if ((p.name.rfind("core", 0) == 0) == d.core) {
          const Aabb b = bounding_box(p.mesh.vertices);
          if ((inside.array() >= b.min.array()).all() && (inside.array() <= b.max.array()).all()) piece = &p;
        }
      REQUIRE(piece);
      const SurfaceQuery q(piece->mesh);
      std::vector<Vec3> from(17, inside), dir;
      for (int k = 0; k < 16; ++k) {
        const double a = 2 * 3.14159265358979 * (k + 0.5) / 16;
        Vec3 r = Vec3::Zero();
        r[1 - d.axis] = std::cos(a);
        r[2] = std::sin(a);
        dir.push_back(r);
      }
      from[16] = d.centre;
      dir.push_back(side * along);
      const auto hits = q.cast(from, dir);
      for (int k = 0; k < 16; ++k) {
        REQUIRE(hits[static_cast<std::size_t>(k)].hit);
        widest = std::max(widest, hits[static_cast<std::size_t>(k)].t);
        narrowest = std::min(narrowest, hits[static_cast<std::size_t>(k)].t);
      }
      REQUIRE(hits[16].hit);
      CHECK(hits[16].t == Approx(s.hole_depth_mm).margin(0.01));
    }
  }
  const double pin = 0.5 * o.dowel_diameter_mm, clearance = o.printer.key_clearance_mm;
  std::printf("dowel holes: radius %.4f-%.4f mm about the shared axis, for a %.2f mm pin with %.2f mm clearance\n", narrowest, widest, pin, clearance);
  CHECK(narrowest >= pin + clearance - 0.01);  // the 32-sided hole's flats
  CHECK(widest <= pin + clearance + 1e-3);
}

TEST_CASE("mold on nefertiti.obj: the cavity is the appliance, both parts valid", "[shared][mold]") {
  const auto dir = test::shared_scans();
  if (!dir) return;
  const io::Geometry face = io::read_mesh((*dir / "nefertiti.obj").string());
  const Mesh appliance = make_appliance(face.mesh, ApplianceSpec{});
  // Blocks, measured as box minus parts: on this scan the faces of the parts found on the
  // appliance (every corner within 0.1 µm) close only 98.1 % of the cavity's volume (printed
  // below; not yet explained: the slivers dropped are 0.014 ml), so that measure is not used here.
  print::MoldOptions o = bare();
  o.style = "block";
  o.printer.build_volume_mm = Vec3(1000, 1000, 1000);  // one block each, no sections (sectioned molds: their own test)
  const print::Mold m = print::design_mold(appliance, face.mesh, o);
  check_parts(m);
  double core = 0, shell = 0;
  for (const NamedMesh& p : m.parts) (p.name == "core" ? core : shell) = *measure(p.mesh, {false}).volume_mm3 / 1000;
  const double cavity = box_ml(m.report) - core - shell;
  std::printf("nefertiti mold: cavity %.3f ml (walls on the appliance %.3f ml, slivers dropped %.3f ml), appliance %.3f ml (%.3f %%); "
              "undercut %.0f mm² (frontal %.0f mm²), %zu regions\n",
              cavity, cavity_ml(m, appliance), m.report.sliver_ml, m.report.appliance_ml, 100 * (cavity / m.report.appliance_ml - 1),
              m.report.undercut_area_mm2, m.report.undercut_area_frontal_mm2, m.report.undercuts.size());
  CHECK(cavity == Approx(m.report.appliance_ml).epsilon(5e-4));
}

TEST_CASE("hollowed mold: closed parts with drain holes, walls kept around cavity and keys", "[mold][slow]") {
  const Mesh face = scan::SyntheticFace().mesh(1.0);
  ApplianceSpec spec;
  spec.region = RegionShape{"nose", {}, {}};
  spec.openings = {RegionShape{"nostrils", {}, {}}};
  const Mesh appliance = make_appliance(face, spec);
  print::MoldOptions o;
  o.style = "block";  // hollowing is for blocks, with room for a void
  o.wall_mm = 10;
  const print::Mold solid = print::design_mold(appliance, face, o);
  o.hollow_mm = 3.0;
  const print::Mold hollow = print::design_mold(appliance, face, o);
  check_parts(hollow);
  Mesh a = appliance;
  for (Vec3& v : a.vertices) v = hollow.report.frame * v;
  for (std::size_t k = 0; k < 2; ++k) {
    const Mesh& s = solid.parts[k].mesh;
    const Mesh& h = hollow.parts[k].mesh;
    const double vs = *measure(s, {false}).volume_mm3, vh = *measure(h, {false}).volume_mm3;
    // The void's faces: those of the hollow part away from the solid part's surface.
    const SurfaceQuery to_solid(s);
    std::vector<Vec3> centres;
    for (const Tri& t : h.triangles) centres.push_back((h.vertices[t[0]] + h.vertices[t[1]] + h.vertices[t[2]]) / 3);
    const std::vector<double> d = to_solid.distances(centres);
    Mesh inner;
    inner.vertices = h.vertices;
    for (std::size_t f = 0; f < h.triangles.size(); ++f)
      if (d[f] > 0.5) inner.triangles.push_back(h.triangles[f]);
    REQUIRE(inner.triangles.size() > 100);
    const SurfaceQuery to_void(inner);
    std::vector<Vec3> keys;
    for (const Vec3& c : hollow.report.key_centres) keys.push_back(c + Vec3(0, 0, o.key_radius_mm));
    const auto dc = to_void.distances(a.vertices);
    const auto dk = to_void.distances(keys);
    std::printf("hollow %s: resin %.1f -> %.1f ml; the void is at least %.2f mm from the cavity and %.2f mm from the key tops\n",
                hollow.parts[k].name.c_str(), vs / 1000, vh / 1000, *std::min_element(dc.begin(), dc.end()),
                *std::min_element(dk.begin(), dk.end()));
    CHECK(vh < 0.7 * vs);
    CHECK(*std::min_element(dc.begin(), dc.end()) >= 3.0 - 0.3);
    CHECK(*std::min_element(dk.begin(), dk.end()) >= 3.0 - 0.3);
  }
}
