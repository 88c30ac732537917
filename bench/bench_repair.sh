#!/usr/bin/env bash
# Benchmark of `tracecast repair` on a 1,000,000-triangle face mesh (a synthetic face with small
# holes punched, as a binary STL, so that welding is needed too): cleaning alone, side by side with
# the same cleaning steps in Open3D's Python API (bench/open3d_repair.py), then the full repair
# with hole filling and isotropic remeshing at 0.5 mm (Open3D has neither). Wall time and peak
# memory. Needs a Release build (scripts/build.sh) and python3-open3d.
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

read -r t_clean m_clean <<< "$(measure "$tmp/time" $bin repair "$tmp/holed.stl" -o "$tmp/ours-clean.ply" --max-hole 0 -q)"
read -r t_peer m_peer <<< "$(measure "$tmp/time" "$py" bench/open3d_repair.py "$tmp/holed.stl" "$tmp/peer.ply")"
read -r t_full m_full <<< "$(measure "$tmp/time" $bin repair "$tmp/holed.stl" -o "$tmp/ours-full.ply" --remesh 0.5 --report "$tmp/r.json" -q)"
filled=$("$py" -c "import json; r=json.load(open('$tmp/r.json')); print(sum(h['filled'] for h in r['holes']), len(r['holes']), r['out']['faces'])")

printf "Synthetic face, %s triangles as binary STL, four 8 mm holes\n" "$faces"
printf "%-52s %9s %9s\n" "job" "wall s" "peak MB"
printf "%-52s %9s %9s\n" "tracecast repair (cleaning only, --max-hole 0)" "$t_clean" "$m_clean"
printf "%-52s %9s %9s\n" "Open3D Python (same cleaning steps)" "$t_peer" "$m_peer"
printf "%-52s %9s %9s\n" "tracecast repair --remesh 0.5 (holes filled, remeshed)" "$t_full" "$m_full"
read -r nf nh fo <<< "$filled"
printf "full repair: %s of %s holes filled (the outline is not), %s faces out\n" "$nf" "$nh" "$fo"
"$py" -c "print(f'ratio Open3D/tracecast for cleaning: time {$t_peer/$t_clean:.2f}x, peak memory {$m_peer/$m_clean:.2f}x')"
