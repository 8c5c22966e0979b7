"""The paper's 2D metric mIoU2D (PartDistill supplementary, section B, Eq. A-D).

It scores the teacher's knowledge units against the 2D ground truth of each view, weighting pixels by the
units' confidences, so the same units can be scored with the confidences before and after backward
distillation. Per view v and semantic part r, with s^i the 2D region of unit i, C^i its confidence, G^r the
pixels of the view whose face has ground-truth label r and phi(r) the units of the view that predict r:

    I(r)      = sum_{i in phi(r)} Avg(C^i) * |s^i ∩ G^r|                     (Eq. B)
    lambda(r) = Avg(C^{phi(r)}) * |(U_{i in phi(r)} s^i) \\ G^r|             (Eq. C)
    gamma(r)  = |G^r \\ U_{i in phi(r)} s^i|                                 (Eq. D)
    IoU2D(r)  = I(r) / (I(r) + lambda(r) + gamma(r))                         (Eq. A)

and mIoU2D is the mean of IoU2D over every (view, part) pair that is defined (see below).

Interpretation choices (the paper leaves them open; these are ours):

- **Regions.** For a B-VLM unit s^i = F(b^i): the foreground pixels inside its box (background excluded).
  For a P-VLM unit s^i is its mask. ``miou2d_from_capture`` builds both with
  ``pipeline.detect.detection_region`` (box ∩ mask ∩ foreground: the pixels the unit was lifted from); with
  ``mask_background=True`` a mask keeps its background pixels (the paper's literal P-VLM s^i), which then
  count in lambda.
- **Avg(C^i).** A unit's confidence is a scalar here, so Avg(C^i) = C^i. When a confidence is given as a
  per-pixel ``(H, W)`` map (a P-VLM's score map), Avg(C^i) is its mean over the unit's region s^i (0 for an
  empty region). Confidences must be finite and >= 0; they need not be <= 1 (re-scored weights may exceed 1).
- **Eq. B sums over units**, exactly as written: a pixel of G^r covered by k units of part r counts k times,
  each time with that unit's confidence. I(r) is therefore not bounded by |G^r|, and overlapping confident
  correct units can push IoU2D towards 1 even when part of G^r is missed.
- **Avg(C^{phi(r)})** in Eq. C is the unweighted mean of the units' Avg(C^i) over phi(r) (each unit counts
  once, whatever its size); it multiplies the pixel count of the union of part-r regions outside G^r.
- **Ground truth.** G^r are the pixels whose visible face has label r. Background pixels (face id -1) and
  pixels of unlabelled faces (label -1) belong to no G^r: a prediction there counts in lambda.
- **Degenerate pairs.** A (view, part) pair with G^r empty and every part-r region empty (in particular no
  unit predicting r) has 0/0 for every choice of confidences: it is undefined and skipped
  (``iou2d_part`` returns None, ``iou2d_table`` holds NaN, the mean leaves it out). G^r empty but some unit
  predicting r on some pixel: IoU2D = 0 (I = 0). G^r non-empty but no unit predicting r: IoU2D = 0 (only
  gamma). Which pairs are skipped never depends on the confidences, so scores before and after backward
  distillation average over the same pairs. A pair with pixels to score whose denominator is nevertheless 0
  (only possible when every relevant confidence is 0) scores 0: a prediction carrying no confidence credits
  no intersection. A unit with an empty region (a box over background only) still belongs to phi(r): its
  confidence enters the average of Eq. C.
- mIoU2D is the plain mean over the defined (view, part) pairs (not per view first); NaN when none is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from partdistill.backend.pipeline.detect import detection_region
from partdistill.shared.capture import Capture
from partdistill.shared.detections import Detections, box_mask

from .regions import gt_label_maps


def _avg_conf(conf, region: np.ndarray) -> float:
    """Avg(C^i): the scalar itself, or the mean of a per-pixel confidence map over the unit's region."""
    c = np.asarray(conf, dtype=np.float64)
    if c.ndim == 0:
        value = float(c)
    elif c.shape == region.shape:
        n = np.count_nonzero(region)
        value = float(c[region].sum() / n) if n else 0.0
    else:
        raise ValueError(f"a confidence must be a scalar or an {region.shape} map, got shape {c.shape}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"confidences must be finite and >= 0, got {value}")
    return value


def _terms(inter: np.ndarray, conf: np.ndarray, union: int, union_in_gt: int, gt: int) -> tuple[float, float, float]:
    """(I, lambda, gamma) from per-unit |s^i ∩ G^r| (K,), Avg(C^i) (K,), |U s^i|, |U s^i ∩ G^r| and |G^r|."""
    i_r = float(np.dot(conf, inter)) if len(conf) else 0.0
    lam = float(conf.mean()) * (union - union_in_gt) if len(conf) else 0.0
    return i_r, lam, float(gt - union_in_gt)


def _iou(i_r: float, lam: float, gam: float, union: int, gt: int) -> float | None:
    if union == 0 and gt == 0:
        return None
    den = i_r + lam + gam
    return i_r / den if den > 0 else 0.0


def iou2d_terms(regions: Sequence[np.ndarray], confidences: Sequence, gt: np.ndarray) -> tuple[float, float, float]:
    """(I(r), lambda(r), gamma(r)) of Eq. B, C, D for the units of one part in one view.

    regions: (H, W) bool per unit of part r in this view. confidences: per unit a scalar (or an (H, W)
    per-pixel map, averaged over the unit's region). gt: (H, W) bool, G^r."""
    gt = np.asarray(gt, dtype=bool)
    if len(regions) != len(confidences):
        raise ValueError(f"{len(regions)} regions but {len(confidences)} confidences")
    union = np.zeros(gt.shape, dtype=bool)
    inter, conf = [], []
    for s, c in zip(regions, confidences, strict=True):
        s = np.asarray(s, dtype=bool)
        if s.shape != gt.shape:
            raise ValueError(f"a region has shape {s.shape}, the ground truth {gt.shape}")
        inter.append(np.count_nonzero(s & gt))
        conf.append(_avg_conf(c, s))
        union |= s
    return _terms(
        np.asarray(inter, dtype=np.float64),
        np.asarray(conf, dtype=np.float64),
        int(np.count_nonzero(union)),
        int(np.count_nonzero(union & gt)),
        int(np.count_nonzero(gt)),
    )


def iou2d_part(regions: Sequence[np.ndarray], confidences: Sequence, gt: np.ndarray) -> float | None:
    """IoU2D(r) (Eq. A) of the units of one part r in one view; None when undefined (G^r and all regions empty).

    See ``iou2d_terms`` for the arguments and the module docstring for the degenerate cases."""
    i_r, lam, gam = iou2d_terms(regions, confidences, gt)
    gt = np.asarray(gt, dtype=bool)
    union = any(np.asarray(s, dtype=bool).any() for s in regions)
    return _iou(i_r, lam, gam, int(union), int(np.count_nonzero(gt)))


def iou2d_table(
    unit_regions: Sequence[np.ndarray],
    unit_parts,
    unit_views,
    confidences: Sequence,
    gt_label_maps: np.ndarray,
    n_parts: int,
) -> np.ndarray:
    """(N, P) float64 IoU2D per view and part, NaN where undefined (skipped).

    unit_regions: U (H, W) bool arrays (or a (U, H, W) array), s^i. unit_parts, unit_views: (U,) ints.
    confidences: U scalars (or (H, W) per-pixel maps). gt_label_maps: (N, H, W) int, the ground-truth part
    of each pixel, -1 for background / unlabelled."""
    labels = np.asarray(gt_label_maps)
    if labels.ndim != 3:
        raise ValueError(f"gt_label_maps must be (N, H, W), got shape {labels.shape}")
    n_views, h, w = labels.shape
    parts = np.asarray(unit_parts, dtype=np.int64).reshape(-1)
    views = np.asarray(unit_views, dtype=np.int64).reshape(-1)
    u = len(unit_regions)
    if not (len(parts) == len(views) == len(confidences) == u):
        raise ValueError(
            f"{u} regions, {len(parts)} parts, {len(views)} views and {len(confidences)} confidences: must match"
        )
    if u and (parts.min() < 0 or parts.max() >= n_parts):
        raise ValueError(f"unit parts must be in [0, {n_parts})")
    if u and (views.min() < 0 or views.max() >= n_views):
        raise ValueError(f"unit views must be in [0, {n_views})")
    if labels.size and labels.max() >= n_parts:
        raise ValueError(f"ground-truth labels must be < n_parts={n_parts}")

    # |G^r| for every (view, part): one bincount per view over the label map (-1 shifted to bin 0).
    flat = labels.reshape(n_views, -1).astype(np.int64) + 1
    gt_size = np.stack([np.bincount(f, minlength=n_parts + 1)[1:] for f in flat]).astype(np.int64)

    # Per unit: |s^i ∩ G^{r_i}| as the count of label r_i among the unit's pixels, and Avg(C^i).
    inter = np.zeros(u, dtype=np.float64)
    avg_c = np.zeros(u, dtype=np.float64)
    regions = []
    for k in range(u):
        s = np.asarray(unit_regions[k], dtype=bool)
        if s.shape != (h, w):
            raise ValueError(f"region {k} has shape {s.shape}, the views are {(h, w)}")
        regions.append(s)
        inter[k] = np.count_nonzero(labels[views[k]][s] == parts[k])
        avg_c[k] = _avg_conf(confidences[k], s)

    out = np.full((n_views, n_parts), np.nan)
    # Pairs with units: union of the part's regions in the view (only needed per (view, part) group).
    order = np.lexsort((parts, views))
    keys = views[order] * n_parts + parts[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if u else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], u] if u else np.zeros(0, np.int64)
    for a, b in zip(starts, ends, strict=True):
        group = order[a:b]
        v, r = int(views[group[0]]), int(parts[group[0]])
        union = regions[group[0]].copy()
        for k in group[1:]:
            union |= regions[k]
        n_union = int(np.count_nonzero(union))
        n_union_gt = int(np.count_nonzero(labels[v][union] == r))
        g = int(gt_size[v, r])
        i_r, lam, gam = _terms(inter[group], avg_c[group], n_union, n_union_gt, g)
        iou = _iou(i_r, lam, gam, n_union, g)
        if iou is not None:
            out[v, r] = iou
    # Pairs without units: IoU 0 where G^r is non-empty, undefined (NaN) otherwise.
    has_units = np.zeros((n_views, n_parts), dtype=bool)
    has_units[views, parts] = True
    out[~has_units & (gt_size > 0)] = 0.0
    return out


