"""What else an artist can make of an applied result (``apply.py`` writes the result itself):

- per-face confidence as a colour attribute ``partdistill_confidence`` (FACE, red = unsure, green =
  sure; the raw value in its alpha), written with the result;
- one vertex group per part (``partdistill: <part>``), for rigging, masks and modifiers;
- the parts split into separate objects (copies in a new collection; the original is hidden, not
  changed), for export or UV work per part;
- corrections: faces the user moved to another part's material slot in Edit Mode, read back as
  few-shot labels for *Refine*.

Each function validates first and then writes, so an error changes nothing.
"""

from __future__ import annotations

import bmesh
import bpy
import numpy as np
from partdistill.shared.errors import ValidationError

from .apply import CONFIDENCE_ATTRIBUTE, MATERIAL_PREFIX, MATERIAL_TAG, result_labels

GROUP_PREFIX = MATERIAL_PREFIX


def polygon_confidence(
    face_confidence: np.ndarray, face_to_polygon: np.ndarray | None, n_polygons: int, face_areas: np.ndarray
) -> np.ndarray:
    """``(P,) float32``: each polygon's area-weighted mean of its triangles' ``(F,)`` confidences."""
    if face_to_polygon is None:
        return face_confidence.astype(np.float32)
    w = np.maximum(face_areas, 1e-12)
    num = np.bincount(face_to_polygon, weights=face_confidence * w, minlength=n_polygons)
    den = np.bincount(face_to_polygon, weights=w, minlength=n_polygons)
    return np.where(den > 0, num / np.maximum(den, 1e-12), 0.0).astype(np.float32)


def write_confidence(obj: bpy.types.Object, confidence: np.ndarray) -> None:
    """The ``(P,)`` confidences in [0, 1] as the colour attribute ``partdistill_confidence``."""
    mesh = obj.data
    c = np.asarray(confidence, np.float32)
    if c.shape != (len(mesh.polygons),) or not np.isfinite(c).all():
        raise ValidationError("confidence", f"must be {len(mesh.polygons)} finite values, one per face")
    c = np.clip(c, 0.0, 1.0)
    rgba = np.stack([1.0 - c, c, np.zeros_like(c), c], axis=1)
    old = mesh.attributes.get(CONFIDENCE_ATTRIBUTE)
    if old is not None:
        mesh.attributes.remove(old)
    attr = mesh.attributes.new(CONFIDENCE_ATTRIBUTE, "FLOAT_COLOR", "FACE")
    attr.data.foreach_set("color", rgba.ravel())


def _labels_or_error(obj: bpy.types.Object) -> tuple[tuple[str, ...], np.ndarray]:
    found = result_labels(obj) if obj is not None and obj.type == "MESH" else None
    if found is None:
        raise ValidationError("object", "the active object has no partdistill result: segment it first")
    return found


def make_vertex_groups(obj: bpy.types.Object) -> list[str]:
    """One vertex group per part (weight 1 on the vertices of its faces); replaces earlier ones.
    Returns the group names."""
    names, labels = _labels_or_error(obj)
    mesh = obj.data
    loop_start = np.zeros(len(mesh.polygons), np.int64)
    loop_total = np.zeros(len(mesh.polygons), np.int64)
    mesh.polygons.foreach_get("loop_start", loop_start)
    mesh.polygons.foreach_get("loop_total", loop_total)
    loop_vert = np.zeros(len(mesh.loops), np.int64)
    mesh.loops.foreach_get("vertex_index", loop_vert)
    loop_label = np.repeat(labels, loop_total)
    made = []
    for g in [g for g in obj.vertex_groups if g.name.startswith(GROUP_PREFIX)]:
        obj.vertex_groups.remove(g)
    for i, name in enumerate(names):
        verts = np.unique(loop_vert[loop_label == i])
        group = obj.vertex_groups.new(name=GROUP_PREFIX + name)
        if verts.size:
            group.add(verts.tolist(), 1.0, "REPLACE")
        made.append(group.name)
    return made


def split_parts(obj: bpy.types.Object, context: bpy.types.Context) -> list[bpy.types.Object]:
    """Copies of ``obj``, one per part that has faces, each keeping only that part's faces, in a new
    collection "<object> parts"; ``obj`` itself is hidden, not changed. Returns the new objects."""
    names, labels = _labels_or_error(obj)
    present = [i for i in range(len(names)) if (labels == i).any()]
    collection = bpy.data.collections.new(f"{obj.name} parts")
    (obj.users_collection[0] if obj.users_collection else context.scene.collection).children.link(collection)
    made = []
    for i in present:
        mesh = obj.data.copy()
        mesh.name = f"{obj.data.name} {names[i]}"
        bm = bmesh.new()
        bm.from_mesh(mesh)
        bm.faces.ensure_lookup_table()
        drop = [f for f in bm.faces if labels[f.index] != i]
        bmesh.ops.delete(bm, geom=drop, context="FACES")
        bm.to_mesh(mesh)
        bm.free()
        part = bpy.data.objects.new(f"{obj.name} {names[i]}", mesh)
        part.matrix_world = obj.matrix_world.copy()
        collection.objects.link(part)
        made.append(part)
    obj.hide_set(True)
    return made


def corrections(obj: bpy.types.Object) -> tuple[tuple[str, ...], np.ndarray]:
    """The result's part names and ``(P,) int32`` polygon labels the user set by hand: a polygon now
    in a part's material slot other than the result's label for it gets that part; -1 elsewhere.
    ValidationError when there is no result or no correction."""
    names, labels = _labels_or_error(obj)
    mesh = obj.data
    slot_part = np.full(max(len(mesh.materials), 1), -1, np.int32)
    for k, mat in enumerate(mesh.materials):
        if mat is not None and MATERIAL_TAG in mat and mat[MATERIAL_TAG] in names:
            slot_part[k] = names.index(mat[MATERIAL_TAG])
    index = np.zeros(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("material_index", index)
    now = slot_part[np.clip(index, 0, len(slot_part) - 1)]
    fixed = np.where((now >= 0) & (now != labels), now, -1).astype(np.int32)
    if not (fixed >= 0).any():
        raise ValidationError(
            "corrections",
            "no face was moved to another part: in Edit Mode, select faces, "
            "pick a part's material slot and press Assign, then Refine",
        )
    return names, fixed
