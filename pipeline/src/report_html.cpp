#include "report_html.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/face.h"
#include "tracecast/mesh/io.h"
#include "tracecast/mesh/render.h"
#include "tracecast/mesh/step_timer.h"
#include "tracecast/mesh/repair.h"
#include "tracecast/mesh/submesh.h"

extern const char* const kThreeModuleJs;

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

//! Colour ramps shared with the page: "heat" (dark blue → yellow) for magnitudes, "diverging"
//! (red ← white → blue) for signed values.
Vec3 ramp_colour(double t, const std::string& ramp) {
  t = std::clamp(t, 0.0, 1.0);
  if (ramp == "diverging") {
    const Vec3 red(0.80, 0.15, 0.15), white(0.95, 0.95, 0.95), blue(0.15, 0.35, 0.80);
    return t < 0.5 ? Vec3(red + (white - red) * (2 * t)) : Vec3(white + (blue - white) * (2 * t - 1));
  }
  const Vec3 stops[] = {{0.07, 0.10, 0.40}, {0.10, 0.45, 0.60}, {0.30, 0.70, 0.40}, {0.95, 0.85, 0.20}};
  const double s = t * 3;
  const int i = std::min(2, static_cast<int>(s));
  return stops[i] + (stops[i + 1] - stops[i]) * (s - i);
}

void colour_by(Mesh& m, const std::vector<double>& v, double lo, double hi, const std::string& ramp) {
  m.colors.resize(m.vertices.size());
  for (std::size_t i = 0; i < v.size(); ++i) m.colors[i] = ramp_colour((v[i] - lo) / (hi - lo + 1e-300), ramp);
}

//! The rotation that turns `front` to +z (the renderer looks along -z), keeping +y up as far as possible.
Eigen::Matrix3d facing(const Vec3& front) {
  const Vec3 z = front.normalized();
  Vec3 y = Vec3::UnitY() - z * z.y();
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

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
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

}  // namespace

