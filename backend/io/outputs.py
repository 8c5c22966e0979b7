"""Outputs of a segmentation: ``labels.npz``, ``labels.json``, ``segmented.glb``, ``preview.png`` and,
after distillation, ``loss.png``."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from partdistill.shared.capture import Capture
from partdistill.shared.result import SegmentationResult

from . import InputError

OUTPUTS = ("labels.npz", "labels.json", "segmented.glb", "preview.png", "loss.png")


def prepare_out_dir(out: Path) -> None:
    """Make sure ``out`` is (or can become) a folder we can write, before any long work: a one-line
    error otherwise. Creates nothing: a run that fails later on its input leaves no empty folder."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder")
    if out.is_dir():
        try:
            with tempfile.NamedTemporaryFile(dir=out, prefix=".partdistill-"):
                pass
        except OSError as e:
            raise InputError(f"cannot write to --out {out}: {e.strerror or e}") from None
        return
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot make --out {out}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot make --out {out}: {parent} is not writable")


def write_outputs(out: Path, capture: Capture, result: SegmentationResult) -> dict[str, Path]:
    """labels.npz, labels.json, segmented.glb, preview.png (and loss.png after distillation). Our
    files left in ``out`` by an earlier run are removed first: what is there after a run is this run's."""
    prepare_out_dir(out)
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)
    from .glb import write_glb
    from .preview import save_loss_curve, save_preview

    out.mkdir(parents=True, exist_ok=True)
    written = {}
    written["labels"] = out / "labels.npz"
    per_point = {}
    if capture.cloud is not None:  # point i is polygon i of the surfel mesh (triangles 2i and 2i + 1)
        per_point = {"point_labels": result.polygon_labels, "point_confidence": result.face_confidence[0::2]}
    np.savez_compressed(
        written["labels"],
        face_labels=result.face_labels,
        face_confidence=result.face_confidence,
        polygon_labels=result.polygon_labels,
        part_names=np.array(result.part_names, dtype=np.str_),
        **per_point,
    )
    written["json"] = out / "labels.json"
    written["json"].write_text(json.dumps({
        "part_names": list(result.part_names),
        "face_labels": result.face_labels.tolist(),
        "polygon_labels": result.polygon_labels.tolist(),
        **{k: v.round(4).tolist() if v.dtype.kind == "f" else v.tolist() for k, v in per_point.items()},
        "face_confidence": [round(float(c), 4) for c in result.face_confidence],
        "warnings": list(result.warnings),
        "coverage": result.stats.get("coverage", {}),
        "stats": {k: v for k, v in result.stats.items() if k not in ("loss", "coverage")},
        "timings": {k: round(float(v), 4) for k, v in result.timings.items()},
    }))  # fmt: skip
    m = capture.mesh
    written["mesh"] = write_glb(out / "segmented.glb", m.vertices, m.faces, result.face_labels, result.part_names)
    written["preview"] = save_preview(out / "preview.png", capture, result.face_labels, result.part_names)
    if result.stats.get("loss"):
        written["loss"] = save_loss_curve(out / "loss.png", result.stats["loss"], result.stats.get("trigger_epoch"))
    return written
