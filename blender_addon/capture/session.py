"""Capture a mesh object: rendered views, exact per-pixel triangle ids and OpenCV cameras.

How the user's scene stays untouched: everything happens in a private scene. The object is copied
(object and mesh) into it, the copy gets a face attribute with its source polygon index, the chosen
cameras are linked into it and the private scene is rendered and then deleted with everything made
for it. Other objects of the user's scene are simply not in the private scene, so they neither occlude
nor appear in the RGB images, and nothing of the user's render settings, cameras, selection,
visibility, frame or mesh data is ever written (the one exception is an object in Edit Mode, whose
edits are flushed to its mesh first, as saving the file would).

Face ids are exact: rays through the pixel centres are cast against a BVH built from the very
triangles of ``Capture.mesh``, so ``face_id`` indexes ``mesh.faces`` directly. Rays are derived from
the stored ``K`` / ``world_to_cam``, so ids, cameras and images agree by construction.

Projection of a view: perspective, ``[u, v, 1]^T ~ K @ X_cam`` (divide by ``z``), or, where
``Capture.orthographic[n]`` is set, affine, ``[u, v, 1]^T = K @ [x_cam, y_cam, 1]^T`` (no division;
``fx``/``fy`` are pixels per scene unit). ``shared.camera.project_points`` implements both.

``X_cam = world_to_cam @ [X_world, 1]`` in the OpenCV camera frame (x right, y down, z forward);
pixel ``(i, j)`` spans ``[i, i+1) x [j, j+1)``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from itertools import repeat
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix, Vector
from mathutils.bvhtree import BVHTree

from ._shared import Capture, Mesh, ValidationError, project_points

ProgressFn = Callable[[int, int, str], None]

#: Elevations (degrees) the default ring cycles through, as in PartSLIP-style multi-view setups:
#: mostly slightly above, some from high up, some from below.
RING_ELEVATIONS_DEG = (10.0, 40.0, -20.0)

#: Face attribute on the private copy carrying ``polygon index + 1`` through modifiers (0 = a face
#: no source polygon produced, e.g. from a Boolean operand).
_SOURCE_ATTR = "_partdistill_source_polygon"

_ENGINES = {"workbench": "BLENDER_WORKBENCH", "cycles": "CYCLES"}
_COLOR_TYPES = {"MATERIAL", "SINGLE", "OBJECT", "RANDOM", "VERTEX", "TEXTURE"}
_LIGHTINGS = {"STUDIO", "FLAT", "MATCAP"}
_WORKBENCH_AA = {1: "OFF", 5: "5", 8: "8", 11: "11", 16: "16", 32: "32"}
# Blender camera frame (x right, y up, looking down -z) -> OpenCV (x right, y down, z forward).
_FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])

_workbench_probe: bool | None = None


# --------------------------------------------------------------------------- public API


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
    engine: ``"workbench"``, ``"cycles"`` (CPU, ``cycles_samples``, no denoiser) or ``"auto"``
    (Workbench when an OpenGL/EGL context works, probed once in a child process; else Cycles;
    the environment variable ``PARTDISTILL_RENDER_ENGINE=workbench|cycles`` skips the probe).
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
        if engine not in ("auto", *_ENGINES):
            raise ValidationError("engine", f"must be 'auto', 'workbench' or 'cycles', got {engine!r}")
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
        self._timings = {"setup_s": 0.0, "render_s": 0.0, "read_s": 0.0, "raycast_s": 0.0}

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
        cam = self._cams[i]
        self._tmp.camera = cam
        if self._light is not None:
            # A headlight slightly above-left of the camera: shading that reads like a studio look.
            self._light.matrix_world = (
                self._cam_to_world[i]
                @ Matrix.Rotation(math.radians(-25), 4, "X")
                @ Matrix.Rotation(math.radians(-20), 4, "Y")
            )
        t0 = time.perf_counter()
        try:
            bpy.ops.render.render(write_still=True, scene=self._tmp.name)
        except RuntimeError as e:
            raise RuntimeError(f"rendering view {i} ({cam.name}) failed: {e}") from e
        t1 = time.perf_counter()
        self._rgb[i], alpha = _read_tga_over(self._image_path, self._background, self._size)
        t2 = time.perf_counter()
        self._face_id[i] = _cast_face_ids(
            self._bvh,
            self._aabb,
            self._K[i],
            self._w2c[i],
            self._clip[i],
            self._orthographic[i],
            self._size,
            candidates=_dilate(alpha > 0),
        )
        t3 = time.perf_counter()
        self._timings["render_s"] += t1 - t0
        self._timings["read_s"] += t2 - t1
        self._timings["raycast_s"] += t3 - t2
        self._done[i] = True

    def result(self) -> Capture:
        """The capture of all views rendered so far (all of them after a full loop)."""
        if not all(self._done):
            missing = [i for i, d in enumerate(self._done) if not d]
            raise RuntimeError(f"views {missing} were not captured")
        meta = {
            "camera_names": list(self._camera_names),
            "engine": self._engine,
            "object_name": self._obj.name,
            "n_polygons": self._n_polygons,
            "clip": [list(c) for c in self._clip],
            "timings": {k: round(v, 4) for k, v in self._timings.items()},
        }
        return Capture(
            mesh=self._mesh,
            rgb=self._rgb,
            face_id=self._face_id,
            K=self._K,
            world_to_cam=self._w2c,
            orthographic=np.array(self._orthographic, dtype=bool),
            meta=meta,
        ).validate()

    # -- setup / teardown

    def _setup(self) -> None:
        t0 = time.perf_counter()
        obj, scene = self._obj, self._scene
        if obj.mode == "EDIT":
            obj.update_from_editmode()
        use_ring = self._choose_cameras()
        self._engine = self._resolve_engine()
        self._size = self._image_size(use_ring)
        width, height = self._size

        tmp = bpy.data.scenes.new("partdistill capture")
        self._cleanup.append(lambda: bpy.data.scenes.remove(tmp))
        self._tmp = tmp
        tmp.frame_current = scene.frame_current
        tmp.frame_subframe = scene.frame_subframe
        self._configure_render(tmp, width, height)

        self._copy = self._private_copy(obj, tmp)
        for cam in self._user_cams:
            if cam.name not in tmp.collection.objects:
                tmp.collection.objects.link(cam)

        depsgraph = tmp.view_layers[0].depsgraph
        depsgraph.update()
        self._mesh, self._n_polygons = _evaluated_triangles(obj, self._copy.evaluated_get(depsgraph))
        verts, faces = self._mesh.vertices, self._mesh.faces
        self._bvh = BVHTree.FromPolygons(verts.tolist(), faces.tolist(), all_triangles=True, epsilon=0.0)
        self._aabb = np.stack([verts.min(0), verts.max(0)]).astype(np.float64)

        if use_ring:
            center, radius = _bounding_sphere(verts)
            cams = ring_cameras(self._copy, self._n_ring, collection=tmp.collection, bounds=(center, radius))
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
        self._rgb = np.zeros((n, height, width, 3), np.uint8)
        self._face_id = np.full((n, height, width), -1, np.int32)
        self._done = [False] * n

        self._light = None
        if self._engine == "cycles":
            self._light = _add_cycles_lighting(tmp, self._cleanup)
        self._guard_render_result()

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

    def _resolve_engine(self) -> str:
        if self._engine_arg != "auto":
            return self._engine_arg
        forced = os.environ.get("PARTDISTILL_RENDER_ENGINE", "").lower()
        if forced in _ENGINES:
            return forced
        return "workbench" if workbench_available() else "cycles"

    def _image_size(self, use_ring: bool) -> tuple[int, int]:
        res = self._resolution
        if isinstance(res, tuple | list):
            if len(res) != 2:
                raise ValidationError("resolution", f"expected (width, height), got {res!r}")
            w, h = (int(x) for x in res)
        else:
            side = int(res)
            if use_ring:
                w = h = side
            else:
                r = self._scene.render
                aspect = (r.resolution_x * r.pixel_aspect_x) / (r.resolution_y * r.pixel_aspect_y)
                w, h = (side, max(1, round(side / aspect))) if aspect >= 1 else (max(1, round(side * aspect)), side)
        if not (8 <= w <= 4096 and 8 <= h <= 4096):
            raise ValidationError("resolution", f"image sides must lie in [8, 4096], got {w}x{h}")
        return w, h

    def _configure_render(self, tmp: bpy.types.Scene, width: int, height: int) -> None:
        r = tmp.render
        r.engine = _ENGINES[self._engine]
        r.resolution_x, r.resolution_y, r.resolution_percentage = width, height, 100
        r.pixel_aspect_x = r.pixel_aspect_y = 1.0
        r.film_transparent = True  # the background is composited in numpy: same for both engines
        r.dither_intensity = 0.0  # dithering would perturb flat colours
        r.use_border = False
        r.use_compositing = False
        r.use_sequencer = False
        r.use_freestyle = False
        r.use_multiview = False
        r.use_motion_blur = False
        r.use_file_extension = False
        r.image_settings.file_format = "TARGA_RAW"  # header + raw BGRA: parsed with numpy, no datablock
        r.image_settings.color_mode = "RGBA"
        # The private copy is evaluated in this scene's viewport depsgraph and rendered by its render
        # depsgraph: give both the user's viewport simplification.
        user = self._scene.render
        r.use_simplify = user.use_simplify
        r.simplify_subdivision = user.simplify_subdivision
        r.simplify_subdivision_render = user.simplify_subdivision
        vs = tmp.view_settings
        tmp.display_settings.display_device = "sRGB"
        vs.view_transform = "Standard"  # plain colours: a material's colour renders as that colour
        vs.look = "None"
        vs.exposure = 0.0
        vs.gamma = 1.0
        if self._engine == "workbench":
            d = tmp.display
            d.render_aa = self._aa
            s = d.shading
            s.light = self._lighting
            s.color_type = self._color_type
            s.show_cavity = False
            s.show_object_outline = False  # the outline would spill onto background pixels
            s.show_shadows = False
            s.show_xray = False
            s.use_dof = False
            s.show_backface_culling = False
        else:
            c = tmp.cycles
            c.device = "CPU"
            c.samples = self._cycles_samples
            c.use_adaptive_sampling = False
            c.use_denoising = False  # OIDN costs ~18 s per view on 2 cores
            c.max_bounces = 2

    def _private_copy(self, obj: bpy.types.Object, tmp: bpy.types.Scene) -> bpy.types.Object:
        mesh = obj.data.copy()
        self._cleanup.append(lambda: bpy.data.meshes.remove(mesh))
        copy = obj.copy()
        copy.data = mesh
        self._cleanup.append(lambda: bpy.data.objects.remove(copy))
        n_poly = len(mesh.polygons)
        if _SOURCE_ATTR in mesh.attributes:
            mesh.attributes.remove(mesh.attributes[_SOURCE_ATTR])
        attr = mesh.attributes.new(_SOURCE_ATTR, "INT", "FACE")
        attr.data.foreach_set("value", np.arange(1, n_poly + 1, dtype=np.int32))
        # What renders must be what is ray cast (the viewport evaluation): same modifiers, same levels.
        for mod in copy.modifiers:
            if mod.type == "PARTICLE_SYSTEM":  # hair/instances would render but never be hit
                mod.show_viewport = mod.show_render = False
            mod.show_render = mod.show_viewport
            if mod.type in ("SUBSURF", "MULTIRES"):
                mod.render_levels = mod.levels
        copy.hide_render = copy.hide_viewport = False
        copy.display_type = "TEXTURED"
        copy.instance_type = "NONE"
        copy.visible_camera = True
        tmp.collection.objects.link(copy)
        return copy

    def _guard_render_result(self) -> None:
        """Rendering writes to the 'Render Result' image: keep the user's render in its slot."""
        existing = [im for im in bpy.data.images if im.type == "RENDER_RESULT"]
        if not existing:

            def drop_new_render_results() -> None:
                for im in [im for im in bpy.data.images if im.type == "RENDER_RESULT"]:
                    bpy.data.images.remove(im)

            self._cleanup.append(drop_new_render_results)
            return
        image = existing[0]
        slots = image.render_slots
        before = slots.active_index
        ours = next((i for i, s in enumerate(slots) if s.name == "partdistill capture"), None)
        if ours is None:
            slots.new(name="partdistill capture")
            ours = len(slots) - 1
        slots.active_index = ours

        def restore() -> None:
            slots.active_index = before

        self._cleanup.append(restore)


