"""Points sampled on the mesh surface: what the student sees and what knowledge units cover."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from partdistill.shared.capture import Mesh


@dataclass
class SurfacePoints:
    """xyz: (N, 3) float32 world space. normals: (N, 3) float32 unit face normals.
    face: (N,) int32 index of the triangle each point lies on."""

    xyz: np.ndarray
    normals: np.ndarray
    face: np.ndarray

    @property
    def n(self) -> int:
        return int(self.xyz.shape[0])


def sample_surface(mesh: Mesh, n: int, seed: int = 0) -> SurfacePoints:
    """Area-weighted uniform samples. Degenerate (zero-area) faces get none, but every face with
    area gets at least... nothing guaranteed: faces without samples are labelled from their neighbours
    later (see ``label``)."""
    rng = np.random.default_rng(seed)
    v = mesh.vertices.astype(np.float64)
    tri = v[mesh.faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1)
    total = area.sum()
    if not np.isfinite(total) or total <= 0:
        from partdistill.shared.errors import ValidationError

        raise ValidationError("faces", "the mesh has zero surface area (all faces degenerate)")
    face = rng.choice(len(area), size=n, p=area / total).astype(np.int32)
    r1 = np.sqrt(rng.random(n))
    r2 = rng.random(n)
    w = np.stack([1 - r1, r1 * (1 - r2), r1 * r2], axis=1)
    xyz = np.einsum("nk,nkd->nd", w, tri[face])
    normals = cross[face] / np.maximum(2 * area[face], 1e-20)[:, None]
    return SurfacePoints(xyz.astype(np.float32), normals.astype(np.float32), face)
