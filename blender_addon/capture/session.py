"""The capture session: a private scene holding a private copy of the object (and ring cameras when
needed), rendered view by view; the views' images, face ids and cameras make the ``Capture``."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence

import bpy
import numpy as np
from mathutils import Matrix
from mathutils.bvhtree import BVHTree
from partdistill.shared.capture import Capture
from partdistill.shared.errors import ValidationError
from partdistill.shared.framing import frame, ring_views
from partdistill.shared.raster import rasterize, shade

from .cameras import _remove_objects, camera_matrices, image_size, ring_cameras
from .colors import triangle_colors
from .face_ids import _cast_face_ids, _dilate, _evaluated_triangles
from .private_copy import private_copy
from .render import (
    _COLOR_TYPES,
    _LIGHTINGS,
    _WORKBENCH_AA,
    ENGINES,
    _add_cycles_lighting,
    _configure_cycles,
    _configure_render,
    _configure_workbench,
    _fast_tmp_dir,
    _follow_camera,
    _guard_render_result,
    _read_tga_over,
    _resolve_engine,
)

ProgressFn = Callable[[int, int, str], None]


def capture_object(
    obj: bpy.types.Object,
    *,
    cameras: Sequence[bpy.types.Object] | None = None,
    resolution: int | tuple[int, int] = 512,
    engine: str = "auto",
    ring: bool | None = None,
    n_views: int = 10,
    scene: bpy.types.Scene | None = None,
    color_type: str = "MATERIAL",
    lighting: str = "STUDIO",
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    aa_samples: int = 8,
    cycles_samples: int = 8,
    progress: ProgressFn | None = None,
) -> Capture:
    """Render ``obj`` from several cameras and return the capture (mesh, RGB, face ids, cameras).

    Cameras: ``cameras`` if given; else the cameras of ``scene`` (default: the context scene) if it
    has any; else a temporary ring of ``n_views`` cameras framing the object (see
    :func:`ring_cameras`). ``ring=True`` forces the ring, ``ring=False`` forbids it.

    resolution: an int is the longer image side (the ring renders square images; scene cameras
    keep the scene's aspect ratio), a pair is ``(width, height)``.
    engine: ``"raster"`` (no render call: face ids from a numpy z-buffer, the exact pixel-centre
    answer ray casting gives, and a flat-shaded picture painted from them; material, single or
    object colours, no textures; ~25 ms per 512² view), ``"workbench"``, ``"cycles"`` (CPU,
    ``cycles_samples``, no denoiser) or ``"auto"`` (the rasteriser when it can draw
    ``color_type``, else Workbench when an OpenGL/EGL context works, probed once in a child
    process, else Cycles; ``PARTDISTILL_RENDER_ENGINE=raster|workbench|cycles`` overrides it).
    color_type / lighting: Workbench shading (``"MATERIAL"``, ``"TEXTURE"``, ``"SINGLE"``, ...;
    ``"STUDIO"``, ``"FLAT"``, ``"MATCAP"``). background: display (sRGB) colour in [0, 1] composited
    behind the object. aa_samples: Workbench anti-aliasing samples (1 = off, 5, 8, 11, 16, 32).
    progress: called as ``progress(done, total, message)`` after each view; an exception raised
    there aborts the capture (the scene is cleaned up all the same).

    ``Capture.orthographic`` marks orthographic views. ``Capture.meta`` holds ``camera_names``, ``engine``,
    ``object_name``, ``n_polygons`` (polygons of the object's own mesh; ``face_to_polygon`` indexes
    them), ``clip`` (per view ``[near, far]``) and ``timings`` (seconds).
    """
    with CaptureSession(
        obj,
        cameras=cameras,
        resolution=resolution,
        engine=engine,
        ring=ring,
        n_views=n_views,
        scene=scene,
        color_type=color_type,
        lighting=lighting,
        background=background,
        aa_samples=aa_samples,
        cycles_samples=cycles_samples,
    ) as session:
        for i in range(session.n_views):
            session.capture_view(i)
            if progress is not None:
                progress(i + 1, session.n_views, f"view {i + 1}/{session.n_views}")
        return session.result()


class CaptureSession:
    """Step-wise form of :func:`capture_object` (same arguments), for callers that render one view
    per timer tick to keep Blender's UI responsive::

        with CaptureSession(obj) as s:
            for i in range(s.n_views):
                s.capture_view(i)
            capture = s.result()

    Between ``__enter__`` and ``__exit__`` a private scene, a copy of the object and possibly ring
    cameras exist in ``bpy.data``; ``__exit__`` removes them whatever happened. Keep the session
    short-lived (do not let the user undo across it).
    """

    def __init__(
        self,
        obj: bpy.types.Object,
        *,
        cameras: Sequence[bpy.types.Object] | None = None,
        resolution: int | tuple[int, int] = 512,
        engine: str = "auto",
        ring: bool | None = None,
        n_views: int = 10,
        scene: bpy.types.Scene | None = None,
        color_type: str = "MATERIAL",
        lighting: str = "STUDIO",
        background: tuple[float, float, float] = (1.0, 1.0, 1.0),
        aa_samples: int = 8,
        cycles_samples: int = 8,
    ):
        if not isinstance(obj, bpy.types.Object) or obj.type != "MESH":
            raise ValidationError("object", f"expected a mesh object, got {_describe(obj)}")
        if engine not in ("auto", *ENGINES):
            raise ValidationError("engine", f"must be 'auto', 'raster', 'workbench' or 'cycles', got {engine!r}")
        if aa_samples not in _WORKBENCH_AA:
            raise ValidationError("aa_samples", f"must be one of {sorted(_WORKBENCH_AA)}, got {aa_samples}")
        if not (isinstance(n_views, int) and 1 <= n_views <= 64):
            raise ValidationError("n_views", f"must be an integer in [1, 64], got {n_views!r}")
        if color_type not in _COLOR_TYPES:
            raise ValidationError("color_type", f"must be one of {sorted(_COLOR_TYPES)}, got {color_type!r}")
        if lighting not in _LIGHTINGS:
            raise ValidationError("lighting", f"must be one of {sorted(_LIGHTINGS)}, got {lighting!r}")
        bg = np.asarray(background, dtype=np.float64)
        if bg.shape != (3,) or not np.all((bg >= 0) & (bg <= 1)):
            raise ValidationError("background", "must be three numbers in [0, 1]")
        self._obj = obj
        self._scene = scene if scene is not None else bpy.context.scene
        self._cameras_arg = None if cameras is None else list(cameras)
        self._resolution = resolution
        self._engine_arg = engine
        self._ring_arg = ring
        self._n_ring = n_views
        self._color_type = color_type
        self._lighting = lighting
        self._background = np.round(bg * 255.0)
        self._aa = _WORKBENCH_AA[aa_samples]
        self._cycles_samples = int(cycles_samples)
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
            _follow_camera(self._light, self._cam_to_world[i])
        t0 = time.perf_counter()
        try:
            bpy.ops.render.render(write_still=True, scene=self._tmp.name)
        except RuntimeError as e:
            raise RuntimeError(f"rendering view {i} ({cam.name}) failed: {e}") from e
        t1 = time.perf_counter()
        self._rgb[i], alpha = _read_tga_over(self._image_path, self._background, self._size)
        t2 = time.perf_counter()
        self._timings["render_s"] += t1 - t0
        self._timings["read_s"] += t2 - t1
        yield
        candidates = _dilate(alpha > 0)
        height = candidates.shape[0]
        face_id = np.full(candidates.shape, -1, np.int32)
        for rows in np.array_split(np.arange(height), max(1, bands)):
            t = time.perf_counter()
            band = np.zeros_like(candidates)
            band[rows] = candidates[rows]
            cast = _cast_face_ids(
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
            if rows[-1] < height - 1:
                yield
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
            height = self._size[1]
            for rows in np.array_split(np.arange(height), max(1, bands)):
                yield
                t = time.perf_counter()
                band = np.zeros((height, self._size[0]), bool)
                band[rows] = True
                cast = _cast_face_ids(
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
        t = time.perf_counter()
        self._rgb[i] = shade(
            face_id,
            verts,
            faces,
            self._K[i],
            self._w2c[i],
            face_colors=self._tri_colors,
            background=self._background,
            lighting=self._lighting,
            orthographic=self._orthographic[i],
        )
        self._timings["render_s"] += time.perf_counter() - t
        self._face_id[i] = face_id
        self._done[i] = True

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
        use_ring = self._choose_cameras()
        self._engine = _resolve_engine(self._engine_arg, self._color_type)
        if self._engine == "raster" and self._color_type not in ("MATERIAL", "SINGLE", "OBJECT"):
            raise ValidationError(
                "color_type",
                f"the raster engine draws MATERIAL, SINGLE or OBJECT colours, "
                f"not {self._color_type}; use engine='workbench'",
            )
        self._size = image_size(self._resolution, self._scene, use_ring)
        width, height = self._size

        tmp = bpy.data.scenes.new("partdistill capture")
        self._cleanup.append(lambda: bpy.data.scenes.remove(tmp))
        self._tmp = tmp
        tmp.frame_current = scene.frame_current
        tmp.frame_subframe = scene.frame_subframe
        _configure_render(tmp, scene.render, self._engine, width, height)
        if self._engine == "raster":
            pass  # no render call: the settings above only carry the user's simplification
        elif self._engine == "workbench":
            _configure_workbench(tmp, aa=self._aa, lighting=self._lighting, color_type=self._color_type)
        else:
            _configure_cycles(tmp, samples=self._cycles_samples)

        self._copy = private_copy(obj, tmp, self._cleanup)
        for cam in self._user_cams:
            if cam.name not in tmp.collection.objects:
                tmp.collection.objects.link(cam)

        depsgraph = tmp.view_layers[0].depsgraph
        depsgraph.update()
        self._mesh, self._n_polygons, tri_material = _evaluated_triangles(obj, self._copy.evaluated_get(depsgraph))
        self._tri_colors = triangle_colors(obj, scene, tri_material, self._color_type)
        verts = self._mesh.vertices
        self._bvh_tree: BVHTree | None = None  # built on first use: the rasteriser rarely needs it
        self._aabb = np.stack([verts.min(0), verts.max(0)]).astype(np.float64)

        self._framing = None
        if use_ring:  # framing the object's mass, not a stray speck far away
            self._framing = fr = frame(verts, self._mesh.faces)
            cams = ring_cameras(self._copy, self._n_ring, collection=tmp.collection, bounds=(fr.center, fr.radius))
            self._cleanup.append(lambda: _remove_objects(cams))
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
            self._light = _add_cycles_lighting(tmp, self._cleanup)
        self._timings["setup_s"] = time.perf_counter() - t0
        if self._engine == "raster":
            return
        _guard_render_result(self._cleanup)

        fd, path = tempfile.mkstemp(prefix="partdistill_", suffix=".tga", dir=_fast_tmp_dir())
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

    def _choose_cameras(self) -> bool:
        """Set ``self._user_cams``; True when a ring is to be made."""
        self._user_cams: list[bpy.types.Object] = []
        if self._ring_arg is True:
            if self._cameras_arg:
                raise ValidationError("cameras", "give cameras or ring=True, not both")
            return True
        if self._cameras_arg is not None:
            cams = self._cameras_arg
            if not cams:
                raise ValidationError("cameras", "the list of cameras is empty")
        else:
            cams = sorted((o for o in self._scene.objects if o.type == "CAMERA"), key=lambda o: o.name)
            if not cams:
                if self._ring_arg is False:
                    raise ValidationError("cameras", "the scene has no cameras and ring=False")
                return True
        for i, cam in enumerate(cams):
            if not isinstance(cam, bpy.types.Object) or cam.type != "CAMERA":
                raise ValidationError(f"cameras[{i}]", f"expected a camera object, got {_describe(cam)}")
            if cam.data.type not in ("PERSP", "ORTHO"):
                raise ValidationError(
                    f"cameras[{i}]",
                    f"camera {cam.name!r} is {cam.data.type}; use a perspective or orthographic camera",
                )
        self._user_cams = list(cams)
        return False


def _describe(value: object) -> str:
    if isinstance(value, bpy.types.Object):
        return f"{value.type.lower()} object {value.name!r}"
    return type(value).__name__
