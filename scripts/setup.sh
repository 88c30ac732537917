#!/usr/bin/env bash
# Installs everything tracecast needs to build and test: Debian 12 packages, and the report's web
# assets (three.js) from the npm registry into web/node_modules (pinned by web/package-lock.json).
# Idempotent and non-interactive; run as root (or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git
  libopen3d-dev libembree-dev libcgal-dev libassimp-dev libtbb-dev libeigen3-dev
  catch2 libcli11-dev nlohmann-json3-dev libfmt-dev
  zlib1g-dev libminizip-dev libsodium-dev libsqlite3-dev libcpp-httplib-dev libssl-dev libpq-dev openssl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm (with Node.js) only if there is none: a Node.js from elsewhere brings its own npm.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages and npm already installed"
else
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ! -f web/node_modules/three/build/three.module.min.js || ! -d web/node_modules/puppeteer-core ]]; then
  echo "setup: installing the web assets and the browser tests' driver (npm ci in web/)"
  npm ci --prefix web --no-audit --no-fund --loglevel=error
else
  echo "setup: web assets already installed"
fi
