#include "tracecast/scan/register.h"

#include <fmt/format.h>
#include <open3d/geometry/KDTreeFlann.h>
#include <open3d/geometry/PointCloud.h>
#include <open3d/pipelines/registration/CorrespondenceChecker.h>
#include <open3d/pipelines/registration/Feature.h>
#include <open3d/pipelines/registration/GlobalOptimization.h>
#include <open3d/pipelines/registration/PoseGraph.h>
#include <open3d/pipelines/registration/Registration.h>
#include <open3d/utility/Logging.h>
#include <open3d/utility/Random.h>

#include <omp.h>

#include <algorithm>
#include <queue>

#include "normals.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/mesh/open3d.h"

namespace tracecast::scan {

namespace {

namespace reg = open3d::pipelines::registration;
using O3Cloud = open3d::geometry::PointCloud;

struct Prepared {
  std::shared_ptr<O3Cloud> fine, coarse;
  std::shared_ptr<reg::Feature> features;
};

//! Point-to-plane residual RMS and overlap of `source` moved by T onto `target` (which has
//! normals): for a true overlap the residual is the scanner's noise, for a false match (one cheek
//! fitted onto the other) it is much larger, while point-to-point figures are dominated by the
//! sampling and barely tell them apart.
std::pair<double, double> plane_fit(const O3Cloud& source, const O3Cloud& target, const Eigen::Matrix4d& T,
                                    double max_distance) {
  open3d::geometry::KDTreeFlann tree(target);
  std::vector<int> idx(1);
  std::vector<double> d2(1);
  double sq = 0;
  std::size_t n = 0;
  for (const Vec3& p0 : source.points_) {
    const Vec3 p = T.topLeftCorner<3, 3>() * p0 + T.topRightCorner<3, 1>();
    if (tree.SearchKNN(p, 1, idx, d2) < 1 || d2[0] > max_distance * max_distance) continue;
    const double r = target.normals_[static_cast<std::size_t>(idx[0])].dot(p - target.points_[static_cast<std::size_t>(idx[0])]);
    sq += r * r;
    ++n;
  }
  return {n ? std::sqrt(sq / n) : std::numeric_limits<double>::infinity(), double(n) / std::max<std::size_t>(1, source.points_.size())};
}

//! A view's own point-to-plane residual between neighbouring points: its noise, as the overlap
//! of a true match will show it.
double self_plane_rms(const O3Cloud& c) {
  open3d::geometry::KDTreeFlann tree(c);
  std::vector<int> idx(2);
  std::vector<double> d2(2);
  double sq = 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < c.points_.size(); ++i) {
    if (tree.SearchKNN(c.points_[i], 2, idx, d2) < 2) continue;
    const auto j = static_cast<std::size_t>(idx[1]);
    const double r = c.normals_[j].dot(c.points_[i] - c.points_[j]);
    sq += r * r;
    ++n;
  }
  return n ? std::sqrt(sq / n) : 0.0;
}

double median_spacing(const O3Cloud& c) {
  std::vector<double> d = c.ComputeNearestNeighborDistance();
  std::nth_element(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(d.size() / 2), d.end());
  return d[d.size() / 2];
}

//! One registered pair: source s onto target t.
struct Edge {
  std::size_t s, t;
  Eigen::Matrix4d T;  // s → t
  double fitness;
  double plane_rms;
  std::size_t pair;  // index in Registration::pairs
};

//! The views without their statistical outliers; `spacing` is the median of their point spacings.
std::vector<std::shared_ptr<O3Cloud>> clean_views(const std::vector<PointCloud>& views, double& spacing) {
  std::vector<std::shared_ptr<O3Cloud>> clean;
  std::vector<double> spacings;
  for (std::size_t i = 0; i < views.size(); ++i) {
    if (views[i].size() < 100) throw InputError(fmt::format("view {} has only {} points", i + 1, views[i].size()));
    validate(views[i], fmt::format("view {}", i + 1));
    auto c = to_open3d(views[i]);
    c = std::get<0>(c->RemoveStatisticalOutliers(20, 2.5));
    spacings.push_back(median_spacing(*c));
    clean.push_back(c);
  }
  std::sort(spacings.begin(), spacings.end());
  spacing = spacings[spacings.size() / 2];
  return clean;
}

//! A view at the fine and the coarse (feature) voxel, with normals, FPFH features on the coarse
//! one, and each one's own plane residual (its noise).
Prepared prepare_view(const std::shared_ptr<O3Cloud>& clean, double fine_voxel, double v, double& self_rms, double& self_rms_coarse) {
  Prepared p;
  p.fine = clean->VoxelDownSample(fine_voxel);
  p.coarse = clean->VoxelDownSample(v);
  for (auto* c : {p.fine.get(), p.coarse.get()}) {
    c->normals_.clear();
    c->EstimateNormals(open3d::geometry::KDTreeSearchParamHybrid(c == p.fine.get() ? 4 * fine_voxel : 2 * v, 30));
    detail::orient_normals(*c);
  }
  self_rms = self_plane_rms(*p.fine);
  self_rms_coarse = self_plane_rms(*p.coarse);
  p.features = reg::ComputeFPFHFeature(*p.coarse, open3d::geometry::KDTreeSearchParamHybrid(5 * v, 100));
  return p;
}

//! The best coarse alignment of s onto t over several attempts (RANSAC on a smooth, nearly
//! symmetric face can miss the true one; different seeds, with and without mutual matching),
//! judged against `plausible_coarse`: a true overlap fits as well as each view fits itself.
Eigen::Matrix4d coarse_alignment(const Prepared& ps, const Prepared& pt, std::size_t s, std::size_t t, std::size_t n_views, double v,
                                 double plausible_coarse, const RegistrationOptions& o) {
  double best_rms = std::numeric_limits<double>::infinity(), best_overlap = 0;
  Eigen::Matrix4d best_T = Eigen::Matrix4d::Identity();
  for (int attempt = 0; attempt < o.attempts; ++attempt) {
    open3d::utility::random::Seed(static_cast<int>((o.seed * 7919 + 131 * (s * n_views + t) + attempt) & 0x7fffffff));
    const reg::CorrespondenceCheckerBasedOnEdgeLength by_length(0.9);
    const reg::CorrespondenceCheckerBasedOnDistance by_distance(1.5 * v);
    const auto global = reg::RegistrationRANSACBasedOnFeatureMatching(
        *ps.coarse, *pt.coarse, *ps.features, *pt.features, attempt % 2 == 0, 1.5 * v, reg::TransformationEstimationPointToPoint(false), 3,
        {by_length, by_distance}, reg::RANSACConvergenceCriteria(o.ransac_iterations, 0.9999));
    const auto coarse = reg::RegistrationICP(*ps.coarse, *pt.coarse, 1.5 * v, global.transformation_, reg::TransformationEstimationPointToPlane(),
                                             reg::ICPConvergenceCriteria(1e-7, 1e-7, 60));
    const auto [rms, overlap] = plane_fit(*ps.coarse, *pt.coarse, coarse.transformation_, v);
    const bool ok = overlap >= o.min_fitness && rms <= plausible_coarse;
    const bool best_ok = best_overlap >= o.min_fitness && best_rms <= plausible_coarse;
    if ((ok && (!best_ok || rms < best_rms)) || (!best_ok && !ok && overlap > best_overlap)) {
      best_rms = rms;
      best_overlap = overlap;
      best_T = coarse.transformation_;
    }
    if (ok) break;
  }
  return best_T;
}

//! Initial poses along the spanning tree of the best-fitting pairs (lowest plane residual), from
//! view 0; `in_tree` marks the edges used.
std::vector<Eigen::Matrix4d> spanning_tree_poses(const std::vector<Edge>& edges, std::size_t n, std::vector<char>& placed, std::vector<char>& in_tree) {
  std::vector<Eigen::Matrix4d> pose(n, Eigen::Matrix4d::Identity());
  placed.assign(n, 0);
  in_tree.assign(edges.size(), 0);
  placed[0] = 1;
  for (std::size_t added = 1; added < n; ++added) {
    std::ptrdiff_t best = -1;
    for (std::size_t k = 0; k < edges.size(); ++k)
      if (placed[edges[k].s] != placed[edges[k].t] && (best < 0 || edges[k].plane_rms < edges[static_cast<std::size_t>(best)].plane_rms))
        best = static_cast<std::ptrdiff_t>(k);
    if (best < 0) break;
    const Edge& e = edges[static_cast<std::size_t>(best)];
    in_tree[static_cast<std::size_t>(best)] = 1;
    if (placed[e.t]) {
      pose[e.s] = pose[e.t] * e.T;  // s → t → world
      placed[e.s] = 1;
    } else {
      pose[e.t] = pose[e.s] * e.T.inverse();
      placed[e.t] = 1;
    }
  }
  return pose;
}

//! The tree's edges and every other pair that agrees with the tree (within 2 coarse voxels over
//! the source's points); the others are false matches. Marks the kept pairs used.
std::vector<Edge> consistent_edges(const std::vector<Edge>& edges, const std::vector<Eigen::Matrix4d>& pose, const std::vector<char>& placed,
                                   const std::vector<char>& in_tree, const std::vector<Prepared>& prep, double v, Registration& out) {
  std::vector<Edge> kept;
  for (std::size_t k = 0; k < edges.size(); ++k) {
    const Edge& e = edges[k];
    bool ok = in_tree[k] != 0;
    if (!ok && placed[e.s] && placed[e.t]) {
      const Eigen::Matrix4d tree_T = pose[e.t].inverse() * pose[e.s];
      double worst = 0;
      for (const Vec3& p : prep[e.s].coarse->points_) {
        const Vec3 a = e.T.topLeftCorner<3, 3>() * p + e.T.topRightCorner<3, 1>();
        const Vec3 b = tree_T.topLeftCorner<3, 3>() * p + tree_T.topRightCorner<3, 1>();
        worst = std::max(worst, (a - b).norm());
      }
      ok = worst < 2.0 * v;
    }
    if (ok) {
      out.pairs[e.pair].used = true;
      kept.push_back(e);
    }
  }
  return kept;
}

void require_all_placed(const std::vector<char>& placed, const Registration& out, const RegistrationOptions& o) {
  for (std::size_t i = 0; i < placed.size(); ++i)
    if (!placed[i]) {
      double best = 0;
      for (const PairRegistration& p : out.pairs)
        if (p.source == i || p.target == i) best = std::max(best, p.fitness);
      throw ProcessingError(fmt::format("view {} could not be registered: no other view overlaps it well enough "
                                        "(at least {:.0f} % of a view, fitting within 3 times the scan's own noise; "
                                        "best overlap found {:.0f} %)",
                                        i + 1, 100 * o.min_fitness, 100 * best));
    }
}

//! Joint refinement over all edges (when they close a loop), poses relative to view 0.
std::vector<Eigen::Matrix4d> refine_poses(const std::vector<Eigen::Matrix4d>& pose, const std::vector<Edge>& edges, const std::vector<Prepared>& prep,
                                          double fine_voxel) {
  const std::size_t n = pose.size();
  reg::PoseGraph graph;
  for (std::size_t i = 0; i < n; ++i) graph.nodes_.emplace_back(pose[i]);
  for (const Edge& e : edges) {
    const Eigen::Matrix6d info = reg::GetInformationMatrixFromPointClouds(*prep[e.s].fine, *prep[e.t].fine, 3.0 * fine_voxel, e.T);
    graph.edges_.emplace_back(static_cast<int>(e.s), static_cast<int>(e.t), e.T, info, false, 1.0);
  }
  if (edges.size() >= n) {  // a loop: something to reconcile
    reg::GlobalOptimization(graph, reg::GlobalOptimizationLevenbergMarquardt(), reg::GlobalOptimizationConvergenceCriteria(),
                            reg::GlobalOptimizationOption(3.0 * fine_voxel, 0.25, 1.0, 0));
  }
  const Eigen::Matrix4d world = graph.nodes_[0].pose_.inverse();
  std::vector<Eigen::Matrix4d> poses;
  for (std::size_t i = 0; i < n; ++i) poses.push_back(world * graph.nodes_[i].pose_);
  return poses;
}

}  // namespace

