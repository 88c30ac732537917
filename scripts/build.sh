#!/usr/bin/env bash
# Release build into ./build (the tracecast binary lands at build/tracecast).
#   ./scripts/build.sh              everything: the binary, the tests, the benchmarks
#   ./scripts/build.sh tracecast    only what the binary needs (the README's first command)
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build --parallel "$(nproc)" "${targets[@]}"
