"""A shape made ready for the student: points, their graph and the knowledge units.

Sampled surface points, their normalised coordinates, their kNN graph and (when there is a teacher)
the knowledge units lifted onto them."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from partdistill.shared.capture import Capture, Mesh
from partdistill.shared.detections import Detections

from ..students.edge_point_net import knn
from .lift import KnowledgeUnits, concat_units, few_shot_units, lift
from .sample import SurfacePoints, sample_surface
from .visibility import compute_visibility


@dataclass
class PreparedShape:
    """points: the samples (world space). xyz: (1, N, 3) float32 tensor, centred and scaled into the
    unit sphere. normals: (1, N, 3). nbr: (1, N, k) int64 neighbour indices. units: the knowledge
    units over the points (None when the shape is only to be predicted). axes: the mesh's
    ``principal_frame`` (3, 3), once ``along`` has needed it."""

    mesh: Mesh
    points: SurfacePoints
    xyz: torch.Tensor
    normals: torch.Tensor
    nbr: torch.Tensor
    units: KnowledgeUnits | None = None
    axes: np.ndarray | None = None


def normalise(xyz: np.ndarray) -> np.ndarray:
    """Centre on the bounding-box centre and scale into the unit sphere (so one network serves shapes
    of any size; Fourier features assume coordinates in [-1, 1]). In the points' own float32, where
    every figure on record was made; in float64 where float32's squares would overflow or underflow
    (a shape beyond ~1e15 or below ~1e-15 units would collapse to a point)."""
    for dtype in (xyz.dtype, np.float64):
        p = np.asarray(xyz, dtype)
        lo, hi = p.min(axis=0), p.max(axis=0)
        c = (lo + hi) / 2
        with np.errstate(over="ignore", under="ignore"):
            r = float(np.linalg.norm(p - c, axis=1).max())
        if SAFE_RADII[0] < r < SAFE_RADII[1]:
            break
    return ((p - c) / (r or 1.0)).astype(np.float32)


#: The radii whose squares float32 holds with room to spare.
SAFE_RADII = (1e-15, 1e15)


def prepare_points(
    mesh: Mesh, n_points: int, seed: int, device: torch.device, k: int, cover: np.ndarray | None = None
) -> PreparedShape:
    """``n_points`` area-weighted samples, plus one at the centroid of every face of ``cover`` (F,)
    bool that got none: a face a user painted must reach the student even when it is one of 30,000."""
    points = sample_surface(mesh, n_points, seed=seed)
    if cover is not None:
        missing = np.flatnonzero(cover & (np.bincount(points.face, minlength=mesh.n_faces) == 0))
        if missing.size:
            tri = mesh.vertices[mesh.faces[missing]].astype(np.float64)
            n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
            points = SurfacePoints(
                np.concatenate([points.xyz, tri.mean(1).astype(np.float32)]),
                np.concatenate([points.normals, n.astype(np.float32)]),
                np.concatenate([points.face, missing.astype(points.face.dtype)]),
            )
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
    cover = None
    if labelled_faces is not None and 0 < int((labelled_faces >= 0).sum()) <= n_points // 4:
        cover = labelled_faces >= 0  # a few painted faces; fully labelled shapes are sampled densely anyway
    shape = prepare_points(capture.mesh, n_points, seed, device, k, cover)
    units = None
    if detections is not None:
        units = lift(capture, detections, shape.points, compute_visibility(capture, shape.points))
    if labelled_faces is not None:
        few = few_shot_units(shape.points, labelled_faces, len(detections.part_names) if detections else None)
        units = few if units is None else concat_units(units, few)
    shape.units = units
    return shape


def principal_axes(xyz: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weighted principal axes of ``xyz`` (N, 3) (``weight`` (N,)): ``(centred, axes)``, the
    points less their weighted mean (N, 3) float64 and the axes as columns (3, 3) float64, the
    widest spread first (each axis's sign as the eigen-solver gives it)."""
    w = weight / (float(weight.sum()) or 1.0)
    centred = xyz - w @ xyz
    return centred, np.linalg.eigh((centred * w[:, None]).T @ centred)[1][:, ::-1]


def principal_frame(mesh: Mesh) -> np.ndarray:
    """(3, 3) float64: the surface's principal axes as columns (``principal_axes`` of the faces'
    centroids by area), each pointing the way its area-weighted third moment is positive. Shapes of
    one category that lie in the file along different axes are alike in it, so one category student
    can learn them together."""
    area = mesh.face_areas()
    centred, axes = principal_axes(mesh.vertices[mesh.faces].astype(np.float64).mean(axis=1), area)
    third = area @ (centred @ axes) ** 3
    return axes * np.where(third < 0, -1.0, 1.0)


def in_frame(shape: PreparedShape, axes: np.ndarray) -> PreparedShape:
    """``shape`` with the student's coordinates and normals expressed along ``axes`` (3, 3) (the
    points, their faces and units stay; the kNN graph does not change under a rotation)."""
    xyz = normalise((shape.points.xyz.astype(np.float64) @ axes).astype(np.float32))
    shape.xyz = torch.as_tensor(xyz, device=shape.xyz.device)[None]
    shape.normals = torch.as_tensor((shape.points.normals @ axes).astype(np.float32), device=shape.xyz.device)[None]
    return shape


def along(shape: PreparedShape, frame: str) -> PreparedShape:
    """``shape`` as a student sees it along ``frame`` (``shared.options.FRAMES`` less "both"): the
    shape itself for "given", for "principal" a copy along the mesh's principal axes that shares its
    points, graph and units."""
    if frame == "given":
        return shape
    if frame != "principal":
        raise ValueError(f"a student sees a shape along one frame, not {frame!r}")
    if shape.axes is None:
        shape.axes = principal_frame(shape.mesh)
    return in_frame(replace(shape), shape.axes)


class Stretch:
    """A category fit's augmentation: each training step sees its shape stretched along each axis
    by its own random factor in [1 / ``factor``, ``factor``] (log-uniform), then scaled back into
    the unit sphere, so that one student learns parts rather than one shape's proportions.
    ``factor`` 1 leaves every shape as it is (the paper). Only steps that train (gradients
    enabled) are stretched: re-scoring and labelling see the shapes as they are."""

    def __init__(self, factor: float, seed: int):
        self.log_factor = float(np.log(factor))
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, xyz: torch.Tensor, normals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """xyz, normals: (1, N, 3) float32 -> the same, stretched."""
        if self.log_factor == 0.0 or not torch.is_grad_enabled():
            return xyz, normals
        s = torch.exp((2 * torch.rand(3, generator=self.gen) - 1) * self.log_factor).to(xyz)
        # scaling about the box's centre (the origin) keeps it the centre; normals transform by 1/s
        out = xyz * s
        out = out / out.norm(dim=-1).amax().clamp_min(1e-12)
        return out, torch.nn.functional.normalize(normals / s, dim=-1)
