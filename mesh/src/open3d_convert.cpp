#include <open3d/geometry/PointCloud.h>
#include <open3d/geometry/TriangleMesh.h>
#include <open3d/utility/Logging.h>

#include "tracecast/mesh/open3d.h"
#include "tracecast/mesh/log.h"
#include "tracecast/mesh/repair.h"

#include <limits>
#include <mutex>

#include <omp.h>

namespace tracecast {

std::shared_ptr<open3d::geometry::TriangleMesh> to_open3d(const Mesh& mesh) {
  auto m = std::make_shared<open3d::geometry::TriangleMesh>();
  m->vertices_ = mesh.vertices;
  m->vertex_normals_ = mesh.normals;
  m->vertex_colors_ = mesh.colors;
  m->triangles_.reserve(mesh.triangles.size());
  for (const Tri& t : mesh.triangles) m->triangles_.emplace_back(t[0], t[1], t[2]);
  return m;
}

std::shared_ptr<open3d::geometry::PointCloud> to_open3d(const PointCloud& cloud) {
  auto c = std::make_shared<open3d::geometry::PointCloud>();
  c->points_ = cloud.points;
  c->normals_ = cloud.normals;
  c->colors_ = cloud.colors;
  return c;
}

Mesh from_open3d(const open3d::geometry::TriangleMesh& in) {
  Mesh m;
  m.vertices = in.vertices_;
  if (in.vertex_normals_.size() == in.vertices_.size()) m.normals = in.vertex_normals_;
  if (in.vertex_colors_.size() == in.vertices_.size()) m.colors = in.vertex_colors_;
  m.triangles.reserve(in.triangles_.size());
  for (const Eigen::Vector3i& t : in.triangles_) m.triangles.push_back({t[0], t[1], t[2]});
  validate(m, "mesh from Open3D");
  return m;
}

PointCloud from_open3d(const open3d::geometry::PointCloud& in) {
  PointCloud c;
  c.points = in.points_;
  if (in.normals_.size() == in.points_.size()) c.normals = in.normals_;
  if (in.colors_.size() == in.points_.size()) c.colors = in.colors_;
  validate(c, "point cloud from Open3D");
  return c;
}

Mesh decimated(const Mesh& mesh, std::size_t faces) {
  if (mesh.triangles.size() <= faces) return mesh;
  auto o3 = to_open3d(mesh)->SimplifyQuadricDecimation(static_cast<int>(faces), std::numeric_limits<double>::infinity(), 1.0);
  Mesh out = from_open3d(*o3);
  out.normals.clear();
  return out;
}

Mesh clustered(const Mesh& mesh, double cell_mm) {
  auto o3 = to_open3d(mesh)->SimplifyVertexClustering(cell_mm, open3d::geometry::MeshBase::SimplificationContraction::Average);
  o3->RemoveDegenerateTriangles();
  o3->RemoveUnreferencedVertices();
  Mesh out = from_open3d(*o3);
  out.normals.clear();
  return out;
}

void open3d_ready() {
  static std::once_flag once;
  std::call_once(once, [] {
    open3d::utility::SetVerbosityLevel(log_enabled(LogLevel::Debug) ? open3d::utility::VerbosityLevel::Debug
                                                                    : open3d::utility::VerbosityLevel::Error);
    // Through the library's log (stderr), never stdout, which carries --json.
    open3d::utility::Logger::GetInstance().SetPrintFunction([](const std::string& line) {
      std::string text = line;
      while (!text.empty() && text.back() == '\n') text.pop_back();
      log_message(LogLevel::Debug, text);
    });
  });
}

OpenMPSingleThread::OpenMPSingleThread() : before_(omp_get_max_threads()) { omp_set_num_threads(1); }
OpenMPSingleThread::~OpenMPSingleThread() { omp_set_num_threads(before_); }

}  // namespace tracecast
