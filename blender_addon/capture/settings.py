"""What a capture is asked for, checked once before the scene is touched.

The cameras (given, the scene's, or the ring), the image size, the render engine and its shading."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import bpy
import numpy as np
from partdistill.shared.errors import ValidationError

from .render import COLOR_TYPES, ENGINES, LIGHTINGS, WORKBENCH_AA


@dataclass
class CaptureSettings:
    """cameras: the cameras to render from; else the scene's (``scene``, default the context scene)
    when it has any; else a temporary ring of ``n_views`` cameras framing the object (``ring=True``
    forces the ring, ``ring=False`` forbids it). resolution: an int is the longer image side (the
    ring renders square images; scene cameras keep the scene's aspect ratio), a pair is ``(width,
    height)``. engine: ``"raster"`` (no render call: face ids from a numpy z-buffer, the exact
    pixel-centre answer ray casting gives, and a flat-shaded picture painted from them; material,
    single or object colours, no textures), ``"workbench"``, ``"cycles"`` (CPU, ``cycles_samples``,
    no denoiser) or ``"auto"`` (the rasteriser when it can draw ``color_type``, else Workbench when
    an OpenGL/EGL context works, probed once in a child process, else Cycles;
    ``PARTDISTILL_RENDER_ENGINE`` overrides it). color_type / lighting: Workbench shading
    (``"MATERIAL"``, ``"TEXTURE"``, ``"SINGLE"``, ...; ``"STUDIO"``, ``"FLAT"``, ``"MATCAP"``).
    background: display (sRGB) colour in [0, 1] behind the object. aa_samples: Workbench
    anti-aliasing samples (1 = off, 5, 8, 11, 16, 32)."""

    cameras: Sequence[bpy.types.Object] | None = None
    resolution: int | tuple[int, int] = 512
    engine: str = "auto"
    ring: bool | None = None
    n_views: int = 10
    scene: bpy.types.Scene | None = None
    color_type: str = "MATERIAL"
    lighting: str = "STUDIO"
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    aa_samples: int = 8
    cycles_samples: int = 8

    def validate(self) -> CaptureSettings:
        if self.engine not in ("auto", *ENGINES):
            raise ValidationError("engine", f"must be 'auto', 'raster', 'workbench' or 'cycles', got {self.engine!r}")
        if self.aa_samples not in WORKBENCH_AA:
            raise ValidationError("aa_samples", f"must be one of {sorted(WORKBENCH_AA)}, got {self.aa_samples}")
        if not (isinstance(self.n_views, int) and 1 <= self.n_views <= 64):
            raise ValidationError("n_views", f"must be an integer in [1, 64], got {self.n_views!r}")
        if self.color_type not in COLOR_TYPES:
            raise ValidationError("color_type", f"must be one of {sorted(COLOR_TYPES)}, got {self.color_type!r}")
        if self.lighting not in LIGHTINGS:
            raise ValidationError("lighting", f"must be one of {sorted(LIGHTINGS)}, got {self.lighting!r}")
        bg = np.asarray(self.background, dtype=np.float64)
        if bg.shape != (3,) or not np.all((bg >= 0) & (bg <= 1)):
            raise ValidationError("background", "must be three numbers in [0, 1]")
        return self

    @property
    def background_255(self) -> np.ndarray:
        return np.round(np.asarray(self.background, dtype=np.float64) * 255.0)

    def choose_cameras(self) -> tuple[list[bpy.types.Object], bool]:
        """The cameras to render from, and whether a ring is to be made instead (then none)."""
        scene = self.scene if self.scene is not None else bpy.context.scene
        if self.ring is True:
            if self.cameras:
                raise ValidationError("cameras", "give cameras or ring=True, not both")
            return [], True
        if self.cameras is not None:
            cams = list(self.cameras)
            if not cams:
                raise ValidationError("cameras", "the list of cameras is empty")
        else:
            cams = sorted((o for o in scene.objects if o.type == "CAMERA"), key=lambda o: o.name)
            if not cams:
                if self.ring is False:
                    raise ValidationError("cameras", "the scene has no cameras and ring=False")
                return [], True
        for i, cam in enumerate(cams):
            if not isinstance(cam, bpy.types.Object) or cam.type != "CAMERA":
                raise ValidationError(f"cameras[{i}]", f"expected a camera object, got {describe(cam)}")
            if cam.data.type not in ("PERSP", "ORTHO"):
                raise ValidationError(
                    f"cameras[{i}]", f"camera {cam.name!r} is {cam.data.type}; use a perspective or orthographic camera"
                )
        return cams, False


def describe(value: object) -> str:
    """How an error names a thing that is not what it should be."""
    if isinstance(value, bpy.types.Object):
        return f"{value.type.lower()} object {value.name!r}"
    return type(value).__name__
