"""Put a segmentation onto a mesh object: one material slot per part plus an integer face attribute.

What a result leaves on the object's mesh:

- one material slot per part, after the user's own slots, with a material named
  ``partdistill: <part>`` (custom property ``partdistill_part`` = the part name) in a distinct colour
  (viewport colour and Principled base colour, so Workbench, Cycles/EEVEE and glTF export agree);
- ``material_index`` of every labelled polygon pointing at its part's slot; unlabelled polygons keep
  the material they had before;
- face attribute ``partdistill_part`` (INT): the part index, -1 = unlabelled (and, from the add-on's
  jobs, the colour attribute ``partdistill_confidence``; see ``results.py``);
- face attribute ``partdistill_material_before`` (INT): each polygon's material slot before the
  first result, so a second result or :func:`remove_result` can restore it;
- custom property ``partdistill_parts`` on the mesh: the part names, in index order;
- on a mesh that had no material slots, an empty first slot (flagged by the custom property
  ``partdistill_empty_slot``) so that unlabelled polygons keep rendering without a material.

Applying again replaces all of this (no duplicate slots or materials). Both functions validate
everything first and then only write, so they never leave the object half-changed; each is one data
change, hence one undo step when called from an operator with ``bl_options = {"UNDO"}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import bpy
import numpy as np
from partdistill.shared import limits
from partdistill.shared.errors import ValidationError
from partdistill.shared.palette import palette
from partdistill.shared.validation import check_part_names

PART_ATTRIBUTE = "partdistill_part"
CONFIDENCE_ATTRIBUTE = "partdistill_confidence"  # written by results.write_confidence
BEFORE_ATTRIBUTE = "partdistill_material_before"
PARTS_PROPERTY = "partdistill_parts"
EMPTY_SLOT_PROPERTY = "partdistill_empty_slot"
MATERIAL_TAG = "partdistill_part"
MATERIAL_PREFIX = "partdistill: "


def part_colors(n: int) -> np.ndarray:
    """``(n, 4) float32`` linear RGBA material colours of the shared part palette (the same colours
    as previews and exports)."""
    rgb = np.array(palette(n), np.float64).reshape(-1, 3)
    # Material colours are scene-linear; the palette is meant as seen on screen (sRGB).
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return np.concatenate([linear, np.ones((len(linear), 1))], axis=1).astype(np.float32)


def apply_result(
    obj: bpy.types.Object,
    part_names: Sequence[str],
    polygon_labels: np.ndarray | Sequence[int],
    *,
    colors: Sequence[Sequence[float]] | np.ndarray | None = None,
) -> None:
    """Label the polygons of ``obj``'s mesh with parts (see the module docstring for what is written).

    polygon_labels: ``(P,)`` integers, one per polygon of ``obj.data`` (``SegmentationResult.
    polygon_labels``), each in ``[-1, len(part_names))``; -1 = unlabelled. colors: optional
    ``(len(part_names), 3 or 4)`` linear RGB(A) in [0, 1]; default :func:`part_colors`.
    Raises ``ValidationError`` (changing nothing) for a bad object, names, labels or colours.
    """
    mesh = _check_object(obj)
    names = check_part_names("part_names", part_names, limits.MAX_PARTS, limits.MAX_PART_NAME_CHARS)
    labels = _check_labels(polygon_labels, len(mesh.polygons), len(names), obj.name)
    rgba = part_colors(len(names)) if colors is None else _check_colors(colors, len(names))

    old = list(mesh.materials)
    is_ours = [_is_ours(m) for m in old]
    before = _material_before(mesh, is_ours)
    reusable = {m[MATERIAL_TAG]: m for m, ours in zip(old, is_ours, strict=True) if ours}

    # From here on only writes.
    n_user = _drop_our_slots(mesh, is_ours)
    if n_user == 0:
        mesh.materials.append(None)
        mesh[EMPTY_SLOT_PROPERTY] = True
        n_user = 1
    for name, color in zip(names, rgba, strict=True):
        mat = reusable.pop(name, None) or bpy.data.materials.new(MATERIAL_PREFIX + name)
        _style_material(mat, name, color)
        mesh.materials.append(mat)
    index = np.where(labels >= 0, n_user + labels, before).astype(np.int32)
    mesh.polygons.foreach_set("material_index", index)
    _write_face_attribute(mesh, PART_ATTRIBUTE, labels)
    _write_face_attribute(mesh, BEFORE_ATTRIBUTE, before)
    mesh[PARTS_PROPERTY] = list(names)
    _remove_orphans([m for m, ours in zip(old, is_ours, strict=True) if ours])  # reused ones have users
    mesh.update()


def remove_result(obj: bpy.types.Object) -> bool:
    """Take a result off ``obj``: its slots, attributes and (now unused) materials; polygons get
    back the material they had before. Returns False when there was nothing to remove."""
    mesh = _check_object(obj)
    old = list(mesh.materials)
    is_ours = [_is_ours(m) for m in old]
    has_attrs = PART_ATTRIBUTE in mesh.attributes or BEFORE_ATTRIBUTE in mesh.attributes
    if not any(is_ours) and not has_attrs and PARTS_PROPERTY not in mesh and EMPTY_SLOT_PROPERTY not in mesh:
        return False
    before = _material_before(mesh, is_ours)
    _drop_our_slots(mesh, is_ours)
    if mesh.get(EMPTY_SLOT_PROPERTY) and len(mesh.materials) and mesh.materials[0] is None:
        mesh.materials.pop(index=0)
        before = np.maximum(before - 1, 0)
    mesh.polygons.foreach_set("material_index", before)
    for name in (PART_ATTRIBUTE, BEFORE_ATTRIBUTE, CONFIDENCE_ATTRIBUTE):
        attr = mesh.attributes.get(name)
        if attr is not None:
            mesh.attributes.remove(attr)
    for prop in (PARTS_PROPERTY, EMPTY_SLOT_PROPERTY):
        if prop in mesh:
            del mesh[prop]
    for group in [g for g in obj.vertex_groups if g.name.startswith(MATERIAL_PREFIX)]:
        obj.vertex_groups.remove(group)
    _remove_orphans(m for m, ours in zip(old, is_ours, strict=True) if ours)
    mesh.update()
    return True


def result_labels(obj: bpy.types.Object) -> tuple[tuple[str, ...], np.ndarray] | None:
    """The part names and ``(P,) int32`` polygon labels a result left on ``obj``, or None."""
    mesh = obj.data if isinstance(obj, bpy.types.Object) and obj.type == "MESH" else None
    if mesh is None or PART_ATTRIBUTE not in mesh.attributes or PARTS_PROPERTY not in mesh:
        return None
    labels = np.empty(len(mesh.polygons), np.int32)
    mesh.attributes[PART_ATTRIBUTE].data.foreach_get("value", labels)
    return tuple(str(n) for n in mesh[PARTS_PROPERTY]), labels


# --------------------------------------------------------------------------- internals


def _check_object(obj: object) -> bpy.types.Mesh:
    if not isinstance(obj, bpy.types.Object) or obj.type != "MESH":
        kind = f"{obj.type.lower()} object" if isinstance(obj, bpy.types.Object) else type(obj).__name__
        raise ValidationError("object", f"expected a mesh object, got a {kind}")
    if obj.mode == "EDIT":
        # Edit Mode keeps its own copy of the mesh and would overwrite these changes on exit.
        raise ValidationError("object", f"{obj.name!r} is in Edit Mode; switch to Object Mode first")
    if obj.data.library is not None:
        raise ValidationError("object", f"the mesh of {obj.name!r} is linked from a library; make it local")
    return obj.data


def _check_labels(values: object, n_polygons: int, n_parts: int, obj_name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValidationError("polygon_labels", f"must be one-dimensional, got shape {arr.shape}")
    if arr.size and (arr.dtype.kind not in "iu"):
        raise ValidationError("polygon_labels", f"must be integers, got {arr.dtype}")
    if arr.shape[0] != n_polygons:
        raise ValidationError(
            "polygon_labels", f"has {arr.shape[0]} entries but {obj_name!r} has {n_polygons} polygons"
        )
    if arr.size and (arr.min() < -1 or arr.max() >= n_parts):
        raise ValidationError("polygon_labels", f"values must lie in [-1, {n_parts}), found [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int32)


def _check_colors(colors: object, n: int) -> np.ndarray:
    """``(n, 4) float32`` from ``n`` RGB or RGBA entries (they may mix)."""
    try:
        rows = [np.asarray(c, dtype=np.float64) for c in colors]  # type: ignore[union-attr]
    except (TypeError, ValueError) as e:
        raise ValidationError("colors", "must be a list of RGB or RGBA numbers") from e
    if len(rows) != n:
        raise ValidationError("colors", f"needs one colour per part ({n}), got {len(rows)}")
    out = np.ones((n, 4), np.float64)
    for i, row in enumerate(rows):
        if row.shape not in ((3,), (4,)):
            raise ValidationError(f"colors[{i}]", f"must be 3 or 4 numbers, got shape {row.shape}")
        if not np.all(np.isfinite(row)) or row.min() < 0 or row.max() > 1:
            raise ValidationError(f"colors[{i}]", "values must lie in [0, 1]")
        out[i, : len(row)] = row
    return out.astype(np.float32)


def _is_ours(mat: bpy.types.Material | None) -> bool:
    return mat is not None and MATERIAL_TAG in mat


def _material_before(mesh: bpy.types.Mesh, is_ours: list[bool]) -> np.ndarray:
    """``(P,) int32`` material slot of each polygon before any result, as an index into the slot
    list that remains once our slots are dropped."""
    n = len(mesh.polygons)
    before = np.empty(n, np.int32)
    attr = mesh.attributes.get(BEFORE_ATTRIBUTE)
    if attr is not None and attr.domain == "FACE" and attr.data_type == "INT":
        attr.data.foreach_get("value", before)
    else:
        mesh.polygons.foreach_get("material_index", before)
    n_old = len(is_ours)
    if n_old == 0:
        return np.zeros(n, np.int32)
    ours = np.array(is_ours, bool)
    remap = np.cumsum(~ours) - 1  # old slot -> slot among the user's
    remap[ours] = 0  # a polygon that pointed at one of our slots falls back to the first slot
    remap = np.maximum(remap, 0)
    return np.where(before < n_old, remap[np.clip(before, 0, n_old - 1)], before - int(ours.sum())).astype(np.int32)


def _drop_our_slots(mesh: bpy.types.Mesh, is_ours: list[bool]) -> int:
    """Pop our slots (last first, so the user's keep their order); returns the user's slot count."""
    for i in reversed(range(len(is_ours))):
        if is_ours[i]:
            mesh.materials.pop(index=i)
    return len(mesh.materials)


def _style_material(mat: bpy.types.Material, part: str, rgba: np.ndarray) -> None:
    color = tuple(float(c) for c in rgba)
    mat[MATERIAL_TAG] = part
    mat.diffuse_color = color
    if mat.node_tree is None and hasattr(mat, "use_nodes"):
        mat.use_nodes = True  # before 5.0 new materials had no node tree
    if mat.node_tree is not None:
        for node in mat.node_tree.nodes:
            if node.type == "BSDF_PRINCIPLED":
                node.inputs["Base Color"].default_value = color


def _write_face_attribute(mesh: bpy.types.Mesh, name: str, values: np.ndarray) -> None:
    attr = mesh.attributes.get(name)
    if attr is not None and (attr.domain != "FACE" or attr.data_type != "INT"):
        mesh.attributes.remove(attr)
        attr = None
    if attr is None:
        attr = mesh.attributes.new(name, "INT", "FACE")
    attr.data.foreach_set("value", values.astype(np.int32))


def _remove_orphans(materials) -> None:
    for mat in list(materials):
        if mat is not None and mat.users == 0 and _is_ours(mat):
            bpy.data.materials.remove(mat)
