// A synthetic closed head with ears, defined implicitly, for the full-head mask and the ear
// prosthesis: its ground truth is exact (the field itself), and either ear can be left off so
// that a restored ear can be compared with the one removed.
//
// Frame: x towards the head's left, y up, z forward (the face frame's axes); the origin is the
// centre of the head at the ears' height. Millimetres.
#pragma once

#include <string>
#include <vector>

#include "tracecast/mesh/mesh.h"
#include "tracecast/mesh/options.h"

namespace tracecast::scan {

struct HeadParams {
  double width_mm = 150.0;            //!< the skull's width, ear to ear without the ears
  double length_mm = 195.0;           //!< the skull's length, forehead to the back of the head
  double ear_length_mm = 62.0;        //!< the ear's height, top of the helix to the lobe
  double ear_protrusion_deg = 25.0;   //!< how far the ear stands out from the side of the head
  std::string ears = "both";          //!< both, left, right or none
};

//! A synthetic head to write (`tracecast synth head`).
struct SynthHeadOptions : HeadParams {
  double spacing_mm = 1.0;
};
const OptionTable<SynthHeadOptions>& synth_head_option_table();

class SyntheticHead {
 public:
  explicit SyntheticHead(const HeadParams& params = {});
  //! The field at many points: negative inside the head, about the distance to its surface near it.
  std::vector<double> field(const std::vector<Vec3>& points) const;
  //! Field of one ear alone (side +1: left, −1: right), whether or not the head carries it.
  double ear(const Vec3& p, int side) const;
  //! The closed surface, sampled every `spacing_mm` (marching tetrahedra).
  Mesh mesh(double spacing_mm) const;
  //! The box the head lies in (ears and neck included), with a few millimetres to spare.
  Aabb bounds() const;
  const HeadParams& params() const { return p_; }

 private:
  double skull(const Vec3& p) const;
  double at(const Vec3& p) const;
  HeadParams p_;
};

}  // namespace tracecast::scan
