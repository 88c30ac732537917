#!/usr/bin/env bash
# Every appliance preset on every real scan in ../shared/scans and on the generated face, with
# default options: exit status, time, and the figures a user judges an appliance by. The solid is
# then checked independently of the appliance's own report (`tracecast info`: closed, manifold,
# self-intersections). Prints a markdown table (docs/methods/appliance.md keeps the latest).
# Usage: bench/appliance_presets.sh [BINARY] [WORKDIR]
set -uo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-build/tracecast}")
work=${2:-$(mktemp -d)}
mkdir -p "$work"
scans=../shared/scans
presets="full_face upper_face nose forehead cheek_left cheek_right chin"

[ -d "$scans" ] || { echo "no $scans: nothing to measure" >&2; exit 77; }
"$bin" synth face -q -o "$work/generated.ply"
"$bin" scan -q "$scans/stface-smile.ply" -o "$work/stface-smile.ply"
inputs="generated:$work/generated.ply nefertiti:$scans/nefertiti.obj decimated-max:$scans/decimated-max.obj"
inputs+=" igea:$scans/igea.ply face.obj:$scans/face.obj stface-smile:$work/stface-smile.ply"

echo "| scan | preset | result | s | thickness p05–p95 inside (mm) | thinned (mm²) | thinned max (mm) | outline turn max (°) | closed | manifold | crossings |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for entry in $inputs; do
  name=${entry%%:*}; file=${entry#*:}
  for preset in $presets; do
    out="$work/$name-$preset"
    start=$(date +%s.%N)
    if "$bin" appliance "$file" --region "$preset" -o "$out.ply" --report "$out.json" -q 2> "$out.err"; then
      result=built
    else
      result="fails ($?): $(tr '\n|' ' /' < "$out.err" | cut -c1-90)"
    fi
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    if [ "$result" = built ]; then
      fig=$(jq -r '[(.interior_thickness_mm.p05 // 0), (.interior_thickness_mm.p95 // 0),
                    (.thinned.area_mm2 // 0), (.thinned.max_mm // 0), (.outline.max_turn_deg // 0)]
                   | map(. * 100 | round / 100 | tostring) | join(" ")' "$out.json")
      read -r p05 p95 thin_a thin_d turn <<< "$fig"
      chk=$("$bin" info --json "$out.ply" | jq -r '[.watertight, (.edge_manifold and .vertex_manifold), .self_intersecting_face_pairs] | map(tostring) | join(" ")')
      read -r closed manifold crossings <<< "$chk"
      printf '| %s | %s | %s | %.1f | %s–%s | %s | %s | %s | %s | %s | %s |\n' "$name" "$preset" "$result" "$secs" \
        "$p05" "$p95" "$thin_a" "$thin_d" "$turn" "$closed" "$manifold" "$crossings"
    else
      printf '| %s | %s | %s | %.1f | | | | | | | |\n' "$name" "$preset" "$result" "$secs"
    fi
  done
done
