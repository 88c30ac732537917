#include <catch2/catch.hpp>
#include <open3d/geometry/Image.h>
#include <open3d/io/ImageIO.h>

#include <set>

#include "fixtures.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/render.h"
#include "tracecast/scan/synthetic_face.h"

using namespace tracecast;

TEST_CASE("render draws the object shaded on white, at the requested width", "[render]") {
  const auto dir = test::temp_dir("render");
  const Mesh face = scan::SyntheticFace().mesh(2.0);
  RenderOptions o;
  o.width_px = 200;
  render_png(face, dir / "face.png", o);
  open3d::geometry::Image img;
  REQUIRE(open3d::io::ReadImage((dir / "face.png").string(), img));
  CHECK(img.width_ == 200);
  CHECK(img.height_ > 200);  // a face is taller than wide
  std::size_t object = 0;
  std::set<int> shades;
  for (int i = 0; i < img.width_ * img.height_; ++i) {
    const auto* p = &img.data_[static_cast<std::size_t>(3 * i)];
    if (!(p[0] == 255 && p[1] == 255 && p[2] == 255)) {
      ++object;
      shades.insert(p[0]);
    }
  }
  const double share = double(object) / (img.width_ * img.height_);
  // The face's elliptical outline fills π/4 of its box, less the margins.
  CHECK(share > 0.55);
  CHECK(share < 0.80);
  CHECK(shades.size() > 20);  // shaded, not a silhouette
  CHECK_THROWS_AS(render_png(Mesh{}, dir / "x.png"), InputError);
  CHECK_THROWS_AS(render_png(face, dir / "no-folder" / "x.png"), ProcessingError);
}
