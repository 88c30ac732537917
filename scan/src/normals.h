// Internal to scan/: orientation of estimated normals (reconstruct.cpp), shared with registration.
#pragma once

#include <open3d/geometry/PointCloud.h>

namespace tracecast::scan::detail {

//! Orients estimated normals outward (one-sided scans along their view axis, others by
//! tangent-plane propagation and the centroid rule).
void orient_normals(open3d::geometry::PointCloud& cloud);

}  // namespace tracecast::scan::detail
