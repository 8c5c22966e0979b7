"""Cameras of a capture: the default ring, and OpenCV matrices of a Blender camera.

See the package docstring for the conventions of ``K`` / ``world_to_cam``."""

from __future__ import annotations

from collections.abc import Sequence

import bpy
import numpy as np
from mathutils import Matrix, Vector
from partdistill.shared.errors import ValidationError
from partdistill.shared.framing import LENS_MM, RING_ELEVATIONS_DEG, SENSOR_MM, ring_views

# Blender camera frame (x right, y up, looking down -z) -> OpenCV (x right, y down, z forward).
_FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])


def ring_cameras(
    obj: bpy.types.Object,
    n_views: int = 10,
    *,
    collection: bpy.types.Collection | None = None,
    bounds: tuple[Sequence[float], float] | None = None,
    elevations_deg: Sequence[float] = RING_ELEVATIONS_DEG,
) -> list[bpy.types.Object]:
    """Create ``n_views`` perspective cameras around ``obj`` as Blender objects: the ring of
    :func:`~partdistill.shared.framing.ring_views` (view ``k`` at azimuth ``360 k / n_views`` degrees,
    0 = front, -Y; elevation ``elevations_deg[k % len(elevations_deg)]``; a 50 mm lens on a 36 mm
    sensor), looking at a sphere. bounds: ``(center, radius)`` in world space; default: the
    bounding sphere of the evaluated object. The cameras are linked into ``collection`` (default: the
    context scene's master collection); the caller removes them (``bpy.data.objects.remove`` and
    ``bpy.data.cameras.remove``).
    """
    if bounds is None:
        depsgraph = bpy.context.evaluated_depsgraph_get()
        obj_eval = obj.evaluated_get(depsgraph)
        corners = np.array([obj_eval.matrix_world @ Vector(c) for c in obj_eval.bound_box])
        center, radius = _bounding_sphere(corners)
    else:
        center, radius = np.asarray(bounds[0], np.float64), float(bounds[1])
    if collection is None:
        collection = bpy.context.scene.collection
    _, w2c, clips = ring_views(center, max(radius, 1e-9), n_views, 512, elevations_deg)
    cams = []
    for k in range(n_views):
        data = bpy.data.cameras.new(f"partdistill ring {k:02d}")
        data.lens, data.sensor_width, data.sensor_fit = LENS_MM, SENSOR_MM, "AUTO"
        data.clip_start, data.clip_end = clips[k]
        cam = bpy.data.objects.new(data.name, data)
        cam.matrix_world = Matrix(np.linalg.inv(_FLIP_YZ @ w2c[k]).tolist())
        collection.objects.link(cam)
        cams.append(cam)
    return cams


def camera_matrices(
    cam: bpy.types.Object, depsgraph: bpy.types.Depsgraph, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """OpenCV ``K (3, 3) float64``, ``world_to_cam (4, 4) float64`` and whether the camera is
    orthographic (then ``K`` is affine, see the package docstring), for ``cam`` rendering a
    ``width`` x ``height`` image (square pixels; sensor fit and lens shift included)."""
    P = np.array(cam.calc_matrix_camera(depsgraph, x=width, y=height, scale_x=1.0, scale_y=1.0), np.float64)
    K = np.eye(3)
    K[0, 0] = P[0, 0] * width / 2.0
    K[1, 1] = P[1, 1] * height / 2.0
    if cam.data.type == "ORTHO":
        K[0, 2] = width / 2.0 * (1.0 + P[0, 3])
        K[1, 2] = height / 2.0 * (1.0 - P[1, 3])
    else:
        K[0, 2] = width / 2.0 * (1.0 - P[0, 2])
        K[1, 2] = height / 2.0 * (1.0 + P[1, 2])
    view = np.array(cam.matrix_world.normalized().inverted(), np.float64)
    return K, _FLIP_YZ @ view, cam.data.type == "ORTHO"


def _bounding_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre of the axis-aligned box and the radius reaching the farthest point."""
    p = np.asarray(points, np.float64)
    center = (p.min(0) + p.max(0)) / 2.0
    return center, float(np.linalg.norm(p - center, axis=1).max())


def remove_objects(objects: Sequence[bpy.types.Object]) -> None:
    """Remove objects made for a capture (ring cameras, the Cycles sun) and their orphaned data."""
    for o in objects:
        data = o.data
        bpy.data.objects.remove(o)
        if isinstance(data, bpy.types.Camera) and data.users == 0:
            bpy.data.cameras.remove(data)
        elif isinstance(data, bpy.types.Light) and data.users == 0:
            bpy.data.lights.remove(data)


def image_size(resolution: int | tuple[int, int], scene: bpy.types.Scene, use_ring: bool) -> tuple[int, int]:
    """``(width, height)`` of the captured views: a pair as given; an int is the longer side, square
    for a ring, else with the aspect ratio of ``scene``'s render settings."""
    if isinstance(resolution, tuple | list):
        if len(resolution) != 2:
            raise ValidationError("resolution", f"expected (width, height), got {resolution!r}")
        w, h = (int(x) for x in resolution)
    else:
        side = int(resolution)
        if use_ring:
            w = h = side
        else:
            r = scene.render
            aspect = (r.resolution_x * r.pixel_aspect_x) / (r.resolution_y * r.pixel_aspect_y)
            w, h = (side, max(1, round(side / aspect))) if aspect >= 1 else (max(1, round(side * aspect)), side)
    if not (8 <= w <= 4096 and 8 <= h <= 4096):
        raise ValidationError("resolution", f"image sides must lie in [8, 4096], got {w}x{h}")
    return w, h
