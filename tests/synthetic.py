"""Small synthetic captures for engine tests that need no Blender: boxes assembled into labelled
shapes, look-at cameras on a ring, and an exact numpy ray caster for the face-id maps."""

from __future__ import annotations

import numpy as np
from partdistill.shared.capture import Capture, Mesh

_BOX_FACES = np.array(
    [
        [0, 2, 1],
        [0, 3, 2],
        [4, 5, 6],
        [4, 6, 7],
        [0, 1, 5],
        [0, 5, 4],
        [1, 2, 6],
        [1, 6, 5],
        [2, 3, 7],
        [2, 7, 6],
        [3, 0, 4],
        [3, 4, 7],
    ],
    dtype=np.int32,
)


def box(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    v = np.array(
        [
            [x0, y0, z0],
            [x1, y0, z0],
            [x1, y1, z0],
            [x0, y1, z0],
            [x0, y0, z1],
            [x1, y0, z1],
            [x1, y1, z1],
            [x0, y1, z1],
        ],
        dtype=np.float32,
    )
    return v, _BOX_FACES.copy()


def assemble(parts: list[tuple[int, tuple]]) -> tuple[Mesh, np.ndarray]:
    """[(label, (lo, hi)), ...] -> (Mesh, gt_face_labels (F,) int32). Polygons are the box quads."""
    verts, faces, labels = [], [], []
    off = 0
    for label, (lo, hi) in parts:
        v, f = box(lo, hi)
        verts.append(v)
        faces.append(f + off)
        labels.append(np.full(len(f), label, dtype=np.int32))
        off += len(v)
    f = np.concatenate(faces)
    return Mesh(np.concatenate(verts), f, (np.arange(len(f)) // 2).astype(np.int32)), np.concatenate(labels)


def table() -> tuple[Mesh, np.ndarray, tuple[str, ...]]:
    """A table: a top (label 0) and four legs (label 1), z up."""
    parts = [(0, ((-1.0, -0.6, 0.9), (1.0, 0.6, 1.0)))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            cx, cy = sx * 0.85, sy * 0.45
            parts.append((1, ((cx - 0.06, cy - 0.06, 0.0), (cx + 0.06, cy + 0.06, 0.9))))
    mesh, gt = assemble(parts)
    return mesh, gt, ("top", "leg")


def look_at(eye, target=(0, 0, 0.5), up=(0, 0, 1)) -> np.ndarray:
    """(4, 4) world_to_cam in the OpenCV frame (x right, y down, z forward)."""
    eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    r = np.stack([x, y, z])
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = -r @ eye
    return m


def ring(n: int = 6, radius: float = 4.0, elevations=(25.0, -10.0)) -> list[np.ndarray]:
    out = []
    for i in range(n):
        az = 2 * np.pi * i / n
        el = np.deg2rad(elevations[i % len(elevations)])
        eye = (radius * np.cos(el) * np.cos(az), radius * np.cos(el) * np.sin(az), 0.5 + radius * np.sin(el))
        out.append(look_at(eye))
    return out


def raycast(mesh: Mesh, K: np.ndarray, w2c: np.ndarray, h: int, w: int) -> np.ndarray:
    """(H, W) int32 face ids at pixel centres (Möller–Trumbore against every triangle)."""
    c2w = np.linalg.inv(w2c)
    jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    pix = np.stack([jj.ravel(), ii.ravel(), np.ones(h * w)], axis=1)
    d = (pix @ np.linalg.inv(K).T) @ c2w[:3, :3].T
    o = c2w[:3, 3]
    tri = mesh.vertices[mesh.faces].astype(np.float64)
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    best = np.full(h * w, np.inf)
    fid = np.full(h * w, -1, dtype=np.int32)
    for f in range(len(tri)):
        p = np.cross(d, e2[f])
        det = p @ e1[f]
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / det
            s = o - tri[f, 0]
            u = (p @ s) * inv
            q = np.cross(s, e1[f])
            v = (d @ q) * inv
            t = (q @ e2[f]) * inv
        hit = (np.abs(det) > 1e-12) & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-6) & (t < best)
        best[hit] = t[hit]
        fid[hit] = f
    return fid.reshape(h, w)


def capture_of(mesh: Mesh, gt: np.ndarray, names, n_views: int = 6, size: int = 96) -> Capture:
    f = size * 1.2
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]], dtype=np.float64)
    w2cs = ring(n_views)
    fids = np.stack([raycast(mesh, K, m, size, size) for m in w2cs])
    tri = mesh.vertices[mesh.faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    shade = (80 + 150 * np.abs(n @ np.array([0.3, 0.5, 0.8]))).astype(np.uint8)
    rgb = np.where(fids[..., None] >= 0, shade[np.maximum(fids, 0)][..., None], 255).repeat(3, axis=-1).astype(np.uint8)
    return Capture(
        mesh,
        rgb,
        fids,
        np.repeat(K[None], n_views, 0),
        np.stack(w2cs),
        part_names=tuple(names),
        gt_face_labels=gt,
    ).validate()
