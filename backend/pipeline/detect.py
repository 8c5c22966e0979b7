"""Detect: the teacher's (or the user's) 2D detections made ready for lifting.

- align: detections are matched to the requested part names by name, never by position;
- the whole-object filter: boxes around (nearly) the whole object say nothing about where a part is;
- the region a detection claims: box ∩ mask ∩ foreground, by the one box rule of the detections
  format (``shared.detections.box_pixel_span``), used by lifting, voting and the benchmark's 2D metric.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from partdistill.shared.capture import Capture
from partdistill.shared.detections import Detection, Detections, box_mask, box_pixel_span
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import SegmentOptions
from partdistill.shared.progress import Progress


def detection_region(capture: Capture, view: int, box: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray:
    """(H, W) bool: the foreground pixels a detection claims in ``view`` (see ``claimed_region``)."""
    return claimed_region(capture.face_id[view] >= 0, box, mask)


def claimed_region(foreground: np.ndarray, box: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray:
    """(H, W) bool: box ∩ mask ∩ ``foreground`` (H, W) bool, whichever of box and mask are given."""
    region = foreground.copy()
    if box is not None:
        region &= box_mask(box, foreground.shape)
    if mask is not None:
        region &= mask
    return region


def align_detections(detections: Detections, part_names: Sequence[str]) -> Detections:
    """Re-index detections onto ``part_names`` (by name). Detections of parts not asked for are an
    error: silently dropping them would hide a typo in the part list."""
    names = tuple(part_names)
    if tuple(detections.part_names) == names:
        return detections
    missing = [n for n in detections.part_names if n not in names]
    if missing:
        raise ValidationError("detections.part_names", f"{missing} not among the requested parts {list(names)}")
    remap = [names.index(n) for n in detections.part_names]
    views = [[Detection(remap[d.part], d.score, d.box, d.mask) for d in dets] for dets in detections.views]
    return Detections(names, views, detections.image_size)


def make_detections(
    capture: Capture,
    names: tuple[str, ...],
    options: SegmentOptions,
    detections: Detections | None,
    teacher,
    progress: Progress | None,
    cancel: Callable[[], bool] | None,
    timings: dict,
    stats: dict,
) -> Detections:
    """The teacher's (or the given) detections, validated, aligned to ``names``, whole-object boxes dropped."""
    t = time.perf_counter()
    if detections is None:
        if teacher is None:
            raise ValidationError("detections", "no detections given and no teacher to make them")
        detections = teacher.detect(capture.rgb, names, progress=progress, cancel=cancel)
        timings["teacher"] = time.perf_counter() - t
        stats["teacher"] = getattr(teacher, "name", type(teacher).__name__)
    detections = align_detections(detections.validate(capture.n_views, capture.image_size), names)
    before = detections.n_detections
    if options.whole_object_cover <= 1.0:
        detections = drop_whole_object_boxes(detections, capture.face_id >= 0, options.whole_object_cover)
    stats["n_detections"] = detections.n_detections
    stats["dropped_whole_object_boxes"] = before - detections.n_detections
    return detections


def whole_object_box(box: np.ndarray, foreground: np.ndarray, max_cover: float = 0.85) -> bool:
    """True when ``box`` covers (nearly) the whole object of one view.

    box: ``(4,)`` xyxy pixels. foreground: ``(H, W)`` bool, the object's pixels in that view. The box
    covers the whole object when it contains at least ``max_cover`` of the area of the foreground's
    bounding box (pixel edges: a foreground spanning columns 3..7 spans x in [3, 8)) AND at least
    ``max_cover`` of the foreground pixels (a pixel counts when its centre is inside the box). An
    empty foreground has no object to cover: False.
    """
    fg = np.asarray(foreground, dtype=bool)
    rows = np.flatnonzero(fg.any(axis=1))
    if rows.size == 0:
        return False
    cols = np.flatnonzero(fg.any(axis=0))
    fx0, fy0, fx1, fy1 = float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)
    x0, y0, x1, y1 = (float(x) for x in box)
    inter = max(0.0, min(x1, fx1) - max(x0, fx0)) * max(0.0, min(y1, fy1) - max(y0, fy0))
    if inter < max_cover * (fx1 - fx0) * (fy1 - fy0):
        return False
    r0, r1, c0, c1 = box_pixel_span(box, *fg.shape)
    return int(fg[r0:r1, c0:c1].sum()) >= max_cover * int(fg.sum())


