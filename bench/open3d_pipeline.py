#!/usr/bin/env python3
"""The peer of `tracecast scan` in bench/bench_scan.sh: Open3D's own Python pipeline, as a user
would write it from Open3D's documentation: statistical outlier removal, normals, tangent-plane
orientation, screened Poisson at the given depth, 5 % density trim."""
import sys

import numpy as np
import open3d as o3d

src, dst, depth = sys.argv[1], sys.argv[2], int(sys.argv[3])
o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
pcd = o3d.io.read_point_cloud(src)
pcd.scale(float(sys.argv[4]) if len(sys.argv) > 4 else 1.0, center=(0, 0, 0))
pcd, _ = pcd.remove_statistical_outlier(nb_neighbors=20, std_ratio=2.0)
spacing = float(np.median(np.asarray(pcd.compute_nearest_neighbor_distance())))
pcd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=4 * spacing, max_nn=30))
pcd.orient_normals_consistent_tangent_plane(10)
# The tangent-plane propagation fixes consistency, not the global sign: point away from the centroid.
n = np.asarray(pcd.normals)
if np.sum(np.einsum("ij,ij->i", n, np.asarray(pcd.points) - pcd.get_center())) < 0:
    pcd.normals = o3d.utility.Vector3dVector(-n)
mesh, density = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(pcd, depth=depth)
density = np.asarray(density)
mesh.remove_vertices_by_mask(density < np.quantile(density, 0.05))
o3d.io.write_triangle_mesh(dst, mesh)
