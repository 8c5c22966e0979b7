"""Scenes the headless-capture tests build: a cube with one colour per face and cameras aimed at it."""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Vector

#: Polygon p of ``colour_cube`` has the flat colour ``COLOURS[p]``.
COLOURS = np.array([(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1)], np.float64)


def colour_cube(name: str = "Cube", size: float = 2.0) -> bpy.types.Object:
    """A cube whose six polygons have six flat material colours (polygon p -> COLOURS[p])."""
    bpy.ops.mesh.primitive_cube_add(size=size)
    obj = bpy.context.object
    obj.name = name
    for i, c in enumerate(COLOURS):
        mat = bpy.data.materials.new(f"{name} colour {i}")
        mat.diffuse_color = (*c, 1.0)  # what Workbench shows
        bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
        bsdf.inputs["Base Color"].default_value = (*c, 1.0)  # what Cycles shows
        obj.data.materials.append(mat)
    obj.data.polygons.foreach_set("material_index", np.arange(6, dtype=np.int32))
    return obj


def add_camera(
    location, target=(0.0, 0.0, 0.0), *, kind: str = "PERSP", shift_x: float = 0.0, ortho_scale: float = 4.0
) -> bpy.types.Object:
    data = bpy.data.cameras.new("cam")
    data.type = kind
    data.shift_x = shift_x
    data.ortho_scale = ortho_scale
    cam = bpy.data.objects.new("cam", data)
    bpy.context.scene.collection.objects.link(cam)
    loc = Vector(location)
    cam.location = loc
    cam.rotation_euler = (Vector(target) - loc).to_track_quat("-Z", "Y").to_euler()
    bpy.context.view_layer.update()
    return cam
