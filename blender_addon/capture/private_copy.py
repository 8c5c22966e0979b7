"""The private copy of the user's object that a capture renders.

The user's object is duplicated into the capture scene, its
polygons numbered in a face attribute that survives modifiers, set to render what the viewport shows."""

from __future__ import annotations

from collections.abc import Callable

import bpy
import numpy as np

from .face_ids import _SOURCE_ATTR


def private_copy(obj: bpy.types.Object, tmp: bpy.types.Scene, cleanup: list[Callable[[], None]]) -> bpy.types.Object:
    mesh = obj.data.copy()
    cleanup.append(lambda: bpy.data.meshes.remove(mesh))
    copy = obj.copy()
    copy.data = mesh
    cleanup.append(lambda: bpy.data.objects.remove(copy))
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
