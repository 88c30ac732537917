// Keeping part of a mesh: the faces chosen, with only the vertices they use (first-use order).
#pragma once

#include <vector>

#include "tracecast/mesh/mesh.h"

namespace tracecast {

//! The faces with keep_face[f] != 0 and the vertices they use, renumbered in first-use order;
//! normals and colours follow their vertices.
inline Mesh submesh(const Mesh& m, const std::vector<char>& keep_face) {
  Mesh out;
  std::vector<std::int32_t> remap(m.vertices.size(), -1);
  for (std::size_t f = 0; f < m.triangles.size(); ++f) {
    if (!keep_face[f]) continue;
    Tri t = m.triangles[f];
    for (auto& v : t) {
      auto& r = remap[static_cast<std::size_t>(v)];
      if (r < 0) {
        r = static_cast<std::int32_t>(out.vertices.size());
        out.vertices.push_back(m.vertices[static_cast<std::size_t>(v)]);
        if (m.has_normals()) out.normals.push_back(m.normals[static_cast<std::size_t>(v)]);
        if (m.has_colors()) out.colors.push_back(m.colors[static_cast<std::size_t>(v)]);
      }
      v = r;
    }
    out.triangles.push_back(t);
  }
  return out;
}

}  // namespace tracecast
