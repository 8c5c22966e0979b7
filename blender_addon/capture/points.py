"""Capturing point-cloud objects and meshes without faces.

A mesh with vertices but no faces is what Blender's PLY importer makes of a scan. Their world-space
points (and a point colour attribute, if any) go to the shared numpy capture; nothing is added to
the scene."""

from __future__ import annotations

from collections.abc import Iterator

import bpy
import numpy as np
from partdistill.shared.capture import Capture, PointCloud
from partdistill.shared.errors import ValidationError
from partdistill.shared.point_capture import PointCapture


def is_point_object(obj: object) -> bool:
    """A point-cloud object, or a mesh object with vertices and no faces."""
    if not isinstance(obj, bpy.types.Object):
        return False
    if obj.type == "POINTCLOUD":
        return True
    return obj.type == "MESH" and len(obj.data.polygons) == 0 and len(obj.data.vertices) > 0


def point_count(obj: bpy.types.Object) -> int:
    return len(obj.data.points) if obj.type == "POINTCLOUD" else len(obj.data.vertices)


def object_points(obj: bpy.types.Object) -> PointCloud:
    """The object's points in world space, with the colours of its first point colour attribute."""
    data = obj.data
    n = point_count(obj)
    co = np.empty(n * 3, np.float32)
    if obj.type == "POINTCLOUD":
        data.attributes["position"].data.foreach_get("vector", co)
    else:
        data.vertices.foreach_get("co", co)
    M = np.array(obj.matrix_world, np.float64)
    pts = (co.reshape(-1, 3).astype(np.float64) @ M[:3, :3].T + M[:3, 3]).astype(np.float32)
    colors = None
    for attr in data.attributes:
        if (
            attr.domain == "POINT"
            and attr.data_type in ("FLOAT_COLOR", "BYTE_COLOR")
            and not attr.name.startswith("partdistill")
        ):
            rgba = np.empty(n * 4, np.float32)
            attr.data.foreach_get("color_srgb" if hasattr(attr.data[0], "color_srgb") else "color", rgba)
            colors = np.clip(np.rint(rgba.reshape(-1, 4)[:, :3] * 255.0), 0, 255).astype(np.uint8)
            break
    if not np.all(np.isfinite(pts)):
        raise ValidationError("object", f"{obj.name!r} has points at NaN or infinite positions")
    return PointCloud(pts, colors)


class PointSession:
    """The :class:`~.session.CaptureSession` interface for a point object (``view_steps``,
    ``result``, a context manager); one step per view."""

    def __init__(self, obj: bpy.types.Object, *, n_views: int = 10, resolution: int = 512, **_: object):
        if not is_point_object(obj):
            raise ValidationError("object", f"{getattr(obj, 'name', obj)!r} is not a point cloud")
        self._name = obj.name
        self._capture = PointCapture(object_points(obj), n_views=n_views, resolution=int(resolution))

    def __enter__(self) -> PointSession:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @property
    def n_views(self) -> int:
        return self._capture.n_views

    def capture_view(self, i: int) -> None:
        self._capture.capture_view(i)

    def view_steps(self, i: int, bands: int = 4) -> Iterator[None]:
        self._capture.capture_view(i)
        yield from ()

    def result(self) -> Capture:
        return self._capture.result({"object_name": self._name, "n_polygons": self._capture.cloud.n})
