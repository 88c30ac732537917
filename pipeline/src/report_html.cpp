#include "report_html.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "tracecast/mesh/atomic_file.h"
#include "tracecast/pipeline/appliance_maps.h"
#include "tracecast/pipeline/web_assets.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/face.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/render.h"
#include "tracecast/mesh/report_json.h"
#include "tracecast/mesh/step_timer.h"
#include "tracecast/mesh/repair.h"
#include "tracecast/mesh/submesh.h"
#include "tracecast/print/printer.h"

extern const char* const kReportPage;  // report.html, embedded at build time (report_page.cpp.in)

namespace tracecast::pipeline {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string base64(const void* data, std::size_t bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), static_cast<const unsigned char*>(data), bytes, sodium_base64_VARIANT_ORIGINAL);
  out.pop_back();  // the terminating NUL
  return out;
}

json float_array(const std::vector<double>& v) {
  std::vector<float> f(v.begin(), v.end());
  return base64(f.data(), f.size() * sizeof(float));
}

//! A mesh for the 3D view: float32 positions and uint32 indices, base64, and per-vertex fields.
json viewer_object(const std::string& name, const std::string& label, const std::string& frame, const Mesh& m) {
  std::vector<float> pos;
  pos.reserve(3 * m.vertices.size());
  for (const Vec3& v : m.vertices)
    for (int k = 0; k < 3; ++k) pos.push_back(static_cast<float>(v[k]));
  std::vector<std::uint32_t> idx;
  idx.reserve(3 * m.triangles.size());
  for (const Tri& t : m.triangles)
    for (int k = 0; k < 3; ++k) idx.push_back(static_cast<std::uint32_t>(t[k]));
  return {{"name", name},
          {"label", label},
          {"frame", frame},
          {"vertices", m.vertices.size()},
          {"faces", m.triangles.size()},
          {"positions", base64(pos.data(), pos.size() * sizeof(float))},
          {"indices", base64(idx.data(), idx.size() * sizeof(std::uint32_t))},
          {"fields", json::object()}};
}

json field(const std::vector<double>& v, const std::string& label, const std::string& unit, double lo, double hi, const std::string& ramp) {
  return {{"values", float_array(v)}, {"label", label}, {"unit", unit}, {"min", lo}, {"max", hi}, {"ramp", ramp}};
}

//! The colour ramps, defined once for the previews and the page: "heat" (dark blue → yellow) for
//! magnitudes, "diverging" (red ← white → blue) for signed values; equally spaced stops, linear
//! between them.
const std::map<std::string, std::vector<Vec3>>& ramps() {
  static const std::map<std::string, std::vector<Vec3>> r = {
      {"heat", {{0.07, 0.10, 0.40}, {0.10, 0.45, 0.60}, {0.30, 0.70, 0.40}, {0.95, 0.85, 0.20}}},
      {"diverging", {{0.80, 0.15, 0.15}, {0.95, 0.95, 0.95}, {0.15, 0.35, 0.80}}},
  };
  return r;
}

}  // namespace

json colour_ramps() {
  json j = json::object();
  for (const auto& [name, stops] : ramps())
    for (const Vec3& c : stops) j[name].push_back(vec_json(c));
  return j;
}

