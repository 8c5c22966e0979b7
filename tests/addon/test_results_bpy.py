"""What an artist can make of a result: per-face confidence colours, vertex groups per part, parts
split into objects (the original untouched), all removed by Clear."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from partdistill.blender_addon import apply as ap  # noqa: E402
from partdistill.blender_addon import results as rs  # noqa: E402
from partdistill.shared.errors import ValidationError  # noqa: E402
from test_apply_bpy import grid  # noqa: E402


def test_polygon_confidence_is_the_area_weighted_mean_of_its_triangles():
    conf = np.array([1.0, 0.0, 0.5])
    f2p = np.array([0, 0, 1])
    area = np.array([3.0, 1.0, 2.0])
    np.testing.assert_allclose(rs.polygon_confidence(conf, f2p, 2, area), [0.75, 0.5])


def test_confidence_colours_are_written_per_face(bpy_empty):
    obj = grid(2, 1)
    rs.write_confidence(obj, np.array([0.0, 1.0]))
    rgba = np.empty(8, np.float32)
    obj.data.attributes[ap.CONFIDENCE_ATTRIBUTE].data.foreach_get("color", rgba)
    np.testing.assert_allclose(rgba.reshape(2, 4), [[1, 0, 0, 0], [0, 1, 0, 1]])
    with pytest.raises(ValidationError):
        rs.write_confidence(obj, np.array([0.5]))


def test_vertex_groups_hold_the_vertices_of_each_parts_faces(bpy_empty):
    obj = grid(3, 1)  # three quads in a row: vertices 0-1-2-3 along x, two rows
    ap.apply_result(obj, ("left", "right"), np.array([0, 0, 1], np.int32))
    names = rs.make_vertex_groups(obj)
    assert names == ["partdistill: left", "partdistill: right"]
    members = {g.name: set() for g in obj.vertex_groups}
    for v in obj.data.vertices:
        for g in v.groups:
            members[obj.vertex_groups[g.group].name].add(v.index)
    left_faces = [p for p in obj.data.polygons if p.index < 2]
    assert members["partdistill: left"] == {i for p in left_faces for i in p.vertices}
    assert len(members["partdistill: right"]) == 4
    rs.make_vertex_groups(obj)  # again: replaced, not doubled
    assert len(obj.vertex_groups) == 2


def test_split_makes_one_object_per_part_and_leaves_the_original(bpy_empty):
    obj = grid(3, 2)
    labels = np.array([0, 0, 1, 0, 1, 1], np.int32)
    ap.apply_result(obj, ("a", "b", "c"), labels)  # "c" has no faces: no object for it
    n_faces = len(obj.data.polygons)
    made = rs.split_parts(obj, bpy.context)
    assert [o.name for o in made] == [f"{obj.name} a", f"{obj.name} b"]
    assert [len(o.data.polygons) for o in made] == [3, 3]
    assert len(obj.data.polygons) == n_faces and obj.hide_get()
    assert made[0].users_collection[0].name == f"{obj.name} parts"


def test_clear_removes_confidence_and_groups_and_needs_a_result(bpy_empty):
    obj = grid(2, 1)
    ap.apply_result(obj, ("a", "b"), np.array([0, 1], np.int32))
    rs.write_confidence(obj, np.array([0.2, 0.9]))
    rs.make_vertex_groups(obj)
    assert ap.remove_result(obj)
    assert ap.CONFIDENCE_ATTRIBUTE not in obj.data.attributes and len(obj.vertex_groups) == 0
    with pytest.raises(ValidationError, match="no partdistill result"):
        rs.make_vertex_groups(obj)
