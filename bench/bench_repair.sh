#!/usr/bin/env bash
# Benchmark of `tracecast repair` on a 1,000,000-triangle face mesh (a synthetic face with small
# holes punched, as a binary STL, so that welding is needed too): cleaning alone, side by side with
# the same cleaning steps in Open3D's Python API (bench/open3d_repair.py), then the full repair
# with self-intersection repair, hole filling and isotropic remeshing at 0.5 mm (Open3D has none of
# these), then the default full-face appliance against a hand-made offset in Open3D. Wall time and
# peak memory. Needs a Release build (scripts/build.sh) and python3-open3d.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/tracecast
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source bench/common.sh
py=$(find_open3d_python)

# ≈ 1 M triangles: the synthetic face on a 0.222 mm grid.
$bin synth face -q -o "$tmp/face.ply" --spacing 0.222
"$py" - "$tmp/face.ply" "$tmp/holed.stl" <<'PY'
import sys, numpy as np, open3d as o3d
m = o3d.io.read_triangle_mesh(sys.argv[1])
v, t = np.asarray(m.vertices), np.asarray(m.triangles)
keep = np.ones(len(t), bool)
for c in [(0, -12, 0), (30, 20, 0), (-30, 20, 0), (0, -60, 0)]:   # four 8 mm holes
    d = np.linalg.norm(v[:, :2] - np.array(c[:2]), axis=1) < 4.0
    keep &= ~d[t].any(axis=1)
m.triangles = o3d.utility.Vector3iVector(t[keep])
m.compute_triangle_normals()
o3d.io.write_triangle_mesh(sys.argv[2], m)
PY
faces=$($bin info --json --no-self-intersections "$tmp/holed.stl" | "$py" -c "import json,sys; print(json.load(sys.stdin)['faces'])")

read -r t_clean m_clean <<< "$(measure "$tmp/time" $bin repair "$tmp/holed.stl" -o "$tmp/ours-clean.ply" --max-hole 0 --no-fix-self-intersections -q)"
read -r t_peer m_peer <<< "$(measure "$tmp/time" "$py" bench/open3d_repair.py "$tmp/holed.stl" "$tmp/peer.ply")"
read -r t_full m_full <<< "$(measure "$tmp/time" $bin repair "$tmp/holed.stl" -o "$tmp/ours-full.ply" --remesh-edge 0.5 --report "$tmp/r.json" -q)"

# Appliance: the default full-face piece (2 mm, openings, 6 mm feathering, checked solid) on the
# 1 M-triangle face, against the hand-made offset in Open3D (bench/open3d_appliance.py) over the
# same outline's bounding ellipse; the crossings in each result are counted afterwards.
read -r t_app m_app <<< "$(measure "$tmp/time" $bin appliance "$tmp/face.ply" -o "$tmp/app.ply" --report "$tmp/app.json" -q)"
read -r t_papp m_papp <<< "$(measure "$tmp/time" "$py" bench/open3d_appliance.py "$tmp/face.ply" "$tmp/peer-app.ply" 0 -6 62 72 2.0)"
x_ours=$($bin info --json "$tmp/app.ply" | "$py" -c "import json,sys; print(json.load(sys.stdin)['self_intersecting_face_pairs'])")
x_peer=$($bin info --json "$tmp/peer-app.ply" | "$py" -c "import json,sys; print(json.load(sys.stdin)['self_intersecting_face_pairs'])")
app_faces=$("$py" -c "import json; r=json.load(open('$tmp/app.json')); print(r['solid']['faces'])")
filled=$("$py" -c "import json; r=json.load(open('$tmp/r.json')); print(sum(h['filled'] for h in r['holes']), len(r['holes']), r['out']['faces'])")

printf "Synthetic face, %s triangles as binary STL, four 8 mm holes\n" "$faces"
printf "%-52s %9s %9s\n" "job" "wall s" "peak MB"
printf "%-52s %9s %9s\n" "tracecast repair (cleaning only)" "$t_clean" "$m_clean"
printf "%-52s %9s %9s\n" "Open3D Python (same cleaning steps)" "$t_peer" "$m_peer"
printf "%-52s %9s %9s\n" "tracecast repair --remesh-edge 0.5 (holes filled, remeshed)" "$t_full" "$m_full"
printf "%-52s %9s %9s\n" "tracecast appliance (full face, default options)" "$t_app" "$m_app"
printf "%-52s %9s %9s\n" "Open3D Python (crop + normal offset + stitch)" "$t_papp" "$m_papp"
read -r nf nh fo <<< "$filled"
printf "full repair: %s of %s holes filled (the outline is not), %s faces out\n" "$nf" "$nh" "$fo"
"$py" -c "print(f'ratio Open3D/tracecast for cleaning: time {$t_peer/$t_clean:.2f}x, peak memory {$m_peer/$m_clean:.2f}x')"
printf "appliance: %s faces, %s crossing face pairs; Open3D's hand-made offset: %s crossing face pairs\n" "$app_faces" "$x_ours" "$x_peer"
