"""Render engines and settings of a capture, and reading the rendered image back.

The engine choice (with the Workbench probe), the private
scene's render settings, Cycles lighting, the guard around the user's Render Result, and reading
the rendered TGA back with numpy."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable

import bpy
import numpy as np
from mathutils import Matrix

from .cameras import remove_objects

_ENGINES = {"workbench": "BLENDER_WORKBENCH", "cycles": "CYCLES"}
#: Capture engines: Blender's two plus our own numpy rasteriser (face ids and a flat-shaded picture
#: from one z-buffer pass, no render call; it draws material, single or object colours, not textures).
ENGINES = ("raster", *_ENGINES)
_RASTER_COLOR_TYPES = {"MATERIAL", "SINGLE", "OBJECT"}
COLOR_TYPES = {"MATERIAL", "SINGLE", "OBJECT", "RANDOM", "VERTEX", "TEXTURE"}
LIGHTINGS = {"STUDIO", "FLAT", "MATCAP"}
WORKBENCH_AA = {1: "OFF", 5: "5", 8: "8", 11: "11", 16: "16", 32: "32"}

_workbench_probe: bool | None = None


# --------------------------------------------------------------------------- engines


def workbench_available() -> bool:
    """Whether Workbench can render here. Without an OpenGL/EGL context Workbench aborts the whole
    process, so the first call renders a tiny image in a child process; the answer is cached."""
    global _workbench_probe
    if _workbench_probe is None:
        _workbench_probe = _probe_workbench()
    return _workbench_probe


def resolve_engine(engine: str, color_type: str = "MATERIAL") -> str:
    """``"raster"``, ``"workbench"`` or ``"cycles"`` for an ``engine`` argument of :func:`capture_object`
    (``"auto"``: ``PARTDISTILL_RENDER_ENGINE`` if set, else the rasteriser when it can draw
    ``color_type``, else Workbench where it works, else Cycles)."""
    if engine != "auto":
        return engine
    forced = os.environ.get("PARTDISTILL_RENDER_ENGINE", "").lower()
    if forced in ENGINES:
        return forced
    if color_type in _RASTER_COLOR_TYPES:
        return "raster"
    return "workbench" if workbench_available() else "cycles"


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
    fd, out = tempfile.mkstemp(prefix="partdistill_probe_", suffix=".tga", dir=fast_tmp_dir())
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


# --------------------------------------------------------------------------- settings


def configure_render(
    tmp: bpy.types.Scene, user_render: bpy.types.RenderSettings, engine: str, width: int, height: int
) -> None:
    """Settings of the private scene ``tmp`` common to both engines: size, a transparent film written
    as raw TGA, no post-processing, plain colour management; simplification as in ``user_render``."""
    r = tmp.render
    r.engine = _ENGINES.get(engine, "BLENDER_WORKBENCH")  # the rasteriser never renders
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
    r.use_simplify = user_render.use_simplify
    r.simplify_subdivision = user_render.simplify_subdivision
    r.simplify_subdivision_render = user_render.simplify_subdivision
    vs = tmp.view_settings
    tmp.display_settings.display_device = "sRGB"
    vs.view_transform = "Standard"  # plain colours: a material's colour renders as that colour
    vs.look = "None"
    vs.exposure = 0.0
    vs.gamma = 1.0


def configure_workbench(tmp: bpy.types.Scene, *, aa: str, lighting: str, color_type: str) -> None:
    d = tmp.display
    d.render_aa = aa
    s = d.shading
    s.light = lighting
    s.color_type = color_type
    s.show_cavity = False
    s.show_object_outline = False  # the outline would spill onto background pixels
    s.show_shadows = False
    s.show_xray = False
    s.use_dof = False
    s.show_backface_culling = False


def configure_cycles(tmp: bpy.types.Scene, *, samples: int) -> None:
    c = tmp.cycles
    c.device = "CPU"
    c.samples = samples
    c.use_adaptive_sampling = False
    c.use_denoising = False  # OIDN costs ~18 s per view on 2 cores
    c.max_bounces = 2


def add_cycles_lighting(tmp: bpy.types.Scene, cleanup: list[Callable[[], None]]) -> bpy.types.Object:
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
    cleanup.append(lambda: remove_objects([sun]))
    return sun


def follow_camera(light: bpy.types.Object, cam_to_world: Matrix) -> None:
    """A headlight slightly above-left of the camera: shading that reads like a studio look."""
    light.matrix_world = (
        cam_to_world @ Matrix.Rotation(math.radians(-25), 4, "X") @ Matrix.Rotation(math.radians(-20), 4, "Y")
    )


def guard_render_result(cleanup: list[Callable[[], None]]) -> None:
    """Rendering writes to the 'Render Result' image: keep the user's render in its slot (the undo
    steps are appended to ``cleanup``)."""
    existing = [im for im in bpy.data.images if im.type == "RENDER_RESULT"]
    if not existing:

        def drop_new_render_results() -> None:
            for im in [im for im in bpy.data.images if im.type == "RENDER_RESULT"]:
                bpy.data.images.remove(im)

        cleanup.append(drop_new_render_results)
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

    cleanup.append(restore)


# --------------------------------------------------------------------------- output


def fast_tmp_dir() -> str | None:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def read_tga_over(path: str, background: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
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
