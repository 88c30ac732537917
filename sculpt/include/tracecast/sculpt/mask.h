// The full-head mask: a pull-over piece whose inner surface is the wearer's head and whose outer
// surface is a likeness (another person's scan, aligned and scaled to the wearer by their faces'
// landmarks) or, without one, the wearer's own head offset by a thickness. Wherever the likeness
// would come closer to the wearer than the minimum thickness it is pushed out, and the report says
// where and by how much. Openings at the wearer's eyes, nostrils and mouth (the appliance's
// outlines), and a neck edge below the chin.
//
// The solid is the zero level of a field on a grid, as for the ear (mesh/level_set.h): closed,
// manifold and free of crossings by construction, and checked.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "tracecast/mesh/face.h"
#include "tracecast/mesh/mesh.h"
#include "tracecast/mesh/options.h"
#include "tracecast/mesh/step_timer.h"
#include "tracecast/sculpt/solid.h"

namespace tracecast::sculpt {

struct MaskOptions {
  double thickness_mm = 2.5;        //!< without a likeness: the wearer's head offset by this much
  double min_thickness_mm = 1.5;    //!< nowhere thinner (a likeness closer than this is pushed out)
  double fit_mm = 0.0;              //!< the inner surface this far outside the wearer's head (negative: tighter)
  double eye_margin_mm = 3.0;       //!< eye openings this much larger than the appliance's eye outline
  double nostril_margin_mm = 1.0;
  double mouth_margin_mm = 4.0;     //!< past the mouth corners: a cut ending in their crease leaves a ragged edge
  double neck_mm = 50.0;            //!< the neck edge this far below the chin
  std::string neck_edge = "square";  //!< square (cut through the wall) or rolled (ending in a round lip)
  double neck_lip_mm = 5.0;         //!< rolled: the lip's diameter (its inside on the fit surface, bulging outwards)
  double resolution_mm = 1.0;       //!< the grid's step
  FaceOptions face;                 //!< the wearer's face frame hints
};
const OptionTable<MaskOptions>& mask_option_table();

struct MaskReport {
  FaceAnalysis wearer;
  bool likeness = false;
  double likeness_scale = 1;        //!< the likeness scaled by this to the wearer's landmarks
  Eigen::Matrix4d likeness_to_wearer = Eigen::Matrix4d::Identity();  //!< the similarity that places it (input coordinates)
  double likeness_fit_rms_mm = 0;   //!< RMS of its landmarks from the wearer's after alignment
  double pushed_area_mm2 = 0;       //!< likeness surface pushed out to the minimum thickness
  double pushed_max_mm = 0;         //!< by how much at most
  Vec3 pushed_most_at = Vec3::Zero();  //!< where (the wearer's face frame, mm)
  SolidFigures solid;               //!< a shell with a neck edge and n openings has genus n
  Timings timings;
};
void to_json(nlohmann::json& j, const MaskReport& r);

//! The mask for `wearer` (a closed head), carrying `likeness` (a closed head or face scan) if given.
//! Throws InputError if the wearer's head is not closed, ProcessingError if a face is not found or
//! the result fails its checks.
Mesh make_mask(const Mesh& wearer, const Mesh* likeness, const MaskOptions& o, MaskReport* report = nullptr);

}  // namespace tracecast::sculpt
