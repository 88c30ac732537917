// The option tables of the synthetic data (tracecast/mesh/options.h): the face, the simulated
// scanner and the simulated RGB-D camera, as `tracecast synth face|scan|rgbd` takes them.
#include <nlohmann/json.hpp>

#include "tracecast/scan/rgbd.h"
#include "tracecast/scan/simulator.h"
#include "tracecast/scan/synthetic_face.h"
#include "tracecast/scan/synthetic_head.h"

namespace tracecast::scan {

namespace {

OptionTable<SynthFaceOptions> make_face_table() {
  using S = SynthFaceOptions;
  OptionTable<S> t("synth face");
  t.number("spacing_mm", &S::spacing_mm, "mm", 0.05, 20, "grid spacing of the mesh")
      .seed("seed", &S::seed, "0: the canonical face; others vary every feature's size and place by up to 15 %")
      .number("width_mm", &S::width_mm, "mm", 20, 500, "width of the outline, across the cheeks")
      .number("height_mm", &S::height_mm, "mm", 20, 500, "height of the outline, chin to hairline")
      .number("depth_mm", &S::depth_mm, "mm", 10, 300, "depth of the head's cap before the features")
      .number("nose_mm", &S::nose_mm, "mm", 0, 60, "how far the nose tip stands off the cap")
      .number("wrinkles_mm", &S::wrinkle_mm, "mm", 0, 2, "forehead wrinkle amplitude, period 4 mm (0: none)")
      .number("creases_mm", &S::crease_mm, "mm", 0, 10,
              "depth of deep creases at the nasolabial folds and mouth corners, 1.2 mm σ across (0: none)")
      .flag("symmetric", &S::symmetric, "exactly mirror-symmetric about x = 0 (a seeded face is not otherwise)");
  return t;
}

OptionTable<SynthHeadOptions> make_head_table() {
  using S = SynthHeadOptions;
  OptionTable<S> t("synth head");
  t.number("spacing_mm", &S::spacing_mm, "mm", 0.2, 10, "grid step of the surface (marching tetrahedra)")
      .number("width_mm", &S::width_mm, "mm", 60, 300, "the skull's width, ear to ear without the ears")
      .number("length_mm", &S::length_mm, "mm", 80, 400, "the skull's length, forehead to the back of the head")
      .number("ear_length_mm", &S::ear_length_mm, "mm", 20, 120, "the ear's height, top of the rim to the lobe")
      .number("ear_protrusion_deg", &S::ear_protrusion_deg, "deg", 5, 60, "how far each ear stands out from the side of the head")
      .choice("ears", &S::ears, {"both", "left", "right", "none"}, "which ears the head carries (leave one off to test `tracecast ear`)");
  return t;
}

OptionTable<SynthScanOptions> make_scan_table() {
  using S = SynthScanOptions;
  OptionTable<S> t("synth scan");
  t.seed("face_seed", &S::face_seed, "which synthetic face (0: the canonical one)")
      .number("spacing_mm", &S::spacing_mm, "mm", 0.05, 10, "point spacing at the face (the pixel pitch)")
      .number("noise_mm", &S::noise_mm, "mm", 0, 5, "standard deviation of the noise along each ray")
      .number("outliers_fraction", &S::outlier_fraction, "fraction", 0, 0.5, "share of outliers added, scattered in the box around the data")
      .integer<std::size_t>("holes", &S::holes, 0, 1000, "circular holes cut out of the data")
      .number("hole_radius_mm", &S::hole_radius_mm, "mm", 0.5, 100, "radius of each hole")
      .number("uneven", &S::density_variation, "", 0, 1, "0: uniform density; towards 1, density falls to nothing in places")
      .number("max_incidence_deg", &S::max_incidence_deg, "deg", 1, 89, "hits more oblique than this are not returned")
      .flag("random_pose", &S::random_pose, "rotate at random and move by up to the object's size")
      .flag("normals", &S::normals, "write the scanner's normals (towards the camera)")
      .seed("seed", &S::seed, "the scanner's random seed");
  std::vector<std::string> units(unit_names().begin() + 1, unit_names().end());  // every name but "auto"
  t.add({"unit", OptionKind::Choice, "", 0, 0, false, units, "unit of the written coordinates", {}},
        [](const S& s) { return nlohmann::json(unit_name(s.unit)); },
        [](S& s, const nlohmann::json& v) { s.unit = *parse_unit(v.get<std::string>()); });
  return t;
}

OptionTable<RgbdSimOptions> make_rgbd_table() {
  using S = RgbdSimOptions;
  OptionTable<S> t("synth rgbd");
  t.integer("frames", &S::frames, 1, 1000, "camera positions on the arc")
      .number("sweep_deg", &S::sweep_deg, "deg", 0, 180, "the arc the camera moves along")
      .number("distance_mm", &S::distance_mm, "mm", 100, 2000, "the camera's distance from the face's box centre")
      .number("noise_mm", &S::noise_mm, "mm", 0, 10, "depth noise, standard deviation")
      .flag("poses", &S::poses, "write the poses into the manifest (without: odometry places the frames)")
      .seed("seed", &S::seed, "random seed");
  return t;
}

}  // namespace

const OptionTable<SynthFaceOptions>& synth_face_option_table() {
  static const OptionTable<SynthFaceOptions> t = make_face_table();
  return t;
}

const OptionTable<SynthHeadOptions>& synth_head_option_table() {
  static const OptionTable<SynthHeadOptions> t = make_head_table();
  return t;
}

const OptionTable<SynthScanOptions>& synth_scan_option_table() {
  static const OptionTable<SynthScanOptions> t = make_scan_table();
  return t;
}

const OptionTable<RgbdSimOptions>& rgbd_sim_option_table() {
  static const OptionTable<RgbdSimOptions> t = make_rgbd_table();
  return t;
}

}  // namespace tracecast::scan
