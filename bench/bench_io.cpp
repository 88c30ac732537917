// Reading speed of tracecast's readers against Open3D's and Assimp's on the same files, in the
// same run. Prints the median of several reads per reader and the ratio peer / tracecast.
//
//   build/bench/bench_io [SCANS_DIR]      (default: ../shared/scans beside the project)
#include <assimp/Importer.hpp>
#include <assimp/postprocess.h>
#include <assimp/scene.h>
#include <fmt/format.h>
#include <open3d/io/TriangleMeshIO.h>
#include <open3d/utility/Logging.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <vector>

#include "tracecast/mesh/io.h"
#include "tracecast/scan/synthetic_face.h"

namespace fs = std::filesystem;
using namespace tracecast;

namespace {

//! Median wall time (ms) of `runs` calls; nullopt when the reader fails.
std::optional<double> time_ms(const std::function<bool()>& read, int runs) {
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto a = std::chrono::steady_clock::now();
    if (!read()) return std::nullopt;
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::string cell(const std::optional<double>& v) { return v ? fmt::format("{:9.1f}", *v) : fmt::format("{:>9}", "fails"); }
std::string ratio(const std::optional<double>& peer, const std::optional<double>& ours) {
  return peer && ours ? fmt::format("{:6.2f}x", *peer / *ours) : fmt::format("{:>7}", "-");
}

}  // namespace

int main(int argc, char** argv) {
  open3d::utility::SetVerbosityLevel(open3d::utility::VerbosityLevel::Error);
  const fs::path scans = argc > 1 ? fs::path(argv[1]) : fs::path(TRACECAST_SOURCE_DIR) / ".." / "shared" / "scans";
  const fs::path tmp = fs::temp_directory_path() / "tracecast-bench-io";
  fs::create_directories(tmp);

  std::vector<fs::path> files;
  for (const char* f : {"nefertiti.obj", "igea.ply", "face.obj", "decimated-max.obj"})
    if (fs::exists(scans / f)) files.push_back(scans / f);
  // A dense generated face (≈ 0.25 mm grid: about 400 k vertices) in each written format.
  const Mesh dense = scan::SyntheticFace().mesh(0.25);
  for (const char* ext : {".ply", ".stl", ".obj", ".3mf", ".glb"}) {
    io::write_mesh(tmp / (std::string("dense-face") + ext), dense);
    files.push_back(tmp / (std::string("dense-face") + ext));
  }

  const int runs = 5;
  fmt::print("Median of {} reads (ms), Release; ratio = peer time / tracecast time (>1: tracecast faster)\n", runs);
  fmt::print("{:<22} {:>10} {:>10} | {:>9} {:>9} {:>9} | {:>7} {:>7}\n", "file", "MB", "faces", "tracecast", "Open3D",
             "Assimp", "Open3D", "Assimp");
  for (const fs::path& f : files) {
    std::size_t faces = 0;
    const auto ours = time_ms(
        [&] {
          try {
            faces = io::read_mesh(f).mesh.triangles.size();
            return true;
          } catch (const std::exception&) {
            return false;
          }
        },
        runs);
    const auto o3d = time_ms(
        [&] {
          open3d::geometry::TriangleMesh m;
          open3d::io::ReadTriangleMeshOptions o;
          return open3d::io::ReadTriangleMesh(f.string(), m, o) && !m.triangles_.empty();
        },
        runs);
    const auto assimp = time_ms(
        [&] {
          Assimp::Importer imp;
          const aiScene* s = imp.ReadFile(f.string(), aiProcess_Triangulate);
          return s && s->mNumMeshes > 0;
        },
        runs);
    fmt::print("{:<22} {:>10.1f} {:>10} | {} {} {} | {} {}\n", f.filename().string(),
               static_cast<double>(fs::file_size(f)) / 1e6, faces, cell(ours), cell(o3d), cell(assimp), ratio(o3d, ours),
               ratio(assimp, ours));
  }
  fs::remove_all(tmp);
  return 0;
}