def ring_cameras(
    obj: bpy.types.Object,
    n_views: int = 10,
    *,
    collection: bpy.types.Collection | None = None,
    bounds: tuple[Sequence[float], float] | None = None,
    elevations_deg: Sequence[float] = RING_ELEVATIONS_DEG,
    lens_mm: float = 50.0,
    margin: float = 1.1,
) -> list[bpy.types.Object]:
    """Create ``n_views`` perspective cameras around ``obj``, all looking at its bounding sphere.

    View ``k`` sits at azimuth ``360 k / n_views`` degrees (0 = front, -Y) and elevation
    ``elevations_deg[k % len(elevations_deg)]``, far enough that the sphere (times ``margin``) fits
    the field of view of a ``lens_mm`` lens on a 36 mm sensor. bounds: ``(center, radius)`` in world
    space; default: the bounding sphere of the evaluated object. The cameras are linked into
    ``collection`` (default: the context scene's master collection); the caller removes them
    (``bpy.data.objects.remove`` and ``bpy.data.cameras.remove``).
    """
    if bounds is None:
        depsgraph = bpy.context.evaluated_depsgraph_get()
        obj_eval = obj.evaluated_get(depsgraph)
        corners = np.array([obj_eval.matrix_world @ Vector(c) for c in obj_eval.bound_box])
        center, radius = _bounding_sphere(corners)
    else:
        center, radius = np.asarray(bounds[0], np.float64), float(bounds[1])
    radius = max(radius, 1e-6)
    if collection is None:
        collection = bpy.context.scene.collection
    half_fov = math.atan(18.0 / lens_mm)
    dist = radius * margin / math.sin(half_fov)
    cams = []
    for k in range(n_views):
        az = math.radians(360.0 * k / n_views)
        el = math.radians(elevations_deg[k % len(elevations_deg)])
        offset = Vector((math.cos(el) * math.sin(az), -math.cos(el) * math.cos(az), math.sin(el)))
        data = bpy.data.cameras.new(f"partdistill ring {k:02d}")
        data.lens, data.sensor_width, data.sensor_fit = lens_mm, 36.0, "AUTO"
        data.clip_start = max(dist - 2.0 * radius, dist * 1e-3)
        data.clip_end = dist + 2.0 * radius
        cam = bpy.data.objects.new(data.name, data)
        cam.location = Vector(center) + dist * offset
        cam.rotation_euler = (-offset).to_track_quat("-Z", "Y").to_euler()
        collection.objects.link(cam)
        cams.append(cam)
    return cams


