"""The SIMULATED teacher: an evaluation tool, not a vision-language model.

It projects a shape's ground-truth part labels into each view (through the exact face-id maps) and
returns one detection per connected region of each part, degraded the way real VLMs fail, with
documented noise settings. Two kinds of output:

- ``mode="box"`` (a simulated B-VLM, GLIP / Grounding DINO-like): one box per region.
- ``mode="mask"`` (a simulated P-VLM, CLIPSeg / SAM-like): one mask per region (with its bounding
  box), eroded or dilated by a few pixels.

It exists to measure the distillation engine without real weights; it is never a default and is
named as simulated everywhere it appears. ``DEFAULT_BOX_NOISE`` and ``DEFAULT_MASK_NOISE`` are the
benchmark's default noise settings.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
from partdistill.shared.capture import Capture
from partdistill.shared.detections import Detection, Detections
from partdistill.shared.errors import ValidationError
from scipy import ndimage

from .regions import morph_mask

MODES = ("box", "mask")


@dataclass
class SimulatedNoise:
    """How the simulated teacher degrades the ground truth. The defaults are noise-free.

    miss_rate: probability that the detection of a region is dropped (a part the VLM does not find).
    spill: boxes only: each box side is pushed outwards by U(0, spill) times the box's size on that
        axis (boxes that spill onto neighbouring parts). Ignored in mask mode, where masks spill
        through ``mask_morph`` dilation instead.
    label_swap: probability that a detection carries another part's label (uniform over the others;
        similar parts confused).
    whole_object: probability per view of an extra detection covering the whole object (its
        bounding box, or its whole silhouette as a mask) with a random part label, a classic VLM
        failure for small parts.
    false_positive: probability per view of one extra detection with a random label: a random box
        of 5-30 % of the image side anywhere in the image (box mode), or a random elliptic blob of
        radii 2.5-15 % of the image side centred on a random object pixel (mask mode; a blob on the
        background would lift to nothing).
    score_noise: std of the Gaussian added to ``base_score`` for each confidence (then clipped to
        [0.05, 1]); confidences are not tied to quality, as with real VLMs.
    base_score: the confidence of every detection before ``score_noise``.
    min_pixels: regions smaller than this many pixels are never detected.
    mask_morph: masks only: each mask (regions, whole object, blobs) is eroded or dilated by k pixels,
        k drawn uniformly from the integers in [-mask_morph, mask_morph] (negative: erosion, with a
        disk of radius |k|); a mask eroded away is dropped. Ignored in box mode.
    """

    miss_rate: float = 0.0
    spill: float = 0.0
    label_swap: float = 0.0
    whole_object: float = 0.0
    false_positive: float = 0.0
    score_noise: float = 0.0
    base_score: float = 0.9
    min_pixels: int = 4
    mask_morph: int = 0

    def validate(self) -> SimulatedNoise:
        """Check every field (ValidationError naming it); returns self."""
        for name in ("miss_rate", "label_swap", "whole_object", "false_positive"):
            v = getattr(self, name)
            if not _is_number(v) or not 0.0 <= float(v) <= 1.0:
                raise ValidationError(name, f"must be a probability in [0, 1], got {v!r}")
        for name in ("spill", "score_noise"):
            v = getattr(self, name)
            if not _is_number(v) or not 0.0 <= float(v) < float("inf"):
                raise ValidationError(name, f"must be a finite number >= 0, got {v!r}")
        if not _is_number(self.base_score) or not 0.0 < float(self.base_score) <= 1.0:
            raise ValidationError("base_score", f"must be a number in (0, 1], got {self.base_score!r}")
        for name, lo in (("min_pixels", 1), ("mask_morph", 0)):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < lo:
                raise ValidationError(name, f"must be an integer >= {lo}, got {v!r}")
        return self

    def as_dict(self) -> dict[str, float | int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: The benchmark's default noise for simulated BOX teachers: moderately realistic for a zero-shot
#: box VLM on rendered views. A region is missed 15 % of the time, box sides spill outwards by up to
#: 15 % of the box size, 8 % of labels are swapped, 10 % of views get a whole-object box and 15 % a
#: random false positive, confidences 0.9 +- 0.15.
DEFAULT_BOX_NOISE = SimulatedNoise(
    miss_rate=0.15, spill=0.15, label_swap=0.08, whole_object=0.1, false_positive=0.15, score_noise=0.15
)

#: The benchmark's default noise for simulated MASK teachers: the same failure rates as
#: ``DEFAULT_BOX_NOISE`` (no box spill), and masks eroded or dilated by up to 3 pixels.
DEFAULT_MASK_NOISE = replace(DEFAULT_BOX_NOISE, spill=0.0, mask_morph=3)


def simulate_detections(
    capture: Capture, noise: SimulatedNoise | None = None, seed: int = 0, mode: str = "box"
) -> Detections:
    """Detections made from ``capture.gt_face_labels``: boxes (``mode="box"``) or masks with their
    bounding boxes (``mode="mask"``, see :func:`simulate_mask_detections`). Deterministic for a seed.
    ``noise`` defaults to no noise at all (not to the benchmark's presets)."""
    if mode not in MODES:
        raise ValidationError("mode", f"must be one of {MODES}, got {mode!r}")
    if capture.gt_face_labels is None or not capture.part_names:
        raise ValidationError("gt_face_labels", "the simulated teacher needs ground-truth face labels and part names")
    noise = (noise or SimulatedNoise()).validate()
    rng = np.random.default_rng(seed)
    if mode == "mask":
        return _simulate_masks(capture, noise, rng)
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


def simulate_mask_detections(capture: Capture, noise: SimulatedNoise | None = None, seed: int = 0) -> Detections:
    """A simulated P-VLM: per view, one mask per connected region of each ground-truth part
    (``Detection.mask`` (H, W) bool, ``Detection.box`` its bounding box, xyxy pixels), degraded by
    ``noise`` (misses, label swaps, whole-object masks, blob false positives, score noise, and
    erosion/dilation by up to ``noise.mask_morph`` pixels). With no noise the masks are exactly the
    regions. Same as ``simulate_detections(capture, noise, seed, mode="mask")``."""
    return simulate_detections(capture, noise, seed, mode="mask")


# ---- internals -------------------------------------------------------------------------------


def _simulate_masks(capture: Capture, noise: SimulatedNoise, rng: np.random.Generator) -> Detections:
    n_parts = len(capture.part_names)
    h, w = capture.image_size
    gt = capture.gt_face_labels
    views: list[list[Detection]] = []
    for v in range(capture.n_views):
        fid = capture.face_id[v]
        fg = fid >= 0
        label_map = np.where(fg, gt[np.maximum(fid, 0)], -1)
        dets: list[Detection] = []
        for part in range(n_parts):
            comps, n = ndimage.label(label_map == part)
            for sl, idx in zip(ndimage.find_objects(comps), range(1, n + 1), strict=True):
                if sl is None:
                    continue
                region = np.zeros((h, w), dtype=bool)
                region[sl] = comps[sl] == idx
                if region[sl].sum() < noise.min_pixels or rng.random() < noise.miss_rate:
                    continue
                mask = morph_mask(region, _draw_morph(rng, noise))
                label = part
                if n_parts > 1 and rng.random() < noise.label_swap:
                    label = int(rng.choice([p for p in range(n_parts) if p != part]))
                _append_mask(dets, label, _score(rng, noise), mask)
        if fg.any() and rng.random() < noise.whole_object:
            mask = morph_mask(fg, _draw_morph(rng, noise))
            _append_mask(dets, int(rng.integers(n_parts)), _score(rng, noise), mask)
        if rng.random() < noise.false_positive:
            mask = _random_blob(rng, fg, h, w)
            mask = morph_mask(mask, _draw_morph(rng, noise))
            _append_mask(dets, int(rng.integers(n_parts)), _score(rng, noise), mask)
        views.append(dets)
    return Detections(tuple(capture.part_names), views, capture.image_size).validate(
        capture.n_views, capture.image_size
    )


def _append_mask(dets: list[Detection], label: int, score: float, mask: np.ndarray) -> None:
    """Add a mask detection with its bounding box; an empty mask (eroded away) is dropped."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return
    box = np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float32)
    dets.append(Detection(label, score, box, mask))


def _random_blob(rng: np.random.Generator, fg: np.ndarray, h: int, w: int) -> np.ndarray:
    """A filled ellipse (H, W) bool, radii 2.5-15 % of the image sides, rotated at random, centred
    on a random object pixel (anywhere when the view shows no object)."""
    rows, cols = np.nonzero(fg)
    if rows.size:
        i = int(rng.integers(rows.size))
        cy, cx = rows[i] + 0.5, cols[i] + 0.5
    else:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = rng.uniform(0.025, 0.15) * h, rng.uniform(0.025, 0.15) * w
    a = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    dx, dy = xx - cx, yy - cy
    u, v = np.cos(a) * dx + np.sin(a) * dy, -np.sin(a) * dx + np.cos(a) * dy
    return (u / rx) ** 2 + (v / ry) ** 2 <= 1.0


def _draw_morph(rng: np.random.Generator, noise: SimulatedNoise) -> int:
    return int(rng.integers(-noise.mask_morph, noise.mask_morph + 1)) if noise.mask_morph else 0


def _is_number(v: object) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) and np.isfinite(v)


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
