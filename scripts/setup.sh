#!/usr/bin/env bash
# Sets up everything partdistill needs on a fresh Debian machine, idempotently:
# the system libraries headless Blender (bpy) links against, and a virtual
# environment in .venv with the project and its extras installed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# bpy's shared library needs X11/GL client libraries even headless; EGL + Mesa
# let Workbench render without a display (without them we fall back to Cycles).
apt_packages=(libx11-6 libxrender1 libxfixes3 libxi6 libxkbcommon0 libsm6 libgl1
              libegl1 libegl-mesa0 libgl1-mesa-dri)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi

python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.partdistill-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[backend,blender,dev]"
  touch "$stamp"
fi
