// The appliance (see appliance.h for the method).
#include "tracecast/mesh/appliance.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <open3d/geometry/KDTreeFlann.h>
#include <open3d/geometry/PointCloud.h>

#include <algorithm>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/step_timer.h"
#include "tracecast/mesh/submesh.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/repair.h"
#include "tracecast/mesh/geodesic.h"
#include "appliance_build.h"

namespace tracecast {

const std::vector<std::string>& region_preset_names() {
  static const std::vector<std::string> names = {"full_face", "upper_face", "nose", "forehead", "cheek_left", "cheek_right", "chin"};
  return names;
}

const std::vector<std::string>& feature_preset_names() {
  static const std::vector<std::string> names = {"eyes", "nostrils", "mouth"};
  return names;
}

namespace {

constexpr double kPi = 3.14159265358979323846;

double smoothstep(double e0, double e1, double x) {
  const double t = std::clamp((x - e0) / (e1 - e0), 0.0, 1.0);
  return t * t * (3 - 2 * t);
}

std::vector<Vec2> superellipse(Vec2 c, double a, double b, double exponent = 2.0, int segments = 160) {
  std::vector<Vec2> p;
  for (int k = 0; k < segments; ++k) {
    const double t = 2 * kPi * k / segments, ct = std::cos(t), st = std::sin(t);
    p.emplace_back(c.x() + a * std::copysign(std::pow(std::abs(ct), 2.0 / exponent), ct),
                   c.y() + b * std::copysign(std::pow(std::abs(st), 2.0 / exponent), st));
  }
  return p;
}

//! Signed distance to a closed polygon, positive inside.
double signed_distance(const std::vector<Vec2>& poly, const Vec2& q) {
  double best = std::numeric_limits<double>::infinity();
  bool inside = false;
  for (std::size_t i = 0, j = poly.size() - 1; i < poly.size(); j = i++) {
    const Vec2 &a = poly[j], &b = poly[i];
    const Vec2 ab = b - a;
    const double t = std::clamp((q - a).dot(ab) / std::max(ab.squaredNorm(), 1e-300), 0.0, 1.0);
    best = std::min(best, (a + t * ab - q).squaredNorm());
    if ((a.y() > q.y()) != (b.y() > q.y()) && q.x() < a.x() + (q.y() - a.y()) / (b.y() - a.y()) * ab.x()) inside = !inside;
  }
  return inside ? std::sqrt(best) : -std::sqrt(best);
}

struct Shape {  // union of polygons
  std::vector<std::vector<Vec2>> polys;
  double sd(const Vec2& q) const { return outline_distance(polys, q); }
};

enum class Use { region, opening, zone };

//! The face's surface that drawn points are snapped onto, its search structure built once, on the
//! first shape given by points (an outline, its openings and zones share it).
class Snap {
 public:
  explicit Snap(const Mesh& face) : face_(face) {}
  std::vector<Vec3> onto(const std::vector<Vec3>& p) const {
    if (!query_) query_.emplace(face_);
    return query_->closest_points(p);
  }

