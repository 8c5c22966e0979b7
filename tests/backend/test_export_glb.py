"""The .glb export: a valid glTF 2.0 binary with one primitive and material per part, decoded here
with numpy (no glTF library needed)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from partdistill.backend.io.glb import read_glb_json, write_glb
from partdistill.shared.palette import part_color
from synthetic import table

GLB_MAGIC, JSON_CHUNK, BIN_CHUNK = 0x46546C67, 0x4E4F534A, 0x004E4942
COMPONENT = {5126: np.float32, 5125: np.uint32}
WIDTH = {"SCALAR": 1, "VEC3": 3}

# two unit squares side by side (z up), 6 vertices, 4 triangles
VERTS = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0], [1, 1, 0.5], [2, 1, 3]], np.float32)
FACES = np.array([[0, 1, 4], [0, 4, 3], [1, 2, 5], [1, 5, 4]], np.int32)


def _chunks(path: Path) -> tuple[dict, bytes]:
    """(the JSON document, the BIN chunk's bytes), with the header and chunk layout checked against the spec."""
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<III", data, 0)
    assert (magic, version, length) == (GLB_MAGIC, 2, len(data))
    n_json, kind = struct.unpack_from("<II", data, 12)
    assert kind == JSON_CHUNK and n_json % 4 == 0
    n_bin, kind = struct.unpack_from("<II", data, 20 + n_json)
    assert kind == BIN_CHUNK and n_bin % 4 == 0
    assert 28 + n_json + n_bin == len(data)
    return read_glb_json(path), data[28 + n_json :]


def _accessor(doc: dict, blob: bytes, index: int) -> np.ndarray:
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = COMPONENT[acc["componentType"]]
    width = WIDTH[acc["type"]]
    offset = view["byteOffset"] + acc.get("byteOffset", 0)
    assert offset % np.dtype(dtype).itemsize == 0
    assert view["byteOffset"] + view["byteLength"] <= len(blob)
    a = np.frombuffer(blob, dtype=dtype, count=acc["count"] * width, offset=offset)
    assert a.nbytes == view["byteLength"]
    return a.reshape(acc["count"], width) if width > 1 else a


@pytest.fixture
def glb(tmp_path) -> tuple[dict, bytes]:
    labels = np.array([0, -1, 2, 0], np.int32)  # part "b" (1) is absent
    return _chunks(write_glb(tmp_path / "out" / "m.glb", VERTS, FACES, labels, ["a", "b", "c"]))


def test_the_file_is_a_glb_with_a_json_and_a_bin_chunk(glb):
    doc, blob = glb
    assert doc["asset"]["version"] == "2.0"
    assert doc["buffers"] == [{"byteLength": len(blob)}]
    assert doc["scenes"][doc["scene"]]["nodes"] == [0] and doc["nodes"][0]["mesh"] == 0
    assert doc["meshes"][0]["extras"]["part_names"] == ["a", "b", "c"]


def test_read_glb_json_refuses_a_file_that_is_not_a_glb(tmp_path):
    (tmp_path / "x.glb").write_bytes(b"glTF" + b"\0" * 20)
    with pytest.raises(ValueError, match="not a glTF 2.0 binary"):
        read_glb_json(tmp_path / "x.glb")


def test_one_primitive_and_material_per_present_part_plus_unlabelled(glb):
    doc, _ = glb
    prims = doc["meshes"][0]["primitives"]
    names = [doc["materials"][p["material"]]["name"] for p in prims]
    assert names == ["a", "c", "unlabelled"]
    assert len(doc["materials"]) == 3 and all(p["mode"] == 4 for p in prims)
    colours = [doc["materials"][p["material"]]["pbrMetallicRoughness"]["baseColorFactor"] for p in prims]
    assert colours == [[*part_color(0), 1.0], [*part_color(2), 1.0], [*part_color(-1), 1.0]]


def test_no_unlabelled_primitive_when_every_face_has_a_part(tmp_path):
    doc, _ = _chunks(write_glb(tmp_path / "m.glb", VERTS, FACES, np.array([1, 1, 0, 1], np.int32), ["a", "b"]))
    assert [m["name"] for m in doc["materials"]] == ["a", "b"]
    assert len(doc["meshes"][0]["primitives"]) == 2


def test_index_buffers_reproduce_the_faces_of_each_part(glb):
    doc, blob = glb
    labels = np.array([0, -1, 2, 0])
    got = {}
    for p in doc["meshes"][0]["primitives"]:
        acc = doc["accessors"][p["indices"]]
        assert acc["componentType"] == 5125 and doc["bufferViews"][acc["bufferView"]]["target"] == 34963
        assert p["attributes"] == {"POSITION": 0}
        got[doc["materials"][p["material"]]["name"]] = _accessor(doc, blob, p["indices"]).reshape(-1, 3)
    np.testing.assert_array_equal(got["a"], FACES[labels == 0])
    np.testing.assert_array_equal(got["c"], FACES[labels == 2])
    np.testing.assert_array_equal(got["unlabelled"], FACES[labels == -1])


def test_positions_are_converted_from_z_up_to_y_up(glb):
    doc, blob = glb
    pos = _accessor(doc, blob, 0)
    acc = doc["accessors"][0]
    assert acc["type"] == "VEC3" and acc["componentType"] == 5126
    assert doc["bufferViews"][acc["bufferView"]]["target"] == 34962
    # Blender (x, y, z) with z up -> glTF (x, z, -y) with y up: "up" stays up, handedness is kept
    np.testing.assert_array_equal(pos[5], [2, 3, -1])
    np.testing.assert_array_equal(pos[4], [1, 0.5, -1])
    np.testing.assert_array_equal(pos, VERTS[:, [0, 2, 1]] * [1, 1, -1])
    assert acc["min"] == [0, 0, -1] and acc["max"] == [2, 3, 0]
    # the conversion is a rotation: triangle normals keep their orientation relative to the shape
    n_src = np.cross(VERTS[FACES[:, 1]] - VERTS[FACES[:, 0]], VERTS[FACES[:, 2]] - VERTS[FACES[:, 0]])
    n_out = np.cross(pos[FACES[:, 1]] - pos[FACES[:, 0]], pos[FACES[:, 2]] - pos[FACES[:, 0]])
    np.testing.assert_allclose(n_out, n_src[:, [0, 2, 1]] * [1, 1, -1], atol=1e-6)


def test_a_real_mesh_keeps_every_face_once_and_every_index_in_range(tmp_path):
    mesh, gt, names = table()
    labels = gt.copy()
    labels[::7] = -1
    doc, blob = _chunks(write_glb(tmp_path / "t.glb", mesh.vertices, mesh.faces, labels, names))
    prims = doc["meshes"][0]["primitives"]
    assert [doc["materials"][p["material"]]["name"] for p in prims] == ["top", "leg", "unlabelled"]
    counts = [doc["accessors"][p["indices"]]["count"] for p in prims]
    assert sum(counts) == 3 * mesh.n_faces
    assert doc["accessors"][0]["count"] == len(mesh.vertices)
    tris = np.concatenate([_accessor(doc, blob, p["indices"]).reshape(-1, 3) for p in prims])
    assert tris.max() < len(mesh.vertices)
    order = np.concatenate([np.flatnonzero(labels == 0), np.flatnonzero(labels == 1), np.flatnonzero(labels == -1)])
    np.testing.assert_array_equal(tris, mesh.faces[order])


def test_a_glb_library_loads_the_file_when_one_is_installed(tmp_path):
    path = write_glb(tmp_path / "m.glb", VERTS, FACES, np.array([0, -1, 2, 0], np.int32), ["a", "b", "c"])
    try:
        import trimesh
    except ImportError:
        trimesh = None
    if trimesh is not None:
        scene = trimesh.load(path, force="scene")
        assert sum(len(g.faces) for g in scene.geometry.values()) == len(FACES)
        return
    pygltflib = pytest.importorskip("pygltflib", reason="neither trimesh nor pygltflib is installed")
    g = pygltflib.GLTF2().load_binary(str(path))
    assert [m.name for m in g.materials] == ["a", "c", "unlabelled"]
