#!/usr/bin/env python3
"""The peer of `tracecast repair` in bench/bench_repair.sh: the cleaning steps Open3D has
(duplicated vertices and triangles, degenerate triangles, non-manifold edges, unreferenced
vertices). Open3D has no hole filling and no isotropic remeshing."""
import sys

import open3d as o3d

src, dst = sys.argv[1], sys.argv[2]
o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
m = o3d.io.read_triangle_mesh(src)
m.remove_duplicated_vertices()
m.remove_duplicated_triangles()
m.remove_degenerate_triangles()
m.remove_non_manifold_edges()
m.remove_unreferenced_vertices()
o3d.io.write_triangle_mesh(dst, m)
