"""Lifting: where a 2D detection (box or mask) becomes a knowledge unit over 3D surface points.

A unit covers the points that are visible in the detection's view and project inside the box
(only foreground pixels count: the paper's F(b)) or inside the mask. Pixel precision, never whole
faces: a big face only partly inside a box is only partly covered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from partdistill.shared.capture import Capture
from partdistill.shared.detections import Detections
from partdistill.shared.errors import ValidationError

from .detect import detection_region
from .sample import SurfacePoints
from .visibility import Visibility, compute_visibility


@dataclass
class KnowledgeUnits:
    """U units in CSR form over N points.

    part: (U,) int64 label. confidence: (U,) float32 teacher score (before backward distillation).
    weight: (U,) float32 current weight (= confidence until backward distillation re-scores it).
    view: (U,) int32. fixed: (U,) bool — never re-scored (few-shot / user-painted units).
    ptr: (U+1,) int64, idx: (nnz,) int64 — unit u covers points idx[ptr[u]:ptr[u+1]].
    pixels: (U,) int64 count of foreground pixels of the unit in its view (F(b) or mask ∩ foreground).
    visible: per view, the (M_v,) int64 points visible in it (None for units without views): what
    the paper's backward distillation compares a unit with.
    """

    part: np.ndarray
    confidence: np.ndarray
    weight: np.ndarray
    view: np.ndarray
    fixed: np.ndarray
    ptr: np.ndarray
    idx: np.ndarray
    pixels: np.ndarray
    n_points: int
    visible: list[np.ndarray] | None = None

    @property
    def n_units(self) -> int:
        return int(self.part.shape[0])

    def unit_of_entry(self) -> np.ndarray:
        """(nnz,) int64 the unit of each CSR entry."""
        return np.repeat(np.arange(self.n_units), np.diff(self.ptr))

    def coverage(self) -> np.ndarray:
        """(N,) int64 how many units cover each point."""
        return np.bincount(self.idx, minlength=self.n_points)


def lift(
    capture: Capture, detections: Detections, points: SurfacePoints, vis: Visibility | None = None
) -> KnowledgeUnits:
    """Detections -> knowledge units over ``points``."""
    vis = vis or compute_visibility(capture, points)
    parts, confs, views, counts, chunks, pixels = [], [], [], [], [], []
    for v, dets in enumerate(detections.views):
        for d in dets:
            region = detection_region(capture, v, d.box, d.mask)
            covered = vis.points[v][region[vis.rows[v], vis.cols[v]]]
            parts.append(d.part)
            confs.append(d.score)
            views.append(v)
            counts.append(len(covered))
            chunks.append(covered)
            pixels.append(int(region.sum()))
    u = len(parts)
    conf = np.asarray(confs, dtype=np.float32).reshape(u)
    return KnowledgeUnits(
        part=np.asarray(parts, dtype=np.int64).reshape(u),
        confidence=conf,
        weight=conf.copy(),
        view=np.asarray(views, dtype=np.int32).reshape(u),
        fixed=np.zeros(u, dtype=bool),
        ptr=np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64),
        idx=np.concatenate(chunks).astype(np.int64) if chunks else np.zeros(0, np.int64),
        pixels=np.asarray(pixels, dtype=np.int64).reshape(u),
        n_points=points.n,
        visible=vis.points,
    )


def few_shot_units(points: SurfacePoints, face_labels: np.ndarray, n_parts: int | None = None) -> KnowledgeUnits:
    """Labelled faces (F,) int32 (-1 = not labelled) -> one unit per labelled part covering the points on
    its faces, with confidence 1 and ``fixed`` (backward distillation never lowers them): labels a user
    painted, or the ground truth of a few labelled shapes."""
    labels = face_labels[points.face]
    if n_parts is not None and face_labels.size and face_labels.max() >= n_parts:
        raise ValidationError("labelled_faces", f"labels must be < {n_parts} (the number of parts)")
    parts = [int(p) for p in np.unique(labels) if p >= 0]
    chunks = [np.nonzero(labels == p)[0].astype(np.int64) for p in parts]
    u = len(parts)
    return KnowledgeUnits(
        part=np.asarray(parts, dtype=np.int64).reshape(u),
        confidence=np.ones(u, np.float32),
        weight=np.ones(u, np.float32),
        view=np.full(u, -1, np.int32),
        fixed=np.ones(u, bool),
        ptr=np.concatenate([[0], np.cumsum([len(c) for c in chunks], dtype=np.int64)]).astype(np.int64),
        idx=np.concatenate(chunks) if chunks else np.zeros(0, np.int64),
        pixels=np.zeros(u, np.int64),
        n_points=points.n,
    )


def concat_units(a: KnowledgeUnits, b: KnowledgeUnits) -> KnowledgeUnits:
    assert a.n_points == b.n_points
    return KnowledgeUnits(
        part=np.concatenate([a.part, b.part]),
        confidence=np.concatenate([a.confidence, b.confidence]),
        weight=np.concatenate([a.weight, b.weight]),
        view=np.concatenate([a.view, b.view]),
        fixed=np.concatenate([a.fixed, b.fixed]),
        ptr=np.concatenate([a.ptr, a.ptr[-1] + b.ptr[1:]]),
        idx=np.concatenate([a.idx, b.idx]),
        pixels=np.concatenate([a.pixels, b.pixels]),
        n_points=a.n_points,
        visible=a.visible if a.visible is not None else b.visible,
    )
