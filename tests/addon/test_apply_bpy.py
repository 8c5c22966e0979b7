"""Applying a segmentation to a mesh: slots, colours, the face attribute, re-runs and removal."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from partdistill.blender_addon import apply as ap  # noqa: E402
from partdistill.shared.errors import ValidationError  # noqa: E402

pytestmark = pytest.mark.bpy


def grid(n_x: int = 3, n_y: int = 2) -> bpy.types.Object:
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=n_x, y_subdivisions=n_y)
    obj = bpy.context.object
    assert len(obj.data.polygons) == n_x * n_y
    return obj


def with_user_materials(obj: bpy.types.Object) -> list:
    mats = [bpy.data.materials.new("wood"), bpy.data.materials.new("metal")]
    for m in mats:
        obj.data.materials.append(m)
    idx = np.arange(len(obj.data.polygons), dtype=np.int32) % 2
    obj.data.polygons.foreach_set("material_index", idx)
    return mats


def material_index(obj) -> np.ndarray:
    out = np.empty(len(obj.data.polygons), np.int32)
    obj.data.polygons.foreach_get("material_index", out)
    return out


def face_attr(obj, name) -> np.ndarray:
    out = np.empty(len(obj.data.polygons), np.int32)
    obj.data.attributes[name].data.foreach_get("value", out)
    return out


def slot_names(obj) -> list:
    return [m.name if m else None for m in obj.data.materials]


def test_slots_attribute_and_user_materials(bpy_empty):
    obj = grid()
    wood, metal = with_user_materials(obj)
    labels = np.array([0, 1, 2, -1, 1, -1], np.int32)
    ap.apply_result(obj, ["seat", "back", "leg"], labels)

    assert slot_names(obj) == ["wood", "metal", "partdistill: seat", "partdistill: back", "partdistill: leg"]
    assert np.array_equal(face_attr(obj, ap.PART_ATTRIBUTE), labels)
    mi = material_index(obj)
    assert np.array_equal(mi[labels >= 0], 2 + labels[labels >= 0])
    assert np.array_equal(mi[labels < 0], (np.arange(6) % 2)[labels < 0])  # kept their own material
    colors = np.array([m.diffuse_color[:] for m in obj.data.materials[2:]])
    assert len({tuple(np.round(c, 3)) for c in colors}) == 3
    bsdf = next(n for n in obj.data.materials[2].node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    assert np.allclose(bsdf.inputs["Base Color"].default_value[:], colors[0])
    names, stored = ap.result_labels(obj)
    assert names == ("seat", "back", "leg") and np.array_equal(stored, labels)
    assert wood.users == 1 and metal.users == 1


def test_rerun_replaces_and_remove_restores(bpy_empty):
    obj = grid()
    with_user_materials(obj)
    original = material_index(obj)
    n_materials = len(bpy.data.materials)
    ap.apply_result(obj, ["seat", "back", "leg"], [0, 1, 2, 0, 1, 2])
    seat = obj.data.materials[2]
    assert len(bpy.data.materials) == n_materials + 3

    # Again with other parts: no duplicates; the kept part reuses its material; a dropped part's
    # material goes away; polygons now unlabelled get back their original material.
    labels = np.array([1, -1, -1, 0, 1, -1], np.int32)
    ap.apply_result(obj, ["back", "seat"], labels, colors=[(1, 0, 0), (0, 0, 1, 1)])
    assert slot_names(obj) == ["wood", "metal", "partdistill: back", "partdistill: seat"]
    assert obj.data.materials[3] == seat
    assert "partdistill: leg" not in bpy.data.materials
    assert len(bpy.data.materials) == n_materials + 2
    assert tuple(obj.data.materials[2].diffuse_color) == (1.0, 0.0, 0.0, 1.0)
    mi = material_index(obj)
    assert np.array_equal(mi[labels < 0], original[labels < 0])
    assert np.array_equal(mi[labels >= 0], 2 + labels[labels >= 0])

    assert ap.remove_result(obj) is True
    assert slot_names(obj) == ["wood", "metal"]
    assert np.array_equal(material_index(obj), original)
    assert ap.PART_ATTRIBUTE not in obj.data.attributes
    assert ap.BEFORE_ATTRIBUTE not in obj.data.attributes
    assert ap.PARTS_PROPERTY not in obj.data
    assert len(bpy.data.materials) == n_materials
    assert ap.remove_result(obj) is False


def test_mesh_without_materials_gets_an_empty_first_slot(bpy_empty):
    obj = grid()
    ap.apply_result(obj, ["a", "b"], [0, -1, 1, -1, 0, 0])
    assert slot_names(obj) == [None, "partdistill: a", "partdistill: b"]
    assert np.array_equal(material_index(obj), [1, 0, 2, 0, 1, 1])
    ap.apply_result(obj, ["a", "b"], [-1, -1, 1, -1, 0, 0])
    assert slot_names(obj) == [None, "partdistill: a", "partdistill: b"]
    ap.remove_result(obj)
    assert slot_names(obj) == []
    assert np.array_equal(material_index(obj), np.zeros(6))
    assert set(obj.data.keys()) == set()


def test_shared_part_names_across_objects(bpy_empty):
    first, second = grid(), grid()
    ap.apply_result(first, ["seat"], [0] * 6)
    ap.apply_result(second, ["seat"], [0] * 6)
    assert first.data.materials[1] != second.data.materials[1]  # each object owns its materials
    ap.remove_result(first)
    assert second.data.materials[1].users == 1


def mesh_state(obj) -> tuple:
    me = obj.data
    return (
        slot_names(obj),
        material_index(obj).tolist(),
        sorted(a.name for a in me.attributes),
        sorted(me.keys()),
        sorted(m.name for m in bpy.data.materials),
    )


@pytest.mark.parametrize(
    "names, labels, colors, field",
    [
        (["a", "b"], [0, 1, 0, 1, 0], None, "polygon_labels"),  # one short
        (["a", "b"], [0, 1, 0, 1, 0, 1, 0], None, "polygon_labels"),  # one long
        (["a", "b"], [0, 1, 0, 1, 0, 2], None, "polygon_labels"),  # out of range
        (["a", "b"], [0, 1, 0, 1, 0, -2], None, "polygon_labels"),
        (["a", "b"], [0.0, 1.0, 0.0, 1.0, 0.0, 1.0], None, "polygon_labels"),  # not integers
        (["a", "a"], [0, 1, 0, 1, 0, 1], None, "part_names"),
        ([], [-1] * 6, None, "part_names"),
        (["a", "b"], [0, 1, 0, 1, 0, 1], [(1, 0, 0)], "colors"),
        (["a", "b"], [0, 1, 0, 1, 0, 1], [(1, 0, 0), (2, 0, 0)], "colors"),
    ],
)
def test_bad_input_changes_nothing(bpy_empty, names, labels, colors, field):
    obj = grid()
    with_user_materials(obj)
    ap.apply_result(obj, ["x", "y"], [0, 1, -1, 0, 1, -1])
    before = mesh_state(obj)
    with pytest.raises(ValidationError) as err:
        ap.apply_result(obj, names, labels, colors=colors)
    assert err.value.field.startswith(field)
    assert mesh_state(obj) == before


def test_not_a_mesh_or_in_edit_mode(bpy_empty):
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    with pytest.raises(ValidationError, match="object"):
        ap.apply_result(cam, ["a"], [])
    obj = grid()
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        with pytest.raises(ValidationError, match="Edit Mode"):
            ap.apply_result(obj, ["a"], [0] * 6)
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")


def test_many_parts_have_distinct_colours():
    colors = ap.part_colors(64)
    assert colors.shape == (64, 4)
    rounded = {tuple(np.round(c, 3)) for c in colors}
    assert len(rounded) == 64
    assert colors.min() >= 0 and colors.max() <= 1