 private:
  const Mesh& face_;
  mutable std::optional<SurfaceQuery> query_;
};

//! What the region's cut skin depends on, as text (ApplianceCache's key): the face (its size and
//! sums of its coordinates and corners), the region and openings as given, their margins, the
//! resolution and the face's analysis.
std::string patch_key(const Mesh& face, const ApplianceSpec& spec, const FaceAnalysis& fa) {
  double coords = 0, corners = 0;
  for (const Vec3& v : face.vertices) coords += 1.1 * v.x() + 1.3 * v.y() + 1.7 * v.z();
  for (const Tri& t : face.triangles) corners += static_cast<double>(t[0]) + 2.0 * t[1] + 3.0 * t[2];
  std::string k = fmt::format("face {} {} {:.17g} {:.17g};", face.vertices.size(), face.triangles.size(), coords, corners);
  const auto shape = [&](const RegionShape& s) {
    k += s.preset + "[";
    for (const Vec2& p : s.outline) k += fmt::format("{:.17g},{:.17g} ", p.x(), p.y());
    for (const Vec3& p : s.points) k += fmt::format("{:.17g},{:.17g},{:.17g} ", p.x(), p.y(), p.z());
    k += "]";
  };
  shape(spec.region);
  for (const RegionShape& o : spec.openings) shape(o);
  k += fmt::format(";{:.17g} {:.17g} {:.17g};", spec.opening_margin_mm, spec.border_margin_mm, spec.resolution_mm);
  return k + nlohmann::json(fa).dump();  // the frame, scale and landmarks the presets are placed from
}

Shape make_shape(const RegionShape& r, const FaceAnalysis& fa, double margin, Use use, const Snap* surface) {
  Shape s;
  if (!r.outline.empty()) {
    if (r.outline.size() < 3) throw InputError("an outline needs at least 3 points");
    s.polys.push_back(r.outline);
    return s;
  }
  if (!r.points.empty()) {
    if (r.points.size() < 3) throw InputError("an outline needs at least 3 points");
    std::vector<Vec3> pts = r.points;
    if (surface) pts = surface->onto(pts);
    std::vector<Vec2> poly;
    for (const Vec3& p : pts) {
      const Vec3 q = fa.frame.to_local(p);
      poly.emplace_back(q.x(), q.y());
    }
    s.polys.push_back(poly);
    return s;
  }
  const Landmarks& L = fa.landmarks;
  const double ey = 0.5 * (L.eye_left.y() + L.eye_right.y());
  const double k = fa.scale;  // lengths below in adult mm × k
  const double u = std::max(ey, 15.0 * k);
  // The face's width scale: the sockets' centroids sit nearer the nose than the pupils on some
  // faces, so the nose-to-eye height (about 0.6 of the pupils' distance) bounds it from below.
  const double E = std::max({L.eye_distance(), 1.6 * u, 30.0 * k});
  auto eye_centre = [&](const Vec3& e) {
    const double side = e.x() >= 0 ? 1.0 : -1.0;
    return Vec2(side * std::max(std::abs(e.x()), 0.45 * E), e.y());
  };
  const double cy = std::min(L.chin.y(), L.mouth_center.y() - 10.0 * k);
  const std::string& p = r.preset;
  const bool zone = use == Use::zone;
  if (p == "full_face" || p == "upper_face") {
    const double top = ey + 1.2 * u;
    const double bottom = p == "full_face" ? cy - 0.3 * u : -0.45 * u;
    s.polys.push_back(superellipse({0, 0.5 * (top + bottom)}, 1.0 * E, 0.5 * (top - bottom), 2.5));
  } else if (p == "nose") {
    s.polys.push_back(superellipse({0, 0.25 * u}, 0.36 * E, 0.75 * u));
  } else if (p == "forehead") {
    s.polys.push_back(superellipse({0, ey + 0.8 * u}, 0.95 * E, 0.45 * u, 2.5));
  } else if (p == "cheek_left" || p == "cheek_right") {
    const double side = p == "cheek_left" ? 1.0 : -1.0;
    s.polys.push_back(superellipse({side * 0.72 * E, -0.15 * u}, 0.38 * E, 0.6 * u));
  } else if (p == "chin") {
    s.polys.push_back(superellipse({0, cy + 0.05 * u}, 0.5 * E, 0.45 * u));
  } else if (p == "eyes") {
    for (const Vec3& e : {L.eye_left, L.eye_right})
      s.polys.push_back(zone ? superellipse(eye_centre(e), 0.45 * E, 0.32 * E)
                             : superellipse(eye_centre(e), 0.2 * E + margin, 0.1 * E + margin));
  } else if (p == "nostrils") {
    if (L.nostrils_found) {  // the hollows found, or the usual proportions
      for (const Vec3& n : {L.nostril_left, L.nostril_right})
        s.polys.push_back(superellipse({n.x(), n.y()}, 0.055 * E + margin, 0.04 * E + margin));
    } else {
      for (double side : {1.0, -1.0})
        s.polys.push_back(superellipse({side * 0.1 * E, -0.17 * u}, 0.055 * E + margin, 0.04 * E + margin));
    }
  } else if (p == "mouth") {
    const double half = std::max(0.5 * (L.mouth_left - L.mouth_right).norm(), 0.2 * E);
    s.polys.push_back(zone ? superellipse({L.mouth_center.x(), L.mouth_center.y()}, half + 8 * k, 0.25 * u + 6 * k)
                           : superellipse({L.mouth_center.x(), L.mouth_center.y()}, half + margin, 0.12 * u + margin));
  } else {
    throw InputError(fmt::format("unknown region '{}' ({}, {})", p, fmt::join(region_preset_names(), ", "), fmt::join(feature_preset_names(), ", ")));
  }
  return s;
}

//! Vertex adjacency (CSR).

RegionShape parse_shape(const nlohmann::json& j, const std::string& where) {
  RegionShape s;
  if (j.is_string()) {
    s.preset = j.get<std::string>();
    return s;
  }
  if (!j.is_object()) throw InputError(fmt::format("{}: expected a preset name or an object with \"outline\" or \"points\"", where));
  auto read_points = [&](const char* key, int dims) {
    std::vector<Eigen::VectorXd> pts;
    for (const auto& p : j.at(key)) {
      if (!p.is_array() || static_cast<int>(p.size()) != dims)
        throw InputError(fmt::format("{}.{}: every point needs {} numbers", where, key, dims));
      Eigen::VectorXd v(dims);
      for (int k = 0; k < dims; ++k) {
        if (!p[static_cast<std::size_t>(k)].is_number()) throw InputError(fmt::format("{}.{}: coordinates must be numbers", where, key));
        v[k] = p[static_cast<std::size_t>(k)].get<double>();
        if (!std::isfinite(v[k])) throw InputError(fmt::format("{}.{}: coordinates must be finite", where, key));
      }
      pts.push_back(v);
    }
    if (pts.size() < 3) throw InputError(fmt::format("{}.{}: at least 3 points are needed", where, key));
    return pts;
  };
  if (j.contains("outline")) {
    for (const auto& v : read_points("outline", 2)) s.outline.emplace_back(v[0], v[1]);
  } else if (j.contains("points")) {
    for (const auto& v : read_points("points", 3)) s.points.emplace_back(v[0], v[1], v[2]);
  } else if (j.contains("preset") && j.at("preset").is_string()) {
    s.preset = j.at("preset").get<std::string>();
  } else {
    throw InputError(fmt::format("{}: expected \"preset\", \"outline\" or \"points\"", where));
  }
  return s;
}

}  // namespace

double outline_distance(const std::vector<std::vector<Vec2>>& polygons, const Vec2& q) {
  double s = -std::numeric_limits<double>::infinity();
  for (const auto& p : polygons) s = std::max(s, signed_distance(p, q));
  return s;
}

std::vector<std::vector<Vec2>> opening_outline(const std::string& preset, const FaceAnalysis& fa, double margin_mm) {
  RegionShape r;
  r.preset = preset;
  return make_shape(r, fa, margin_mm, Use::opening, nullptr).polys;
}

std::string dab_problem(const ThicknessDab& d) {
  if (d.radius_mm > 0.5 && d.radius_mm <= 100 && d.thickness_mm > 0 && d.thickness_mm <= 30 && d.strength > 0 && d.strength <= 1) return {};
  return fmt::format("thickness paint: a dab's radius must be in (0.5, 100] mm, its thickness in (0, 30] mm and its strength in (0, 1] "
                     "(got {}, {}, {})", d.radius_mm, d.thickness_mm, d.strength);
}

void validate(const ApplianceSpec& s) {
  std::vector<std::string> problems = appliance_option_table().check(s);
  for (const auto& z : s.zones)
    if (!(z.thickness_mm > 0) || z.thickness_mm > 30 || !(z.blend_mm >= 0))
      problems.push_back(fmt::format("thickness zone: thickness must be in (0, 30] mm and blend ≥ 0 (got {}, {})", z.thickness_mm, z.blend_mm));
  for (const auto& d : s.paint)
    if (std::string why = dab_problem(d); !why.empty()) {
      problems.push_back(std::move(why));
      break;
    }
  throw_problems("appliance", problems);
}

ApplianceSpec read_appliance_spec(const std::string& path, ApplianceSpec defaults) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(fmt::format("{}: cannot open the appliance file", path));
  std::stringstream ss;
  ss << f.rdbuf();
  const auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw InputError(fmt::format("{}: not a JSON object", path));
  return parse_appliance_spec(j, path, std::move(defaults));
}

