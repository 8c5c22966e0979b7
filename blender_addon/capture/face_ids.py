"""Exact per-pixel face ids by ray casting, and the capture mesh's triangulation.

Rays through the pixel centres cast against a BVH of the very triangles
of ``Capture.mesh``, derived from the stored ``K`` / ``world_to_cam`` (so ids, cameras and images
agree by construction); and the triangulation of the evaluated copy whose ``face_to_polygon`` maps
each triangle back to a polygon of the user's own mesh."""

from __future__ import annotations

from itertools import repeat

import bpy
import numpy as np
from mathutils import Vector
from mathutils.bvhtree import BVHTree
from partdistill.shared.camera import project_points
from partdistill.shared.capture import Mesh
from partdistill.shared.errors import ValidationError

#: Face attribute on the private copy carrying ``polygon index + 1`` through modifiers (0 = a face
#: no source polygon produced, e.g. from a Boolean operand).
_SOURCE_ATTR = "_partdistill_source_polygon"


def evaluated_triangles(obj: bpy.types.Object, copy_eval: bpy.types.Object) -> tuple[Mesh, int, np.ndarray]:
    """Triangulate the evaluated copy into a world-space ``Mesh`` whose ``face_to_polygon`` indexes
    the polygons of ``obj``'s own mesh; also return that polygon count and each triangle's material
    slot index ``(T,) int32`` (what the rasteriser colours it with)."""
    n_source = len(obj.data.polygons)
    if n_source == 0:
        raise ValidationError("object", f"{obj.name!r} has no faces of its own to label")
    me = copy_eval.to_mesh()
    try:
        n_v, n_p = len(me.vertices), len(me.polygons)
        co = np.empty(n_v * 3, np.float32)
        me.vertices.foreach_get("co", co)
        me.calc_loop_triangles()
        n_t = len(me.loop_triangles)
        if n_t == 0:
            raise ValidationError("object", f"{obj.name!r} has no faces after its modifiers")
        tris = np.empty(n_t * 3, np.int32)
        me.loop_triangles.foreach_get("vertices", tris)
        tri_poly = np.empty(n_t, np.int32)
        me.loop_triangles.foreach_get("polygon_index", tri_poly)
        poly_material = np.zeros(n_p, np.int32)
        me.polygons.foreach_get("material_index", poly_material)
        attr = me.attributes.get(_SOURCE_ATTR)
        if attr is not None and attr.domain == "FACE" and attr.data_type == "INT":
            poly_source = np.empty(n_p, np.int32)
            attr.data.foreach_get("value", poly_source)
            poly_source -= 1
        else:  # a modifier dropped the attribute (e.g. Remesh): fall back to geometry for all faces
            poly_source = np.full(n_p, -1, np.int32)
    finally:
        copy_eval.to_mesh_clear()
    M = np.array(copy_eval.matrix_world, np.float64)
    local = co.reshape(-1, 3).astype(np.float64)
    verts = (local @ M[:3, :3].T + M[:3, 3]).astype(np.float32)
    tris = tris.reshape(-1, 3)
    face_to_polygon = poly_source[tri_poly]
    bad = (face_to_polygon < 0) | (face_to_polygon >= n_source)
    if bad.any():
        face_to_polygon[bad] = _nearest_source_polygons(obj, local[tris[bad]].mean(axis=1))
    mesh = Mesh(vertices=verts, faces=tris, face_to_polygon=face_to_polygon.astype(np.int32), polygon_count=n_source)
    return mesh.validate(), n_source, poly_material[tri_poly]


def _nearest_source_polygons(obj: bpy.types.Object, points_local: np.ndarray) -> np.ndarray:
    """``(N,) int32`` index of the polygon of ``obj``'s own mesh nearest to each point (object space).
    Used only for triangles whose source polygon a modifier did not propagate."""
    me = obj.data
    co = np.empty(len(me.vertices) * 3, np.float32)
    me.vertices.foreach_get("co", co)
    loops = np.empty(len(me.loops), np.int32)
    me.loops.foreach_get("vertex_index", loops)
    starts = np.empty(len(me.polygons), np.int32)
    me.polygons.foreach_get("loop_start", starts)
    polys = np.split(loops, starts[1:]) if len(starts) > 1 else [loops]
    bvh = BVHTree.FromPolygons(co.reshape(-1, 3).tolist(), [p.tolist() for p in polys], epsilon=0.0)
    out = np.zeros(len(points_local), np.int32)
    for k, pt in enumerate(points_local.tolist()):
        idx = bvh.find_nearest(pt)[2]
        out[k] = 0 if idx is None else idx
    return out


