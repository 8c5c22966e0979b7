"""From per-point predictions to per-face and per-polygon labels."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..shared.capture import Mesh
from .sampling import SurfacePoints


def points_to_faces(mesh: Mesh, points: SurfacePoints, probs: np.ndarray, k: int = 3) -> np.ndarray:
    """probs (N, P) per point -> (F, P) float32 per face: the mean over the face's own points, and for
    faces that got no sample (small triangles) an inverse-distance blend of the k points nearest to
    the face centroid."""
    f, p = mesh.n_faces, probs.shape[1]
    sums = np.zeros((f, p), dtype=np.float64)
    np.add.at(sums, points.face, probs)
    count = np.bincount(points.face, minlength=f)
    out = sums / np.maximum(count, 1)[:, None]
    empty = np.nonzero(count == 0)[0]
    if empty.size:
        centroids = mesh.vertices[mesh.faces[empty]].mean(axis=1)
        kk = min(k, points.n)
        dist, nn = cKDTree(points.xyz).query(centroids, k=kk)
        dist, nn = dist.reshape(len(empty), kk), nn.reshape(len(empty), kk)
        w = 1.0 / np.maximum(dist, 1e-9)
        out[empty] = np.einsum("ek,ekp->ep", w, probs[nn]) / w.sum(axis=1, keepdims=True)
    return out.astype(np.float32)


def faces_to_polygons(mesh: Mesh, face_scores: np.ndarray, face_labels: np.ndarray) -> np.ndarray:
    """(F, P) scores -> (n_polygons,) int32 labels: an area-weighted vote of each polygon's triangles.
    Polygons all of whose triangles are unlabelled (-1) stay -1."""
    if mesh.face_to_polygon is None:
        return face_labels.astype(np.int32)
    n_poly = mesh.n_polygons
    area = mesh.face_areas() + 1e-12
    labelled = face_labels >= 0
    acc = np.zeros((n_poly, face_scores.shape[1]), dtype=np.float64)
    np.add.at(acc, mesh.face_to_polygon[labelled], face_scores[labelled] * area[labelled, None])
    out = acc.argmax(axis=1).astype(np.int32)
    out[acc.sum(axis=1) <= 0] = -1
    return out