namespace {

Vec3 ramp_colour(double t, const std::string& ramp) {
  const std::vector<Vec3>& stops = ramps().at(ramp);
  const double s = std::clamp(t, 0.0, 1.0) * static_cast<double>(stops.size() - 1);
  const std::size_t i = std::min(stops.size() - 2, static_cast<std::size_t>(s));
  return stops[i] + (stops[i + 1] - stops[i]) * (s - static_cast<double>(i));
}

void colour_by(Mesh& m, const std::vector<double>& v, double lo, double hi, const std::string& ramp) {
  m.colors.resize(m.vertices.size());
  for (std::size_t i = 0; i < v.size(); ++i) m.colors[i] = ramp_colour((v[i] - lo) / (hi - lo + 1e-300), ramp);
}

//! The rotation that turns `front` to +z (the renderer looks along -z), keeping +y up as far as possible.
Eigen::Matrix3d facing(const Vec3& front, const Vec3& up = Vec3::UnitY()) {
  const Vec3 z = front.normalized();
  Vec3 y = up - z * z.dot(up);
  if (y.norm() < 1e-6) y = Vec3::UnitZ() - z * z.z();
  y.normalize();
  const Vec3 x = y.cross(z);
  Eigen::Matrix3d r;
  r.row(0) = x.transpose();
  r.row(1) = y.transpose();
  r.row(2) = z.transpose();
  return r;
}

Mesh rotated(Mesh m, const Eigen::Matrix3d& r) {
  for (Vec3& v : m.vertices) v = r * v;
  m.normals.clear();
  return m;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(std::clamp(p, 0.0, 1.0) * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

//! JSON text safe inside a <script> element.
std::string script_json(const json& j) {
  std::string s = j.dump();
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<' && i + 1 < s.size() && s[i + 1] == '/') {
      out += "<\\/";
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

//! About `faces` faces for the 3D view, by vertex clustering on cells sized from the surface's
//! area (a cell per vertex, two faces per vertex): a fraction of a second on a million faces,
//! where quadric decimation takes over ten.
Mesh for_viewer(const Mesh& m, std::size_t faces) {
  if (m.triangles.size() <= faces) return m;
  double area = 0;
  for (const Tri& t : m.triangles)
    area += 0.5 * (m.vertices[t[1]] - m.vertices[t[0]]).cross(m.vertices[t[2]] - m.vertices[t[0]]).norm();
  return clustered(m, std::sqrt(2.0 * area / static_cast<double>(faces)));
}

//! The mold's pieces from their files (mold-NAME.stl, as the report's parts list them): each as
//! printed, and the core's and the shell's put back together in the mold frame (each file's pose
//! is the report's from_mold_frame).
struct MoldPieces {
  Mesh core, shell;
  std::vector<std::pair<std::string, Mesh>> printed;
};
MoldPieces mold_pieces(const json& mold_result, const std::function<Mesh(const std::string&)>& load) {
  MoldPieces out;
  for (const json& part : mold_result["parts"]) {
    const std::string name = part["name"].get<std::string>();
    Mesh m = load("mold-" + name + ".stl");
    const json& f = part["from_mold_frame"];  // rows of R, then t: file = R · mold + t
    Eigen::Matrix3d R;
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) R(r, c) = f[r][c].get<double>();
    const Vec3 t(f[3][0].get<double>(), f[3][1].get<double>(), f[3][2].get<double>());
    Mesh back = m;
    for (Vec3& v : back.vertices) v = R.transpose() * (v - t);
    append(name.rfind("core", 0) == 0 ? out.core : out.shell, back);
    out.printed.emplace_back(name, std::move(m));
  }
  return out;
}

//! "core-2" → "Core 2 (as printed)".
std::string piece_label(std::string name) {
  std::replace(name.begin(), name.end(), '-', ' ');
  if (!name.empty()) name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
  return name + " (as printed)";
}

//! The 3D view's objects for the pieces, each as printed (its file holds it in the middle of the
//! printer's bed, so the pieces would overlap), shown side by side along x, 10 mm apart.
json printed_side_by_side(const std::vector<std::pair<std::string, Mesh>>& printed) {
  json objects = json::array();
  double x_next = 0;
  for (const auto& [name, mesh] : printed) {
    Mesh shown = clustered(mesh, 1.0);
    const Aabb b = bounding_box(shown.vertices);
    for (Vec3& v : shown.vertices) v.x() += x_next - b.min.x();
    x_next += b.extent().x() + 10.0;
    objects.push_back(viewer_object(name, piece_label(name), "print", shown));
  }
  return objects;
}

}  // namespace

namespace {

//! The mark's detail for the 3D view: the outer layer of the marked surface within 14 mm of the
//! middle of the marked area, at full resolution (the cells are 1.2 mm), and its displacement from
//! the unmarked surface (µm). Empty when nothing moved by more than 10 µm.
std::pair<Mesh, std::vector<double>> mark_detail(const Mesh& marked, const std::vector<double>& disp_mm, const SurfaceQuery& unmarked,
                                                 const SurfaceQuery& skin) {
  Vec3 centre = Vec3::Zero();
  double n = 0;
  for (std::size_t i = 0; i < disp_mm.size(); ++i)
    if (std::abs(disp_mm[i]) > 0.010) centre += marked.vertices[i], n += 1;
  if (n == 0) return {};
  centre /= n;
  std::size_t nearest = 0;
  for (std::size_t i = 1; i < marked.vertices.size(); ++i)
    if ((marked.vertices[i] - centre).squaredNorm() < (marked.vertices[nearest] - centre).squaredNorm()) nearest = i;
  centre = marked.vertices[nearest];
  std::vector<char> keep(marked.triangles.size(), 0);
  for (std::size_t f = 0; f < marked.triangles.size(); ++f) {
    bool in = true;
    for (int k = 0; k < 3; ++k) in = in && (marked.vertices[static_cast<std::size_t>(marked.triangles[f][k])] - centre).norm() < 14.0;
    keep[f] = in;
  }
  Mesh detail = submesh(marked, keep);
  const std::vector<double> on_skin = skin.distances(detail.vertices);
  std::vector<char> outer(detail.triangles.size(), 0);
  for (std::size_t f = 0; f < detail.triangles.size(); ++f) outer[f] = on_skin[static_cast<std::size_t>(detail.triangles[f][0])] > 0.05;
  detail = submesh(detail, outer);
  std::vector<double> detail_um;
  for (double x : unmarked.signed_distances(detail.vertices)) detail_um.push_back(1000 * x);
  return {detail, detail_um};
}

}  // namespace

json appliance_fields(const Mesh& appliance, const Mesh& face, const Vec3& pull) {
  // Thickness: distance from each vertex to the skin; draft: how far each surface turns towards
  // the direction it is pulled from (the shell lifts the outer surface along the pull, the core
  // keeps the inner one; below zero is an undercut).
  const std::vector<double> thickness = SurfaceQuery(face).distances(appliance.vertices);
  const std::vector<Vec3> normals = vertex_normals(appliance);
  std::vector<double> draft(appliance.vertices.size());
  for (std::size_t i = 0; i < draft.size(); ++i) draft[i] = (thickness[i] > 0.05 ? 1.0 : -1.0) * normals[i].dot(pull);
  const double t_max = std::max(0.1, percentile(thickness, 0.99));
  return {{"thickness", field(thickness, "Thickness", "mm", 0, t_max, "heat")},
          {"draft", field(draft, "Draft towards the pull (below 0: undercut)", "cos", -1, 1, "diverging")}};
}

json make_previews(const fs::path& out, const json& mold_result, const std::function<Mesh(const std::string&)>& load, const std::string& piece,
                   const Vec3& up) {
  std::vector<std::pair<std::string, double>> timings;
  StepTimer timer(timings);
  const Mesh face = load("face.ply"), appliance = load(piece + ".ply"), marked = load(piece + "-marked.ply");
  const std::string piece_png = "preview-" + piece + ".png";
  const MoldPieces pieces = mold_pieces(mold_result, load);
  timer.lap("reading");
  const Vec3 pull = json_vec(mold_result["pull"]["direction"]);

  // Appliance: thickness and draft (appliance_fields).
  const SurfaceQuery skin(face);
  Mesh ap = for_viewer(appliance, 60000);
  timer.lap("appliance for the 3D view");
  const json ap_fields = appliance_fields(ap, face, pull);
  const double t_max = ap_fields["thickness"]["max"].get<double>();
  timer.lap("appliance maps");

  // The mark: displacement of the marked surface from the unmarked one.
  const SurfaceQuery unmarked(appliance);
  const std::vector<double> disp_mm = unmarked.signed_distances(marked.vertices);
  const auto [detail, detail_um] = mark_detail(marked, disp_mm, unmarked, skin);
  timer.lap("mark");
  double disp_abs = 1;
  for (double x : disp_mm) disp_abs = std::max(disp_abs, std::abs(1000 * x));
  const json mark_range = {{"max_abs_um", disp_abs}};

  // PNG previews for people who will not open a browser.
  // Seen along the pull (near the face's front) with the head's top up: a file's +y is not always
  // up (nefertiti.obj's up is its +z; seen along a pull tilted 40° down, its +y drew her upside down).
  const Eigen::Matrix3d view = facing(pull, up);
  RenderOptions ro;
  ro.width_px = 900;
  render_png(rotated(face, view), out / "preview-face.png", ro);
  timer.lap("face picture");
  Mesh ap_full = appliance;
  colour_by(ap_full, skin.distances(ap_full.vertices), 0, t_max, "heat");
  render_png(rotated(ap_full, view), out / piece_png, ro);
  timer.lap("appliance picture");
  Mesh mk = marked;
  std::vector<double> um(disp_mm.size());
  for (std::size_t i = 0; i < um.size(); ++i) um[i] = 1000 * disp_mm[i];
  colour_by(mk, um, -disp_abs, disp_abs, "diverging");
  RenderOptions big = ro;
  big.width_px = 1600;
  render_png(rotated(mk, view), out / "preview-mark.png", big);
  timer.lap("mark picture");
  // The mold parts: fine enough for a picture and the 3D view at a fraction of their faces.
  // Put together (sections and all) and seen from their working side: the core's faces the pull,
  // the shell's faces back along it.
  render_png(rotated(clustered(pieces.core, 1.0), facing(Vec3::UnitZ())), out / "preview-core.png", ro);
  render_png(rotated(clustered(pieces.shell, 1.0), facing(-Vec3::UnitZ())), out / "preview-shell.png", ro);
  timer.lap("mold pictures");

  // The 3D view's data.
  json objects = json::array();
  objects.push_back(viewer_object("face", "Face scan", "face", for_viewer(face, 80000)));
  std::string label = piece;
  label[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(label[0])));
  json a = viewer_object("appliance", label, "face", ap);
  a["fields"] = ap_fields;
  objects.push_back(a);
  if (!detail.triangles.empty()) {
    json m = viewer_object("mark", "Mark (detail, full resolution)", "face", detail);
    m["fields"]["displacement"] = field(detail_um, "Mark displacement", "µm", -disp_abs, disp_abs, "diverging");
    objects.push_back(m);
  }
  for (json& o : printed_side_by_side(pieces.printed)) objects.push_back(std::move(o));
  const json viewer = {{"objects", objects}, {"pull", {pull.x(), pull.y(), pull.z()}}};
  write_file_atomically(out / "viewer.json", viewer.dump());
  timer.lap("3D view");
  json t = json::object();
  for (const auto& [k, v] : timings) t[k] = v;
  return {{"timings_s", t}, {"thickness_p99_mm", t_max}, {"mark", mark_range}, {"previews", {"preview-face.png", piece_png, "preview-mark.png",
                                                                           "preview-core.png", "preview-shell.png"}}};
}

std::string report_html(const json& report, const json& viewer, const fs::path& out) {
  const std::string mark_png = read_file_or_empty(out / "preview-mark.png");
  std::string page = kReportPage;
  auto replace = [&](const std::string& tag, const std::string& with) {
    const auto at = page.find(tag);
    if (at != std::string::npos) page.replace(at, tag.size(), with);
  };
  const json& mark = report["mold"]["mark"];
  replace("@@TITLE@@", mark.value("id", std::string()));
  replace("@@MARKPNG@@", base64(mark_png.data(), mark_png.size()));
  replace("@@REPORT@@", script_json(report));
  replace("@@VIEWER@@", script_json(viewer));
  replace("@@RAMPS@@", colour_ramps().dump());
  replace("@@THREE@@", kThreeModuleJs);
  return page;
}

}  // namespace tracecast::pipeline
