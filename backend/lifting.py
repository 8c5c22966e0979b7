"""Lifting: where a 2D detection (box or mask) becomes a knowledge unit over 3D surface points.

A unit covers the points that are visible in the detection's view and project inside the box
(only foreground pixels count: the seed's F(b)) or inside the mask. Pixel precision, never whole
faces: a big face only partly inside a box is only partly covered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..shared.capture import Capture
from ..shared.detections import Detections
from .projection import visible_pixels
from .sampling import SurfacePoints


@dataclass
class KnowledgeUnits:
    """U units in CSR form over N points.

    part: (U,) int64 label. confidence: (U,) float32 teacher score (before backward distillation).
    weight: (U,) float32 current weight (= confidence until backward distillation re-scores it).
    view: (U,) int32. fixed: (U,) bool — never re-scored (few-shot / user-painted units).
    ptr: (U+1,) int64, idx: (nnz,) int64 — unit u covers points idx[ptr[u]:ptr[u+1]].
    pixels: (U,) int64 count of foreground pixels of the unit in its view (F(b) or mask ∩ foreground).
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

    @property
    def n_units(self) -> int:
        return int(self.part.shape[0])

    def unit_of_entry(self) -> np.ndarray:
        """(nnz,) int64 the unit of each CSR entry."""
        return np.repeat(np.arange(self.n_units), np.diff(self.ptr))

    def coverage(self) -> np.ndarray:
        """(N,) int64 how many units cover each point."""
        return np.bincount(self.idx, minlength=self.n_points)


@dataclass
class Visibility:
    """Per view, the visible points and their pixels: lists of (M_v,) int64 arrays."""

    points: list[np.ndarray]
    rows: list[np.ndarray]
    cols: list[np.ndarray]


def compute_visibility(capture: Capture, points: SurfacePoints) -> Visibility:
    vis = [visible_pixels(capture, points, v) for v in range(capture.n_views)]
    return Visibility([a for a, _, _ in vis], [b for _, b, _ in vis], [c for _, _, c in vis])


def detection_region(capture: Capture, view: int, box: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray:
    """(H, W) bool: the foreground pixels a detection claims (box ∩ mask ∩ foreground, whichever given)."""
    fg = capture.face_id[view] >= 0
    region = fg.copy()
    if box is not None:
        h, w = fg.shape
        x0, y0, x1, y1 = (float(x) for x in box)
        # pixel (i, j) is inside when its centre (i + 0.5, j + 0.5) is inside the box
        c0, c1 = int(np.clip(np.ceil(x0 - 0.5), 0, w)), int(np.clip(np.ceil(x1 - 0.5), 0, w))
        r0, r1 = int(np.clip(np.ceil(y0 - 0.5), 0, h)), int(np.clip(np.ceil(y1 - 0.5), 0, h))
        inside = np.zeros_like(fg)
        inside[r0:r1, c0:c1] = True
        region &= inside
    if mask is not None:
        region &= mask
    return region


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
    )


@dataclass
class FaceUnits:
    """The same knowledge units over faces instead of points: unit u covers faces
    ``face[ptr[u]:ptr[u+1]]`` with ``pixels[...]`` of its foreground pixels on each (so a big face
    only partly inside a box is only partly covered: weigh by pixels, not by face)."""

    part: np.ndarray
    confidence: np.ndarray
    view: np.ndarray
    ptr: np.ndarray
    face: np.ndarray
    pixels: np.ndarray


def lift_to_faces(capture: Capture, detections: Detections) -> FaceUnits:
    """Detections -> knowledge units over the mesh's faces (pixel counts per face)."""
    parts, confs, views, faces, counts, sizes = [], [], [], [], [], []
    for v, dets in enumerate(detections.views):
        fid = capture.face_id[v]
        for d in dets:
            region = detection_region(capture, v, d.box, d.mask)
            f, c = np.unique(fid[region], return_counts=True)
            parts.append(d.part)
            confs.append(d.score)
            views.append(v)
            faces.append(f.astype(np.int64))
            counts.append(c.astype(np.int64))
            sizes.append(len(f))
    u = len(parts)
    return FaceUnits(
        part=np.asarray(parts, dtype=np.int64).reshape(u),
        confidence=np.asarray(confs, dtype=np.float32).reshape(u),
        view=np.asarray(views, dtype=np.int32).reshape(u),
        ptr=np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64),
        face=np.concatenate(faces) if faces else np.zeros(0, np.int64),
        pixels=np.concatenate(counts) if counts else np.zeros(0, np.int64),
    )