json make_previews(const fs::path& out, const json& mold_result, const std::function<Mesh(const std::string&)>& load) {
  std::vector<std::pair<std::string, double>> timings;
  StepTimer timer(timings);
  const Mesh face = load("face.ply"), appliance = load("appliance.ply"), marked = load("appliance-marked.ply");
  const Mesh core = load("mold-core.stl"), shell = load("mold-shell.stl");
  timer.lap("reading");
  const auto& pd = mold_result["pull"]["direction"];
  const Vec3 pull(pd[0].get<double>(), pd[1].get<double>(), pd[2].get<double>());

  // Appliance: thickness (distance from each vertex to the skin) and draft (how far each surface
  // turns towards the direction it is pulled from: the shell lifts the outer surface along the
  // pull, the core keeps the inner one; below zero is an undercut).
  const SurfaceQuery skin(face);
  Mesh ap = decimated(appliance, 60000);
  const std::vector<double> thickness = skin.distances(ap.vertices);
  const std::vector<Vec3> normals = vertex_normals(ap);
  std::vector<double> draft(ap.vertices.size());
  for (std::size_t i = 0; i < draft.size(); ++i) draft[i] = (thickness[i] > 0.05 ? 1.0 : -1.0) * normals[i].dot(pull);
  const double t_max = std::max(0.1, percentile(thickness, 0.99));
  timer.lap("appliance maps");

  // The mark: displacement of the marked surface from the unmarked one, on a detail at full
  // resolution (the cells are 1.2 mm), around the middle of the marked area.
  const SurfaceQuery unmarked(appliance);
  const std::vector<double> disp_mm = unmarked.signed_distances(marked.vertices);
  Vec3 centre = Vec3::Zero();
  double n = 0;
  for (std::size_t i = 0; i < disp_mm.size(); ++i)
    if (std::abs(disp_mm[i]) > 0.010) centre += marked.vertices[i], n += 1;
  Mesh detail;
  std::vector<double> detail_um;
  if (n > 0) {
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
    // Only the outer layer (off the skin).
    detail = submesh(marked, keep);
    const std::vector<double> on_skin = skin.distances(detail.vertices);
    std::vector<char> outer(detail.triangles.size(), 0);
    for (std::size_t f = 0; f < detail.triangles.size(); ++f)
      outer[f] = on_skin[static_cast<std::size_t>(detail.triangles[f][0])] > 0.05;
    detail = submesh(detail, outer);
    const std::vector<double> dd = unmarked.signed_distances(detail.vertices);
    for (double x : dd) detail_um.push_back(1000 * x);
  }
  timer.lap("mark");
  double disp_abs = 1;
  for (double x : disp_mm) disp_abs = std::max(disp_abs, std::abs(1000 * x));
  const json mark_range = {{"max_abs_um", disp_abs}};

  // PNG previews for people who will not open a browser.
  const Eigen::Matrix3d view = facing(pull);  // the pull is near the face's front
  RenderOptions ro;
  ro.width_px = 900;
  render_png(rotated(face, view), out / "preview-face.png", ro);
  Mesh ap_full = appliance;
  colour_by(ap_full, skin.distances(ap_full.vertices), 0, t_max, "heat");
  render_png(rotated(ap_full, view), out / "preview-appliance.png", ro);
  Mesh mk = marked;
  std::vector<double> um(disp_mm.size());
  for (std::size_t i = 0; i < um.size(); ++i) um[i] = 1000 * disp_mm[i];
  colour_by(mk, um, -disp_abs, disp_abs, "diverging");
  RenderOptions big = ro;
  big.width_px = 1600;
  render_png(rotated(mk, view), out / "preview-mark.png", big);
  // The mold parts: fine enough for a picture and the 3D view at a fraction of their faces.
  const Mesh core_view = clustered(core, 1.0), shell_view = clustered(shell, 1.0);
  render_png(core_view, out / "preview-core.png", ro);   // print pose: seen from above
  render_png(shell_view, out / "preview-shell.png", ro);
  timer.lap("pictures");

  // The 3D view's data.
  json objects = json::array();
  objects.push_back(viewer_object("face", "Face scan", "face", decimated(face, 80000)));
  json a = viewer_object("appliance", "Appliance", "face", ap);
  a["fields"]["thickness"] = field(thickness, "Thickness", "mm", 0, t_max, "heat");
  a["fields"]["draft"] = field(draft, "Draft towards the pull (below 0: undercut)", "cos", -1, 1, "diverging");
  objects.push_back(a);
  if (!detail.triangles.empty()) {
    json m = viewer_object("mark", "Mark (detail, full resolution)", "face", detail);
    m["fields"]["displacement"] = field(detail_um, "Mark displacement", "µm", -disp_abs, disp_abs, "diverging");
    objects.push_back(m);
  }
  objects.push_back(viewer_object("core", "Core (as printed)", "print", core_view));
  objects.push_back(viewer_object("shell", "Shell (as printed, cavity up)", "print", shell_view));
  const json viewer = {{"objects", objects}, {"pull", {pull.x(), pull.y(), pull.z()}}};
  write_file_atomically(out / "viewer.json", viewer.dump());
  timer.lap("3D view");
  json t = json::object();
  for (const auto& [k, v] : timings) t[k] = v;
  return {{"timings_s", t}, {"thickness_p99_mm", t_max}, {"mark", mark_range}, {"previews", {"preview-face.png", "preview-appliance.png", "preview-mark.png",
                                                                           "preview-core.png", "preview-shell.png"}}};
}

