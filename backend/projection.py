"""Camera projection and per-view visibility of surface points (pixel precision, exact face ids)."""

from __future__ import annotations

import numpy as np

from ..shared.camera import camera_centre, project_points, view_direction
from ..shared.capture import Capture
from .sampling import SurfacePoints


def visible_pixels(capture: Capture, points: SurfacePoints, view: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which points are seen in ``view``, and at which pixel.

    A point is visible where the face-id map at its pixel shows the point's own face, or a face whose
    plane passes through the point along the pixel's line of sight (a neighbour on the same surface,
    so points near a triangle edge are not lost). Returns (point index (M,) int64, row (M,) int64,
    col (M,) int64).
    """
    h, w = capture.image_size
    uv, z = project_points(points.xyz, capture.K[view], capture.world_to_cam[view], capture.is_orthographic(view))
    ok = (z > 0) & np.isfinite(uv).all(axis=1)
    col = np.floor(uv[:, 0], where=ok, out=np.full(len(z), -1.0)).astype(np.int64)
    row = np.floor(uv[:, 1], where=ok, out=np.full(len(z), -1.0)).astype(np.int64)
    ok &= (col >= 0) & (col < w) & (row >= 0) & (row < h)
    idx = np.nonzero(ok)[0]
    seen = capture.face_id[view][row[idx], col[idx]]
    own = seen == points.face[idx]
    other = ~own & (seen >= 0)
    if other.any():
        own[other] = _on_plane(capture, points, view, idx[other], seen[other])
    idx = idx[own]
    return idx, row[idx], col[idx]


def _on_plane(capture: Capture, points: SurfacePoints, view: int, idx: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Whether each point lies (within a small tolerance) on the plane of the face seen at its pixel,
    i.e. the surface seen there is the point's own surface, not an occluder in front of it."""
    v = capture.mesh.vertices.astype(np.float64)
    tri = v[capture.mesh.faces[seen]]
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
    extent = float(np.ptp(v, axis=0).max()) or 1.0
    return np.abs(t * scale) < 2e-3 * extent