def miou2d(table: np.ndarray) -> float:
    """mIoU2D: the mean of an ``iou2d_table`` (N, P) over its defined (view, part) pairs (NaN when none is)."""
    defined = table[~np.isnan(table)]
    return float(defined.mean()) if defined.size else float("nan")


def unit_regions(capture: Capture, detections: Detections, mask_background: bool = False) -> list[np.ndarray]:
    """s^i per detection, in the flattened (view-major) order of ``detections`` (= the order of ``lift``).

    Boxes give F(b) (foreground pixels inside the box); masks give mask ∩ foreground (∩ box when both are
    given), or with ``mask_background`` the mask itself (∩ box), background included."""
    out = []
    for v, dets in enumerate(detections.views):
        for d in dets:
            if mask_background and d.mask is not None:
                region = np.asarray(d.mask, dtype=bool)
                out.append(region if d.box is None else region & box_mask(d.box, region.shape))
            else:
                out.append(detection_region(capture, v, d.box, d.mask))
    return out


def miou2d_from_capture(
    capture: Capture,
    detections: Detections,
    confidences: Sequence | None,
    n_parts: int | None = None,
    mask_background: bool = False,
) -> float:
    """mIoU2D of a capture's detections against its ground truth (``capture.gt_face_labels``).

    confidences: one per detection in the flattened view-major order (the order of ``lift``, so
    ``units.confidence`` gives the score before and ``units.weight`` after backward distillation); None uses
    the detections' scores. n_parts: None = the number of the detections' part names."""
    regions = unit_regions(capture, detections, mask_background)
    parts = [d.part for dets in detections.views for d in dets]
    views = [v for v, dets in enumerate(detections.views) for _ in dets]
    if confidences is None:
        confidences = [d.score for dets in detections.views for d in dets]
    if n_parts is None:
        n_parts = len(detections.part_names)
    return miou2d(iou2d_table(regions, parts, views, confidences, gt_label_maps(capture), n_parts))
