#!/usr/bin/env bash
# The ear prosthesis and its multi-part mold, end to end on a generated head lacking its left ear:
# `tracecast ear`, the remesh the mark needs (`tracecast repair --remesh-edge 0.4`; 1 mm for the mask), and
# `tracecast mold` (stamped, recorded) with the default options on the `resin` printer. Per step
# the seconds and peak memory; then the parts, resin, thinnest printed wall, tracecast's own
# printability verdict and whether PrusaSlicer slices every part on the printer's real bed. The
# peer, measured in the same run: OpenSCAD's one difference() of the mold's bounding box and the
# same ear; the ratio mold / peer is printed. With MASK=1 the same for the head's own full-head
# mask (minutes).
#
#   bench/bench_ear_mold.sh     (needs a Release build in build/, prusa-slicer and openscad)
#   TRACECAST=path/to/tracecast for another build.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TRACECAST:-$PWD/build/tracecast}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source bench/common.sh
require_tools bench_ear_mold prusa-slicer openscad

# A workshop: ledger, keys, subject S-001 with a medical consent, a medical run open.
export TRACECAST_LEDGER=$tmp/shop.ledger TRACECAST_SIGNING_KEY=$tmp/shop.sign TRACECAST_MARK_KEY=$tmp/shop.key
echo "S-001 agrees to a prosthesis." > "$tmp/consent.txt"
$bin ledger init -q --maker 7 --name Bench
$bin key new -q -o "$tmp/shop.key"
$bin ledger operator -q op1 --name Bench
$bin ledger subject -q S-001
$bin ledger consent -q --subject S-001 --use medical --valid-until 2099-12-31 --given-by S-001 --document "$tmp/consent.txt"
$bin ledger run open -q --use medical --client Clinic --prescriber "Dr Bench" --operator op1

# sliced DIR STEM: "yes" when PrusaSlicer slices every part on the resin printer's display.
sliced() {
  local refused=() bx by bz
  read -r bx by bz < <(python3 -c "
import json; p = json.load(open('$1/$2.json'))['options']['printer_profile']['build_volume_mm']; print(*('%g' % x for x in p))")
  for stl in "$1/$2"-*.stl; do
    prusa-slicer --printer-technology SLA --export-sla --display-width "$bx" --display-height "$by" --display-pixels-x 7680 \
      --display-pixels-y 4320 --max-print-height "$bz" --no-supports-enable --bed-shape "0x0,${bx}x0,${bx}x${by},0x${by}" "$stl" \
      --output "$tmp/slice.out" >/dev/null 2>&1 || refused+=("$(basename "$stl" .stl)")
  done
  ((${#refused[@]} == 0)) && echo yes || echo "no (${refused[*]})"
}

# peer PIECE REPORT: seconds for OpenSCAD's difference() of the mold's box and the piece.
peer() {
  $bin convert "$1" "$tmp/piece.stl" -q
  python3 - "$2" "$tmp/piece.stl" > "$tmp/peer.scad" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))["mold_frame"]
lo, hi = f["box_min_mm"], f["box_max_mm"]
print(f'difference() {{ translate({lo}) cube({[h - l for l, h in zip(lo, hi)]}); import("{sys.argv[2]}"); }}')
PY
  measure "$tmp/time" openscad -o "$tmp/peer.stl" "$tmp/peer.scad" 2>/dev/null | cut -d' ' -f1
}

# row NAME MAKE-SECONDS PIECE HEAD EDGE: the mold of PIECE (remeshed to EDGE mm) on HEAD, one table row.
row() {
  local name=$1 make=$2 piece=$3 head=$4 edge=$5
  local remesh mold
  remesh=$(measure "$tmp/time" $bin repair "$piece" -o "$tmp/$name-r.ply" --remesh-edge "$edge" -q | cut -d' ' -f1)
  mold=$(measure "$tmp/time" $bin mold "$tmp/$name-r.ply" --face "$head" -o "$tmp/$name.3mf" --run 1 --subject S-001 \
    --report "$tmp/$name.json" -q)
  local figures; figures=$(python3 - "$tmp/$name.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); parts = m["parts"]
print("%s | %d | %.0f | %.2f | %s" % (m["layout"], len(parts), sum(p["resin_ml"] for p in parts), min(p["min_wall_mm"] for p in parts),
      "yes" if all(p["printable"] for p in parts) else "no (" + ", ".join(p["name"] for p in parts if not p["printable"]) + ")"))
PY
)
  local p; p=$(peer "$tmp/$name-r.ply" "$tmp/$name.json")
  local mold_s=${mold% *} mold_mb=${mold#* }
  printf "| %s | %s | %s | %s | %s | %s MB | %s | %.1f s | %s s | %.2f |\n" "$name" "$make" "$remesh" "$mold_s" "$figures" "$mold_mb" \
    "$(sliced "$tmp" "$name")" "$(python3 -c "print($make + $remesh + $mold_s)")" "$p" "$(python3 -c "print($mold_s / $p)")"
}

$bin synth head -o "$tmp/patient.ply" --ears right --spacing 1 -q
echo "| piece | piece (s) | remesh (s) | mold (s) | layout | parts | resin (ml) | thinnest printed wall (mm) | printable (tracecast check) | mold peak | PrusaSlicer on the bed | piece + mold | peer: OpenSCAD box − piece | mold / peer |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
ear=$(measure "$tmp/time" $bin ear "$tmp/patient.ply" -o "$tmp/ear.ply" -q | cut -d' ' -f1)
row ear "$ear" "$tmp/ear.ply" "$tmp/patient.ply" 0.4
if [[ ${MASK:-0} == 1 ]]; then
  $bin synth head -o "$tmp/wearer.ply" --spacing 1 -q
  mask=$(measure "$tmp/time" $bin mask "$tmp/wearer.ply" -o "$tmp/mask.ply" -q | cut -d' ' -f1)
  row mask "$mask" "$tmp/mask.ply" "$tmp/wearer.ply" 1.0
fi
