// Synthetic faces with exact ground truth, for tests, benchmarks and the bundled example.
//
// A face is a height field z = height(x, y) in mm over an elliptical outline: x to the wearer's
// left as seen from the front, y up, z towards the viewer. It is an ellipsoidal cap with nose,
// brows, eye sockets, cheeks, lips, chin and fine forehead wrinkles, each a smooth bump whose
// size and place vary with the seed; optionally with deep creases (nasolabial folds, mouth
// corners) whose walls are steeper than an offset of a few millimetres can follow. Because the surface is a closed-form function, the
// distance of any reconstruction to the truth can be measured exactly.
#pragma once

#include <cstdint>

#include "tracecast/mesh/mesh.h"
#include "tracecast/mesh/options.h"

namespace tracecast::scan {

struct FaceParams {
  double width_mm = 150.0;       //!< across the cheeks (outline's full width)
  double height_mm = 210.0;      //!< chin to hairline (outline's full height)
  double depth_mm = 80.0;        //!< ellipsoidal cap's depth before features
  double nose_mm = 24.0;         //!< how far the nose tip stands off the cap
  double wrinkle_mm = 0.12;      //!< amplitude of forehead wrinkles (0: none)
  double wrinkle_period_mm = 4.0;
  double crease_mm = 0.0;        //!< depth of deep creases at the nasolabial folds and mouth corners (0: none)
  double crease_width_mm = 1.2;  //!< their half-width (Gaussian σ across the crease)
  std::uint64_t seed = 0;        //!< 0: the canonical face; others vary features by up to ±15 %
  bool symmetric = false;        //!< exactly mirror-symmetric about x = 0 (seeded faces are not otherwise)
};

//! A synthetic face mesh to write (`tracecast synth face`): the face and the grid's spacing.
struct SynthFaceOptions : FaceParams {
  double spacing_mm = 0.8;
};
const OptionTable<SynthFaceOptions>& synth_face_option_table();

class SyntheticFace {
 public:
  explicit SyntheticFace(const FaceParams& params = {});

  //! True inside the outline (where height() is defined as part of the face).
  bool inside(double x_mm, double y_mm) const;
  //! Surface height in mm at (x, y); smooth everywhere inside the outline.
  double height(double x_mm, double y_mm) const;
  //! Unit normal (towards the viewer) at (x, y).
  Vec3 normal(double x_mm, double y_mm) const;
  //! Point on the surface at (x, y).
  Vec3 point(double x_mm, double y_mm) const { return {x_mm, y_mm, height(x_mm, y_mm)}; }

  //! Open triangle mesh of the face on a regular grid of the given spacing (mm), CCW seen from
  //! the front (normals towards +z), one boundary loop along the outline.
  Mesh mesh(double spacing_mm) const;

  const FaceParams& params() const { return p_; }

 private:
  struct Bump {
    double x, y, sx, sy, h;
  };
  FaceParams p_;
  struct Crease {
    Eigen::Vector2d a, b;
  };
  std::vector<Bump> bumps_;
  std::vector<Crease> creases_;
  double forehead_y_ = 0;
};

}  // namespace tracecast::scan
