#!/usr/bin/env bash
# Benchmark of `tracecast scan` against Open3D's Python pipeline (bench/open3d_pipeline.py) on the
# same simulated 1,000,000-point face scan, in the same run: wall time, peak memory, and accuracy
# against the exact ground truth. Needs a Release build (scripts/build.sh) and python3-open3d.
#
#   bench/bench_scan.sh [POINTS_SPACING_MM]     (default 0.147 mm: about 1 M points)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/tracecast
spacing=${1:-0.147}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source bench/common.sh
py=$(find_open3d_python)


$bin synth face -q -o "$tmp/truth.ply" --spacing 0.2
$bin synth scan -q -o "$tmp/raw.ply" --spacing "$spacing" --noise 0.05 --outliers 0.01 --seed 7
points=$($bin info --json --no-self-intersections "$tmp/raw.ply" | python3 -c "import json,sys; print(json.load(sys.stdin)['points'])")


read -r t_ours m_ours <<< "$(measure "$tmp/time" $bin scan "$tmp/raw.ply" -o "$tmp/ours.ply" --resolution 0.5 --report "$tmp/ours.json" -q)"
depth=$(python3 -c "import json; print(json.load(open('$tmp/ours.json'))['reconstruction']['poisson_depth'])")
read -r t_peer m_peer <<< "$(measure "$tmp/time" "$py" bench/open3d_pipeline.py "$tmp/raw.ply" "$tmp/peer.ply" "$depth")"

acc() {  # file -> "p95 max faces"
  local j
  j=$($bin compare --json --units mm "$1" "$tmp/truth.ply")
  local faces
  faces=$($bin info --json --no-self-intersections --units mm "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['faces'])")
  python3 -c "import json,sys; d=json.loads(sys.argv[1])['file_to_reference_mm']; print(f\"{d['p95']:.4f} {d['max']:.3f} $faces\")" "$j"
}
read -r p95_ours max_ours f_ours <<< "$(acc "$tmp/ours.ply")"
read -r p95_peer max_peer f_peer <<< "$(acc "$tmp/peer.ply")"

printf "Simulated frontal face scan: %s points (spacing %s mm, noise 0.05 mm, 1 %% outliers); Poisson depth %s for both\n" \
  "$points" "$spacing" "$depth"
printf "%-34s %9s %9s %12s %12s %9s\n" "pipeline" "wall s" "peak MB" "p95 to truth" "max to truth" "faces"
printf "%-34s %9s %9s %12s %12s %9s\n" "tracecast scan --resolution 0.5" "$t_ours" "$m_ours" "$p95_ours" "$max_ours" "$f_ours"
printf "%-34s %9s %9s %12s %12s %9s\n" "Open3D Python (open3d_pipeline.py)" "$t_peer" "$m_peer" "$p95_peer" "$max_peer" "$f_peer"
python3 -c "print(f'ratio peer/tracecast: time {$t_peer/$t_ours:.2f}x, peak memory {$m_peer/$m_ours:.2f}x')"
