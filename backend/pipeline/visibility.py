"""Camera projection and per-view visibility of surface points (pixel precision, exact face ids)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from partdistill.shared.camera import camera_centre, project_points, view_direction
from partdistill.shared.capture import Capture

from .sample import SurfacePoints


@dataclass
class Visibility:
    """Per view, the visible points and their pixels: lists of (M_v,) int64 arrays."""

    points: list[np.ndarray]
    rows: list[np.ndarray]
    cols: list[np.ndarray]


def compute_visibility(capture: Capture, points: SurfacePoints) -> Visibility:
    extent = _extent(capture)
    vis = [visible_pixels(capture, points, v, extent) for v in range(capture.n_views)]
    return Visibility([a for a, _, _ in vis], [b for _, b, _ in vis], [c for _, _, c in vis])


def _extent(capture: Capture) -> float:
    """The mesh's largest side, the unit of the on-the-same-surface tolerance."""
    return float(np.ptp(capture.mesh.vertices.astype(np.float64), axis=0).max()) or 1.0


def visible_pixels(
    capture: Capture, points: SurfacePoints, view: int, extent: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which points are seen in ``view``, and at which pixel.

    A point is visible where the face-id map at its pixel shows the point's own face, or a face whose
    plane passes through the point along the line of sight (a neighbour on the same surface, so points
    near a triangle edge are not lost). A point whose own pixel centre just misses its surface (near
    a silhouette: a thin leg is mostly silhouette at 512 px) is matched with the nearest of the four
    pixel centres around it that does show its surface. Returns (point index (M,) int64,
    row (M,) int64, col (M,) int64), the pixel being where the point was seen. ``extent``: the mesh's
    largest side (computed when not given).
    """
    extent = _extent(capture) if extent is None else extent
    h, w = capture.image_size
    uv, z = project_points(points.xyz, capture.K[view], capture.world_to_cam[view], capture.is_orthographic(view))
    ok = (z > 0) & np.isfinite(uv).all(axis=1) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    idx = np.nonzero(ok)[0]
    uv = uv[idx]
    col, row = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
    seen = _shows_own_surface(capture, points, view, idx, row, col, extent)
    # second chance: the 2x2 pixel centres around the point, nearest first
    c0, r0 = np.floor(uv[:, 0] - 0.5).astype(np.int64), np.floor(uv[:, 1] - 0.5).astype(np.int64)
    cands = [(r0 + dr, c0 + dc) for dr in (0, 1) for dc in (0, 1)]
    dist = np.stack([np.hypot(uv[:, 0] - (c + 0.5), uv[:, 1] - (r + 0.5)) for r, c in cands], axis=1)
    for k in np.argsort(dist, axis=1).T:
        todo = np.nonzero(~seen)[0]
        if todo.size == 0:
            break
        r = np.array([cands[j][0][i] for i, j in zip(todo, k[todo], strict=True)], dtype=np.int64)
        c = np.array([cands[j][1][i] for i, j in zip(todo, k[todo], strict=True)], dtype=np.int64)
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        todo, r, c = todo[inside], r[inside], c[inside]
        hit = _shows_own_surface(capture, points, view, idx[todo], r, c, extent)
        seen[todo[hit]] = True
        row[todo[hit]], col[todo[hit]] = r[hit], c[hit]
    return idx[seen], row[seen], col[seen]


def _shows_own_surface(
    capture: Capture,
    points: SurfacePoints,
    view: int,
    idx: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    extent: float,
) -> np.ndarray:
    """(M,) bool: pixel (row, col) shows the point's own face, or a face whose plane the point lies on."""
    seen = capture.face_id[view][row, col]
    own = seen == points.face[idx]
    other = ~own & (seen >= 0)
    if other.any():
        own[other] = _on_plane(capture, points, view, idx[other], seen[other], extent)
    return own


def _on_plane(
    capture: Capture, points: SurfacePoints, view: int, idx: np.ndarray, seen: np.ndarray, extent: float
) -> np.ndarray:
    """Whether each point lies (within a small tolerance) on the plane of the face seen at its pixel,
    i.e. the surface seen there is the point's own surface, not an occluder in front of it."""
    tri = capture.mesh.vertices[capture.mesh.faces[seen]].astype(np.float64)
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
    p = points.xyz[idx].astype(np.float64)
    w2c = capture.world_to_cam[view]
    # the line of sight through the point: from the camera centre, or along the axis when orthographic
    ray = np.broadcast_to(view_direction(w2c), p.shape) if capture.is_orthographic(view) else p - camera_centre(w2c)
    dist_along = np.einsum("ij,ij->i", n, tri[:, 0] - p)
    denom = np.einsum("ij,ij->i", n, ray)
    scale = np.linalg.norm(ray, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = dist_along / denom  # plane hit = p + t * ray; t ~ 0 means p is on that plane
    return np.abs(t * scale) < 2e-3 * extent
