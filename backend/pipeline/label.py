"""Label: the student's per-point prediction carried to faces and to the source polygons."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from partdistill.shared.capture import Mesh
from partdistill.shared.result import SegmentationResult
from scipy.spatial import cKDTree

from ..students.edge_point_net import EdgePointNet, query_workers
from ..students.mixture import StudentMixture
from .calibration import calibrate
from .mesh_graph import face_graph
from .refine import POOL_MIX, graph_cut, pool
from .sample import SurfacePoints
from .shape import PreparedShape, along
from .superpoints import superpoints


def points_to_faces(mesh: Mesh, points: SurfacePoints, probs: np.ndarray, k: int = 3) -> np.ndarray:
    """probs (N, P) per point -> (F, P) float32 per face: the mean over the face's own points, and for
    faces that got no sample (small triangles) an inverse-distance blend of the k points nearest to
    the face centroid."""
    f, p = mesh.n_faces, probs.shape[1]
    sums = np.stack([np.bincount(points.face, weights=probs[:, q], minlength=f) for q in range(p)], axis=1)
    count = np.bincount(points.face, minlength=f)
    out = sums / np.maximum(count, 1)[:, None]
    empty = np.nonzero(count == 0)[0]
    if empty.size:
        v, fe = mesh.vertices, mesh.faces[empty]
        centroids = (v[fe[:, 0]] + v[fe[:, 1]] + v[fe[:, 2]]) / np.float32(3)
        kk = min(k, points.n)
        dist, nn = cKDTree(points.xyz).query(centroids, k=kk, workers=query_workers(len(empty)))
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
    weight = np.where(face_labels >= 0, mesh.face_areas() + 1e-12, 0.0)
    acc = np.stack(
        [
            np.bincount(mesh.face_to_polygon, weights=face_scores[:, q] * weight, minlength=n_poly)
            for q in range(face_scores.shape[1])
        ],
        axis=1,
    )
    out = acc.argmax(axis=1).astype(np.int32)
    out[acc.sum(axis=1) <= 0] = -1
    return out


def label_faces(
    student: EdgePointNet | StudentMixture,
    shape: PreparedShape,
    emb: torch.Tensor,
    names: tuple[str, ...],
    stats: dict,
    timings: dict,
    refine: str = "none",
    frames: Sequence[str] = ("given",),
) -> SegmentationResult:
    """Run the student on the shape's points, carry its prediction to faces (``refine``: "none",
    "superpoints" or "graph-cut", see ``refine_faces``) and to polygons. ``frames``: the axes the
    student sees the shape along (``shape.along``), one for all, or one per member of a
    ``StudentMixture`` (``shared.options.member_frames``)."""
    t = time.perf_counter()
    with torch.inference_mode():
        if len(set(frames)) == 1:
            seen = along(shape, frames[0])
            probs = torch.softmax(student(seen.xyz, seen.normals, emb, seen.nbr)[0].float(), dim=-1)
        else:
            views = {f: along(shape, f) for f in set(frames)}
            inputs = [(views[f].xyz, views[f].normals) for f in frames]
            probs = student.probabilities(inputs, emb, shape.nbr)[0]
        probs = probs.cpu().numpy()
    labels, face_scores = refine_faces(shape.mesh, points_to_faces(shape.mesh, shape.points, probs), refine)
    confidence = calibrate(face_scores[np.arange(len(labels)), labels])  # see calibration.py
    polygons = faces_to_polygons(shape.mesh, face_scores, labels)
    timings["label"] = time.perf_counter() - t
    return SegmentationResult(names, labels, confidence, polygons, stats, timings).validate()


def refine_faces(mesh: Mesh, face_scores: np.ndarray, refine: str) -> tuple[np.ndarray, np.ndarray]:
    """face_scores (F, P) -> labels (F,) int32 and scores (F, P) float32. "none": the argmax;
    "superpoints": the argmax of the scores pooled over superpoints; "graph-cut": the Potts graph cut
    of the scores half pooled (``refine``)."""
    if refine == "none":
        return face_scores.argmax(axis=1).astype(np.int32), face_scores
    graph = face_graph(mesh)
    if refine == "superpoints":
        face_scores = pool(face_scores, superpoints(graph), graph.areas)
        return face_scores.argmax(axis=1).astype(np.int32), face_scores
    face_scores = pool(face_scores, superpoints(graph), graph.areas, POOL_MIX)
    labels = graph_cut(graph, face_scores)
    # polygons follow the cut: every triangle votes for its own label only
    return labels, np.where(np.arange(face_scores.shape[1]) == labels[:, None], face_scores, 0.0).astype(np.float32)


def keep_labelled(result: SegmentationResult, mesh: Mesh, labelled_faces: np.ndarray | None) -> SegmentationResult:
    """The faces a user labelled keep their labels (confidence 1) whatever the student made of
    them: the user's word on a face is final, the rest is what the distillation learnt with those
    faces as units. ``labelled_faces`` (F,) int32, -1 = not labelled."""
    if labelled_faces is None or not (labelled_faces >= 0).any():
        return result
    given = labelled_faces >= 0
    result.face_labels = np.where(given, labelled_faces, result.face_labels).astype(np.int32)
    result.face_confidence = np.where(given, 1.0, result.face_confidence).astype(np.float32)
    polygon = np.arange(mesh.n_faces) if mesh.face_to_polygon is None else mesh.face_to_polygon
    result.polygon_labels = result.polygon_labels.copy()
    result.polygon_labels[polygon[given]] = labelled_faces[given]
    return result
