#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and segments the bundled example chair, offline:
# headless-Blender capture -> lifting of the example's SIMULATED detections -> distillation ->
# out/example/{labels.npz, labels.json, segmented.glb, preview.png, loss.png}.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
exec .venv/bin/partdistill segment examples/chair/chair.obj \
  --parts seat,back,leg,arm \
  --detections examples/chair/chair.detections-SIMULATED.json \
  --out "${1:-out/example}"