namespace {

ThicknessZone parse_zone(const nlohmann::json& z, const std::string& path) {
  if (!z.is_object() || !z.contains("zone") || !z.contains("thickness_mm") || !z.at("thickness_mm").is_number())
    throw InputError(fmt::format("{}: every thickness zone needs \"zone\" and \"thickness_mm\"", path));
  ThicknessZone tz;
  tz.shape = parse_shape(z.at("zone"), path + ": thickness_zones");
  tz.thickness_mm = z.at("thickness_mm").get<double>();
  if (z.contains("blend_mm")) {
    if (!z.at("blend_mm").is_number()) throw InputError(fmt::format("{}: \"blend_mm\" must be a number", path));
    tz.blend_mm = z.at("blend_mm").get<double>();
  }
  return tz;
}

//! A dab: {"at": [x, y, z] (input coordinates) or [x, y] (face frame), "radius_mm", "thickness_mm",
//! "strength"}; the last three default to ThicknessDab's.
ThicknessDab parse_dab(const nlohmann::json& d, const std::string& path) {
  const std::string where = path + ": thickness_paint";
  if (!d.is_object() || !d.contains("at") || !d.at("at").is_array() || (d.at("at").size() != 2 && d.at("at").size() != 3))
    throw InputError(fmt::format("{}: every dab needs \"at\": [x, y, z] on the face or [x, y] in the face frame", where));
  for (const auto& c : d.at("at"))
    if (!c.is_number()) throw InputError(fmt::format("{}: a dab's \"at\" must hold numbers", where));
  for (const auto& [key, _] : d.items())
    if (key != "at" && key != "radius_mm" && key != "thickness_mm" && key != "strength")
      throw InputError(fmt::format("{}: unknown key \"{}\" in a dab (at, radius_mm, thickness_mm, strength)", where, key));
  ThicknessDab out;
  const auto& at = d.at("at");
  if (at.size() == 3) out.point = Vec3(at[0].get<double>(), at[1].get<double>(), at[2].get<double>());
  else out.at = Vec2(at[0].get<double>(), at[1].get<double>());
  for (auto [key, field] : {std::pair{"radius_mm", &out.radius_mm}, {"thickness_mm", &out.thickness_mm}, {"strength", &out.strength}})
    if (d.contains(key)) {
      if (!d.at(key).is_number()) throw InputError(fmt::format("{}: a dab's \"{}\" must be a number", where, key));
      *field = d.at(key).get<double>();
    }
  return out;
}

}  // namespace

