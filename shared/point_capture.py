"""Capturing a point cloud without Blender: its surfels rasterised from the camera ring.

The camera ring of the mesh capture
(:func:`~partdistill.shared.framing.ring_views`), and each view rasterised from the cloud's surfels
(one z-buffer pass gives the point seen at every pixel and the picture)."""

from __future__ import annotations

import time

import numpy as np

from .capture import Capture
from .errors import ValidationError
from .framing import frame, ring_views
from .point_cloud import PointCloud, faces_of_points, point_spacing, points_of_faces, surfel_mesh
from .progress import Progress
from .raster import rasterize, shade


class PointCapture:
    """Step-wise capture of a point cloud (for a UI drawing one view per tick)::

        pc = PointCapture(cloud, n_views=10, resolution=512)
        for i in range(pc.n_views):
            pc.capture_view(i)
        capture = pc.result()

    The points are drawn as surfels (squares of side three point spacings, normal to the point's
    normal) in their colours (light grey without), lit by a headlight."""

    def __init__(
        self,
        cloud: PointCloud,
        *,
        n_views: int = 10,
        resolution: int = 512,
        height: int | None = None,
        cameras: tuple[np.ndarray, np.ndarray, list | None] | None = None,
        background: tuple[float, float, float] = (255.0, 255.0, 255.0),
    ):
        """``cameras``: ``(K (V, 3, 3), world_to_cam (V, 4, 4), clip ranges or None)`` to draw the
        cloud from given cameras (those of a mesh capture) instead of the ring; ``resolution`` is
        then the width and ``height`` the height of the views (default square)."""
        cloud.validate()
        if not (isinstance(n_views, int) and 1 <= n_views <= 64):
            raise ValidationError("n_views", f"must be an integer in [1, 64], got {n_views!r}")
        if not 8 <= int(resolution) <= 4096:
            raise ValidationError("resolution", f"image sides must lie in [8, 4096], got {resolution}")
        t0 = time.perf_counter()
        self.spacing = point_spacing(cloud.points)
        self.mesh, normals = surfel_mesh(cloud, self.spacing)
        self.cloud = cloud if cloud.normals is not None else PointCloud(cloud.points, cloud.colors, normals)
        p = cloud.points.astype(np.float64)
        self.framing = frame(p)
        center, radius = self.framing.center, self.framing.radius + self.spacing
        self.size = int(resolution)
        self.height = self.size if height is None else int(height)
        self._ring = cameras is None
        if cameras is None:
            self.K, self.w2c, self.clips = ring_views(center, radius, n_views, self.size)
        else:
            self.K, self.w2c = np.asarray(cameras[0], np.float64), np.asarray(cameras[1], np.float64)
            n_views = len(self.K)
            clips = cameras[2]
            if clips is None:  # everything in front of the camera, out to beyond the cloud
                depth = [p @ m[2, :3] + m[2, 3] for m in self.w2c]
                clips = [(max(1e-6, float(d.min()) - 2 * self.spacing) * 0.5, float(d.max()) * 2 + 1.0) for d in depth]
            self.clips = [tuple(map(float, c)) for c in clips]
        self._colors = None if cloud.colors is None else np.repeat(cloud.colors.astype(np.float32), 2, axis=0)
        self._background = background
        self.rgb = np.zeros((n_views, self.height, self.size, 3), np.uint8)
        self.face_id = np.full((n_views, self.height, self.size), -1, np.int32)
        self._done = [False] * n_views
        self.timings = {"setup_s": time.perf_counter() - t0, "raster_s": 0.0, "render_s": 0.0}

    @property
    def n_views(self) -> int:
        return len(self._done)

    def capture_view(self, i: int) -> None:
        m, size = self.mesh, (self.size, self.height)
        t = time.perf_counter()
        fid = rasterize(m.vertices, m.faces, self.K[i], self.w2c[i], size, clip=self.clips[i]).face_id
        # Each point's first triangle stands for its square: the ids a bundle's point_id map restores.
        self.face_id[i] = faces_of_points(points_of_faces(fid))
        t1 = time.perf_counter()
        self.rgb[i] = shade(
            self.face_id[i],
            m.vertices,
            m.faces,
            self.K[i],
            self.w2c[i],
            face_colors=self._colors,
            background=self._background,
        )
        self.timings["raster_s"] += t1 - t
        self.timings["render_s"] += time.perf_counter() - t1
        self._done[i] = True

    def result(self, meta: dict | None = None) -> Capture:
        """The capture (every view must be done); ``meta`` is merged into ``Capture.meta``."""
        if not all(self._done):
            raise RuntimeError(f"views {[i for i, d in enumerate(self._done) if not d]} were not captured")
        info = {
            "engine": "raster",
            "kind": "points",
            "point_spacing": self.spacing,
            "clip": [list(c) for c in self.clips],
            "camera_names": [f"ring_{i:02d}" for i in range(self.n_views)],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            **(meta or {}),
        }
        warnings = [w for w in [self.framing.warning("points")] if w and self._ring]
        cap = Capture(
            self.mesh,
            self.rgb,
            self.face_id,
            self.K,
            self.w2c,
            orthographic=np.zeros(self.n_views, bool),
            meta=info,
            cloud=self.cloud,
            warnings=warnings,
        ).validate()
        hint = (
            "the points may be too sparse or too small to cover a pixel" if self._ring else "the cameras do not see it"
        )
        return cap.check_views_show_object(hint)


def capture_point_cloud(
    cloud: PointCloud,
    *,
    n_views: int = 10,
    resolution: int = 512,
    background: tuple[float, float, float] = (255.0, 255.0, 255.0),
    progress: Progress | None = None,
) -> Capture:
    """Capture ``cloud`` from a ring of ``n_views`` square views of ``resolution`` pixels (see
    :class:`PointCapture`). ``face_to_polygon[face_id]`` of the result is the point seen at each
    pixel (-1: background); :func:`point_ids` gives that map."""
    pc = PointCapture(cloud, n_views=n_views, resolution=resolution, background=background)
    for i in range(pc.n_views):
        pc.capture_view(i)
        if progress is not None:
            progress(i + 1, pc.n_views, f"view {i + 1}/{pc.n_views}")
    return pc.result()


def point_ids(capture: Capture) -> np.ndarray:
    """``(V, H, W) int32`` the point seen at each pixel of a point-cloud capture (-1: background)."""
    f2p = capture.mesh.face_to_polygon
    return np.where(capture.face_id >= 0, f2p[np.maximum(capture.face_id, 0)], -1).astype(np.int32)
