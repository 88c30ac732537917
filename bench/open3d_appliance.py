#!/usr/bin/env python3
"""The peer of `tracecast appliance` in bench/bench_repair.sh: what Open3D's Python API offers
towards an appliance, the way it is done by hand: keep the triangles inside an elliptical region
of the frontal projection, offset a copy along the vertex normals by the thickness tapered over a
6 mm band (distance in projection), and stitch inner, outer and rim. No exact cut, no openings,
no check that the offset does not cross itself (the benchmark counts the crossings afterwards).

usage: open3d_appliance.py FACE OUT CX CY A B THICKNESS"""
import sys

import numpy as np
import open3d as o3d

src, dst = sys.argv[1], sys.argv[2]
cx, cy, a, b, thick = (float(x) for x in sys.argv[3:8])
band, edge = 6.0, 0.05
o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
m = o3d.io.read_triangle_mesh(src)
v, t = np.asarray(m.vertices), np.asarray(m.triangles)
inside = ((v[:, 0] - cx) / a) ** 2 + ((v[:, 1] - cy) / b) ** 2 <= 1.0
t = t[inside[t].all(axis=1)]
used = np.unique(t)
remap = -np.ones(len(v), int)
remap[used] = np.arange(len(used))
patch = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(v[used]), o3d.utility.Vector3iVector(remap[t]))
patch.compute_vertex_normals()
pv, pt, pn = np.asarray(patch.vertices), np.asarray(patch.triangles), np.asarray(patch.vertex_normals)
# Distance to the outline: boundary edges of the patch (edges used once).
e = np.sort(np.concatenate([pt[:, [0, 1]], pt[:, [1, 2]], pt[:, [2, 0]]]), axis=1)
uniq, count = np.unique(e, axis=0, return_counts=True)
border = np.unique(uniq[count == 1])
tree = o3d.geometry.KDTreeFlann(o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pv[border])))
dist = np.array([np.sqrt(tree.search_knn_vector_3d(p, 1)[2][0]) for p in pv])
s = np.clip(dist / band, 0, 1)
tt = edge + (thick - edge) * s * s * s * (s * (6 * s - 15) + 10)
outer = pv + tt[:, None] * pn
n = len(pv)
tris = [pt[:, [0, 2, 1]], pt + n]
# Rim: directed boundary edges as they appear in the patch's triangles.
d = np.concatenate([pt[:, [0, 1]], pt[:, [1, 2]], pt[:, [2, 0]]])
key = np.sort(d, axis=1)
once = {tuple(k) for k, c in zip(uniq, count) if c == 1}
rim = np.array([x for x, k in zip(d, key) if tuple(k) in once])
tris += [np.stack([rim[:, 0], rim[:, 1], rim[:, 1] + n], 1), np.stack([rim[:, 0], rim[:, 1] + n, rim[:, 0] + n], 1)]
solid = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(np.vstack([pv, outer])),
                                  o3d.utility.Vector3iVector(np.vstack(tris)))
o3d.io.write_triangle_mesh(dst, solid)