ApplianceSpec parse_appliance_spec(const nlohmann::json& j, const std::string& path, ApplianceSpec s) {
  if (!j.is_object()) throw InputError(fmt::format("{}: not a JSON object", path));
  const OptionTable<ApplianceSpec>& table = appliance_option_table();
  try {
    std::vector<std::string> problems = unknown_keys(j, path, {&table}, {"region", "openings", "thickness_zones", "thickness_paint"});
    table.read(j, s, path, problems);
    throw_problems(path, problems);
    if (j.contains("region")) s.region = parse_shape(j.at("region"), path + ": region");
    if (j.contains("openings")) {
      if (!j.at("openings").is_array()) throw InputError(fmt::format("{}: \"openings\" must be a list", path));
      s.openings.clear();
      for (const auto& o : j.at("openings")) s.openings.push_back(parse_shape(o, path + ": openings"));
    }
    if (j.contains("thickness_zones")) {
      if (!j.at("thickness_zones").is_array()) throw InputError(fmt::format("{}: \"thickness_zones\" must be a list", path));
      for (const auto& z : j.at("thickness_zones")) s.zones.push_back(parse_zone(z, path));
    }
    if (j.contains("thickness_paint")) {
      if (!j.at("thickness_paint").is_array()) throw InputError(fmt::format("{}: \"thickness_paint\" must be a list of dabs", path));
      s.paint.clear();
      for (const auto& d : j.at("thickness_paint")) s.paint.push_back(parse_dab(d, path));
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: {}", path, e.what()));
  }
  return s;
}

RegionOutline region_polygons(const ApplianceSpec& spec, const FaceAnalysis& fa) {
  RegionOutline out;
  const Shape region = make_shape(spec.region, fa, 0, Use::region, nullptr);
  out.outline = region.polys.front();
  for (const auto& o : spec.openings)
    for (auto& p : make_shape(o, fa, spec.opening_margin_mm, Use::opening, nullptr).polys) out.openings.push_back(p);
  return out;
}

Mesh make_appliance(const Mesh& face, const ApplianceSpec& spec, const Mesh* sculpt, ApplianceReport* report, const FaceAnalysis* known,
                    ApplianceCache* cache) {
  validate(spec);
  validate(face, "face");
  if (face.triangles.size() < 100) throw InputError("the face has fewer than 100 triangles");
  ApplianceReport r;
  StepTimer timer(r.timings);
  r.face = known ? *known : analyze_face(face, spec.face);
  timer.lap("landmarks");
  const Snap snap(face);
  const Shape region = make_shape(spec.region, r.face, 0, Use::region, &snap);
  std::vector<Shape> openings;
  for (const auto& o : spec.openings) openings.push_back(make_shape(o, r.face, spec.opening_margin_mm, Use::opening, &snap));
  std::vector<std::pair<Shape, ThicknessZone>> zones;
  for (const auto& z : spec.zones) zones.emplace_back(make_shape(z.shape, r.face, 0, Use::zone, &snap), z);
  const FaceFrame frame = r.face.frame;
  const detail::RegionField field = [&](const Vec3& w) {
    const Vec3 q = frame.to_local(w);
    const Vec2 xy(q.x(), q.y());
    double f = region.sd(xy);
    for (const Shape& o : openings) f = std::min(f, -o.sd(xy));
    return f;
  };
  std::vector<Vec2> dab_at;  // the dabs' centres in the face frame
  for (const ThicknessDab& d : spec.paint) dab_at.push_back(d.point ? Vec2(frame.to_local(*d.point).head<2>()) : d.at);
  const auto thickness = [&](const Vec2& xy) {
    double t = spec.thickness_mm;
    for (const auto& [shape, z] : zones) {
      const double w = z.blend_mm > 0 ? smoothstep(-0.5 * z.blend_mm, 0.5 * z.blend_mm, shape.sd(xy)) : (shape.sd(xy) >= 0 ? 1.0 : 0.0);
      t = (1 - w) * t + w * z.thickness_mm;
    }
    for (std::size_t k = 0; k < dab_at.size(); ++k) {
      const ThicknessDab& d = spec.paint[k];
      const Vec2 off = xy - dab_at[k];
      if (std::abs(off.x()) >= d.radius_mm || std::abs(off.y()) >= d.radius_mm) continue;
      const double w = d.strength * (1 - smoothstep(0, d.radius_mm, off.norm()));
      t = (1 - w) * t + w * d.thickness_mm;
    }
    return t;
  };
  Mesh solid = detail::build_solid(face, field, thickness, spec, sculpt, r, cache, cache ? patch_key(face, spec, r.face) : std::string());
  if (report) *report = r;
  return solid;
}

// ---- Mirroring ---------------------------------------------------------------------------

namespace {

//! Per vertex of `face`: the height of its mirror image over it along `z` (`known` where the
//! mirrored surface lies in front of or behind it).
struct MirrorHeights {
  std::vector<double> delta;
  std::vector<char> known;
};

MirrorHeights mirror_heights(const Mesh& face, const SymmetryPlane& plane, const Vec3& z) {
  Mesh mirrored = face;
  for (Vec3& p : mirrored.vertices) p = plane.reflect(p);
  for (Tri& t : mirrored.triangles) std::swap(t[1], t[2]);
  const std::size_t n = face.vertices.size();
  const SurfaceQuery mq(mirrored);
  std::vector<Vec3> fwd(n, z), back(n, -z);
  const auto a = mq.cast(face.vertices, fwd), b = mq.cast(face.vertices, back);
  MirrorHeights h{std::vector<double>(n, 0), std::vector<char>(n, 0)};
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i].hit && (!b[i].hit || a[i].t <= b[i].t)) h.delta[i] = a[i].t, h.known[i] = 1;
    else if (b[i].hit) h.delta[i] = -b[i].t, h.known[i] = 1;
  }
  return h;
}

