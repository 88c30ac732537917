#!/usr/bin/env bash
# Regenerates the generated parts of the docs from the binary: the option tables in
# docs/formats.md (between the options:begin/end markers), from `tracecast options --markdown`.
# The test suite checks that they match.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/tracecast}
tables=$("$bin" options --markdown)
python3 - "$tables" <<'PY'
import sys
p = "docs/formats.md"
s = open(p, encoding="utf-8").read()
b = s.index("<!-- options:begin")
b = s.index("\n", b) + 1
e = s.index("<!-- options:end -->")
open(p, "w", encoding="utf-8").write(s[:b] + sys.argv[1] + "\n" + s[e:])
PY
echo "docs/formats.md: option tables updated"
