"""What the cameras frame, and in which units a capture is worked on.

- :func:`frame` finds the object's mass (its surface, area-weighted) and leaves out specks far from
  it: one stray triangle a thousand units away must not shrink the object to a dot in every view.
- :func:`ring_views` is the default camera ring around that mass (the add-on's and the point
  capture's: one implementation, in numpy).
- :func:`move_views` and :func:`unit_capture` change units: the same views of a scaled and shifted
  object, so that an object a micrometre or 1e20 units across is captured and labelled at unit size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

#: Elevations (degrees) the ring cycles through, as in PartSLIP-style multi-view setups: mostly
#: slightly above, some from high up, some from below.
RING_ELEVATIONS_DEG = (10.0, 40.0, -20.0)
#: The ring's lens (mm) on a 36 mm sensor, and the margin around the framed sphere.
LENS_MM, SENSOR_MM, MARGIN = 50.0, 36.0, 1.1
#: A face (or point) is a speck when it lies farther than this many mass radii from the mass centre...
SPECK_RADII = 3.0
#: ...and the specks together hold less than this share of the surface (more is part of the object).
SPECK_MAX_SHARE = 0.01


@dataclass
class Framing:
    """center (3,) float64 and radius of the sphere the cameras frame; ``far`` (F,) bool marks the
    faces (or points) left out of it as specks, ``far_share`` their share of the surface (of the
    points) and ``far_radii`` how far the farthest lies, in radii of the framed sphere."""

    center: np.ndarray
    radius: float
    far: np.ndarray
    far_share: float = 0.0
    far_radii: float = 0.0

    def warning(self, what: str = "faces") -> str | None:
        """One line for the user when specks were left out of the framing, else None."""
        n = int(self.far.sum())
        if n == 0:
            return None
        return (
            f"{n} {what} ({100 * self.far_share:.2g} % of the surface) lie far from the object (up to "
            f"{self.far_radii:.3g} times its radius away) and are left out of the views: stray geometry?"
        )


def frame(vertices: np.ndarray, faces: np.ndarray | None = None) -> Framing:
    """The sphere the cameras frame around ``vertices (V, 3)`` with ``faces (F, 3)`` (area-weighted
    face centroids), or around points (``faces`` None, each point weighs the same).

    The mass centre is the weighted median of each axis and its radius the weighted 99th percentile
    of the distance to it. Elements farther than ``SPECK_RADII`` of those radii are specks when they
    hold less than ``SPECK_MAX_SHARE`` of the surface; the framed sphere is the bounding sphere of
    everything else (so a long thin part that belongs to the object stays in view)."""
    v = np.asarray(vertices, np.float64)
    if faces is None:
        centres, weights, corners = v, np.ones(len(v)), v[:, None, :]
    else:
        corners = v[np.asarray(faces, np.int64)]
        centres = corners.mean(1)
        e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
        weights = 0.5 * np.linalg.norm(np.cross(e1, e2), axis=1)
        if not np.isfinite(weights).all() or weights.sum() <= 0:
            weights = np.ones(len(centres))
    # Work relative to a rough centre in units of the rough size: squares stay finite at any scale.
    lo, hi = centres.min(0), centres.max(0)
    unit = float(np.abs(hi - lo).max()) or float(np.abs(lo).max()) or 1.0
    c0 = (lo + hi) / 2.0
    rel = (centres - c0) / unit
    mid = np.array([_weighted_quantile(rel[:, k], weights, 0.5) for k in range(3)])
    dist = np.linalg.norm(rel - mid, axis=1)
    mass_r = max(_weighted_quantile(dist, weights, 0.99), 1e-9)
    far = dist > SPECK_RADII * mass_r
    share = float(weights[far].sum() / weights.sum())
    if share >= SPECK_MAX_SHARE:
        far[:] = False
        share = 0.0
    kept = ((corners[~far] - c0) / unit).reshape(-1, 3)
    box_c = (kept.min(0) + kept.max(0)) / 2.0
    radius = float(np.linalg.norm(kept - box_c, axis=1).max())
    radius = radius if radius > 0 else 1e-9
    far_radii = float(np.linalg.norm(rel[far] - box_c, axis=1).max() / radius) if far.any() else 0.0
    return Framing(c0 + box_c * unit, radius * unit, far, share, far_radii)


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order])
    return float(x[order][min(np.searchsorted(cw, q * cw[-1]), len(x) - 1)])


def ring_views(
    center: np.ndarray, radius: float, n_views: int, size: int, elevations_deg: Sequence[float] = RING_ELEVATIONS_DEG
) -> tuple[np.ndarray, np.ndarray, list[tuple[float, float]]]:
    """``K (V, 3, 3)``, ``world_to_cam (V, 4, 4)`` (OpenCV frame) and clip ranges of ``n_views``
    square ``size``-pixel perspective views around a sphere: view ``k`` at azimuth ``360 k /
    n_views`` degrees (0 = front, -Y), elevation ``elevations_deg[k % len]``, world +Z up, far
    enough that the sphere (times ``MARGIN``) fits the field of view."""
    radius = float(radius)
    if not radius > 0:
        raise ValueError(f"the framed radius must be positive, got {radius}")
    dist = radius * MARGIN / math.sin(math.atan(SENSOR_MM / 2 / LENS_MM))
    f = LENS_MM / SENSOR_MM * size
    K = np.tile(np.array([[f, 0.0, size / 2.0], [0.0, f, size / 2.0], [0.0, 0.0, 1.0]]), (n_views, 1, 1))
    w2c = np.zeros((n_views, 4, 4))
    clips = []
    for k in range(n_views):
        az, el = math.radians(360.0 * k / n_views), math.radians(elevations_deg[k % len(elevations_deg)])
        offset = np.array([math.cos(el) * math.sin(az), -math.cos(el) * math.cos(az), math.sin(el)])
        eye = np.asarray(center, np.float64) + dist * offset
        fwd = -offset
        up = np.array([0.0, 0.0, 1.0]) - fwd[2] * fwd
        up /= np.linalg.norm(up)
        right = np.cross(fwd, up)
        R = np.stack([right, -up, fwd])  # rows: camera x (right), y (down), z (forward) in world space
        w2c[k, :3, :3], w2c[k, :3, 3], w2c[k, 3, 3] = R, -R @ eye, 1.0
        clips.append((max(dist - 2.0 * radius, dist * 1e-3), dist + 2.0 * radius))
    return K, w2c, clips


def move_views(
    K: np.ndarray,
    world_to_cam: np.ndarray,
    orthographic: np.ndarray | None,
    clips: Sequence[Sequence[float]] | None,
    scale: float,
    offset: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[tuple[float, float]] | None]:
    """The same views (``K (N, 3, 3)``, ``world_to_cam (N, 4, 4)``, clip ranges) of the world moved by
    ``p -> scale * p + offset``: every pixel sees the same surface point. Camera coordinates scale
    with the world (depths and clip ranges by ``scale``); perspective ``K`` stays, orthographic ``K``
    divides its focal terms by ``scale``."""
    K = np.array(K, np.float64)
    w2c = np.array(world_to_cam, np.float64)
    R, t = w2c[:, :3, :3], w2c[:, :3, 3]
    w2c[:, :3, 3] = scale * t - np.einsum("nij,j->ni", R, np.asarray(offset, np.float64))
    if orthographic is not None and np.any(orthographic):
        ortho = np.asarray(orthographic, bool)
        K[ortho, :2, :2] /= scale
    moved = None if clips is None else [(float(a) * scale, float(b) * scale) for a, b in clips]
    return K, w2c, moved


def unit_capture(capture):
    """``capture`` moved so that its framed sphere (:func:`frame`) is the unit sphere at the origin:
    the engine's arithmetic (squares of coordinates in float32, tolerances) then holds for objects of
    any size and place. Labels are per face, so results need no mapping back."""
    from .capture import Capture

    assert isinstance(capture, Capture)
    m = capture.mesh
    fr = frame(m.vertices, m.faces)
    scale, offset = 1.0 / fr.radius, -fr.center / fr.radius
    K, w2c, clips = move_views(
        capture.K, capture.world_to_cam, capture.orthographic, capture.meta.get("clip"), scale, offset
    )
    verts = (m.vertices.astype(np.float64) * scale + offset).astype(np.float32)
    meta = dict(capture.meta)
    if clips is not None:
        meta["clip"] = [list(c) for c in clips]
    if "point_spacing" in meta:
        meta["point_spacing"] = float(meta["point_spacing"]) * scale
    cloud = capture.cloud
    if cloud is not None:
        cloud = replace(cloud, points=(cloud.points.astype(np.float64) * scale + offset).astype(np.float32))
    return replace(capture, mesh=replace(m, vertices=verts), K=K, world_to_cam=w2c, meta=meta, cloud=cloud)