Registration register_views(const std::vector<PointCloud>& views, const RegistrationOptions& o) {
  open3d_ready();
  // Open3D's RANSAC draws from one generator shared by its OpenMP threads, and its ICP sums in
  // thread order: one thread makes the result a function of the input and the seed alone.
  const OpenMPSingleThread one_thread;
  if (views.size() < 2) throw InputError("registration needs at least two views");
  Registration out;
  const std::vector<std::shared_ptr<O3Cloud>> clean = clean_views(views, out.spacing_mm);
  const double v = o.feature_voxel_mm > 0 ? o.feature_voxel_mm : std::max(4.0 * out.spacing_mm, 2.5);
  const double fine_voxel = std::max(out.spacing_mm, 0.5);
  std::vector<Prepared> prep(views.size());
  std::vector<double> self_rms(views.size()), self_rms_coarse(views.size());
  for (std::size_t i = 0; i < views.size(); ++i) prep[i] = prepare_view(clean[i], fine_voxel, v, self_rms[i], self_rms_coarse[i]);

  // Every pair: global alignment, then coarse and fine point-to-plane ICP, kept when the fine fit
  // is as good as each view fits itself.
  std::vector<Edge> edges;
  for (std::size_t s = 0; s < views.size(); ++s)
    for (std::size_t t = s + 1; t < views.size(); ++t) {
      const double plausible_coarse = 3.0 * std::max({self_rms_coarse[s], self_rms_coarse[t], 0.01});
      const double plausible = 3.0 * std::max({self_rms[s], self_rms[t], 0.01});
      const Eigen::Matrix4d best_T = coarse_alignment(prep[s], prep[t], s, t, views.size(), v, plausible_coarse, o);
      const auto fine = reg::RegistrationICP(*prep[s].fine, *prep[t].fine, 2.0 * fine_voxel, best_T, reg::TransformationEstimationPointToPlane(),
                                             reg::ICPConvergenceCriteria(1e-9, 1e-9, 60));
      const auto [plane_rms, overlap] = plane_fit(*prep[s].fine, *prep[t].fine, fine.transformation_, 2.0 * fine_voxel);
      PairRegistration pr{s, t, overlap, plane_rms, false};
      if (overlap >= o.min_fitness && plane_rms <= plausible) edges.push_back({s, t, fine.transformation_, overlap, plane_rms, out.pairs.size()});
      out.pairs.push_back(pr);
    }

  std::vector<char> placed, in_tree;
  const std::vector<Eigen::Matrix4d> pose = spanning_tree_poses(edges, views.size(), placed, in_tree);
  edges = consistent_edges(edges, pose, placed, in_tree, prep, v, out);
  require_all_placed(placed, out, o);
  out.poses = refine_poses(pose, edges, prep, fine_voxel);
  return out;
}

