"""The voting baselines: labels straight from the 2D detections, without a student.

- ``vote`` (PartSLIP-style thresholded vote, the project's first baseline): per face, the fraction
  of its visible pixels over all views inside each part's boxes/masks; a face takes the part whose
  fraction is at least ``threshold``, the smaller part where several qualify (a big part's box usually
  contains the small parts in front of it). Faces seen in no view or claimed by no part stay -1.
- ``vote_fill``: a score-weighted per-face argmax, V[f, p] = Σ_{detections d of p} score_d ·
  |pixels of f in d's region|; faces without any vote take the label of the nearest voted face
  along the surface.
- ``superpoint_vote``: the same votes summed over geometric superpoints (``superpoints``), every
  face taking its superpoint's argmax; superpoints without votes filled from the nearest voted face.
"""

from __future__ import annotations

import numpy as np
from partdistill.shared.capture import Capture
from partdistill.shared.detections import Detections

from .detect import detection_region
from .mesh_graph import FaceGraph, face_graph, nearest_labelled
from .superpoints import superpoints


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


def face_votes(capture: Capture, detections: Detections, weights: np.ndarray | None = None) -> np.ndarray:
    """(F, P) float64: V[f, p] = Σ_{detections d of part p} w_d · |pixels of face f in d's region|.

    weights: (D,) per detection in view order (default: the detections' scores; backward
    distillation's unit weights can stand in for them)."""
    f, p = capture.mesh.n_faces, len(detections.part_names)
    votes = np.zeros((f, p), dtype=np.float64)
    k = 0
    for v, dets in enumerate(detections.views):
        fid = capture.face_id[v]
        for d in dets:
            ids = fid[detection_region(capture, v, d.box, d.mask)]
            w = d.score if weights is None else float(weights[k])
            if ids.size and w > 0:
                votes[:, d.part] += w * np.bincount(ids, minlength=f)
            k += 1
    return votes


def labels_from_votes(votes: np.ndarray, graph: FaceGraph) -> tuple[np.ndarray, np.ndarray]:
    """votes (F, P) -> labels (F,) int32 by argmax and scores (F, P) float32 (votes normalised per
    face); faces without votes take both from the nearest voted face along the surface."""
    total = votes.sum(axis=1, keepdims=True)
    voted = total[:, 0] > 0
    scores = np.where(voted[:, None], votes / np.maximum(total, 1e-300), 0.0).astype(np.float32)
    labels = np.where(voted, votes.argmax(axis=1), -1).astype(np.int32)
    if voted.any() and not voted.all():
        src = nearest_labelled(graph, voted)
        labels, scores = labels[src], scores[src]
    return labels, scores


def vote_fill(
    capture: Capture, detections: Detections, graph: FaceGraph | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Score-weighted per-face argmax vote, unvoted faces filled along the surface.
    Returns labels (F,) int32 and scores (F, P) float32."""
    return labels_from_votes(face_votes(capture, detections), graph or face_graph(capture.mesh))


def superpoint_vote(
    capture: Capture, detections: Detections, graph: FaceGraph | None = None, patches: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The votes summed per superpoint (``patches`` (F,) int, default ``superpoints(graph)``), every
    face taking its superpoint's. Returns labels (F,) int32 and scores (F, P) float32."""
    graph = graph or face_graph(capture.mesh)
    patches = superpoints(graph) if patches is None else patches
    votes = face_votes(capture, detections)
    per_patch = np.zeros((int(patches.max()) + 1, votes.shape[1]))
    np.add.at(per_patch, patches, votes)
    return labels_from_votes(per_patch[patches], graph)