//! The vertices inside the regions the user marked.
std::vector<char> marked_defect(const Mesh& face, const std::vector<RegionShape>& regions, const FaceAnalysis& analysis) {
  std::vector<Shape> shapes;
  const Snap snap(face);
  for (const auto& d : regions) shapes.push_back(make_shape(d, analysis, 0, Use::region, &snap));
  std::vector<char> defect(face.vertices.size(), 0);
  for (std::size_t i = 0; i < face.vertices.size(); ++i) {
    const Vec3 q = analysis.frame.to_local(face.vertices[i]);
    for (const Shape& s : shapes)
      if (s.sd(Vec2(q.x(), q.y())) >= 0) defect[i] = 1;
  }
  return defect;
}

//! Clears the connected groups of set vertices smaller than `min_size`.
void drop_specks(const Adjacency& adj, std::vector<char>& set, std::size_t min_size) {
  std::vector<char> seen(set.size(), 0);
  for (std::size_t s = 0; s < set.size(); ++s) {
    if (!set[s] || seen[s]) continue;
    std::vector<std::size_t> members{s}, todo{s};
    seen[s] = 1;
    while (!todo.empty()) {
      const std::size_t v = todo.back();
      todo.pop_back();
      adj.each(v, [&](std::size_t j) {
        if (set[j] && !seen[j]) {
          seen[j] = 1;
          members.push_back(j);
          todo.push_back(j);
        }
      });
    }
    if (members.size() < min_size)
      for (std::size_t m : members) set[m] = 0;
  }
}

