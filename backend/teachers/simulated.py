"""The SIMULATED teacher: an evaluation tool, not a vision-language model.

It projects a shape's ground-truth part labels into each view (through the exact face-id maps) and
returns one box per connected region of each part, degraded the way real VLMs fail, with documented
noise settings. It exists to measure the distillation engine without real weights; it is never a
default and is named as simulated everywhere it appears.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ...shared.capture import Capture
from ...shared.detections import Detection, Detections
from ...shared.errors import ValidationError


@dataclass
class SimulatedNoise:
    """miss_rate: probability a true box is dropped. spill: box sides pushed outwards by up to this
    fraction of the box size (boxes that spill onto neighbouring parts). label_swap: probability a
    box gets another part's label. whole_object: probability per view of an extra box around the
    whole object with a random label. false_positive: probability per view of a random box with a
    random label. score_noise: std of the Gaussian added to the confidence (clipped to [0.05, 1]).
    min_pixels: regions smaller than this are not detected. Defaults are noise-free."""

    miss_rate: float = 0.0
    spill: float = 0.0
    label_swap: float = 0.0
    whole_object: float = 0.0
    false_positive: float = 0.0
    score_noise: float = 0.0
    base_score: float = 0.9
    min_pixels: int = 4


def simulate_detections(capture: Capture, noise: SimulatedNoise | None = None, seed: int = 0) -> Detections:
    """Detections (boxes) made from ``capture.gt_face_labels``."""
    if capture.gt_face_labels is None or not capture.part_names:
        raise ValidationError("gt_face_labels", "the simulated teacher needs ground-truth face labels and part names")
    noise = noise or SimulatedNoise()
    rng = np.random.default_rng(seed)
    n_parts = len(capture.part_names)
    h, w = capture.image_size
    gt = capture.gt_face_labels
    views: list[list[Detection]] = []
    for v in range(capture.n_views):
        fid = capture.face_id[v]
        label_map = np.where(fid >= 0, gt[np.maximum(fid, 0)], -1)
        dets: list[Detection] = []
        for part in range(n_parts):
            comps, n = ndimage.label(label_map == part)
            for sl, idx in zip(ndimage.find_objects(comps), range(1, n + 1), strict=True):
                if sl is None or (comps[sl] == idx).sum() < noise.min_pixels:
                    continue
                if rng.random() < noise.miss_rate:
                    continue
                box = np.array([sl[1].start, sl[0].start, sl[1].stop, sl[0].stop], dtype=np.float64)
                if noise.spill > 0:
                    size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
                    box += np.array([-1, -1, 1, 1]) * rng.uniform(0, noise.spill, 4) * size
                label = part
                if n_parts > 1 and rng.random() < noise.label_swap:
                    label = int(rng.choice([p for p in range(n_parts) if p != part]))
                dets.append(Detection(label, _score(rng, noise), _clip(box, w, h)))
        fg_rows, fg_cols = np.nonzero(fid >= 0)
        if fg_rows.size and rng.random() < noise.whole_object:
            box = np.array([fg_cols.min(), fg_rows.min(), fg_cols.max() + 1, fg_rows.max() + 1], dtype=np.float64)
            dets.append(Detection(int(rng.integers(n_parts)), _score(rng, noise), _clip(box, w, h)))
        if rng.random() < noise.false_positive:
            x0, y0 = rng.uniform(0, w * 0.8), rng.uniform(0, h * 0.8)
            box = np.array([x0, y0, x0 + rng.uniform(0.05, 0.3) * w, y0 + rng.uniform(0.05, 0.3) * h])
            dets.append(Detection(int(rng.integers(n_parts)), _score(rng, noise), _clip(box, w, h)))
        views.append(dets)
    return Detections(tuple(capture.part_names), views, capture.image_size).validate(
        capture.n_views, capture.image_size
    )


def _score(rng: np.random.Generator, noise: SimulatedNoise) -> float:
    return float(
        np.clip(
            noise.base_score + rng.normal(0, noise.score_noise) if noise.score_noise else noise.base_score,
            0.05,
            1.0,
        )
    )


def _clip(box: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.clip(box, 0, [w, h, w, h]).astype(np.float32)
