"""OFF meshes (the Princeton benchmarks', ModelNet's): the header's variants, comments, polygons and
colours read; a broken file refused in one line naming the line and what is wrong."""

from __future__ import annotations

import numpy as np
import pytest
from partdistill.shared.errors import ValidationError
from partdistill.shared.off import read_off

SQUARE_AND_TRIANGLE = """OFF
# a unit square and a triangle above it
5 2 0

0 0 0
1 0 0
1 1 0
0 1 0
0.5 0.5 1   # the apex
4 0 1 2 3
3 0 1 4
"""


def _write(tmp_path, text, name="mesh.off"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_vertices_and_polygons_are_read_past_comments_and_blank_lines(tmp_path):
    off = read_off(_write(tmp_path, SQUARE_AND_TRIANGLE))
    assert off.vertices.shape == (5, 3) and off.vertices[4].tolist() == [0.5, 0.5, 1.0]
    assert off.polygons == [[0, 1, 2, 3], [0, 1, 4]]


@pytest.mark.parametrize(
    "text",
    [
        "OFF3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n",  # ModelNet: the counts on the keyword's line
        "OFF 3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n",
        "OFF\n3 1\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n",  # no edge count
        "COFF\n3 1 0\n0 0 0 255 0 0 255\n1 0 0 0 255 0 255\n0 1 0 0 0 255 255\n3 0 1 2 9 9 9\n",  # colours
        "NOFF\n3 1 0\n0 0 0 0 0 1\n1 0 0 0 0 1\n0 1 0 0 0 1\n3 0 1 2\n",  # normals
    ],
)
def test_the_header_variants_and_what_follows_a_vertex_or_a_face_are_read(tmp_path, text):
    off = read_off(_write(tmp_path, text))
    np.testing.assert_array_equal(off.vertices, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    assert off.polygons == [[0, 1, 2]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ply\n", "mesh.off does not begin with OFF: it is not an OFF file"),
        ("", "mesh.off does not begin with OFF: it is not an OFF file"),
        ("4OFF\n1 0 0\n0 0 0 0\n", "mesh.off: line 1: 4OFF (4-D or n-D vertices) is not read"),
        ("OFF BINARY\n", "mesh.off: line 1: binary OFF is not read"),
        ("OFF\nthree 1 0\n", "mesh.off: line 2: expected the counts 'vertices faces edges', got 'three 1 0'"),
        ("OFF\n3 1 0\n0 0 0\n1 0\n", "mesh.off: line 4: vertex 2 is not three numbers: '1 0'"),
        ("OFF\n2 1 0\n0 0 0\n1 0 nan\n", "mesh.off: vertex 2 (line 4) has a NaN or infinite coordinate"),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n", "mesh.off ends after 2 of the 3 vertices its header promises"),
        ("OFF\n3 2 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "mesh.off ends after 1 of the 2 faces its header promises"),
        (
            "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n",
            "line 6: face 1 uses the vertex index 3; the file's go from 0 to 2",
        ),
        ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n2 0 1\n", "line 6: face 1 needs at least 3 vertex indices, got '2 0 1'"),
    ],
)
def test_a_broken_file_is_refused_naming_the_line_and_what_is_wrong(tmp_path, text, message):
    with pytest.raises(ValidationError) as e:
        read_off(_write(tmp_path, text))
    assert str(e.value).startswith("input: ") and message in str(e.value) and "\n" not in str(e.value)


def test_binary_data_is_refused_as_such(tmp_path):
    p = tmp_path / "mesh.off"
    p.write_bytes(b"OFF BINARY\n" + bytes(64))
    with pytest.raises(ValidationError, match="mesh.off is binary data: only text OFF files are read"):
        read_off(p)
