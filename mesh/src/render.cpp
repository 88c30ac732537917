#include "tracecast/mesh/render.h"

#include <open3d/geometry/Image.h>
#include <open3d/io/ImageIO.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "tracecast/mesh/errors.h"

namespace tracecast {

namespace {

//! For each pixel of a w × h picture (pixel centres at umin + (x + ½) px along `right`, vmax −
//! (y + ½) px along `up`), the face seen there along −back (orthographic, nearest to the viewer),
//! or −1: a depth buffer filled triangle by triangle, linear in the faces and the pixels they
//! cover.
std::vector<std::int64_t> nearest_faces(const Mesh& mesh, const Vec3& right, const Vec3& up, const Vec3& back, double umin, double vmax,
                                        double px, int w, int h) {
  std::vector<std::int64_t> face(static_cast<std::size_t>(w) * h, -1);
  std::vector<double> depth(face.size(), -std::numeric_limits<double>::infinity());
  std::vector<Vec3> q(mesh.vertices.size());  // pixel x, pixel y, depth (larger: nearer)
  for (std::size_t i = 0; i < q.size(); ++i) {
    const Vec3& p = mesh.vertices[i];
    q[i] = Vec3((p.dot(right) - umin) / px - 0.5, (vmax - p.dot(up)) / px - 0.5, p.dot(back));
  }
  for (std::size_t f = 0; f < mesh.triangles.size(); ++f) {
    const Vec3 &a = q[static_cast<std::size_t>(mesh.triangles[f][0])], &b = q[static_cast<std::size_t>(mesh.triangles[f][1])],
               &c = q[static_cast<std::size_t>(mesh.triangles[f][2])];
    const double area = (b.x() - a.x()) * (c.y() - a.y()) - (c.x() - a.x()) * (b.y() - a.y());
    if (area == 0) continue;  // seen edge-on
    const int x0 = std::max(0, static_cast<int>(std::ceil(std::min({a.x(), b.x(), c.x()}))));
    const int x1 = std::min(w - 1, static_cast<int>(std::floor(std::max({a.x(), b.x(), c.x()}))));
    const int y0 = std::max(0, static_cast<int>(std::ceil(std::min({a.y(), b.y(), c.y()}))));
    const int y1 = std::min(h - 1, static_cast<int>(std::floor(std::max({a.y(), b.y(), c.y()}))));
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) {
        const double wa = ((b.x() - x) * (c.y() - y) - (c.x() - x) * (b.y() - y)) / area;
        const double wb = ((c.x() - x) * (a.y() - y) - (a.x() - x) * (c.y() - y)) / area;
        const double wc = 1 - wa - wb;
        if (wa < 0 || wb < 0 || wc < 0) continue;
        const double z = wa * a.z() + wb * b.z() + wc * c.z();
        const std::size_t i = static_cast<std::size_t>(y) * w + x;
        if (z > depth[i]) depth[i] = z, face[i] = static_cast<std::int64_t>(f);
      }
  }
  return face;
}

}  // namespace

const OptionTable<RenderOptions>& render_option_table() {
  static const OptionTable<RenderOptions> t = [] {
    OptionTable<RenderOptions> r("render");
    r.integer("width_px", &RenderOptions::width_px, 16, 8192, "image width (the height follows the object's aspect)", "px")
        .number("yaw_deg", &RenderOptions::yaw_deg, "deg", -360, 360, "view direction around the vertical axis (0: from +z)")
        .number("pitch_deg", &RenderOptions::pitch_deg, "deg", -89, 89, "view from above (+) or below (-)")
        .number("margin_fraction", &RenderOptions::margin, "fraction", 0, 0.45, "empty border, as a share of the object's size");
    return r;
  }();
  return t;
}

void render_png(const Mesh& mesh, const std::filesystem::path& png, const RenderOptions& o) {
  if (mesh.triangles.empty()) throw InputError("render: the mesh has no faces");
  throw_problems("render", render_option_table().check(o));
  constexpr double kDeg = 3.14159265358979323846 / 180.0;
  // Camera frame: `back` points from the object to the viewer.
  const Vec3 back(std::sin(o.yaw_deg * kDeg) * std::cos(o.pitch_deg * kDeg), std::sin(o.pitch_deg * kDeg),
                  std::cos(o.yaw_deg * kDeg) * std::cos(o.pitch_deg * kDeg));
  const Vec3 right = Vec3::UnitY().cross(back).normalized();
  const Vec3 up = back.cross(right);
  double umin = 1e300, umax = -1e300, vmin = 1e300, vmax = -1e300;
  for (const Vec3& p : mesh.vertices) {
    umin = std::min(umin, p.dot(right));
    umax = std::max(umax, p.dot(right));
    vmin = std::min(vmin, p.dot(up));
    vmax = std::max(vmax, p.dot(up));
  }
  const double size = std::max(umax - umin, vmax - vmin);
  umin -= o.margin * size;
  umax += o.margin * size;
  vmin -= o.margin * size;
  vmax += o.margin * size;
  const int w = o.width_px;
  const double px = (umax - umin) / w;
  const int h = std::max(16, static_cast<int>(std::ceil((vmax - vmin) / px)));
  const std::vector<std::int64_t> front = nearest_faces(mesh, right, up, back, umin, vmax, px, w, h);
  const Vec3 light = (back + 0.6 * up - 0.5 * right).normalized();
  open3d::geometry::Image img;
  img.Prepare(w, h, 3, 1);
  for (std::size_t i = 0; i < front.size(); ++i) {
    Vec3 c(1, 1, 1);  // background
    if (front[i] >= 0) {
      const Tri& t = mesh.triangles[static_cast<std::size_t>(front[i])];
      const Vec3 n = (mesh.vertices[t[1]] - mesh.vertices[t[0]]).cross(mesh.vertices[t[2]] - mesh.vertices[t[0]]).normalized();
      const double lambert = std::abs(n.dot(light));  // two-sided: open surfaces show their back too
      const double shade = 0.18 + 0.82 * lambert;
      Vec3 base(0.82, 0.80, 0.78);
      if (mesh.has_colors()) base = (mesh.colors[t[0]] + mesh.colors[t[1]] + mesh.colors[t[2]]) / 3.0;
      c = shade * base;
    }
    for (int k = 0; k < 3; ++k)
      img.data_[3 * i + static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(std::lround(std::clamp(c[k], 0.0, 1.0) * 255));
  }
  // Atomic: write beside the destination, then rename over it.
  const std::filesystem::path dir = png.has_parent_path() ? png.parent_path() : std::filesystem::path(".");
  const std::filesystem::path tmp = dir / ("." + png.stem().string() + ".tmp-" + std::to_string(::getpid()) + ".png");
  if (!open3d::io::WriteImage(tmp.string(), img)) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw ProcessingError(png.string() + ": cannot write the image");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, png, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw ProcessingError(png.string() + ": cannot write the image (" + ec.message() + ")");
  }
}

}  // namespace tracecast
