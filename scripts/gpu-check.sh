#!/usr/bin/env bash
# The CUDA paths CI cannot run, in one go on a machine with an NVIDIA GPU (under 10 minutes): every
# teacher at full size (random weights of the published architectures) against a plain transformers
# loop in fp32, fp16 and bf16, then one shape end to end with the full-size Grounding DINO on three
# meshes, printed as one table (and written to out/gpu-check/). Run scripts/setup.sh first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out=out/gpu-check
.venv/bin/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu-check: torch sees no CUDA GPU here')"
.venv/bin/partdistill bench teacher --device cuda --models all --levers "plain loop,default,fp16,bf16" \
  --out "$out" --cache .cache/bench-teacher
.venv/bin/python - "$out" <<'PY'
import json, subprocess, sys, time
from pathlib import Path

out = Path(sys.argv[1])
model = ".cache/bench-teacher/full/grounding-dino-tiny"
meshes = {
    "example chair": Path("examples/chair/chair.obj"),
    "30k-face chair": Path(".cache/bench-teacher/captures/chair_30k.obj"),
    "example chair, 4x larger": None,
}
big = out / "chair_x4.obj"  # the example scaled: framing and a second capture on the GPU machine
big.write_text("".join(
    "v " + " ".join(str(4 * float(x)) for x in ln.split()[1:]) + "\n" if ln.startswith("v ") else ln + "\n"
    for ln in Path("examples/chair/chair.obj").read_text().splitlines()
))
meshes["example chair, 4x larger"] = big
rows = []
for name, mesh in meshes.items():
    dest = out / name.replace(" ", "_").replace(",", "")
    cmd = [".venv/bin/partdistill", "segment", str(mesh), "--parts", "seat,back,leg,arm", "--out", str(dest),
           "--teacher", "grounding_dino", "--teacher-model", model, "--device", "cuda", "--quiet"]
    t = time.perf_counter()
    rc = subprocess.run(cmd).returncode
    total = time.perf_counter() - t
    doc = json.loads((dest / "labels.json").read_text()) if rc == 0 else {}
    timings = doc.get("timings", {})
    rows.append((name, doc.get("n_faces", "-"), rc, total, timings.get("teacher", 0.0), timings.get("distill", 0.0)))
teacher = json.loads((out / "teacher.json").read_text())["rows"]
print("\n| what | faces | exit | seconds | teacher s | distill s |\n|---|---|---|---|---|---|")
for r in rows:
    print(f"| end to end: {r[0]} | {r[1]} | {r[2]} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.2f} |")
print("\n| teacher, mesh, lever | s/view | per forward | CUDA peak GB | agreement |\n|---|---|---|---|---|")
for r in teacher:
    agree = f"{r['agreement']:.3f}" if "agreement" in r else ""
    print(f"| {r['model']}, {r['mesh']}, {r['lever']} | {r['s_per_view']:.3f} | {r['views_per_forward']} | "
          f"{r['cuda_peak_gb'] or 0:.2f} | {agree} |")
PY
