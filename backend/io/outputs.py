"""The files a segmentation writes, written whole.

``labels.npz`` (the per-face arrays), ``labels.json`` (the summary),
``segmented.glb``, ``preview.png`` and, after distillation, ``loss.png``.

A run holds its output folder locked (``FolderLock(out, field="--out")``, taken before any long
work) and writes every file under a temporary name first; the set is renamed into place together,
so the folder always shows one run's complete outputs: the earlier ones if this run is interrupted,
else this run's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from partdistill.shared.atomic import replace_together, temporary_name
from partdistill.shared.capture import Capture
from partdistill.shared.point_cloud import per_point
from partdistill.shared.result import SegmentationResult

OUTPUTS = ("labels.npz", "labels.json", "segmented.glb", "preview.png", "loss.png")


def write_outputs(
    out: Path, capture: Capture, result: SegmentationResult, *, per_face_json: bool = False
) -> dict[str, Path]:
    """Write the outputs into ``out`` (made if needed) and return them by kind. Each is written under
    a temporary name and the set is renamed into place together, replacing an earlier run's set
    (its ``loss.png`` too when this run makes none). ``per_face_json`` also puts the per-face arrays
    into ``labels.json`` (they are always in ``labels.npz``)."""
    from .glb import write_glb
    from .preview import save_loss_curve, save_preview

    out.mkdir(parents=True, exist_ok=True)
    names = [n for n in OUTPUTS if n != "loss.png" or result.stats.get("loss")]
    temp = {name: temporary_name(out / name) for name in names}  # named first: an interrupt leaves none behind
    try:
        _write_labels_npz(temp["labels.npz"], capture, result)
        temp["labels.json"].write_text(json.dumps(labels_summary(capture, result, per_face=per_face_json)))
        m = capture.mesh
        write_glb(temp["segmented.glb"], m.vertices, m.faces, result.face_labels, result.part_names)
        save_preview(temp["preview.png"], capture, result.face_labels, result.part_names)
        if "loss.png" in temp:
            save_loss_curve(temp["loss.png"], result.stats["loss"], result.stats.get("trigger_epoch"))
        replace_together(out, temp, stale=OUTPUTS)
    finally:
        for tmp in temp.values():
            tmp.unlink(missing_ok=True)
    kinds = {
        "labels.npz": "labels",
        "labels.json": "json",
        "segmented.glb": "mesh",
        "preview.png": "preview",
        "loss.png": "loss",
    }
    return {kinds[name]: out / name for name in temp}


def _write_labels_npz(path: Path, capture: Capture, result: SegmentationResult) -> Path:
    with open(path, "wb") as fh:  # a file handle: numpy would append ".npz" to the temporary name
        np.savez_compressed(
            fh,
            face_labels=result.face_labels,
            face_confidence=result.face_confidence,
            polygon_labels=result.polygon_labels,
            part_names=np.array(result.part_names, dtype=np.str_),
            **_per_point(capture, result),
        )
    return path


def _per_point(capture: Capture, result: SegmentationResult) -> dict[str, np.ndarray]:
    """A point cloud's labels per point (point i is polygon i of its surfel mesh)."""
    if capture.cloud is None:
        return {}
    return {"point_labels": result.polygon_labels, "point_confidence": per_point(result.face_confidence)}


def labels_summary(capture: Capture, result: SegmentationResult, *, per_face: bool = False) -> dict:
    """What ``labels.json`` holds: part names, coverage, warnings, stats and timings, and with
    ``per_face`` the per-face (and per-point) arrays of ``labels.npz`` as lists."""
    doc: dict = {
        "part_names": list(result.part_names),
        "n_faces": int(capture.mesh.n_faces),
        "n_polygons": int(len(result.polygon_labels)),
        **({"n_points": int(capture.cloud.n)} if capture.cloud is not None else {}),
        "warnings": list(result.warnings),
        "coverage": result.stats.get("coverage", {}),
        "stats": {k: v for k, v in result.stats.items() if k not in ("loss", "coverage")},
        "timings": {k: round(float(v), 4) for k, v in result.timings.items()},
    }
    if per_face:
        doc["face_labels"] = result.face_labels.tolist()
        doc["polygon_labels"] = result.polygon_labels.tolist()
        doc["face_confidence"] = result.face_confidence.round(4).tolist()
        for k, v in _per_point(capture, result).items():
            doc[k] = v.round(4).tolist() if v.dtype.kind == "f" else v.tolist()
    return doc
