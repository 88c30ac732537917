#include "tracecast/scan/rgbd.h"

#include <fmt/format.h>
#include <open3d/camera/PinholeCameraIntrinsic.h>
#include <open3d/geometry/Image.h>
#include <open3d/geometry/RGBDImage.h>
#include <open3d/geometry/TriangleMesh.h>
#include <open3d/io/ImageIO.h>
#include <open3d/pipelines/integration/ScalableTSDFVolume.h>
#include <open3d/pipelines/odometry/Odometry.h>
#include <open3d/utility/Logging.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/measure.h"
#include "tracecast/mesh/open3d.h"

namespace tracecast::scan {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

double number(const json& j, const char* key, const fs::path& file) {
  if (!j.contains(key) || !j[key].is_number())
    throw InputError(file, fmt::format("manifest: '{}' must be a number", key));
  return j[key].get<double>();
}

std::shared_ptr<open3d::geometry::Image> load_image(const fs::path& p, int w, int h, int channels_expected,
                                                    int bytes_expected) {
  if (!fs::is_regular_file(p)) throw InputError(p, "image not found");
  auto img = std::make_shared<open3d::geometry::Image>();
  if (!open3d::io::ReadImage(p.string(), *img) || img->IsEmpty()) throw InputError(p, "cannot read the image");
  if (img->width_ != w || img->height_ != h)
    throw InputError(p, fmt::format("image is {}×{}, the manifest says {}×{}", img->width_, img->height_, w, h));
  if (channels_expected && (img->num_of_channels_ != channels_expected || img->bytes_per_channel_ != bytes_expected))
    throw InputError(p, fmt::format("depth image must be 16-bit single-channel (it has {} channels of {} bytes)",
                                    img->num_of_channels_, img->bytes_per_channel_));
  return img;
}

}  // namespace