PointCloud merge_views(const std::vector<PointCloud>& views, const Registration& r) {
  PointCloud m;
  const bool normals = std::all_of(views.begin(), views.end(), [](const PointCloud& c) { return c.has_normals(); });
  for (std::size_t i = 0; i < views.size(); ++i) {
    const Eigen::Matrix3d R = r.poses[i].topLeftCorner<3, 3>();
    const Vec3 t = r.poses[i].topRightCorner<3, 1>();
    for (std::size_t k = 0; k < views[i].size(); ++k) {
      m.points.push_back(R * views[i].points[k] + t);
      if (normals) m.normals.push_back(R * views[i].normals[k]);
    }
  }
  return m;
}

ViewsScan scan_views(const std::vector<Mesh>& views, const ReconstructOptions& options) {
  if (views.empty()) throw InputError("a scan needs at least one view");
  std::vector<PointCloud> clouds;
  for (const Mesh& v : views) {
    PointCloud c = to_point_cloud(v);
    if (!v.triangles.empty()) c.normals = outward_vertex_normals(v);
    clouds.push_back(std::move(c));
  }
  ViewsScan out;
  PointCloud cloud;
  if (clouds.size() == 1) {
    cloud = std::move(clouds.front());
  } else {
    out.registration = register_views(clouds);
    cloud = merge_views(clouds, *out.registration);
  }
  const bool one_mesh = views.size() == 1 && !views.front().triangles.empty();
  out.surface = reconstruct_surface(cloud, options, &out.report, one_mesh ? &views.front() : nullptr);
  return out;
}

}  // namespace tracecast::scan
