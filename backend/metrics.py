"""3D segmentation metrics (ShapeNetPart convention)."""

from __future__ import annotations

import numpy as np


def part_ious(pred: np.ndarray, gt: np.ndarray, n_parts: int, weights: np.ndarray | None = None) -> np.ndarray:
    """(P,) float64 IoU per part over elements (faces or points) with a ground-truth label (gt >= 0).

    weights: (E,) per-element weight (face areas, so IoU measures surface rather than triangle
    counts); None counts elements. A part absent from both prediction and ground truth has IoU 1."""
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    w = np.ones(len(gt)) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = gt >= 0
    pred, gt, w = pred[keep], gt[keep], w[keep]
    out = np.ones(n_parts)
    for p in range(n_parts):
        a, b = pred == p, gt == p
        union = w[a | b].sum()
        if union > 0:
            out[p] = w[a & b].sum() / union
    return out


def shape_miou(pred: np.ndarray, gt: np.ndarray, n_parts: int, weights: np.ndarray | None = None) -> float:
    """Mean of ``part_ious`` over the parts of the shape's category."""
    return float(part_ious(pred, gt, n_parts, weights).mean())
