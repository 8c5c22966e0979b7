"""Projection of world points into a capture's views (OpenCV conventions, see ``capture``)."""

from __future__ import annotations

import numpy as np


def project_points(
    points: np.ndarray, K: np.ndarray, world_to_cam: np.ndarray, orthographic: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) -> pixel coordinates (N, 2) float64 (u right, v down, pixel (i, j) spans
    [i, i+1), so centres are at .5) and camera depth (N,) float64 (in front of the camera: z > 0)."""
    p = np.asarray(points, np.float64)
    cam = p @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    z = cam[:, 2]
    if orthographic:
        xy = cam[:, :2]
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            xy = cam[:, :2] / z[:, None]
    uv = xy @ K[:2, :2].T + K[:2, 2]
    return uv, z


def camera_centre(world_to_cam: np.ndarray) -> np.ndarray:
    """(3,) the camera position in world space."""
    return -world_to_cam[:3, :3].T @ world_to_cam[:3, 3]


def view_direction(world_to_cam: np.ndarray) -> np.ndarray:
    """(3,) the camera's forward (+z) axis in world space."""
    return world_to_cam[2, :3].copy()