#: A candidate whole-object box must hold at least this share of another part's detection (in its
#: view) to count as spanning several parts.
HOLDS_OTHER_PART = 0.5


def drop_whole_object_boxes(
    detections: Detections, foreground_masks: np.ndarray, max_cover: float = 0.85
) -> Detections:
    """Drop the boxes that cover (nearly) the whole object, as PartSLIP does, unless they are a part's
    only evidence.

    A box VLM asked for "leg" often answers with a box around the whole chair. Such a box says
    nothing about where the part is, and lifted it labels the whole shape with that part. But a part
    that fills most of the object (a mug's body, a vase) has exactly such boxes, and they are all the
    evidence there is for it. So a box of part p in view v is dropped only when all three hold:

    1. it covers the whole object of view v: at least ``max_cover`` of the area of the foreground's
       bounding box AND at least ``max_cover`` of the foreground pixels (``whole_object_box``; both
       are needed: a part seen large, a table top from above, may hold most of the pixels without
       spanning the bounding box, and a thin diagonal box may span the bounding box while holding
       few of its pixels);
    2. it spans several parts: it holds at least ``HOLDS_OTHER_PART`` of the region of a detection
       of another part in view v;
    3. part p has evidence elsewhere: some detection of p, in any view, is not such a candidate.

    detections: one list per view. foreground_masks: ``(N, H, W)`` bool, the object's pixels per view
    (``face_id >= 0`` of a capture). max_cover: in (0, 1]. Detections without a box (masks only) are
    kept. Returns a new ``Detections`` sharing the kept ``Detection`` objects; the input is unchanged.
    """
    fg = np.asarray(foreground_masks)
    if fg.ndim != 3:
        raise ValidationError("foreground_masks", f"must be (N, H, W) bool, got shape {fg.shape}")
    if fg.shape[0] != len(detections.views):
        raise ValidationError(
            "foreground_masks", f"has {fg.shape[0]} views, the detections have {len(detections.views)}"
        )
    if not isinstance(max_cover, int | float) or isinstance(max_cover, bool) or not 0.0 < float(max_cover) <= 1.0:
        raise ValidationError("max_cover", f"must be a number in (0, 1], got {max_cover!r}")
    fg = fg.astype(bool, copy=False)
    candidate = [
        [d.box is not None and whole_object_box(np.asarray(d.box), fg[n], float(max_cover)) for d in dets]
        for n, dets in enumerate(detections.views)
    ]
    other_evidence = {
        d.part
        for dets, cand in zip(detections.views, candidate, strict=True)
        for d, c in zip(dets, cand, strict=True)
        if not c
    }
    views = []
    for n, (dets, cand) in enumerate(zip(detections.views, candidate, strict=True)):
        kept = []
        for i, d in enumerate(dets):
            drop = cand[i] and d.part in other_evidence and _holds_another_part(d, dets, fg[n])
            if not drop:
                kept.append(d)
        views.append(kept)
    return Detections(detections.part_names, views, detections.image_size)


def _holds_another_part(box_det: Detection, dets: list[Detection], fg: np.ndarray) -> bool:
    inside = box_mask(box_det.box, fg.shape)
    for d in dets:
        if d.part == box_det.part:
            continue
        region = claimed_region(fg, d.box, d.mask)
        n = int(region.sum())
        if n and int((region & inside).sum()) >= HOLDS_OTHER_PART * n:
            return True
    return False
