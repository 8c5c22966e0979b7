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

from .regions import bbox, found_regions, gt_label_maps, morph_mask

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
    n_parts = len(capture.part_names)
    h, w = capture.image_size
    views: list[list[Detection]] = []
    for fid, label_map in zip(capture.face_id, gt_label_maps(capture), strict=True):
        fg = fid >= 0
        dets: list[Detection] = []
        # each detection draws its shape, then its label, then its score: that order is what a seed fixes
        for part in range(n_parts):
            for region in found_regions(label_map, part, noise.min_pixels, noise.miss_rate, rng):
                shape = _spilled_box(rng, region, noise) if mode == "box" else _morphed(rng, region, noise)
                label = part
                if n_parts > 1 and rng.random() < noise.label_swap:
                    label = int(rng.choice([p for p in range(n_parts) if p != part]))
                _append(dets, label, _score(rng, noise), shape)
        if fg.any() and rng.random() < noise.whole_object:
            shape = _clip(bbox(fg), fg.shape) if mode == "box" else _morphed(rng, fg, noise)
            _append(dets, int(rng.integers(n_parts)), _score(rng, noise), shape)
        if rng.random() < noise.false_positive:
            shape = _random_box(rng, h, w) if mode == "box" else _morphed(rng, _random_blob(rng, fg, h, w), noise)
            _append(dets, int(rng.integers(n_parts)), _score(rng, noise), shape)
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


def _spilled_box(rng: np.random.Generator, region: np.ndarray, noise: SimulatedNoise) -> np.ndarray:
    """(4,) float32 xyxy: the bounding box of ``region`` (H, W) bool, each side pushed outwards by
    U(0, ``noise.spill``) of the box's size on that axis, clipped to the image."""
    box = bbox(region)
    if noise.spill > 0:
        size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
        box += np.array([-1, -1, 1, 1]) * rng.uniform(0, noise.spill, 4) * size
    return _clip(box, region.shape)


def _random_box(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(4,) float32 xyxy: a box of 5-30 % of the image sides anywhere in the image, clipped to it."""
    x0, y0 = rng.uniform(0, w * 0.8), rng.uniform(0, h * 0.8)
    return _clip(np.array([x0, y0, x0 + rng.uniform(0.05, 0.3) * w, y0 + rng.uniform(0.05, 0.3) * h]), (h, w))


def _morphed(rng: np.random.Generator, mask: np.ndarray, noise: SimulatedNoise) -> np.ndarray:
    """``mask`` (H, W) bool eroded or dilated by a drawn number of pixels (``_draw_morph``)."""
    return morph_mask(mask, _draw_morph(rng, noise))


def _append(dets: list[Detection], label: int, score: float, shape: np.ndarray) -> None:
    """Add a box detection (``shape`` (4,) xyxy) or a mask detection (``shape`` (H, W) bool, with its
    bounding box); an empty mask (eroded away) is dropped."""
    if shape.ndim == 1:
        dets.append(Detection(label, score, shape))
    elif shape.any():
        dets.append(Detection(label, score, bbox(shape).astype(np.float32), shape))


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


def _clip(box: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(4,) float32: the xyxy ``box`` clipped to an (H, W) image."""
    h, w = image_size
    return np.clip(box, 0, [w, h, w, h]).astype(np.float32)
