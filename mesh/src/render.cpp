#include "tracecast/mesh/render.h"

#include <open3d/geometry/Image.h>
#include <open3d/io/ImageIO.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"

namespace tracecast {

void render_png(const Mesh& mesh, const std::filesystem::path& png, const RenderOptions& o) {
  if (mesh.triangles.empty()) throw InputError("render: the mesh has no faces");
  if (o.width_px < 16 || o.width_px > 8192) throw InputError("render: width must be 16-8192 pixels");
  constexpr double kDeg = 3.14159265358979323846 / 180.0;
  // Camera frame: `back` points from the object to the viewer.
  const Vec3 back(std::sin(o.yaw_deg * kDeg) * std::cos(o.pitch_deg * kDeg), std::sin(o.pitch_deg * kDeg),
                  std::cos(o.yaw_deg * kDeg) * std::cos(o.pitch_deg * kDeg));
  const Vec3 right = Vec3::UnitY().cross(back).normalized();
  const Vec3 up = back.cross(right);
  double umin = 1e300, umax = -1e300, vmin = 1e300, vmax = -1e300, wmax = -1e300;
  for (const Vec3& p : mesh.vertices) {
    umin = std::min(umin, p.dot(right));
    umax = std::max(umax, p.dot(right));
    vmin = std::min(vmin, p.dot(up));
    vmax = std::max(vmax, p.dot(up));
    wmax = std::max(wmax, p.dot(back));
  }
  const double size = std::max(umax - umin, vmax - vmin);
  umin -= o.margin * size;
  umax += o.margin * size;
  vmin -= o.margin * size;
  vmax += o.margin * size;
  const int w = o.width_px;
  const double px = (umax - umin) / w;
  const int h = std::max(16, static_cast<int>(std::ceil((vmax - vmin) / px)));
  std::vector<Vec3> origins(static_cast<std::size_t>(w) * h), dirs(origins.size(), -back);
  const double start = wmax + 0.1 * size + 1.0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      origins[static_cast<std::size_t>(y) * w + x] =
          (umin + (x + 0.5) * px) * right + (vmax - (y + 0.5) * px) * up + start * back;
  const std::vector<RayHit> hits = SurfaceQuery(mesh).cast(origins, dirs);
  const Vec3 light = (back + 0.6 * up - 0.5 * right).normalized();
  open3d::geometry::Image img;
  img.Prepare(w, h, 3, 1);
  for (std::size_t i = 0; i < hits.size(); ++i) {
    Vec3 c(1, 1, 1);  // background
    if (hits[i].hit) {
      const double lambert = std::abs(hits[i].normal.dot(light));  // two-sided: open surfaces show their back too
      const double shade = 0.18 + 0.82 * lambert;
      Vec3 base(0.82, 0.80, 0.78);
      if (mesh.has_colors()) {
        const Tri& t = mesh.triangles[static_cast<std::size_t>(hits[i].triangle)];
        base = (mesh.colors[t[0]] + mesh.colors[t[1]] + mesh.colors[t[2]]) / 3.0;
      }
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
