#!/usr/bin/env bash
# The mold on real scans: for each scan, appliance region and printer class, `tracecast run` with
# the default mold options, then per case: the pieces, the largest (as printed), resin or filament
# in all, the thinnest printed wall and the thinnest outside the cutting edge (2.5 mm of the
# appliance's rim), whether every piece is printable by tracecast's own check,
# whether PrusaSlicer slices every piece on that printer's real bed, the mold stage's and the
# run's seconds. The peer, measured in the same run: OpenSCAD's one difference() of the mold's
# bounding box and the same appliance; the ratio mold stage / peer is printed.
#
#   bench/bench_mold.sh [SCANS_DIR]     (default ../shared/scans; needs a Release build in build/,
#                                        prusa-slicer and openscad: apt-get install prusa-slicer openscad)
#   PRINTERS="resin fdm" REGIONS="full_face upper_face" SCANS="example nefertiti.obj ..." to run fewer rows;
#   TRACECAST=path/to/tracecast for another build.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TRACECAST:-$PWD/build/tracecast}
scans=${1:-$PWD/../shared/scans}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source bench/common.sh
require_tools bench_mold prusa-slicer openscad

# recipe DIR SCAN REGION PRINTER: the bundled example's recipe (its other options kept) on another
# scan, region and printer.
recipe() {
  mkdir -p "$1"
  cp assets/example-consent.txt "$1/"
  python3 - "$@" <<'PY'
import json, sys
d, scan, region, printer = sys.argv[1:]
r = json.load(open("assets/example-recipe.json"))
r["scan"]["inputs"] = [scan]
r["appliance"]["region"] = region
r["mold"]["printer"] = printer
for k in ("ledger", "signing_key", "mark_key"):
    r["production"][k] = "shop/" + r["production"][k].split("/")[-1]
r["output"] = "out"
json.dump(r, open(d + "/recipe.json", "w"), indent=2)
PY
}

# sliced DIR PRINTER: "yes" when PrusaSlicer slices every piece on the printer's bed, else the refused.
sliced() {
  local dir=$1 printer=$2 refused=()
  local bed; bed=$(python3 -c "
import json; p = json.load(open('$dir/out/report.json'))['mold']['options']['printer_profile']
print(*('%g' % x for x in p['build_volume_mm']), p['technology'])")
  read -r bx by bz tech <<< "$bed"
  for stl in "$dir"/out/mold-*.stl; do
    local args
    if [[ $tech == resin ]]; then
      args="--printer-technology SLA --export-sla --display-width $bx --display-height $by --display-pixels-x 7680 --display-pixels-y 4320 --max-print-height $bz --no-supports-enable --bed-shape 0x0,${bx}x0,${bx}x${by},0x${by}"
    else
      args="--export-gcode --bed-shape 0x0,${bx}x0,${bx}x${by},0x${by} --max-print-height $bz"
    fi
    # shellcheck disable=SC2086
    prusa-slicer $args "$stl" --output "$tmp/slice.out" >/dev/null 2>&1 || refused+=("$(basename "$stl" .stl)")
  done
  ((${#refused[@]} == 0)) && echo yes || echo "no (${refused[*]})"
}

# peer DIR: seconds for OpenSCAD's difference() of the mold's bounding box and the appliance.
peer() {
  local dir=$1
  $bin convert "$dir/out/appliance.ply" "$tmp/appliance.stl" -q
  python3 - "$dir/out/report.json" "$tmp/appliance.stl" > "$tmp/peer.scad" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))["mold"]["mold_frame"]
lo, hi = f["box_min_mm"], f["box_max_mm"]
# The frame's rows x, y, z take input coordinates to the mold's; its transpose takes the box back.
m = [[f["x"][i], f["y"][i], f["z"][i], 0] for i in range(3)] + [[0, 0, 0, 1]]
print(f'difference() {{ multmatrix({m}) translate({lo}) cube({[h - l for l, h in zip(lo, hi)]}); import("{sys.argv[2]}"); }}')
PY
  measure "$tmp/time" openscad -o "$tmp/peer.stl" "$tmp/peer.scad" 2>/dev/null | cut -d' ' -f1
}

row() {  # NAME SCAN REGION PRINTER
  local dir=$tmp/$1-$3-$4
  recipe "$dir" "$2" "$3" "$4"
  local t; t=$(measure "$tmp/time" $bin run "$dir/recipe.json" -q | cut -d' ' -f1)
  local figures; figures=$(python3 - "$dir/out/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); m = r["mold"]; parts = m["parts"]
big = max(parts, key=lambda p: max(p["print_size_mm"]))
mold_s = next(s["seconds"] for s in r["stages"] if s["stage"] == "mold")
off = [p["min_wall_off_edge_mm"] for p in parts if p.get("min_wall_off_edge_mm") is not None]
print("%d | %s | %.0f | %.2f | %s | %s | %.1f" % (len(parts), " × ".join("%.0f" % x for x in big["print_size_mm"]),
      sum(p["resin_ml"] for p in parts), min(p["min_wall_mm"] for p in parts), "%.2f" % min(off) if off else "–",
      "yes" if all(p["printable"] for p in parts) else "no (" + ", ".join(p["name"] for p in parts if not p["printable"]) + ")", mold_s))
PY
)
  local slicer; slicer=$(sliced "$dir" "$4")
  # The peer depends on the appliance and the mold's box, not the printer: once per scan and region.
  local cached=$tmp/peer-$1-$3 p
  [[ -f $cached ]] || peer "$dir" > "$cached"
  p=$(cat "$cached")
  IFS='|' read -r n big ml wall off ok mold_s <<< "$figures"
  printf "| %s | %s | %s |%s|%s|%s|%s|%s|%s| %s | %s | %.1f s | %.1f s | %.2f |\n" "$1" "$3" "$4" "$n" "$big" "$ml" "$wall" "$off" "$ok" "$slicer" \
    "$mold_s" "$t" "$p" "$(python3 -c "print(${mold_s} / $p)")"
}

echo "| scan | region | printer | pieces | largest piece (mm) | material (ml) | thinnest printed wall (mm) | thinnest outside the cutting edge (mm) | printable (tracecast check) | PrusaSlicer on the bed | mold stage (s) | run | peer: OpenSCAD box − appliance | mold / peer |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for printer in ${PRINTERS:-resin fdm}; do
  for region in ${REGIONS:-full_face upper_face}; do
    for scan in ${SCANS:-example nefertiti.obj decimated-max.obj stface-smile.ply}; do
      if [[ $scan == example ]]; then
        row example "$PWD/assets/example-scan.ply" "$region" "$printer"
      elif [[ -f $scans/$scan ]]; then
        row "${scan%.*}" "$scans/$scan" "$region" "$printer"
      else
        echo "| ${scan%.*} | $region | $printer | skipped: $scans/$scan is absent |"
      fi
    done
  done
done