RgbdSequence read_rgbd_manifest(const fs::path& manifest) {
  std::ifstream f(manifest);
  if (!f) throw InputError(manifest, "cannot open the manifest");
  const json j = json::parse(f, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw InputError(manifest, "manifest is not a JSON object");
  RgbdSequence s;
  if (!j.contains("intrinsics") || !j["intrinsics"].is_object()) throw InputError(manifest, "manifest: 'intrinsics' missing");
  const json& in = j["intrinsics"];
  s.width = static_cast<int>(number(in, "width", manifest));
  s.height = static_cast<int>(number(in, "height", manifest));
  s.fx = number(in, "fx", manifest);
  s.fy = number(in, "fy", manifest);
  s.cx = number(in, "cx", manifest);
  s.cy = number(in, "cy", manifest);
  if (s.width <= 0 || s.height <= 0 || s.width > 16384 || s.height > 16384 || !(s.fx > 0) || !(s.fy > 0))
    throw InputError(manifest, "manifest: image size and focal lengths must be positive");
  if (j.contains("depth_units_per_metre")) s.depth_units_per_metre = number(j, "depth_units_per_metre", manifest);
  if (j.contains("depth_max_mm")) s.depth_max_mm = number(j, "depth_max_mm", manifest);
  if (!(s.depth_units_per_metre > 0) || !(s.depth_max_mm > 0))
    throw InputError(manifest, "manifest: depth_units_per_metre and depth_max_mm must be positive");
  if (!j.contains("frames") || !j["frames"].is_array() || j["frames"].empty())
    throw InputError(manifest, "manifest: 'frames' must be a non-empty list");
  const fs::path base = manifest.has_parent_path() ? manifest.parent_path() : fs::path(".");
  for (std::size_t i = 0; i < j["frames"].size(); ++i) {
    const json& fr = j["frames"][i];
    if (!fr.is_object() || !fr.contains("color") || !fr.contains("depth") || !fr["color"].is_string() ||
        !fr["depth"].is_string())
      throw InputError(manifest, fmt::format("manifest: frame {} needs 'color' and 'depth' paths", i));
    RgbdFrame frame{base / fr["color"].get<std::string>(), base / fr["depth"].get<std::string>(), std::nullopt};
    if (fr.contains("pose")) {
      const json& p = fr["pose"];
      if (!p.is_array() || p.size() != 16) throw InputError(manifest, fmt::format("manifest: frame {}'s pose must be 16 numbers", i));
      Eigen::Matrix4d m;
      for (int k = 0; k < 16; ++k) {
        if (!p[static_cast<std::size_t>(k)].is_number())
          throw InputError(manifest, fmt::format("manifest: frame {}'s pose must be 16 numbers", i));
        m(k / 4, k % 4) = p[static_cast<std::size_t>(k)].get<double>();
      }
      if (!m.allFinite()) throw InputError(manifest, fmt::format("manifest: frame {}'s pose is not finite", i));
      frame.pose = m;
    }
    s.frames.push_back(frame);
  }
  return s;
}

Mesh integrate_rgbd(const RgbdSequence& s, const RgbdOptions& o, RgbdReport* report) {
  open3d_ready();
  RgbdReport r;
  auto t0 = std::chrono::steady_clock::now();
  auto lap = [&](const char* step) {
    const auto now = std::chrono::steady_clock::now();
    r.timings.push_back({step, std::chrono::duration<double>(now - t0).count()});
    t0 = now;
  };
  // Depth in mm inside: Open3D divides depth pixels by depth_scale, so scale to mm, not metres.
  const double depth_scale = s.depth_units_per_metre / 1000.0;
  const open3d::camera::PinholeCameraIntrinsic intr(s.width, s.height, s.fx, s.fy, s.cx, s.cy);
  const double trunc = o.truncation_mm > 0 ? o.truncation_mm : 4.0 * o.voxel_mm;
  open3d::pipelines::integration::ScalableTSDFVolume volume(o.voxel_mm, trunc,
                                                            open3d::pipelines::integration::TSDFVolumeColorType::RGB8);
  std::shared_ptr<open3d::geometry::RGBDImage> previous_gray;
  Eigen::Matrix4d previous_pose = Eigen::Matrix4d::Identity();
  for (std::size_t i = 0; i < s.frames.size(); ++i) {
    const RgbdFrame& f = s.frames[i];
    const auto color = load_image(f.color, s.width, s.height, 0, 0);
    const auto depth = load_image(f.depth, s.width, s.height, 1, 2);
    const auto rgbd = open3d::geometry::RGBDImage::CreateFromColorAndDepth(*color, *depth, depth_scale, s.depth_max_mm, false);
    const auto gray = open3d::geometry::RGBDImage::CreateFromColorAndDepth(*color, *depth, depth_scale, s.depth_max_mm, true);
    Eigen::Matrix4d pose;
    if (f.pose) {
      pose = *f.pose;
      ++r.posed_frames;
    } else if (!previous_gray) {
      pose = Eigen::Matrix4d::Identity();  // the first frame defines the frame of the result
    } else {
      const open3d::pipelines::odometry::OdometryOption option({20, 10, 5}, 10.0 * o.voxel_mm, 1.0, s.depth_max_mm);
      const auto [ok, T, info] = open3d::pipelines::odometry::ComputeRGBDOdometry(
          *gray, *previous_gray, intr, Eigen::Matrix4d::Identity(),
          open3d::pipelines::odometry::RGBDOdometryJacobianFromHybridTerm(), option);
      (void)info;
      if (!ok)
        throw ProcessingError(fmt::format("{}: frame {} could not be placed by odometry (too little overlap with the "
                                          "previous frame); give the frames poses in the manifest",
                                          f.depth.string(), i));
      pose = previous_pose * T;  // T: this camera → previous camera
      ++r.odometry_frames;
    }
    volume.Integrate(*rgbd, intr, pose.inverse());
    previous_gray = gray;
    previous_pose = pose;
    ++r.frames;
  }
  lap("integration");
  auto m = volume.ExtractTriangleMesh();
  m->RemoveDuplicatedVertices();
  m->RemoveDegenerateTriangles();
  m->RemoveUnreferencedVertices();
  if (m->triangles_.empty()) throw ProcessingError("the RGB-D frames produced no surface (is depth_max_mm too small?)");
  {  // stray pieces: keep those of at least 5 % of the largest
    auto [cluster_of, sizes, areas] = m->ClusterConnectedTriangles();
    (void)areas;
    const std::size_t largest = *std::max_element(sizes.begin(), sizes.end());
    std::vector<bool> remove(m->triangles_.size());
    for (std::size_t t = 0; t < remove.size(); ++t) remove[t] = sizes[static_cast<std::size_t>(cluster_of[t])] * 20 < largest;
    m->RemoveTrianglesByMask(remove);
    m->RemoveUnreferencedVertices();
  }
  lap("extraction");
  Mesh out;
  out.vertices = m->vertices_;
  if (m->vertex_colors_.size() == m->vertices_.size()) out.colors = m->vertex_colors_;
  for (const Eigen::Vector3i& t : m->triangles_) out.triangles.push_back({t[0], t[1], t[2]});
  const MeshInfo info = measure(out, {false});
  r.vertices = out.vertices.size();
  r.faces = out.triangles.size();
  r.area_mm2 = info.area_mm2;
  r.boundary_loops = info.boundary_loops;
  if (report) *report = r;
  return out;
}

fs::path write_simulated_rgbd(const Mesh& truth, const fs::path& folder, const RgbdSimOptions& o) {
  throw_problems("synth rgbd", rgbd_sim_option_table().check(o));
  const int frames = o.frames;
  const double sweep_deg = o.sweep_deg, distance_mm = o.distance_mm, noise_mm = o.noise_mm;
  const bool with_poses = o.poses;
  const std::uint64_t seed = o.seed;
  const int w = 640, h = 480;
  const double fx = 600, fy = 600, cx = 319.5, cy = 239.5;
  const double units_per_metre = 10000.0;  // 0.1 mm depth steps
  fs::create_directories(folder);
  const SurfaceQuery query(truth);
  const Aabb box = bounding_box(truth);
  const Vec3 centre = 0.5 * (box.min + box.max);
  std::uint64_t state = seed;
  auto uniform = [&] {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  };
  auto gaussian = [&] { return std::sqrt(-2.0 * std::log(1.0 - uniform())) * std::cos(2 * 3.14159265358979 * uniform()); };
  json manifest = {{"intrinsics", {{"width", w}, {"height", h}, {"fx", fx}, {"fy", fy}, {"cx", cx}, {"cy", cy}}},
                   {"depth_units_per_metre", units_per_metre},
                   {"depth_max_mm", 800.0},
                   {"frames", json::array()}};
  const Vec3 light = Vec3(0.3, 0.5, 1).normalized();
  for (int k = 0; k < frames; ++k) {
    const double yaw = (frames > 1 ? -0.5 + double(k) / (frames - 1) : 0.0) * sweep_deg * 3.14159265358979 / 180.0;
    const double pitch = 0.15 * std::sin(2.0 * 3.14159265358979 * k / std::max(frames, 1));  // a little up and down
    const Vec3 eye = centre + distance_mm * Vec3(std::sin(yaw) * std::cos(pitch), std::sin(pitch), std::cos(yaw) * std::cos(pitch));
    const Vec3 z = (centre - eye).normalized();
    const Vec3 y = (z.cross(Vec3::UnitY()).cross(z)).normalized() * -1.0;  // image down
    const Vec3 x = y.cross(z);
    Eigen::Matrix4d pose = Eigen::Matrix4d::Identity();
    pose.block<3, 1>(0, 0) = x;
    pose.block<3, 1>(0, 1) = y;
    pose.block<3, 1>(0, 2) = z;
    pose.block<3, 1>(0, 3) = eye;
    std::vector<Vec3> origins(static_cast<std::size_t>(w * h), eye), dirs(static_cast<std::size_t>(w * h));
    for (int v = 0; v < h; ++v)
      for (int u = 0; u < w; ++u) dirs[static_cast<std::size_t>(v * w + u)] = (x * ((u - cx) / fx) + y * ((v - cy) / fy) + z).normalized();
    const std::vector<RayHit> hits = query.cast(origins, dirs);
    open3d::geometry::Image depth, color;
    depth.Prepare(w, h, 1, 2);
    color.Prepare(w, h, 3, 1);
    for (int i = 0; i < w * h; ++i) {
      const RayHit& hit = hits[static_cast<std::size_t>(i)];
      std::uint16_t d = 0;
      unsigned char g = 0;
      if (hit.hit) {
        const double zmm = hit.t * dirs[static_cast<std::size_t>(i)].dot(z) + noise_mm * gaussian();
        d = static_cast<std::uint16_t>(std::clamp(std::lround(zmm * units_per_metre / 1000.0), 0L, 65535L));
        g = static_cast<unsigned char>(std::clamp(40.0 + 200.0 * std::abs(hit.normal.dot(light)), 0.0, 255.0));
      }
      std::memcpy(depth.data_.data() + 2 * i, &d, 2);
      for (int c = 0; c < 3; ++c) color.data_[static_cast<std::size_t>(3 * i + c)] = g;
    }
    const std::string cname = fmt::format("color/{:04d}.png", k), dname = fmt::format("depth/{:04d}.png", k);
    fs::create_directories(folder / "color");
    fs::create_directories(folder / "depth");
    if (!open3d::io::WriteImage((folder / cname).string(), color) || !open3d::io::WriteImage((folder / dname).string(), depth))
      throw ProcessingError((folder / dname).string() + ": cannot write the image");
    json frame = {{"color", cname}, {"depth", dname}};
    if (with_poses) {
      json p = json::array();
      for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) p.push_back(pose(r, c));
      frame["pose"] = p;
    }
    manifest["frames"].push_back(frame);
  }
  const fs::path path = folder / "sequence.json";
  write_file_atomically(path, manifest.dump(2) + "\n");
  return path;
}

}  // namespace tracecast::scan
