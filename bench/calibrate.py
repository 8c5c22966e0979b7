"""Refitting the product's confidence calibration on the real-mesh benchmark's validation runs.

The calibration is ``backend/pipeline/calibration.py``; it is fitted on the VALIDATION runs only:
per confidence bin, how often the faces reported there were right; a monotone (isotonic) fit of
that, composed with the table in use (the runs' confidences are already calibrated by it, so the new
table maps raw confidences straight to the observed rate)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .real import CONFIDENCE_BINS


def isotonic(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pool-adjacent-violators: the non-decreasing sequence closest to ``y`` in ``w``-weighted squares."""
    blocks = []  # [value, weight, length]
    for yi, wi in zip(y.tolist(), w.tolist(), strict=True):
        blocks.append([yi, wi, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            tot = w1 + w2
            blocks.append([(v1 * w1 + v2 * w2) / tot if tot > 0 else (v1 + v2) / 2, tot, n1 + n2])
    return np.concatenate([np.full(n, v) for v, _, n in blocks])


def fit(rows: Sequence[dict], knots: np.ndarray, current: np.ndarray, method: str = "distill") -> np.ndarray:
    """New calibrated values at ``knots`` (raw confidences), from the validation runs of ``method``."""
    runs = [r for r in rows if r["split"] == "val" and r["method"] == method]
    if not runs:
        raise ValueError(f"no validation runs of {method!r} to fit the calibration on")
    faces = np.sum([r["confidence_faces"] for r in runs], axis=0).astype(np.float64)
    right = np.sum([r["confidence_right"] for r in runs], axis=0).astype(np.float64)
    seen = faces > 0
    centres = (np.arange(CONFIDENCE_BINS) + 0.5) / CONFIDENCE_BINS
    rate = isotonic(right[seen] / faces[seen], faces[seen])
    observed = np.interp(current, centres[seen], rate)  # what a face at the current confidence turned out to be
    return np.clip(np.maximum.accumulate(observed), 0.0, 1.0)


def write(path: Path, rows: Sequence[dict], method: str = "distill") -> dict:
    """Refit the table at ``path`` (the product's calibration.json) from ``rows``; returns the new file."""
    data = json.loads(path.read_text())
    knots, current = np.asarray(data["raw"]), np.asarray(data["calibrated"])
    new = fit(rows, knots, current, method)
    runs = [r for r in rows if r["split"] == "val" and r["method"] == method]
    data = {
        "raw": knots.round(4).tolist(),
        "calibrated": new.round(4).tolist(),
        "fitted_on": {
            "benchmark": "partdistill bench real",
            "split": "val",
            "method": method,
            "teachers": sorted({r["teacher"] for r in runs}),
            "levels": sorted({r["level"] for r in runs}),
            "shapes": len({r["shape"] for r in runs}),
            "runs": len(runs),
            "faces": int(np.sum([r["confidence_faces"] for r in runs])),
        },
    }
    path.write_text(json.dumps(data, indent=1) + "\n")
    return data