def camera_matrices(
    cam: bpy.types.Object, depsgraph: bpy.types.Depsgraph, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """OpenCV ``K (3, 3) float64``, ``world_to_cam (4, 4) float64`` and whether the camera is
    orthographic (then ``K`` is affine, see the module docstring), for ``cam`` rendering a
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


def workbench_available() -> bool:
    """Whether Workbench can render here. Without an OpenGL/EGL context Workbench aborts the whole
    process, so the first call renders a tiny image in a child process; the answer is cached."""
    global _workbench_probe
    if _workbench_probe is None:
        _workbench_probe = _probe_workbench()
    return _workbench_probe


def import_mesh_file(path: str | os.PathLike) -> bpy.types.Object:
    """Load a mesh file into a fresh empty session and return one mesh object.

    Formats: .obj .ply .stl .glb .gltf .fbx .blend (mesh objects are appended; hidden ones only
    when nothing else is there). Several mesh objects are joined into one, modifiers applied, named
    after the file. This *replaces the current bpy session's data* (``read_homefile``): it is meant
    for headless batch use. Raises ``ValidationError("input", ...)`` for a missing, unknown or
    unreadable file, or one without faces.
    """
    p = Path(path)
    if not p.is_file():
        raise ValidationError("input", f"no such file: {p}")
    ext = p.suffix.lower()
    importers = {
        ".obj": lambda: bpy.ops.wm.obj_import(filepath=str(p)),
        ".ply": lambda: bpy.ops.wm.ply_import(filepath=str(p)),
        ".stl": lambda: bpy.ops.wm.stl_import(filepath=str(p)),
        ".glb": lambda: bpy.ops.import_scene.gltf(filepath=str(p)),
        ".gltf": lambda: bpy.ops.import_scene.gltf(filepath=str(p)),
        ".fbx": lambda: bpy.ops.import_scene.fbx(filepath=str(p)),
        ".blend": lambda: _append_blend_meshes(p),
    }
    if ext not in importers:
        raise ValidationError(
            "input",
            f"unsupported file type {ext or '(none)'!r} for {p.name}; use one of {', '.join(importers)}",
        )
    bpy.ops.wm.read_homefile(use_empty=True)
    try:
        importers[ext]()
    except (RuntimeError, OSError, ValueError) as e:
        lines = str(e).strip().splitlines()
        first = lines[-1].removeprefix("Error: ") if lines else type(e).__name__
        raise ValidationError("input", f"could not read {p.name}: {first}") from e
    scene = bpy.context.scene
    meshes = [o for o in scene.objects if o.type == "MESH" and len(o.data.polygons) > 0]
    if not meshes:
        raise ValidationError("input", f"{p.name} contains no mesh with faces (is the file broken or empty?)")
    meshes = [o for o in meshes if not o.hide_render] or meshes
    for o in scene.objects:
        o.hide_viewport = o.hide_select = False
        o.hide_set(False)
        o.select_set(o in meshes)
    view_layer = bpy.context.view_layer
    view_layer.objects.active = meshes[0]
    for o in meshes:
        if o.data.users > 1:  # instanced meshes: convert/join need single-user data
            o.data = o.data.copy()
    # Bake modifiers (an armature pose, a mirror, ...) while the objects they use still exist;
    # join would keep only the active object's.
    bpy.ops.object.convert(target="MESH")
    for o in meshes:
        world = o.matrix_world.copy()
        o.parent = None
        o.matrix_world = world
    for o in [o for o in scene.objects if o not in meshes]:
        bpy.data.objects.remove(o)
    if len(meshes) > 1:
        bpy.ops.object.join()
    target = view_layer.objects.active
    target.name = p.stem
    return target


def capture_file(path: str | os.PathLike, **kwargs: object) -> Capture:
    """Import a mesh file (see :func:`import_mesh_file`, which replaces the session's data) and
    capture it with a camera ring. ``kwargs`` go to :func:`capture_object` (``ring`` defaults to
    True); ``meta["object_name"]`` names the object left in the scene for applying results."""
    obj = import_mesh_file(path)
    kwargs.setdefault("ring", True)
    return capture_object(obj, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- internals


def _describe(value: object) -> str:
    if isinstance(value, bpy.types.Object):
        return f"{value.type.lower()} object {value.name!r}"
    return type(value).__name__


def _evaluated_triangles(obj: bpy.types.Object, copy_eval: bpy.types.Object) -> tuple[Mesh, int]:
    """Triangulate the evaluated copy into a world-space ``Mesh`` whose ``face_to_polygon`` indexes
    the polygons of ``obj``'s own mesh; also return that polygon count."""
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
    return mesh.validate(), n_source


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


def _bounding_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre of the axis-aligned box and the radius reaching the farthest point."""
    p = np.asarray(points, np.float64)
    center = (p.min(0) + p.max(0)) / 2.0
    return center, float(np.linalg.norm(p - center, axis=1).max())


def _remove_objects(objects: Sequence[bpy.types.Object]) -> None:
    for o in objects:
        data = o.data
        bpy.data.objects.remove(o)
        if isinstance(data, bpy.types.Camera) and data.users == 0:
            bpy.data.cameras.remove(data)
        elif isinstance(data, bpy.types.Light) and data.users == 0:
            bpy.data.lights.remove(data)


def _add_cycles_lighting(tmp: bpy.types.Scene, cleanup: list[Callable[[], None]]) -> bpy.types.Object:
    """A grey world plus a sun that follows the camera; Cycles has no studio light of its own."""
    world = bpy.data.worlds.new("partdistill capture")
    cleanup.append(lambda: bpy.data.worlds.remove(world))
    world.color = (0.35, 0.35, 0.35)
    if world.node_tree is None and hasattr(world, "use_nodes"):
        world.use_nodes = True
    if world.node_tree is not None:
        for node in world.node_tree.nodes:
            if node.type == "BACKGROUND":
                node.inputs["Color"].default_value = (0.35, 0.35, 0.35, 1.0)
                node.inputs["Strength"].default_value = 1.0
    tmp.world = world
    data = bpy.data.lights.new("partdistill capture", "SUN")
    data.energy = 3.0
    data.angle = math.radians(10)
    sun = bpy.data.objects.new(data.name, data)
    tmp.collection.objects.link(sun)
    cleanup.append(lambda: _remove_objects([sun]))
    return sun


def _fast_tmp_dir() -> str | None:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def _read_tga_over(path: str, background: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Read an uncompressed 32-bit TGA (straight alpha) and composite it over ``background``
    (3,) in 0..255: ``(H, W, 3) uint8`` RGB and ``(H, W) uint8`` alpha."""
    data = np.fromfile(path, dtype=np.uint8)
    if data.size < 18:
        raise RuntimeError(f"the render wrote no image to {path}")
    id_len, cmap_type, img_type = int(data[0]), int(data[1]), int(data[2])
    w = int(data[12]) | int(data[13]) << 8
    h = int(data[14]) | int(data[15]) << 8
    bpp, desc = int(data[16]), int(data[17])
    if cmap_type != 0 or img_type != 2 or bpp != 32 or (w, h) != size:
        raise RuntimeError(f"unexpected render output {path}: type {img_type}, {bpp} bpp, {w}x{h}")
    px = data[18 + id_len : 18 + id_len + w * h * 4].reshape(h, w, 4)
    if not desc & 0x20:  # bottom-up rows (Blender's default)
        px = px[::-1]
    if desc & 0x10:
        px = px[:, ::-1]
    rgb = px[..., 2::-1].astype(np.float32)
    alpha = px[..., 3:4].astype(np.float32) / 255.0
    out = rgb * alpha + background.astype(np.float32) * (1.0 - alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), np.ascontiguousarray(px[..., 3])


def _dilate(mask: np.ndarray) -> np.ndarray:
    """``(H, W) bool`` grown by one pixel (3x3)."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    grown = out.copy()
    out[:, 1:] |= grown[:, :-1]
    out[:, :-1] |= grown[:, 1:]
    return out


def _cast_face_ids(
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


_PROBE_SCRIPT = """
import sys, bpy
bpy.ops.wm.read_homefile(use_empty=True)
scene = bpy.context.scene
cam = bpy.data.objects.new("probe", bpy.data.cameras.new("probe"))
scene.collection.objects.link(cam)
scene.camera = cam
bpy.ops.mesh.primitive_plane_add(location=(0, 0, -3))
scene.render.engine = "BLENDER_WORKBENCH"
scene.render.resolution_x = scene.render.resolution_y = 8
scene.render.image_settings.file_format = "TARGA_RAW"
scene.render.use_file_extension = False
scene.render.filepath = sys.argv[-1]
bpy.ops.render.render(write_still=True)
"""


def _probe_workbench() -> bool:
    if not bpy.app.background:
        return True  # a UI session has a working OpenGL context
    fd, out = tempfile.mkstemp(prefix="partdistill_probe_", suffix=".tga", dir=_fast_tmp_dir())
    os.close(fd)
    os.remove(out)
    if bpy.app.binary_path:  # running inside the Blender executable (blender -b)
        cmd = [bpy.app.binary_path, "-b", "--factory-startup", "--python-expr", _PROBE_SCRIPT, "--", out]
    else:  # Blender as a Python module: the same interpreter can import bpy
        cmd = [sys.executable, "-c", _PROBE_SCRIPT, out]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=180, check=False)
        return proc.returncode == 0 and os.path.isfile(out) and os.path.getsize(out) > 18
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        if os.path.exists(out):
            os.remove(out)


def _append_blend_meshes(path: Path) -> None:
    with bpy.data.libraries.load(str(path), link=False) as (src, dst):
        dst.objects = list(src.objects)
    scene = bpy.context.scene
    # Only meshes are linked into the scene; their parents and modifier targets stay appended but
    # unlinked, so transforms and modifiers still evaluate.
    for o in dst.objects:
        if o is not None and o.type == "MESH":
            scene.collection.objects.link(o)
