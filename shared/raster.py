"""A numpy z-buffer rasteriser: face ids and a flat-shaded picture per view.

Vectorised: which triangle each pixel centre sees, and a flat shaded picture made from that, for
captures that need no render engine.

Conventions are those of ``camera``: pixel (i, j) spans [i, i+1), so its centre is at (i + 0.5,
j + 0.5); the camera looks along +z; a triangle is seen where the ray through a pixel centre hits it
at a camera depth inside the clip range, nearest first. That is what ray casting the pixel centres
returns, so the two agree except on exact ties (a pixel centre on a shared edge, coplanar overlaps),
where either answer is right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera import project_points

#: Candidate (pixel, triangle) pairs handled per chunk: bounds the memory of one pass (~100 MB).
_CHUNK = 2_000_000


@dataclass
class Raster:
    """One rasterised view. ``face_id (H, W) int32`` is the triangle seen at each pixel centre (-1:
    none); ``depth (H, W) float32`` its camera depth (inf where none). ``needs_ray_casting`` is True
    when a triangle crosses the camera plane (z <= 0), which a rasteriser cannot project: the caller
    must then use an exact ray caster for this view instead."""

    face_id: np.ndarray
    depth: np.ndarray
    needs_ray_casting: bool = False


def rasterize(
    vertices: np.ndarray,
    faces: np.ndarray,
    K: np.ndarray,
    world_to_cam: np.ndarray,
    size: tuple[int, int],
    *,
    orthographic: bool = False,
    clip: tuple[float, float] = (0.0, np.inf),
) -> Raster:
    """Rasterise triangles ``faces (F, 3) int`` over ``vertices (V, 3)`` (world space) into an image of
    ``size = (width, height)`` seen by ``K (3, 3)`` / ``world_to_cam (4, 4)``; surfaces nearer than
    ``clip[0]`` or farther than ``clip[1]`` (camera depth) are not seen. Ties in depth go to the lower
    triangle index, so the result is deterministic."""
    width, height = int(size[0]), int(size[1])
    near, far = float(clip[0]), float(clip[1])
    face_id = np.full(height * width, -1, np.int64)
    zbuf = np.full(height * width, np.inf)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    if faces.size == 0:
        return Raster(face_id.reshape(height, width).astype(np.int32), zbuf.reshape(height, width).astype(np.float32))
    uv, z = project_points(vertices, K, world_to_cam, orthographic)
    tz = z[faces]  # (F, 3)
    if not orthographic and np.any((tz.min(1) <= 0) & (tz.max(1) >= near)):
        return Raster(
            face_id.reshape(height, width).astype(np.int32), zbuf.reshape(height, width).astype(np.float32), True
        )
    keep = (tz.max(1) >= near) & (tz.min(1) <= far)
    tri = np.flatnonzero(keep)
    tuv = uv[faces[tri]]  # (T, 3, 2)
    tz = tz[tri]
    # Barycentric coordinates as affine functions of the pixel position: l_k = A_k x + B_k y + C_k
    # (l_0, l_1 stored, l_2 = 1 - l_0 - l_1).
    x0, y0 = tuv[:, 0, 0], tuv[:, 0, 1]
    x1, y1 = tuv[:, 1, 0], tuv[:, 1, 1]
    x2, y2 = tuv[:, 2, 0], tuv[:, 2, 1]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    ok = np.abs(area) > 1e-12
    # Pixel-centre bounding box: centres c = i + 0.5 with min <= c <= max.
    lo_x = np.maximum(np.ceil(tuv[..., 0].min(1) - 0.5), 0)
    hi_x = np.minimum(np.floor(tuv[..., 0].max(1) - 0.5), width - 1)
    lo_y = np.maximum(np.ceil(tuv[..., 1].min(1) - 0.5), 0)
    hi_y = np.minimum(np.floor(tuv[..., 1].max(1) - 0.5), height - 1)
    nx = np.where(ok, hi_x - lo_x + 1, 0).clip(0).astype(np.int64)
    ny = np.where(ok, hi_y - lo_y + 1, 0).clip(0).astype(np.int64)
    count = nx * ny
    live = np.flatnonzero(count > 0)
    if live.size == 0:
        return Raster(face_id.reshape(height, width).astype(np.int32), zbuf.reshape(height, width).astype(np.float32))
    inv = 1.0 / area[live]
    coef = np.stack(
        [
            (y1 - y2)[live] * inv,
            (x2 - x1)[live] * inv,
            (x1 * y2 - x2 * y1)[live] * inv,
            (y2 - y0)[live] * inv,
            (x0 - x2)[live] * inv,
            (x2 * y0 - x0 * y2)[live] * inv,
        ],
        axis=1,
    )
    # Perspective: 1/z is affine in screen space; orthographic: z itself is.
    zs = tz[live] if orthographic else 1.0 / tz[live]
    count, nx = count[live], nx[live]
    lo_x, lo_y = lo_x[live].astype(np.int64), lo_y[live].astype(np.int64)
    ids = tri[live]
    ends = np.cumsum(count)
    starts = ends - count
    # Triangles are cut into chunks of about _CHUNK candidate pixels (one huge triangle is its own chunk).
    cuts = np.searchsorted(ends, np.arange(_CHUNK, int(ends[-1]), _CHUNK), side="left")
    bounds = [0, *sorted(set((cuts + 1).tolist())), live.size]
    pix_all, dep_all, tri_all = [], [], []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if a >= b:
            continue
        n = int(ends[b - 1] - starts[a])
        t = np.repeat(np.arange(a, b), count[a:b])
        local = np.arange(n) - (starts[t] - starts[a])
        dy, dx = np.divmod(local, nx[t])
        px, py = lo_x[t] + dx, lo_y[t] + dy
        cx, cy = px + 0.5, py + 0.5
        c = coef[t]
        l0 = c[:, 0] * cx + c[:, 1] * cy + c[:, 2]
        l1 = c[:, 3] * cx + c[:, 4] * cy + c[:, 5]
        l2 = 1.0 - l0 - l1
        inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
        t, l0, l1, l2 = t[inside], l0[inside], l1[inside], l2[inside]
        zz = zs[t]
        d = l0 * zz[:, 0] + l1 * zz[:, 1] + l2 * zz[:, 2]
        if not orthographic:
            d = 1.0 / d
        seen = (d >= near) & (d <= far)
        pix_all.append((py[inside] * width + px[inside])[seen])
        dep_all.append(d[seen])
        tri_all.append(ids[t[seen]])
    pix, dep, tid = np.concatenate(pix_all), np.concatenate(dep_all), np.concatenate(tri_all)
    np.minimum.at(zbuf, pix, dep)
    win = dep <= zbuf[pix]
    face_id[:] = np.iinfo(np.int64).max
    np.minimum.at(face_id, pix[win], tid[win])
    face_id[face_id == np.iinfo(np.int64).max] = -1
    return Raster(face_id.reshape(height, width).astype(np.int32), zbuf.reshape(height, width).astype(np.float32))


def shade(
    face_id: np.ndarray,
    vertices: np.ndarray,
    faces: np.ndarray,
    K: np.ndarray,
    world_to_cam: np.ndarray,
    *,
    face_colors: np.ndarray | None = None,
    background: np.ndarray | tuple[float, float, float] = (255.0, 255.0, 255.0),
    lighting: str = "STUDIO",
    orthographic: bool = False,
) -> np.ndarray:
    """``(H, W, 3) uint8`` picture of a rasterised view: each pixel takes its face's colour
    (``face_colors (F, 3)`` display values in 0..255, default a light grey), lit by a headlight
    (``"STUDIO"``/``"MATCAP"``: 0.35 ambient + 0.65 |cos| between the face normal and the pixel's
    ray, both sides lit like Workbench) or unlit (``"FLAT"``); ``background (3,)`` elsewhere."""
    height, width = face_id.shape
    out = np.empty((height, width, 3), np.float32)
    out[:] = np.asarray(background, np.float32)
    fg = face_id >= 0
    if not fg.any():
        return out.astype(np.uint8)
    f = face_id[fg]
    colors = np.full((len(faces), 3), 204.0, np.float32) if face_colors is None else face_colors
    rgb = np.asarray(colors, np.float32)[f]
    if lighting != "FLAT":
        tri = np.asarray(vertices, np.float64)[np.asarray(faces)[f]]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-20)
        R = world_to_cam[:3, :3]
        if orthographic:
            ray = np.broadcast_to(R[2], normal.shape)
        else:
            vv, uu = np.nonzero(fg)
            d_cam = np.stack([(uu + 0.5 - K[0, 2]) / K[0, 0], (vv + 0.5 - K[1, 2]) / K[1, 1], np.ones(uu.size)], 1)
            ray = d_cam @ R  # camera -> world directions (R is orthonormal)
            ray /= np.linalg.norm(ray, axis=1, keepdims=True)
        cos = np.abs(np.einsum("ij,ij->i", normal, ray))
        rgb = rgb * (0.35 + 0.65 * cos)[:, None].astype(np.float32)
    out[fg] = rgb
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
