// Internal: the appliance's solid on a region of the skin (appliance.h describes the method).
#pragma once

#include <functional>

#include "tracecast/mesh/appliance.h"

namespace tracecast::detail {

//! Positive inside the region (outline minus openings), mm, at a point of the skin.
using RegionField = std::function<double(const Vec3& world)>;
//! The designed full thickness (before feathering) at a point of the face frame's x/y.
using ThicknessMap = std::function<double(const Vec2& xy)>;

//! The closed appliance over the region of `face`: the skin inside the region, the outer
//! surface at the designed thickness (or the sculpt), feathered to the rim; `r` gets every
//! figure of the report but the face analysis (already there). `cache` (optional) holds the
//! region's cut skin under `patch_key`, what the field and the cut depend on.
Mesh build_solid(const Mesh& face, const RegionField& field, const ThicknessMap& thickness, const ApplianceSpec& spec,
                 const Mesh* sculpt, ApplianceReport& r, ApplianceCache* cache = nullptr, const std::string& patch_key = {});

}  // namespace tracecast::detail
