// Where a face is: its mid-sagittal symmetry plane, a face frame, and landmarks.
//
// The symmetry plane is found by registering the surface onto its own mirror image with a robust
// (Tukey) point-to-plane ICP, starting from each principal plane of the surface and keeping the
// best fit; the robust loss ignores asymmetric areas (a defect, hair, a scan hole). The frame has
// x along the plane's normal (towards the wearer's left), z forward out of the face and y up,
// with the origin at the nose tip. Landmarks come from a frontal depth map of the surface and
// its high-pass residual at two scales (the nose tip protrudes, eye sockets and the lip line
// are hollows); no learned model is involved.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tracecast/mesh/mesh.h"

namespace tracecast {

//! The plane {x : normal·x = offset} (mm), with how well the surface matches its mirror image.
struct SymmetryPlane {
  Vec3 normal = Vec3::UnitX();
  double offset = 0;
  double rms_mm = 0;            //!< RMS distance of mirrored inlier samples to the surface
  double inlier_fraction = 0;   //!< share of mirrored samples within 1 mm of the surface
  Vec3 reflect(const Vec3& p) const { return p - 2.0 * (normal.dot(p) - offset) * normal; }
};
//! {normal, offset_mm, fit_rms_mm, inlier_fraction}.
void to_json(nlohmann::json& j, const SymmetryPlane& p);
void from_json(const nlohmann::json& j, SymmetryPlane& p);

struct SymmetryOptions {
  std::size_t samples = 30000;   //!< area-uniform surface samples used by the fit
  std::uint64_t seed = 1;
};

//! Throws InputError for surfaces too small to fit (fewer than 100 triangles).
SymmetryPlane estimate_symmetry_plane(const Mesh& mesh, const SymmetryOptions& options = {});

//! A right-handed frame: x to the wearer's left (viewer's right), y up, z forward out of the
//! face; origin at the nose tip. Columns of `axes` are x, y, z in input coordinates.
struct FaceFrame {
  Vec3 origin = Vec3::Zero();
  Eigen::Matrix3d axes = Eigen::Matrix3d::Identity();
  Vec3 to_local(const Vec3& p) const { return axes.transpose() * (p - origin); }
  Vec3 to_world(const Vec3& q) const { return origin + axes * q; }
  Vec3 direction_to_local(const Vec3& d) const { return axes.transpose() * d; }
};

//! Landmarks in face-frame coordinates (mm).
struct Landmarks {
  Vec3 nose_tip = Vec3::Zero();
  Vec3 eye_left = Vec3::Zero(), eye_right = Vec3::Zero();            //!< deepest point of each socket
  Vec3 inner_eye_left = Vec3::Zero(), inner_eye_right = Vec3::Zero();  //!< medial end of each socket
  Vec3 mouth_center = Vec3::Zero();
  Vec3 mouth_left = Vec3::Zero(), mouth_right = Vec3::Zero();
  Vec3 chin = Vec3::Zero();
  bool nostrils_found = false;                                      //!< both nostrils seen as hollows
  Vec3 nostril_left = Vec3::Zero(), nostril_right = Vec3::Zero();  //!< deepest point of each (when found)
  double eye_distance() const { return (eye_left - eye_right).norm(); }
};

struct FaceOptions {
  std::optional<Vec3> front;   //!< direction the face looks towards (input coordinates); auto if unset
  std::optional<Vec3> up;      //!< direction towards the top of the head; auto if unset
  SymmetryOptions symmetry;
};

struct FaceAnalysis {
  SymmetryPlane plane;
  FaceFrame frame;
  Landmarks landmarks;
  std::string front_source;    //!< "option", "mean normal" or "landmark search"
  double scale = 1;            //!< the face's size relative to an adult's (face_scale)
};
//! {symmetry_plane, frame, landmarks_mm} (mm, input coordinates for the frame).
void to_json(nlohmann::json& j, const FaceAnalysis& f);
//! The analysis to_json() wrote (a report's `face`), exactly: a later stage reads it instead of
//! analysing the same face again.
void from_json(const nlohmann::json& j, FaceAnalysis& f);

//! A surface whose largest extent is under this is not a life-size face or head (an adult's face
//! from brow to chin alone is about 120 mm) but a miniature: a statuette, or a scan whose unit was
//! read wrong.
constexpr double kLifeSizeMinExtentMm = 130;
//! Crown to chin of an adult head, the size a miniature is measured against.
constexpr double kAdultHeadHeightMm = 220;
//! The face's size relative to an adult's, by which every length of the landmark search and of the
//! presets scales: 1 for a surface whose largest extent is at least kLifeSizeMinExtentMm, else
//! extent / kAdultHeadHeightMm (igea.ply, a 99 mm head: 0.45).
double face_scale(const Mesh& mesh);

//! Throws ProcessingError when no face can be found (no nose-and-eyes arrangement in any
//! direction), naming the option that fixes it (--front).
FaceAnalysis analyze_face(const Mesh& mesh, const FaceOptions& options = {});

//! A frontal depth map of a mesh in a face frame: z (forward) of the front-most surface facing
//! the viewer, per square pixel; NaN where none projects.
struct DepthMap {
  double x0 = 0, y0 = 0, pixel = 1;  //!< centre of pixel (0,0) and pixel size, mm
  int width = 0, height = 0;
  std::vector<double> z;
  double at(int i, int j) const { return z[static_cast<std::size_t>(j) * width + i]; }
  //! Bilinear sample; NaN outside or next to missing pixels.
  double sample(double x, double y) const;
};
DepthMap depth_map(const Mesh& mesh, const FaceFrame& frame, double pixel_mm);

//! Area-uniform random points on a mesh, with the normals of the triangles they lie on.
PointCloud sample_surface(const Mesh& mesh, std::size_t count, std::uint64_t seed);

//! Area-weighted vertex normals (unit; zero for vertices no triangle uses).
std::vector<Vec3> vertex_normals(const Mesh& mesh);

}  // namespace tracecast
