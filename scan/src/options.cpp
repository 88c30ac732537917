// The reconstruction's option table (tracecast/mesh/options.h): the options a user sets on
// `tracecast scan` and in a recipe's "scan" section. The outlier filters' settings stay fixed
// (measured on the scanners in docs/methods/scan.md) and are not options. And the scan's results
// as every report writes them.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "tracecast/mesh/report_json.h"
#include "tracecast/scan/reconstruct.h"
#include "tracecast/scan/register.h"

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

void to_json(nlohmann::json& j, const ScanReport& r) {
  j = {{"points",
        {{"in", r.points_in},
         {"removed_statistical_outliers", r.removed_statistical},
         {"removed_radius_outliers", r.removed_radius},
         {"removed_by_crop", r.removed_crop},
         {"removed_by_downsampling", r.removed_voxel},
         {"used", r.points_used},
         {"median_spacing_mm", r.median_spacing_mm},
         {"normals", r.normals_estimated ? "estimated" : "from input"}}},
       {"reconstruction", {{"resolution_mm", r.resolution_mm}, {"median_edge_mm", r.median_edge_mm}, {"poisson_depth", r.poisson_depth}}},
       {"accuracy_mm", r.accuracy},
       {"surface",
        {{"vertices", r.vertices},
         {"faces", r.faces},
         {"area_mm2", r.area_mm2},
         {"invented_area_mm2", r.invented_area_mm2},
         {"boundary_loops", r.boundary_loops}}},
       {"timings_s", timings_json(r.timings)}};
}

nlohmann::json registration_json(const Registration& r, const std::vector<std::string>& names) {
  nlohmann::json pairs = nlohmann::json::array();
  for (const PairRegistration& p : r.pairs)
    pairs.push_back({{"views", {names.at(p.source), names.at(p.target)}}, {"overlap", p.fitness}, {"rms_mm", p.rms_mm}, {"used", p.used}});
  return pairs;
}

const OptionTable<ReconstructOptions>& reconstruct_option_table() {
  static const OptionTable<ReconstructOptions> t = make_reconstruct_table();
  return t;
}

}  // namespace tracecast::scan