//! Hollows deeper than `asymmetry_mm` below the mirrored side, grown (hysteresis) over the
//! connected vertices still a tenth as deep; specks under 20 vertices are ignored.
std::vector<char> found_defect(const Adjacency& adj, const MirrorHeights& h, double asymmetry_mm) {
  const std::size_t n = h.delta.size();
  std::vector<char> defect(n, 0);
  std::vector<std::size_t> stack;
  for (std::size_t i = 0; i < n; ++i)
    if ((defect[i] = h.known[i] && h.delta[i] > asymmetry_mm)) stack.push_back(i);
  while (!stack.empty()) {
    const std::size_t v = stack.back();
    stack.pop_back();
    adj.each(v, [&](std::size_t j) {
      if (!defect[j] && h.known[j] && h.delta[j] > 0.1 * asymmetry_mm) {
        defect[j] = 1;
        stack.push_back(j);
      }
    });
  }
  drop_specks(adj, defect, 20);
  return defect;
}

//! Moves each vertex towards its mirror image: fully on the defect, easing to nothing over
//! `blend_mm` around it. Returns the largest move.
double blend_restored(MirrorResult& out, const MirrorHeights& h, const Vec3& z, double blend_mm) {
  open3d::geometry::PointCloud marked;
  for (std::size_t i = 0; i < out.defect.size(); ++i)
    if (out.defect[i]) marked.points_.push_back(out.face.vertices[i]);
  open3d::geometry::KDTreeFlann tree(marked);
  out.restored = out.face;
  std::vector<int> idx(1);
  std::vector<double> d2(1);
  double largest = 0;
  for (std::size_t i = 0; i < out.defect.size(); ++i) {
    if (!h.known[i]) continue;
    double w = 1;
    if (!out.defect[i]) {
      tree.SearchKNN(out.face.vertices[i], 1, idx, d2);
      w = 1.0 - smoothstep(0, blend_mm, std::sqrt(d2[0]));
    }
    if (w <= 0) continue;
    out.restored.vertices[i] += w * h.delta[i] * z;
    largest = std::max(largest, std::abs(w * h.delta[i]));
  }
  return largest;
}

}  // namespace