std::string report_html(const json& report, const json& viewer, const fs::path& out) {
  const std::string mark_png = read_file(out / "preview-mark.png");
  std::string page = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tracecast report — @@TITLE@@</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d232a; background: #f4f5f7; }
  header { background: #1d232a; color: #fff; padding: 14px 24px; }
  header h1 { font-size: 20px; margin: 0; }
  header p { margin: 4px 0 0; color: #b9c2cc; }
  main { display: grid; grid-template-columns: minmax(0, 1.6fr) minmax(320px, 1fr); gap: 16px; padding: 16px 24px; }
  section { background: #fff; border-radius: 6px; padding: 12px 16px; box-shadow: 0 1px 2px rgba(0,0,0,.08); margin-bottom: 16px; }
  h2 { font-size: 15px; margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  td, th { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eceef1; vertical-align: top; }
  th { font-weight: 600; color: #4b5560; width: 42%; }
  .num { font-variant-numeric: tabular-nums; }
  #view { position: relative; height: 560px; background: #2b3036; border-radius: 6px; overflow: hidden; }
  #view canvas { display: block; width: 100%; height: 100%; }
  #controls { display: flex; flex-wrap: wrap; gap: 10px 16px; margin: 8px 0; align-items: center; }
  #legend { position: absolute; left: 12px; bottom: 12px; color: #fff; font-size: 12px; background: rgba(0,0,0,.45); padding: 6px 8px; border-radius: 4px; }
  #legend .bar { width: 200px; height: 10px; margin: 4px 0; }
  .warn { color: #9a5b00; }
  .ok { color: #16713a; } .bad { color: #b3261e; }
  code, .hash { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
  img.mark { width: 100%; border-radius: 4px; background: #fff; }
  details pre { max-height: 320px; overflow: auto; background: #f6f7f9; padding: 8px; }
</style>
</head>
<body>
<header><h1>tracecast — piece <span id="piece-id"></span></h1><p id="subtitle"></p></header>
<main>
<div>
  <section>
    <h2>3D view</h2>
    <div id="controls"></div>
    <div id="view"><div id="legend"></div></div>
    <p style="color:#5b6570;font-size:12px">Drag to turn, right-drag or shift-drag to move, wheel to zoom. Face, appliance and mark are in the
    scan's coordinates; the mold parts are laid out as they are printed.</p>
  </section>
  <section>
    <h2>The mark</h2>
    <p>Displacement of the appliance's outer surface by the hidden identifier (red: in, blue: out; ±<span id="mark-max"></span> µm).</p>
    <img class="mark" alt="The mark's displacement over the appliance" src="data:image/png;base64,@@MARKPNG@@">
  </section>
</div>
<div>
  <section><h2>Casting sheet</h2><table id="casting"></table></section>
  <section><h2>Warnings</h2><ul id="warnings"></ul></section>
  <section><h2>Ledger record</h2><table id="record"></table></section>
  <section><h2>Stages</h2><table id="stages"></table></section>
  <section><h2>Recipe as run</h2><details><summary>every option, defaults included</summary><pre id="recipe"></pre></details></section>
</div>
</main>
<script type="application/json" id="report-data">@@REPORT@@</script>
<script type="application/json" id="viewer-data">@@VIEWER@@</script>
<script type="text/plain" id="three-src">@@THREE@@</script>
<script type="module">
const report = JSON.parse(document.getElementById('report-data').textContent);
const viewer = JSON.parse(document.getElementById('viewer-data').textContent);
const $ = (id) => document.getElementById(id);
const fmt = (x, d = 1) => (typeof x === 'number' ? x.toFixed(d) : (x ?? '—'));
const row = (table, k, v, cls) => { const tr = table.insertRow(); const th = document.createElement('th'); th.textContent = k; tr.appendChild(th);
  const td = tr.insertCell(); td.textContent = v; if (cls) td.className = cls; };

// ---- the sheets
const mold = report.mold, cast = mold.casting, mark = mold.mark;
$('piece-id').textContent = mark.id;
$('subtitle').textContent = `run ${mark.run}, subject ${mark.subject} — ${report.recipe_file}`;
$('mark-max').textContent = fmt(mark.max_displacement_um, 0);
const cs = $('casting');
row(cs, 'Silicone to mix', `${fmt(cast.silicone_g)} g (${fmt(cast.part_a_g)} g A + ${fmt(cast.part_b_g)} g B)`);
row(cs, 'Cavity', `${fmt(cast.cavity_ml, 2)} ml, gutter ${fmt(cast.gutter_ml, 2)} ml, density ${fmt(cast.density_g_ml, 2)} g/ml, waste ${fmt(100 * cast.waste_fraction, 0)} %`);
for (const p of mold.parts)
  row(cs, `Resin, ${p.name}`, `${fmt(p.resin_ml)} ml; print as ${p.print_size_mm.map((x) => fmt(x, 0)).join(' × ')} mm; min wall ${fmt(p.min_wall_mm, 2)} mm; ` +
      (p.closed && p.manifold && p.self_intersections === 0 ? 'valid solid' : 'NOT a valid solid') + (p.fits_build_volume ? '' : '; does not fit the printer'),
      p.closed && p.manifold && p.self_intersections === 0 && p.fits_build_volume ? 'ok' : 'bad');
row(cs, 'Printer', mold.printer);
row(cs, 'Pull direction', mold.pull.direction.map((x) => fmt(x, 3)).join(', ') + ` (undercut ${fmt(mold.pull.undercut_area_mm2, 0)} mm²)`);
row(cs, 'Mark', `${fmt(mark.tiles)} tiles over ${fmt(mark.marked_area_mm2, 0)} mm², max ${fmt(mark.max_displacement_um)} µm, RMS ${fmt(mark.rms_displacement_um)} µm`);
row(cs, 'Appliance', `${fmt(report.appliance.volume_ml, 2)} ml; thickness ${fmt(report.appliance.interior_thickness_mm.mean, 2)} mm (interior mean), rim ≤ ${fmt(report.appliance.rim_max_mm, 2)} mm`);
row(cs, 'Scan', `${report.scan.points_used} points used, accuracy ${fmt(report.scan.accuracy_mm.mean, 3)} mm mean, ${fmt(report.scan.accuracy_mm.p95, 3)} mm p95`);
const w = $('warnings');
for (const t of mold.warnings) { const li = document.createElement('li'); li.textContent = t; li.className = 'warn'; w.appendChild(li); }
const rec = $('record'), r = report.record;
if (r && r.piece) {
  row(rec, 'Identifier', r.piece.id);
  row(rec, 'Workshop', `${r.workshop.name} (maker ${r.workshop.maker})`);
  row(rec, 'Run', `${r.run.run}: ${r.run.use} use, client ${r.run.client}${r.run.prescriber ? ', prescriber ' + r.run.prescriber : ''}, operator ${r.run.operator || '—'}${r.run.operator_name ? ' (' + r.run.operator_name + ')' : ''}`);
  row(rec, 'Subject', r.piece.subject);
  if (r.piece.consent) row(rec, 'Consent', `${r.piece.consent.use} use until ${r.piece.consent.valid_until}, given by ${r.piece.consent.given_by}`);
  row(rec, 'Made', `${r.piece.made_utc} under marking key ${r.piece.marking_key_id} (entry ${r.piece.entry})`);
  if (r.piece.outputs) for (const [f, h] of Object.entries(r.piece.outputs.files)) row(rec, f.split('/').pop(), h, 'hash');
  row(rec, 'Release', r.piece.release ? `${r.piece.release.accepted ? 'accepted' : 'rejected'} by ${r.piece.release.released_by}` : 'awaiting release');
  row(rec, 'Ledger', r.ledger.verified ? `${r.ledger.entries} entries, chain and signatures verified` : 'DOES NOT VERIFY: ' + r.ledger.problem, r.ledger.verified ? 'ok' : 'bad');
}
const st = $('stages');
for (const s of report.stages) row(st, s.stage, s.cached ? `reused (${fmt(s.seconds, 2)} s; made in ${fmt(s.last_run_s)} s)` : `${fmt(s.seconds)} s`);
row(st, 'total', `${fmt(report.total_s)} s`);
$('recipe').textContent = JSON.stringify(report.recipe, null, 2);

// ---- the 3D view
const url = URL.createObjectURL(new Blob([$('three-src').textContent], { type: 'text/javascript' }));
const THREE = await import(url);
const decode = (b64, Type) => { const s = atob(b64); const b = new Uint8Array(s.length); for (let i = 0; i < s.length; ++i) b[i] = s.charCodeAt(i); return new Type(b.buffer); };
const ramps = {
  heat: [[0.07, 0.10, 0.40], [0.10, 0.45, 0.60], [0.30, 0.70, 0.40], [0.95, 0.85, 0.20]],
  diverging: [[0.80, 0.15, 0.15], [0.95, 0.95, 0.95], [0.15, 0.35, 0.80]],
};
const rampAt = (name, t) => { const s = ramps[name]; t = Math.min(1, Math.max(0, t)) * (s.length - 1); const i = Math.min(s.length - 2, Math.floor(t)), f = t - i;
  return s[i].map((c, k) => c + (s[i + 1][k] - c) * f); };
const view = $('view');
const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
renderer.setPixelRatio(window.devicePixelRatio || 1);
view.appendChild(renderer.domElement);
const scene = new THREE.Scene();
scene.background = new THREE.Color(0x2b3036);
const camera = new THREE.PerspectiveCamera(35, 1, 1, 10000);
scene.add(new THREE.HemisphereLight(0xffffff, 0x404850, 1.6));
const sun = new THREE.DirectionalLight(0xffffff, 1.8);
scene.add(sun);
const objects = {};
for (const o of viewer.objects) {
  const g = new THREE.BufferGeometry();
  g.setAttribute('position', new THREE.BufferAttribute(decode(o.positions, Float32Array), 3));
  g.setIndex(new THREE.BufferAttribute(decode(o.indices, Uint32Array), 1));
  g.computeVertexNormals();
  const colours = new Float32Array(3 * o.vertices).fill(0.8);
  g.setAttribute('color', new THREE.BufferAttribute(colours, 3));
  const m = new THREE.Mesh(g, new THREE.MeshStandardMaterial({ vertexColors: true, roughness: 0.75, metalness: 0.0, side: THREE.DoubleSide }));
  m.visible = false;
  scene.add(m);
  objects[o.name] = { data: o, mesh: m, fields: Object.fromEntries(Object.entries(o.fields).map(([k, f]) => [k, { ...f, array: decode(f.values, Float32Array) }])) };
}
const base = { face: [0.86, 0.72, 0.64], appliance: [0.93, 0.80, 0.70], mark: [0.93, 0.80, 0.70], core: [0.70, 0.76, 0.86], shell: [0.62, 0.70, 0.80] };
let frame = 'face', colourBy = 'thickness';
const shown = { face: true, appliance: true, mark: false, core: true, shell: true };
function paint() {
  let legend = null;
  for (const [name, o] of Object.entries(objects)) {
    const c = o.mesh.geometry.getAttribute('color');
    const f = o.fields[colourBy] || (name === 'mark' ? o.fields.displacement : null);
    for (let i = 0; i < o.data.vertices; ++i) {
      const rgb = f ? rampAt(f.ramp, (f.array[i] - f.min) / (f.max - f.min)) : (base[name] || [0.8, 0.8, 0.8]);
      c.setXYZ(i, rgb[0], rgb[1], rgb[2]);
    }
    c.needsUpdate = true;
    o.mesh.visible = o.data.frame === frame && shown[name];
    if (f && o.mesh.visible) legend = f;
  }
  const lg = $('legend');
  if (!legend) { lg.style.display = 'none'; return; }
  const stops = ramps[legend.ramp].map((s, i, a) => `rgb(${s.map((x) => Math.round(255 * x)).join(',')}) ${Math.round(100 * i / (a.length - 1))}%`);
  lg.style.display = 'block';
  lg.innerHTML = `${legend.label}<div class="bar" style="background:linear-gradient(to right, ${stops.join(', ')})"></div>` +
    `<span>${fmt(legend.min, 2)}</span><span style="float:right">${fmt(legend.max, 2)} ${legend.unit}</span>`;
}
// Orbit: the camera on a sphere around a target.
const target = new THREE.Vector3();
let radius = 300, theta = 0, phi = Math.PI / 2;
function fit() {
  const box = new THREE.Box3();
  for (const o of Object.values(objects)) if (o.mesh.visible) box.expandByObject(o.mesh);
  if (box.isEmpty()) return;
  box.getCenter(target);
  const size = box.getSize(new THREE.Vector3()).length();
  radius = size * 1.3;
  camera.near = size / 100; camera.far = size * 20; camera.updateProjectionMatrix();
}
// The face frame looks along the pull (the face's front); the print frame is seen from above.
const pull = new THREE.Vector3(...viewer.pull).normalize();
function place() {
  let dir;
  if (frame === 'face') {
    const q = new THREE.Quaternion().setFromUnitVectors(new THREE.Vector3(0, 0, 1), pull);
    dir = new THREE.Vector3(Math.sin(phi) * Math.sin(theta), Math.cos(phi), Math.sin(phi) * Math.cos(theta)).applyQuaternion(q);
    camera.up.set(0, 1, 0).applyQuaternion(q);
  } else {
    dir = new THREE.Vector3(Math.sin(phi) * Math.sin(theta), -Math.sin(phi) * Math.cos(theta), Math.cos(phi) + 0.0001).normalize();
    camera.up.set(0, 0, 1);
  }
  camera.position.copy(target).addScaledVector(dir, radius);
  camera.lookAt(target);
  sun.position.copy(camera.position).add(new THREE.Vector3(radius, radius, 0));
}
function resize() {
  const w = view.clientWidth, h = view.clientHeight;
  renderer.setSize(w, h, false);
  camera.aspect = w / h; camera.updateProjectionMatrix();
}
let drag = null;
renderer.domElement.addEventListener('pointerdown', (e) => { drag = { x: e.clientX, y: e.clientY, pan: e.button === 2 || e.shiftKey }; renderer.domElement.setPointerCapture(e.pointerId); });
renderer.domElement.addEventListener('pointerup', () => { drag = null; });
renderer.domElement.addEventListener('contextmenu', (e) => e.preventDefault());
renderer.domElement.addEventListener('pointermove', (e) => {
  if (!drag) return;
  const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
  drag.x = e.clientX; drag.y = e.clientY;
  if (drag.pan) {
    const right = new THREE.Vector3().setFromMatrixColumn(camera.matrix, 0), up = new THREE.Vector3().setFromMatrixColumn(camera.matrix, 1);
    target.addScaledVector(right, -dx * radius / 800).addScaledVector(up, dy * radius / 800);
  } else {
    theta -= dx * 0.008; phi = Math.min(Math.PI - 0.05, Math.max(0.05, phi - dy * 0.008));
  }
  draw();
});
renderer.domElement.addEventListener('wheel', (e) => { e.preventDefault(); radius *= Math.exp(e.deltaY * 0.001); draw(); }, { passive: false });
function draw() { place(); renderer.render(scene, camera); }
// Controls: which frame, which objects, which colour map.
const controls = $('controls');
function control(html, onchange) { const span = document.createElement('span'); span.innerHTML = html; controls.appendChild(span);
  span.querySelectorAll('input,select').forEach((el) => el.addEventListener('change', () => { onchange(el); paint(); draw(); })); }
control('<label><input type="radio" name="frame" value="face" checked> face and appliance</label> <label><input type="radio" name="frame" value="print"> mold parts</label>',
  (el) => { frame = el.value; theta = 0; phi = frame === 'face' ? Math.PI / 2 : 0.6; paint(); fit(); });
for (const o of viewer.objects)
  control(`<label><input type="checkbox" data-name="${o.name}" ${shown[o.name] ? 'checked' : ''}> ${o.label}</label>`, (el) => { shown[el.dataset.name] = el.checked; });
control('colour <select><option value="thickness">thickness</option><option value="draft">draft / undercut</option><option value="none">plain</option></select>',
  (el) => { colourBy = el.value; });
window.addEventListener('resize', () => { resize(); draw(); });
resize(); paint(); fit(); draw();
document.body.dataset.rendered = 'yes';
</script>
</body>
</html>
)html";
  auto replace = [&](const std::string& tag, const std::string& with) {
    const auto at = page.find(tag);
    if (at != std::string::npos) page.replace(at, tag.size(), with);
  };
  const json& mark = report["mold"]["mark"];
  replace("@@TITLE@@", mark.value("id", std::string()));
  replace("@@MARKPNG@@", base64(mark_png.data(), mark_png.size()));
  replace("@@REPORT@@", script_json(report));
  replace("@@VIEWER@@", script_json(viewer));
  replace("@@THREE@@", kThreeModuleJs);
  return page;
}

}  // namespace tracecast::pipeline
