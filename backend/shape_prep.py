"""A shape made ready for the student: sampled surface points, their normalised coordinates, their
kNN graph and (when there is a teacher) the knowledge units lifted onto them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..shared.capture import Capture, Mesh
from ..shared.detections import Detections
from ..shared.errors import ValidationError
from .lifting import KnowledgeUnits, compute_visibility, lift
from .sampling import SurfacePoints, sample_surface
from .students.edge_point_net import knn


@dataclass
class PreparedShape:
    """points: the samples (world space). xyz: (1, N, 3) float32 tensor, centred and scaled into the
    unit sphere. normals: (1, N, 3). nbr: (1, N, k) int64 neighbour indices. units: the knowledge
    units over the points (None when the shape is only to be predicted)."""

    mesh: Mesh
    points: SurfacePoints
    xyz: torch.Tensor
    normals: torch.Tensor
    nbr: torch.Tensor
    units: KnowledgeUnits | None = None


def normalise(xyz: np.ndarray) -> np.ndarray:
    """Centre on the bounding-box centre and scale into the unit sphere (so one network serves shapes
    of any size; Fourier features assume coordinates in [-1, 1])."""
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    c = (lo + hi) / 2
    r = float(np.linalg.norm(xyz - c, axis=1).max()) or 1.0
    return ((xyz - c) / r).astype(np.float32)


def prepare_points(mesh: Mesh, n_points: int, seed: int, device: torch.device, k: int) -> PreparedShape:
    points = sample_surface(mesh, n_points, seed=seed)
    xyz = torch.as_tensor(normalise(points.xyz), device=device)[None]
    nrm = torch.as_tensor(points.normals, device=device)[None]
    return PreparedShape(mesh, points, xyz, nrm, knn(xyz, k))


def prepare_shape(
    capture: Capture,
    detections: Detections | None,
    n_points: int,
    seed: int,
    device: torch.device,
    k: int,
    labelled_faces: np.ndarray | None = None,
) -> PreparedShape:
    """Sample, lift the detections (if any) and add few-shot units from ``labelled_faces``."""
    shape = prepare_points(capture.mesh, n_points, seed, device, k)
    units = None
    if detections is not None:
        units = lift(capture, detections, shape.points, compute_visibility(capture, shape.points))
    if labelled_faces is not None:
        few = few_shot_units(shape.points, labelled_faces, len(detections.part_names) if detections else None)
        units = few if units is None else concat_units(units, few)
    shape.units = units
    return shape


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
    )
