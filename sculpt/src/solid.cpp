// The sculpted pieces' checks (see solid.h).
#include "tracecast/sculpt/solid.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/report_json.h"

namespace tracecast::sculpt {

SolidFigures check_solid(const Mesh& m, const std::string& what) {
  MeasureOptions mo;
  mo.self_intersections = false;
  const MeshInfo info = measure(m, mo);
  SolidFigures s;
  s.closed = info.watertight;
  s.manifold = info.edge_manifold && info.vertex_manifold;
  s.volume_ml = info.volume_mm3 ? *info.volume_mm3 / 1000.0 : 0.0;
  s.genus = info.genus;
  s.self_intersections = count_self_intersections(m);
  s.faces = m.triangles.size();
  s.bounds = bounding_box(m);
  if (!s.closed || !s.manifold || s.self_intersections || !(s.volume_ml > 0))
    throw ProcessingError(fmt::format("the {} failed its checks (closed {}, manifold {}, {} crossing face pairs, {:.2f} ml); try another --resolution",
                                      what, s.closed, s.manifold, s.self_intersections, s.volume_ml));
  return s;
}

void require_closed(const Mesh& m, const std::string& what) {
  MeasureOptions mo;
  mo.self_intersections = false;
  if (!measure(m, mo).watertight)
    throw InputError(fmt::format("the {} must be a closed surface (its inside and outside are compared): run 'tracecast repair' first", what));
}

void to_json(nlohmann::json& j, const SolidFigures& s) {
  j = {{"closed", s.closed},
       {"manifold", s.manifold},
       {"self_intersections", s.self_intersections},
       {"genus", s.genus ? nlohmann::json(*s.genus) : nlohmann::json(nullptr)},
       {"volume_ml", s.volume_ml},
       {"faces", s.faces},
       {"size_mm", vec_json(s.bounds.extent())}};
}

}  // namespace tracecast::sculpt
