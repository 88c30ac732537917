// Keeping part of a mesh: the faces chosen, with only the vertices they use (first-use order).
#pragma once

#include <cstdint>
#include <map>
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

//! Connected pieces of the faces (faces sharing a vertex are in the same piece): per face, the
//! index of the first face of its piece, so labels do not depend on traversal order.
inline std::vector<std::size_t> face_components(const Mesh& m) {
  std::vector<std::int32_t> parent(m.vertices.size());
  for (std::size_t i = 0; i < parent.size(); ++i) parent[i] = static_cast<std::int32_t>(i);
  auto find = [&](std::int32_t x) {
    while (parent[static_cast<std::size_t>(x)] != x)
      x = parent[static_cast<std::size_t>(x)] = parent[static_cast<std::size_t>(parent[static_cast<std::size_t>(x)])];
    return x;
  };
  for (const Tri& t : m.triangles) {
    parent[static_cast<std::size_t>(find(t[1]))] = find(t[0]);
    parent[static_cast<std::size_t>(find(t[2]))] = find(t[0]);
  }
  std::vector<std::size_t> first(m.vertices.size(), SIZE_MAX), label(m.triangles.size());
  for (std::size_t f = 0; f < m.triangles.size(); ++f) {
    std::size_t& r = first[static_cast<std::size_t>(find(m.triangles[f][0]))];
    if (r == SIZE_MAX) r = f;
    label[f] = r;
  }
  return label;
}

//! Each connected piece's signed volume (mm³; negative for a void), by its label from
//! face_components().
inline std::map<std::size_t, double> piece_volumes(const Mesh& m, const std::vector<std::size_t>& piece) {
  std::map<std::size_t, double> volume;
  for (std::size_t f = 0; f < m.triangles.size(); ++f) {
    const Tri& t = m.triangles[f];
    volume[piece[f]] += m.vertices[static_cast<std::size_t>(t[0])].dot(
                            m.vertices[static_cast<std::size_t>(t[1])].cross(m.vertices[static_cast<std::size_t>(t[2])])) /
                        6.0;
  }
  return volume;
}

}  // namespace tracecast
