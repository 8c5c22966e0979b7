"""The capture session: a private scene rendered view by view into a ``Capture``.

A private scene holding a private copy of the object (and ring cameras when
needed), rendered view by view; the views' images, face ids and cameras make the ``Capture``."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator

import bpy
import numpy as np
from mathutils import Matrix
from mathutils.bvhtree import BVHTree
from partdistill.shared.capture import Capture
from partdistill.shared.errors import ValidationError
from partdistill.shared.framing import frame, ring_views
from partdistill.shared.progress import Progress
from partdistill.shared.raster import rasterize, shade

from .cameras import camera_matrices, image_size, remove_objects, ring_cameras
from .colors import triangle_colors
from .face_ids import cast_face_ids, dilate, evaluated_triangles
from .private_copy import private_copy
from .render import (
    WORKBENCH_AA,
    add_cycles_lighting,
    configure_cycles,
    configure_render,
    configure_workbench,
    fast_tmp_dir,
    follow_camera,
    guard_render_result,
    read_tga_over,
    resolve_engine,
)
from .settings import CaptureSettings, describe


def capture_object(obj: bpy.types.Object, *, progress: Progress | None = None, **settings: object) -> Capture:
    """Render ``obj`` from several cameras and return the capture (mesh, RGB, face ids, cameras).

    ``settings`` are those of :class:`CaptureSettings` (cameras, resolution, engine, ring, n_views,
    scene, shading). progress: called as ``progress(done, total, message)`` after each view; an
    exception raised there aborts the capture (the scene is cleaned up all the same).

    ``Capture.orthographic`` marks orthographic views. ``Capture.meta`` holds ``camera_names``, ``engine``,
    ``object_name``, ``n_polygons`` (polygons of the object's own mesh; ``face_to_polygon`` indexes
    them), ``clip`` (per view ``[near, far]``) and ``timings`` (seconds).
    """
    with CaptureSession(obj, **settings) as session:
        for i in range(session.n_views):
            session.capture_view(i)
            if progress is not None:
                progress(i + 1, session.n_views, f"view {i + 1}/{session.n_views}")
        return session.result()


class CaptureSession:
    """Step-wise form of :func:`capture_object` (the same settings), for callers that render one view
    per timer tick to keep Blender's UI responsive::

        with CaptureSession(obj) as s:
            for i in range(s.n_views):
                s.capture_view(i)
            capture = s.result()

    Between ``__enter__`` and ``__exit__`` a private scene, a copy of the object and possibly ring
    cameras exist in ``bpy.data``; ``__exit__`` removes them whatever happened. Keep the session
    short-lived (do not let the user undo across it).
    """

    def __init__(self, obj: bpy.types.Object, **settings: object):
        if not isinstance(obj, bpy.types.Object) or obj.type != "MESH":
            raise ValidationError("object", f"expected a mesh object, got {describe(obj)}")
        self._obj = obj
        self._settings = CaptureSettings(**settings).validate()  # type: ignore[arg-type]
        self._scene = self._settings.scene if self._settings.scene is not None else bpy.context.scene
        self._cleanup: list[Callable[[], None]] = []
        self._timings = {"setup_s": 0.0, "render_s": 0.0, "read_s": 0.0, "raycast_s": 0.0, "raster_s": 0.0}

    # -- context manager

    def __enter__(self) -> CaptureSession:
        try:
            self._setup()
        except BaseException:
            self._teardown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._teardown()

    @property
    def n_views(self) -> int:
        return len(self._cams)

    def capture_view(self, i: int) -> None:
        """Render view ``i`` and cast its face ids."""
        for _ in self.view_steps(i):
            pass

    def view_steps(self, i: int, bands: int = 4) -> Iterator[None]:
        """Capture view ``i`` in short steps, yielding after the render and after each of ``bands``
        horizontal bands of face ids, so that a UI driving it one step per tick never blocks for a
        whole view (the face ids are the same as in one go: each band casts its own pixel rows).
        The rasteriser does a whole view in one step (tens of milliseconds)."""
        if self._engine == "raster":
            yield from self._raster_view(i, bands)
            return
        cam = self._cams[i]
        self._tmp.camera = cam
        if self._light is not None:
            follow_camera(self._light, self._cam_to_world[i])
        t0 = time.perf_counter()
        try:
            bpy.ops.render.render(write_still=True, scene=self._tmp.name)
        except RuntimeError as e:
            raise RuntimeError(f"rendering view {i} ({cam.name}) failed: {e}") from e
        t1 = time.perf_counter()
        self._rgb[i], alpha = read_tga_over(self._image_path, self._settings.background_255, self._size)
        t2 = time.perf_counter()
        self._timings["render_s"] += t1 - t0
        self._timings["read_s"] += t2 - t1
        yield
        candidates = dilate(alpha > 0)
        face_id = np.full(candidates.shape, -1, np.int32)
        yield from self._cast_in_bands(i, face_id, candidates, bands)
        self._face_id[i] = face_id
        self._done[i] = True

    def _raster_view(self, i: int, bands: int) -> Iterator[None]:
        verts, faces = self._mesh.vertices, self._mesh.faces
        t = time.perf_counter()
        r = rasterize(
            verts, faces, self._K[i], self._w2c[i], self._size, orthographic=self._orthographic[i], clip=self._clip[i]
        )
        face_id = r.face_id
        self._timings["raster_s"] += time.perf_counter() - t
        if r.needs_ray_casting:  # the mesh crosses the camera plane: ray cast this view exactly, in bands
            yield
            yield from self._cast_in_bands(i, face_id, np.ones(face_id.shape, bool), bands)
        t = time.perf_counter()
        self._rgb[i] = shade(
            face_id,
            verts,
            faces,
            self._K[i],
            self._w2c[i],
            face_colors=self._tri_colors,
            background=self._settings.background_255,
            lighting=self._settings.lighting,
            orthographic=self._orthographic[i],
        )
        self._timings["render_s"] += time.perf_counter() - t
        self._face_id[i] = face_id
        self._done[i] = True

    def _cast_in_bands(self, i: int, face_id: np.ndarray, candidates: np.ndarray, bands: int) -> Iterator[None]:
        """Ray cast view ``i``'s face ids at the ``candidates`` ``(H, W) bool`` pixels into ``face_id``
        ``(H, W) int32``, a band of rows at a time, yielding between bands."""
        for k, rows in enumerate(np.array_split(np.arange(candidates.shape[0]), max(1, bands))):
            if k:
                yield
            t = time.perf_counter()
            band = np.zeros_like(candidates)
            band[rows] = candidates[rows]
            cast = cast_face_ids(
                self._bvh,
                self._aabb,
                self._K[i],
                self._w2c[i],
                self._clip[i],
                self._orthographic[i],
                self._size,
                candidates=band,
            )
            face_id[rows] = cast[rows]
            self._timings["raycast_s"] += time.perf_counter() - t

    @property
    def _bvh(self) -> BVHTree:
        if self._bvh_tree is None:
            verts, faces = self._mesh.vertices, self._mesh.faces
            self._bvh_tree = BVHTree.FromPolygons(verts.tolist(), faces.tolist(), all_triangles=True, epsilon=0.0)
        return self._bvh_tree

    def result(self) -> Capture:
        """The capture of all views rendered so far (all of them after a full loop)."""
        if not all(self._done):
            missing = [i for i, d in enumerate(self._done) if not d]
            raise RuntimeError(f"views {missing} were not captured")
        warnings, hint = [], "the scene's cameras do not see it (aim them at the object, or capture with the ring)"
        if self._framing is not None:
            warnings = [w for w in [self._framing.warning()] if w]
            hint = "the ring frames the object, so its faces may have no area"
        meta = {
            "camera_names": list(self._camera_names),
            "engine": self._engine,
            "object_name": self._obj.name,
            "n_polygons": self._n_polygons,
            "clip": [list(c) for c in self._clip],
            "timings": {k: round(v, 4) for k, v in self._timings.items()},
        }
        capture = Capture(
            mesh=self._mesh,
            rgb=self._rgb,
            face_id=self._face_id,
            K=self._K,
            world_to_cam=self._w2c,
            orthographic=np.array(self._orthographic, dtype=bool),
            meta=meta,
            warnings=warnings,
        )
        return capture.validate().check_views_show_object(hint)

    # -- setup / teardown

    def _setup(self) -> None:
        t0 = time.perf_counter()
        obj, scene = self._obj, self._scene
        if obj.mode == "EDIT":
            obj.update_from_editmode()
        st = self._settings
        self._user_cams, use_ring = st.choose_cameras()
        self._engine = resolve_engine(st.engine, st.color_type)
        if self._engine == "raster" and st.color_type not in ("MATERIAL", "SINGLE", "OBJECT"):
            raise ValidationError(
                "color_type",
                f"the raster engine draws MATERIAL, SINGLE or OBJECT colours, "
                f"not {st.color_type}; use engine='workbench'",
            )
        self._size = image_size(st.resolution, self._scene, use_ring)
        width, height = self._size

        tmp = bpy.data.scenes.new("partdistill capture")
        self._cleanup.append(lambda: bpy.data.scenes.remove(tmp))
        self._tmp = tmp
        tmp.frame_current = scene.frame_current
        tmp.frame_subframe = scene.frame_subframe
        configure_render(tmp, scene.render, self._engine, width, height)
        if self._engine == "raster":
            pass  # no render call: the settings above only carry the user's simplification
        elif self._engine == "workbench":
            configure_workbench(tmp, aa=WORKBENCH_AA[st.aa_samples], lighting=st.lighting, color_type=st.color_type)
        else:
            configure_cycles(tmp, samples=int(st.cycles_samples))

        self._copy = private_copy(obj, tmp, self._cleanup)
        for cam in self._user_cams:
            if cam.name not in tmp.collection.objects:
                tmp.collection.objects.link(cam)

        depsgraph = tmp.view_layers[0].depsgraph
        depsgraph.update()
        self._mesh, self._n_polygons, tri_material = evaluated_triangles(obj, self._copy.evaluated_get(depsgraph))
        self._tri_colors = triangle_colors(obj, scene, tri_material, st.color_type)
        verts = self._mesh.vertices
        self._bvh_tree: BVHTree | None = None  # built on first use: the rasteriser rarely needs it
        self._aabb = np.stack([verts.min(0), verts.max(0)]).astype(np.float64)

        self._framing = None
        if use_ring:  # framing the object's mass, not a stray speck far away
            self._framing = fr = frame(verts, self._mesh.faces)
            cams = ring_cameras(self._copy, st.n_views, collection=tmp.collection, bounds=(fr.center, fr.radius))
            self._cleanup.append(lambda: remove_objects(cams))
            depsgraph.update()
            self._cams = cams
            self._camera_names = [f"ring_{i:02d}" for i in range(len(cams))]
        else:
            self._cams = self._user_cams
            self._camera_names = [c.name for c in self._user_cams]

        n = len(self._cams)
        self._K = np.zeros((n, 3, 3), np.float64)
        self._w2c = np.zeros((n, 4, 4), np.float64)
        self._orthographic: list[bool] = []
        self._clip: list[tuple[float, float]] = []
        # Evaluated poses: originals are only synced from the depsgraph of the active scene.
        self._cam_to_world: list[Matrix] = []
        for i, cam in enumerate(self._cams):
            cam_eval = cam.evaluated_get(depsgraph)
            self._cam_to_world.append(cam_eval.matrix_world.normalized())
            self._K[i], self._w2c[i], ortho = camera_matrices(cam_eval, depsgraph, width, height)
            self._orthographic.append(ortho)
            self._clip.append((float(cam_eval.data.clip_start), float(cam_eval.data.clip_end)))
        if self._framing is not None:  # the ring's own float64 views: exact at any scale (Blender's are float32,
            # its clip distances bounded), the same views Blender renders for the engines that render
            fr = self._framing
            self._K, self._w2c, self._clip = ring_views(fr.center, fr.radius, n, width)
        self._rgb = np.zeros((n, height, width, 3), np.uint8)
        self._face_id = np.full((n, height, width), -1, np.int32)
        self._done = [False] * n

        self._light = None
        if self._engine == "cycles":
            self._light = add_cycles_lighting(tmp, self._cleanup)
        self._timings["setup_s"] = time.perf_counter() - t0
        if self._engine == "raster":
            return
        guard_render_result(self._cleanup)

        fd, path = tempfile.mkstemp(prefix="partdistill_", suffix=".tga", dir=fast_tmp_dir())
        os.close(fd)
        self._image_path = path
        self._cleanup.append(lambda: os.path.exists(path) and os.remove(path))
        tmp.render.filepath = path
        self._timings["setup_s"] = time.perf_counter() - t0

    def _teardown(self) -> None:
        errors = []
        while self._cleanup:
            step = self._cleanup.pop()
            try:
                step()
            except Exception as e:  # keep cleaning: one failed step must not leave the rest behind
                errors.append(e)
        if errors:
            raise RuntimeError(f"cleaning up after the capture failed: {errors}")
