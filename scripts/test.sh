#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite: ruff (lint and format), the architecture contract
# (import-linter, contracts in pyproject.toml), then pytest (unit tests, the real ZeroMQ server,
# headless Blender). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .  # the formatter owns the layout
.venv/bin/lint-imports
.venv/bin/python -c "import bpy, torch, transformers, zmq" # fail loudly, not by skipped tests, if a dependency is missing
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$rc"
