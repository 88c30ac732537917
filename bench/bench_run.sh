#!/usr/bin/env bash
# End-to-end benchmark of `tracecast run`: wall time, peak memory and the per-stage split, for the
# bundled example and for a simulated 1,000,000-point scan of the same face; each against the same
# job done by separate commands in the same run (scan, appliance, mold: what a studio script would
# chain), and the second run of the recipe (every stage reused). Needs a Release build.
#
#   bench/bench_run.sh [SPACING_MM]     (default 0.147 mm: about 1 M points in the large scan)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/build/tracecast
spacing=${1:-0.147}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source bench/common.sh

stages() {  # report.json -> "scan 3.2 s, appliance …"
  python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))
print(', '.join('%s %s' % (s['stage'], 'reused' if s['cached'] else '%.1f s' % s['seconds']) for s in r['stages']))" "$1"
}

case_run() {  # NAME SCAN RESOLUTION
  local name=$1 scan=$2 res=$3 dir=$tmp/$1
  mkdir -p "$dir"
  cp assets/example-consent.txt "$dir/"
  python3 - "$dir" "$scan" "$res" <<'PY'
import json, sys
d, scan, res = sys.argv[1:]
r = json.load(open("assets/example-recipe.json"))
r["scan"]["inputs"] = [scan]
r["scan"]["resolution_mm"] = float(res)
for k in ("ledger", "signing_key", "mark_key"):
    r["production"][k] = "shop/" + r["production"][k].split("/")[-1]
r["output"] = "out"
json.dump(r, open(d + "/recipe.json", "w"), indent=2)
PY
  local points
  points=$($bin info --json --no-self-intersections "$scan" | python3 -c "import json,sys; print(json.load(sys.stdin)['points'])")
  read -r t_run m_run <<< "$(measure "$tmp/time" $bin run "$dir/recipe.json" -q)"
  local split; split=$(stages "$dir/out/report.json")
  read -r t_again m_again <<< "$(measure "$tmp/time" $bin run "$dir/recipe.json" -q)"
  # The peer: the same job as separate commands, into the same workshop (run 1, subject EX-001).
  export TRACECAST_LEDGER=$dir/shop/workshop.ledger TRACECAST_SIGNING_KEY=$dir/shop/workshop.sign TRACECAST_MARK_KEY=$dir/shop/workshop.key
  local t0 m_peer=0 t m
  t0=$(date +%s.%N)
  read -r t m <<< "$(measure "$tmp/time" $bin scan "$scan" -o "$dir/face.ply" --resolution "$res" -q)"; ((m > m_peer)) && m_peer=$m
  read -r t m <<< "$(measure "$tmp/time" $bin appliance "$dir/face.ply" -o "$dir/app.ply" --region upper_face --openings eyes --thickness 2 -q)"; ((m > m_peer)) && m_peer=$m
  read -r t m <<< "$(measure "$tmp/time" $bin mold "$dir/app.ply" --face "$dir/face.ply" -o "$dir/m.3mf" --run 1 --subject EX-001 --resolution 1.0 -q)"; ((m > m_peer)) && m_peer=$m
  local t_peer; t_peer=$(python3 -c "import time; print('%.2f' % (time.time() - $t0))")
  unset TRACECAST_LEDGER TRACECAST_SIGNING_KEY TRACECAST_MARK_KEY
  printf "| %s | %s | %.1f s | %s MB | %.1f s | %.1f s, %s MB | %.2f | %s |\n" "$name" "$points" "$t_run" "$m_run" "$t_again" "$t_peer" "$m_peer" \
    "$(python3 -c "print($t_run / $t_peer)")" "$split"
}

$bin synth scan -q -o "$tmp/large.ply" --spacing "$spacing" --noise 0.03 --views 0 --seed 3
echo "| case | scan points | tracecast run | peak memory | run again | separate commands (scan, appliance, mold) | ratio run / commands | stages |"
echo "|---|---|---|---|---|---|---|---|"
case_run example "$PWD/assets/example-scan.ply" 1.0
case_run "1 M points" "$tmp/large.ply" 0.5
