"""Checks on a mesh file before any importer reads it: a NaN or infinite coordinate is refused in every
format the same way (the file and the vertex named), and the faces the file holds are counted."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from partdistill.backend.io.glb import write_glb
from partdistill.shared.errors import ValidationError
from partdistill.shared.mesh_files import check_mesh_file

VERTS = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
FACES = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]], np.int32)


def _ply(path, verts, faces, fmt="binary_little_endian"):
    head = (
        f"ply\nformat {fmt} 1.0\nelement vertex {len(verts)}\nproperty float x\nproperty float y\n"
        f"property float z\nelement face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    if fmt == "ascii":
        body = "".join(f"{x} {y} {z}\n" for x, y, z in verts) + "".join(f"3 {a} {b} {c}\n" for a, b, c in faces)
        path.write_text(head + body)
        return path
    order = "<" if fmt == "binary_little_endian" else ">"
    body = np.asarray(verts, order + "f4").tobytes()
    body += b"".join(struct.pack(order + "B3i", 3, *map(int, f)) for f in faces)
    path.write_bytes(head.encode() + body)
    return path


def _stl(path, verts, faces):
    tri = np.asarray(verts, np.float32)[faces]
    body = b"".join(struct.pack("<12fH", 0, 0, 0, *t.reshape(-1), 0) for t in tri)
    path.write_bytes(b"solid but binary".ljust(80, b" ") + struct.pack("<I", len(faces)) + body)
    return path


def _ascii_stl(path, verts, faces):
    lines = ["solid t"]
    for f in faces:
        lines += [
            "facet normal 0 0 0",
            "outer loop",
            *(f"vertex {x} {y} {z}" for x, y, z in verts[f]),
            "endloop",
            "endfacet",
        ]
    path.write_text("\n".join([*lines, "endsolid t", ""]))
    return path


def _glb(path, verts, faces):
    return write_glb(path, verts, faces, np.zeros(len(faces), np.int32), ["a"])


def _gltf_with_data_uri(path, verts, faces):
    """A .gltf whose buffer is a base64 data URI, made from the .glb writer's JSON and binary chunk."""
    import base64

    raw = _glb(path.with_suffix(".glb"), verts, faces).read_bytes()
    (json_len,) = struct.unpack("<I", raw[12:16])
    doc = json.loads(raw[20 : 20 + json_len])
    blob = raw[20 + json_len + 8 :]
    doc["buffers"] = [
        {"byteLength": len(blob), "uri": "data:application/octet-stream;base64," + base64.b64encode(blob).decode()}
    ]
    path.write_text(json.dumps(doc))
    return path


def _off(path, verts, faces):
    """OFF as ModelNet writes it: the counts on the keyword's own line."""
    body = "".join(f"{x} {y} {z}\n" for x, y, z in verts) + "".join(f"3 {a} {b} {c}\n" for a, b, c in faces)
    path.write_text(f"OFF{len(verts)} {len(faces)} 0\n{body}")
    return path


WRITERS = {
    "mesh.off": _off,
    "binary.ply": _ply,
    "big.ply": lambda p, v, f: _ply(p, v, f, "binary_big_endian"),
    "ascii.ply": lambda p, v, f: _ply(p, v, f, "ascii"),
    "binary.stl": _stl,
    "ascii.stl": _ascii_stl,
    "mesh.glb": _glb,
    "mesh.gltf": _gltf_with_data_uri,
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_format_counts_its_faces(tmp_path, name):
    path = WRITERS[name](tmp_path / name, VERTS, FACES)
    assert check_mesh_file(path).faces == len(FACES)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_nan_or_infinite_coordinate_is_refused_naming_the_file_and_the_vertex(tmp_path, name, bad):
    verts = VERTS.copy()
    verts[2, 1] = bad
    path = WRITERS[name](tmp_path / name, verts, FACES)
    with pytest.raises(ValidationError, match=rf"input: {name}: vertex \d+.* has a NaN or infinite coordinate"):
        check_mesh_file(path)


def test_the_vertex_named_is_the_bad_one(tmp_path):
    verts = VERTS.copy()
    verts[3, 0] = np.nan
    with pytest.raises(ValidationError, match="vertex 4 has"):
        check_mesh_file(_ply(tmp_path / "m.ply", verts, FACES))
    with pytest.raises(ValidationError, match=r"vertex 4 \(line 5\)"):
        (tmp_path / "m.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n# a comment\nv nan 0 1\nf 1 2 3\n")
        check_mesh_file(tmp_path / "m.obj")


def test_obj_faces_that_use_later_vertices_are_counted(tmp_path):
    path = tmp_path / "late.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf 1 2 4\nf -3 -2 -1\nv 0 0 1\nf 1 3 4\n")
    facts = check_mesh_file(path)
    assert (facts.faces, facts.forward_faces) == (4, 1)


def test_a_folder_is_refused_as_a_folder(tmp_path):
    (tmp_path / "x.obj").mkdir()
    with pytest.raises(ValidationError, match="is a folder, not a .obj file"):
        check_mesh_file(tmp_path / "x.obj")
