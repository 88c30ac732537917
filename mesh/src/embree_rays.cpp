// Ray casting with Embree, called directly. Embree finds the triangle each ray meets first, in
// single precision about the mesh's centre; the distance is then recomputed in double precision on
// that triangle's plane, so callers get the same answers as an exact caster to about 1e-12 mm.
#include <embree3/rtcore.h>
#include <tbb/parallel_for.h>

#include <cmath>
#include <limits>
#include <string>

#include "ray_cast.h"
#include "tracecast/mesh/errors.h"

namespace tracecast::detail {
namespace {

// One Embree device for the process: creating one starts its thread pool.
RTCDevice device() {
  static const RTCDevice dev = [] {
    RTCDevice d = rtcNewDevice(nullptr);
    if (!d) throw ProcessingError("ray casting: Embree could not start (error " + std::to_string(rtcGetDeviceError(nullptr)) + ")");
    return d;
  }();
  return dev;
}

}  // namespace

struct RayCaster::Impl {
  RTCScene scene = nullptr;
  Vec3 centre = Vec3::Zero();
  const Mesh* mesh = nullptr;
  std::vector<std::uint32_t> source;  // Embree primitive -> triangle index in the input mesh
  ~Impl() {
    if (scene) rtcReleaseScene(scene);
  }
};

RayCaster::RayCaster(const Mesh& mesh) : impl_(std::make_unique<Impl>()) {
  impl_->mesh = &mesh;
  if (mesh.vertices.empty()) return;
  const Aabb box = bounding_box(mesh);
  impl_->centre = 0.5 * (box.min + box.max);
  std::vector<std::uint32_t> idx;
  idx.reserve(3 * mesh.triangles.size());
  for (std::size_t f = 0; f < mesh.triangles.size(); ++f) {
    const Tri& t = mesh.triangles[f];
    const Vec3 &a = mesh.vertices[t[0]], &b = mesh.vertices[t[1]], &c = mesh.vertices[t[2]];
    if (!((b - a).cross(c - a).squaredNorm() > 0)) continue;  // no area: no plane to meet
    for (std::int32_t k : t) idx.push_back(static_cast<std::uint32_t>(k));
    impl_->source.push_back(static_cast<std::uint32_t>(f));
  }
  if (impl_->source.empty()) return;
  RTCDevice dev = device();
  impl_->scene = rtcNewScene(dev);
  rtcSetSceneFlags(impl_->scene, RTC_SCENE_FLAG_ROBUST);
  RTCGeometry g = rtcNewGeometry(dev, RTC_GEOMETRY_TYPE_TRIANGLE);
  auto* v = static_cast<float*>(rtcSetNewGeometryBuffer(g, RTC_BUFFER_TYPE_VERTEX, 0, RTC_FORMAT_FLOAT3, 3 * sizeof(float), mesh.vertices.size()));
  auto* ix = static_cast<std::uint32_t*>(rtcSetNewGeometryBuffer(g, RTC_BUFFER_TYPE_INDEX, 0, RTC_FORMAT_UINT3, 3 * sizeof(std::uint32_t), impl_->source.size()));
  if (!v || !ix) throw ProcessingError("ray casting: Embree could not allocate the mesh's buffers");
  for (std::size_t i = 0; i < mesh.vertices.size(); ++i)
    for (int k = 0; k < 3; ++k) v[3 * i + k] = static_cast<float>(mesh.vertices[i][k] - impl_->centre[k]);
  std::copy(idx.begin(), idx.end(), ix);
  rtcCommitGeometry(g);
  rtcAttachGeometry(impl_->scene, g);
  rtcReleaseGeometry(g);
  rtcCommitScene(impl_->scene);
}

RayCaster::~RayCaster() = default;

std::vector<RayHit> RayCaster::cast(const std::vector<Vec3>& origins, const std::vector<Vec3>& directions) const {
  std::vector<RayHit> out(origins.size());
  if (!impl_->scene) return out;
  const Mesh& m = *impl_->mesh;
  tbb::parallel_for(tbb::blocked_range<std::size_t>(0, origins.size(), 1024), [&](const auto& range) {
    RTCIntersectContext ctx;
    rtcInitIntersectContext(&ctx);
    for (std::size_t i = range.begin(); i != range.end(); ++i) {
      const Vec3 o = origins[i] - impl_->centre;
      const Vec3& d = directions[i];
      RTCRayHit rh{};
      rh.ray.org_x = static_cast<float>(o.x()), rh.ray.org_y = static_cast<float>(o.y()), rh.ray.org_z = static_cast<float>(o.z());
      rh.ray.dir_x = static_cast<float>(d.x()), rh.ray.dir_y = static_cast<float>(d.y()), rh.ray.dir_z = static_cast<float>(d.z());
      rh.ray.tnear = 0.0f;
      rh.ray.tfar = std::numeric_limits<float>::infinity();
      rh.ray.mask = 0xFFFFFFFFu;
      rh.hit.geomID = RTC_INVALID_GEOMETRY_ID;
      rh.hit.instID[0] = RTC_INVALID_GEOMETRY_ID;
      rtcIntersect1(impl_->scene, &ctx, &rh);
      if (rh.hit.geomID == RTC_INVALID_GEOMETRY_ID) continue;
      const std::uint32_t f = impl_->source[rh.hit.primID];
      const Tri& t = m.triangles[f];
      const Vec3 &a = m.vertices[t[0]], &b = m.vertices[t[1]], &c = m.vertices[t[2]];
      const Vec3 n = (b - a).cross(c - a);
      const double nd = n.dot(d);
      RayHit& h = out[i];
      h.hit = true;
      // In double precision on the triangle's plane; a ray along the plane keeps Embree's figure.
      const double exact = nd != 0 ? n.dot(a - origins[i]) / nd : std::numeric_limits<double>::quiet_NaN();
      h.t = std::isfinite(exact) && std::abs(exact - rh.ray.tfar) < 1e-3 * (1 + std::abs(exact)) ? std::max(0.0, exact) : rh.ray.tfar;
      h.triangle = f;
      h.normal = n.normalized();
    }
  });
  return out;
}

}  // namespace tracecast::detail
