// Conversions between tracecast's types and Open3D's (for reconstruction, registration and
// other Open3D algorithms). Open3D's headers stay out of this header; include them where the
// Open3D objects are used.
#pragma once

#include <memory>

#include "tracecast/mesh/mesh.h"

namespace open3d::geometry {
class TriangleMesh;
class PointCloud;
}  // namespace open3d::geometry

namespace tracecast {

std::shared_ptr<open3d::geometry::TriangleMesh> to_open3d(const Mesh& mesh);
std::shared_ptr<open3d::geometry::PointCloud> to_open3d(const PointCloud& cloud);
//! Copies vertices, triangles, vertex normals and colours; throws InputError on bad indices.
Mesh from_open3d(const open3d::geometry::TriangleMesh& mesh);
PointCloud from_open3d(const open3d::geometry::PointCloud& cloud);

//! While alive, Open3D's OpenMP loops run on one thread: its RANSAC draws from one generator
//! shared by its threads and its ICP sums in thread order, so one thread makes their results a
//! function of the input and the seed alone.
//! Open3D's process-wide settings, made once, on the first call, in this one place: its own
//! console output is off (Error only) unless the application's log sink takes Debug messages
//! (tracecast/mesh/log.h). Every function that calls Open3D calls this first.
void open3d_ready();

class OpenMPSingleThread {
 public:
  OpenMPSingleThread();
  ~OpenMPSingleThread();
  OpenMPSingleThread(const OpenMPSingleThread&) = delete;
  OpenMPSingleThread& operator=(const OpenMPSingleThread&) = delete;

 private:
  int before_;
};

}  // namespace tracecast
