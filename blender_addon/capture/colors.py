"""The colours the rasteriser paints each triangle with, read as Workbench reads them.

The material's viewport colour, the scene's single colour or the object's colour, in display (sRGB) values."""

from __future__ import annotations

import bpy
import numpy as np

#: Workbench's colour for faces without a material (linear 0.8 grey).
_DEFAULT_LINEAR = (0.8, 0.8, 0.8)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Scene-linear values in [0, 1] -> sRGB display values in [0, 255] (the 'Standard' view transform)."""
    c = np.clip(np.asarray(c, np.float64), 0.0, 1.0)
    srgb = np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1.0 / 2.4) - 0.055)
    return srgb * 255.0


def triangle_colors(
    obj: bpy.types.Object, scene: bpy.types.Scene, tri_material: np.ndarray, color_type: str
) -> np.ndarray:
    """``(T, 3) float32`` display colour in 0..255 of each triangle of the capture mesh, from its
    material slot index ``tri_material (T,) int32`` (``"MATERIAL"``), the scene's Workbench single
    colour (``"SINGLE"``) or ``obj.color`` (``"OBJECT"``)."""
    n = len(tri_material)
    if color_type == "SINGLE":
        return np.tile(_linear_to_srgb(scene.display.shading.single_color), (n, 1)).astype(np.float32)
    if color_type == "OBJECT":
        return np.tile(_linear_to_srgb(obj.color[:3]), (n, 1)).astype(np.float32)
    slots = [s.material for s in obj.material_slots]
    table = np.array(
        [_DEFAULT_LINEAR if m is None else tuple(m.diffuse_color[:3]) for m in slots] or [_DEFAULT_LINEAR],
        np.float64,
    )
    idx = np.clip(tri_material, 0, len(table) - 1)
    return _linear_to_srgb(table)[idx].astype(np.float32)
