"""The multi-view voting baseline (PartSLIP-style): per face, the fraction of its visible pixels,
over all views, that fall inside each part's boxes/masks. A face takes the part whose fraction is at
least ``threshold``; where several qualify the smaller part wins (a big part's box usually contains
the small parts in front of it). Faces seen in no view, or claimed by no part, stay unlabelled (-1)."""

from __future__ import annotations

import numpy as np
from partdistill.shared.capture import Capture
from partdistill.shared.detections import Detections

from .detect import detection_region


def vote(capture: Capture, detections: Detections, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Returns face_labels (F,) int32 and scores (F, P) float32 (the per-part pixel fractions)."""
    f, p = capture.mesh.n_faces, len(detections.part_names)
    seen = np.zeros(f, dtype=np.int64)
    inside = np.zeros((f, p), dtype=np.int64)
    part_pixels = np.zeros(p, dtype=np.int64)
    for v, dets in enumerate(detections.views):
        fid = capture.face_id[v]
        fg = fid >= 0
        seen += np.bincount(fid[fg], minlength=f)
        for part in range(p):
            claimed = np.zeros_like(fg)
            for d in dets:
                if d.part == part:
                    claimed |= detection_region(capture, v, d.box, d.mask)
            if claimed.any():
                inside[:, part] += np.bincount(fid[claimed], minlength=f)
                part_pixels[part] += int(claimed.sum())
    scores = inside / np.maximum(seen, 1)[:, None]
    qualifies = scores >= threshold
    # among qualifying parts the smallest total claimed area wins
    size_rank = np.where(qualifies, part_pixels[None, :], np.iinfo(np.int64).max)
    labels = size_rank.argmin(axis=1).astype(np.int32)
    labels[~qualifies.any(axis=1)] = -1
    return labels, scores.astype(np.float32)
