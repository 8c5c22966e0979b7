"""Regenerates the bundled example: ``chair/chair.obj`` (a procedural chair whose parts are known by
construction) and ``chair/chair.detections-SIMULATED.json``.

The detections come from the SIMULATED teacher (``bench/simulated.py``): the chair's
ground-truth parts projected into the 10 default ring views (512 px) and degraded with mild,
documented noise. They are NOT the output of a vision-language model; they exist so that the README's
main command runs offline. Run from the repository root (needs bpy):

    .venv/bin/python examples/make_chair.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from partdistill.backend.io.inputs import capture_in_blender
from partdistill.bench.shapes import chair
from partdistill.bench.simulated import SimulatedNoise, simulate_detections
from partdistill.shared.bundle import load_bundle

HERE = Path(__file__).parent / "chair"
NOISE = SimulatedNoise(miss_rate=0.1, spill=0.08, label_swap=0.03, score_noise=0.1)


def main() -> None:
    HERE.mkdir(exist_ok=True)
    shape = chair()
    obj = shape.write_obj(HERE / "chair.obj")
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "chair.npz"
        capture_in_blender(obj, bundle, views=10, resolution=512)  # the CLI's defaults
        cap = load_bundle(bundle)
    # polygon order survives the OBJ round trip, so the labels carry over directly
    cap.part_names = shape.part_names
    cap.gt_face_labels = shape.labels[cap.mesh.face_to_polygon]
    simulate_detections(cap, NOISE, seed=0).save_json(HERE / "chair.detections-SIMULATED.json")
    print(f"wrote {obj} and {HERE / 'chair.detections-SIMULATED.json'}")


if __name__ == "__main__":
    main()
