#!/usr/bin/env bash
# Release build into ./build (the tracecast binary lands at build/tracecast).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build --parallel "$(nproc)"
