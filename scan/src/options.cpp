// The reconstruction's option table (tracecast/mesh/options.h): the options a user sets on
// `tracecast scan` and in a recipe's "scan" section. The outlier filters' settings stay fixed
// (measured on the scanners in docs/methods/scan.md) and are not options.
#include <fmt/format.h>

#include "tracecast/scan/reconstruct.h"

namespace tracecast::scan {

namespace {

OptionTable<ReconstructOptions> make_reconstruct_table() {
  OptionTable<ReconstructOptions> t("scan");
  t.number("resolution_mm", &ReconstructOptions::resolution_mm, "mm", 0, 20,
           "target edge length (0: the median point spacing, within 0.5–5 mm)");
  OptionInfo crop{"crop", OptionKind::Text, "", 0, 0, false, {},
                  "auto (largest connected cluster), none, box:x0,y0,z0,x1,y1,z1, sphere:x,y,z,r, or plane:px,py,pz,nx,ny,nz "
                  "(keep the side the normal points to); mm",
                  [](const std::string& s) { return parse_crop(s) ? std::string() : std::string("not auto, none, box:…, sphere:… or plane:…"); }};
  t.add(std::move(crop), [](const ReconstructOptions& o) { return nlohmann::json(crop_text(o.crop)); },
        [](ReconstructOptions& o, const nlohmann::json& v) { o.crop = *parse_crop(v.get<std::string>()); });
  t.number("voxel_mm", &ReconstructOptions::voxel_mm, "mm", 0, 20, "downsample to one point per voxel of this size (0: off)")
      .integer("poisson_depth", &ReconstructOptions::poisson_depth, 0, 12, "Poisson octree depth (0: from the size and the resolution)");
  return t;
}

}  // namespace

std::string crop_text(const Crop& c) {
  const auto v = [](const Vec3& p) { return fmt::format("{},{},{}", p.x(), p.y(), p.z()); };
  switch (c.kind) {
    case CropKind::Auto: return "auto";
    case CropKind::None: return "none";
    case CropKind::Box: return fmt::format("box:{},{}", v(c.a), v(c.b));
    case CropKind::Sphere: return fmt::format("sphere:{},{}", v(c.a), c.radius_mm);
    case CropKind::Plane: return fmt::format("plane:{},{}", v(c.a), v(c.b));
  }
  return "auto";
}

const OptionTable<ReconstructOptions>& reconstruct_option_table() {
  static const OptionTable<ReconstructOptions> t = make_reconstruct_table();
  return t;
}

}  // namespace tracecast::scan
