// The checks every sculpted piece passes before it is written (ear, mask), and their figures.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "tracecast/mesh/mesh.h"

namespace tracecast::sculpt {

struct SolidFigures {
  bool closed = false, manifold = false;
  std::size_t self_intersections = 0;
  std::optional<int> genus;     //!< the number of handles (openings through a shell)
  double volume_ml = 0;
  std::size_t faces = 0;
  Aabb bounds;
};
//! {closed, manifold, self_intersections, genus, volume_ml, faces, size_mm}.
void to_json(nlohmann::json& j, const SolidFigures& s);

//! Measures `m` and throws ProcessingError naming `what` unless it is closed, manifold, free of
//! crossing faces (exact predicates) and of positive volume.
SolidFigures check_solid(const Mesh& m, const std::string& what);

//! Throws InputError naming `what` unless `m` is closed: an inside is needed (signed distances).
void require_closed(const Mesh& m, const std::string& what);

}  // namespace tracecast::sculpt