MirrorResult mirror_restore(const Mesh& input, const MirrorOptions& o, MirrorReport* report) {
  throw_problems("mirror", mirror_option_table().check(o));
  MirrorReport r;
  RepairOptions ro;
  ro.max_hole_mm = o.max_hole_mm;
  ro.fix_self_intersections = false;
  RepairReport rr;
  MirrorResult out;
  out.face = repair(input, ro, &rr);
  for (const Hole& h : rr.holes) r.filled_holes += h.filled;
  r.face = analyze_face(out.face, o.face);
  // Height of the mirrored surface over each vertex, along the face's forward axis.
  const Vec3 z = r.face.frame.axes.col(2);
  const MirrorHeights heights = mirror_heights(out.face, r.face.plane, z);
  out.defect = o.defect.empty() ? found_defect(Adjacency(out.face), heights, o.asymmetry_mm) : marked_defect(out.face, o.defect, r.face);
  for (char c : out.defect) r.defect_vertices += c;
  if (r.defect_vertices == 0)
    throw InputError(o.defect.empty() ? fmt::format("no defect found: no area lies more than {} mm below its mirror image (mark it with --defect)", o.asymmetry_mm)
                                      : "the defect region does not cover any part of the face");
  for (const Tri& t : out.face.triangles)
    if (out.defect[static_cast<std::size_t>(t[0])] && out.defect[static_cast<std::size_t>(t[1])] && out.defect[static_cast<std::size_t>(t[2])])
      r.defect_area_mm2 += 0.5 * (out.face.vertices[t[1]] - out.face.vertices[t[0]]).cross(out.face.vertices[t[2]] - out.face.vertices[t[0]]).norm();
  r.max_change_mm = blend_restored(out, heights, z, o.blend_mm);
  if (report) *report = r;
  return out;
}

Mesh make_prosthesis(const MirrorResult& m, double grow_mm, const ApplianceSpec& spec, ApplianceReport* report) {
  validate(spec);
  ApplianceReport r;
  r.face = analyze_face(m.face, spec.face);
  open3d::geometry::PointCloud marked;
  for (std::size_t i = 0; i < m.defect.size(); ++i)
    if (m.defect[i]) marked.points_.push_back(m.face.vertices[i]);
  if (marked.points_.empty()) throw InputError("the defect is empty");
  const open3d::geometry::KDTreeFlann tree(marked);
  const double reach = grow_mm + spec.feather_band_mm;
  const detail::RegionField field = [&](const Vec3& w) {
    std::vector<int> idx(1);
    std::vector<double> d2(1);
    tree.SearchKNN(w, 1, idx, d2);
    return reach - std::sqrt(d2[0]);
  };
  Mesh solid = detail::build_solid(m.face, field, [](const Vec2&) { return 0.0; }, spec, &m.restored, r);
  if (report) *report = r;
  return solid;
}

}  // namespace tracecast
