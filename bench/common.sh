# Sourced by the bench scripts: the peer's Python interpreter and a wall-time/peak-memory probe.

# Debian's python3-open3d lives in the system interpreter, which may not be first on PATH.
find_open3d_python() {
  local candidate
  for candidate in /usr/bin/python3 python3; do
    if "$candidate" -c "import open3d" 2>/dev/null; then echo "$candidate"; return 0; fi
  done
  echo "the peer needs Open3D for Python: apt-get install python3-open3d" >&2
  return 1
}

# measure FILE COMMAND...: runs COMMAND, prints "seconds peak_MB" (FILE holds /usr/bin/time's output).
measure() {
  local out=$1; shift
  /usr/bin/time -f "%e %M" -o "$out" "$@" > /dev/null
  local secs kb
  read -r secs kb < "$out"
  echo "$secs $((kb / 1024))"
}

# require_tools SCRIPT TOOL...: exits with a message naming the package unless every TOOL is on PATH.
require_tools() {
  local who=$1 tool; shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$who: needs $tool (apt-get install $tool)" >&2; exit 1; }
  done
}