def dilate(mask: np.ndarray) -> np.ndarray:
    """``(H, W) bool`` grown by one pixel (3x3)."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    grown = out.copy()
    out[:, 1:] |= grown[:, :-1]
    out[:, :-1] |= grown[:, 1:]
    return out


def cast_face_ids(
    bvh: BVHTree,
    aabb: np.ndarray,
    K: np.ndarray,
    world_to_cam: np.ndarray,
    clip: tuple[float, float],
    orthographic: bool,
    size: tuple[int, int],
    *,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """``(H, W) int32`` triangle seen through each pixel centre (-1: none), honouring the clip range.

    Only pixels inside the projected bounding box, and among ``candidates`` ``(H, W) bool`` when
    given, are cast: the capture passes the render's coverage (alpha > 0, grown by a pixel), since a
    pixel the render left empty shows nothing a teacher could label. Perspective rays share their
    origin (the camera centre), orthographic rays their direction, which halves the Python work."""
    width, height = size
    out = np.full((height, width), -1, np.int32)
    near, far = clip
    corners = np.array([[x, y, z] for x in aabb[:, 0] for y in aabb[:, 1] for z in aabb[:, 2]])
    uv, z = project_points(corners, K, world_to_cam, orthographic)
    if not orthographic and np.any(z <= near):
        u0, v0, u1, v1 = 0, 0, width, height  # the box straddles the camera plane: cast everywhere
    else:
        if np.all(z < near) or np.all(z > far):
            return out
        u0, v0 = np.floor(uv.min(0)).astype(int) - 1
        u1, v1 = np.ceil(uv.max(0)).astype(int) + 1
        u0, v0, u1, v1 = max(u0, 0), max(v0, 0), min(u1, width), min(v1, height)
        if u0 >= u1 or v0 >= v1:
            return out
    vv, uu = np.mgrid[v0:v1, u0:u1]
    if candidates is not None:
        keep = candidates[v0:v1, u0:u1]
        vv, uu = vv[keep], uu[keep]
    vv, uu = vv.ravel(), uu.ravel()
    if vv.size == 0:
        return out
    xx = (uu + 0.5 - K[0, 2]) / K[0, 0]
    yy = (vv + 0.5 - K[1, 2]) / K[1, 1]
    cam_to_world = np.linalg.inv(world_to_cam)
    R, t = cam_to_world[:3, :3], cam_to_world[:3, 3]
    ray_cast = bvh.ray_cast
    if not orthographic:
        d_cam = np.stack([xx.ravel(), yy.ravel(), np.ones(xx.size)], axis=1)
        dirs = d_cam @ R.T
        origin = Vector(t.tolist())
        # One generous max distance for all rays; hits outside [near, far] in depth are fixed below.
        max_dist = far * float(np.linalg.norm(d_cam, axis=1).max()) * 1.0001
        hits = list(map(ray_cast, repeat(origin), dirs.tolist(), repeat(max_dist)))
        ids = np.fromiter((-1 if h[2] is None else h[2] for h in hits), np.int32, count=len(hits))
        depth = np.fromiter((0.0 if h[2] is None else h[3] for h in hits), np.float64, count=len(hits))
        depth /= np.linalg.norm(d_cam, axis=1)  # distance along the ray -> camera z
        ids[(ids >= 0) & (depth > far)] = -1
        too_near = np.flatnonzero((ids >= 0) & (depth < near))
        if too_near.size:  # the render clips that surface and shows what lies behind it
            starts = (d_cam[too_near] * near) @ R.T + t
            lengths = (far - near) * np.linalg.norm(d_cam[too_near], axis=1)
            for k, o, d, n in zip(too_near, starts.tolist(), dirs[too_near].tolist(), lengths.tolist(), strict=True):
                idx = ray_cast(o, d, n)[2]
                ids[k] = -1 if idx is None else idx
    else:
        o_cam = np.stack([xx.ravel(), yy.ravel(), np.full(xx.size, near)], axis=1)
        origins = o_cam @ R.T + t
        direction = Vector((R @ np.array([0.0, 0.0, 1.0])).tolist())
        hits = list(map(ray_cast, origins.tolist(), repeat(direction), repeat(far - near)))
        ids = np.fromiter((-1 if h[2] is None else h[2] for h in hits), np.int32, count=len(hits))
    out[vv, uu] = ids
    return out
