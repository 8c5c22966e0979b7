"""Checks on a mesh file before anything reads it.

The CLI runs them before it starts Blender, the
headless importer before Blender's importers (which read garbage as an empty mesh, turn NaN
coordinates into 0 without a word, and drop OBJ faces that use vertices defined later in the file).

:func:`check_mesh_file` refuses, naming the file and the vertex, a NaN or infinite coordinate in OBJ,
PLY (ASCII or binary), STL (ASCII or binary), glTF, GLB and OFF files, and counts the faces the file holds
so that an import that keeps fewer can say so.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ValidationError

#: File signatures of things that are not meshes, whatever their name says.
_NOT_MESHES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a zip archive",
    b"\x1f\x8b": "a gzip archive",
}


@dataclass
class MeshFileFacts:
    """What a mesh file holds, as far as its format tells without importing it: ``faces`` the faces
    (polygons) it defines, None where not counted (FBX, .blend); ``forward_faces`` the OBJ faces that
    use a vertex defined further down the file."""

    faces: int | None = None
    forward_faces: int = 0


def check_mesh_file(p: Path) -> MeshFileFacts:
    """Refuse a folder, a file that is not what its suffix says (Blender's importers read garbage as
    an empty mesh) and a file whose vertex coordinates are NaN or infinite (Blender's importers turn
    those into 0 without a word); return what the file holds."""
    if p.is_dir():
        raise ValidationError("input", f"{p} is a folder, not a {p.suffix.lower() or 'mesh'} file")
    with p.open("rb") as fh:
        head = fh.read(512)
    for magic, what in _NOT_MESHES.items():
        if head.startswith(magic):
            raise ValidationError("input", f"{p.name} is {what}, not a {p.suffix.lower()} mesh")
    ext = p.suffix.lower()
    if ext == ".obj" or (ext == ".ply" and b"format ascii" in head):
        if b"\x00" in head:
            raise ValidationError("input", f"{p.name} is binary data, not a text {ext} file")
    scan = {
        ".obj": _scan_obj,
        ".ply": _scan_ply,
        ".stl": _scan_stl,
        ".glb": _scan_gltf,
        ".gltf": _scan_gltf,
        ".off": _scan_off,
    }
    return scan[ext](p) if ext in scan else MeshFileFacts()


def _not_finite(p: Path, where: str) -> ValidationError:
    return ValidationError("input", f"{p.name}: {where} has a NaN or infinite coordinate")


def _not_a_vertex(p: Path, n: int, line: str) -> ValidationError:
    return ValidationError("input", f"{p.name}: line {n} is not a vertex: {line.strip()[:60]!r}")


def _first_bad(xyz: np.ndarray) -> int | None:
    bad = ~np.isfinite(xyz).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def _scan_obj(p: Path) -> MeshFileFacts:
    n_vertices = n_faces = forward = 0
    with p.open("r", encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if line.startswith("v "):
                try:
                    xyz = [float(x) for x in line.split()[1:4]]
                except ValueError:
                    raise _not_a_vertex(p, n, line) from None
                if len(xyz) < 3 or not all(map(math.isfinite, xyz)):
                    raise _not_finite(p, f"vertex {n_vertices + 1} (line {n})")
                n_vertices += 1
            elif line.startswith("f "):
                n_faces += 1
                refs = [tok.split("/", 1)[0] for tok in line.split()[1:]]
                if any(r.isdigit() and int(r) > n_vertices for r in refs):
                    forward += 1
    return MeshFileFacts(n_faces, forward)


def _scan_ply(p: Path) -> MeshFileFacts:
    from .ply import ply_header, read_ply_points

    fmt, elements, _ = ply_header(p)
    faces = sum(count for name, count, _ in elements if name == "face")
    if not elements or elements[0][0] != "vertex":
        return MeshFileFacts(faces)  # vertices after other elements: left to Blender's reader
    xyz = read_ply_points(p)[0]
    k = _first_bad(xyz)
    if k is not None:
        raise _not_finite(p, f"vertex {k + 1}" + (f" (line {_ply_ascii_line(p, k)})" if fmt == "ascii" else ""))
    return MeshFileFacts(faces)


def _ply_ascii_line(p: Path, vertex: int) -> int:
    with p.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip() == b"end_header":
                return n + 1 + vertex
    return 0


def _scan_off(p: Path) -> MeshFileFacts:
    from .off import read_off

    return MeshFileFacts(len(read_off(p).polygons))


#: A binary STL triangle: normal, three corners, attribute bytes.
_STL_TRIANGLE = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attr", "<u2")])


def _scan_stl(p: Path) -> MeshFileFacts:
    size = p.stat().st_size
    with p.open("rb") as fh:
        header = fh.read(84)
    if len(header) == 84:
        (count,) = struct.unpack("<I", header[80:84])
        if size == 84 + 50 * count:  # binary (some binary files also begin with "solid")
            tri = np.fromfile(p, dtype=_STL_TRIANGLE, count=count, offset=84)
            k = _first_bad(tri["corners"].reshape(-1, 3))
            if k is not None:
                raise _not_finite(p, f"vertex {k + 1} (corner {k % 3 + 1} of triangle {k // 3 + 1})")
            return MeshFileFacts(count)
    triangles = corners = 0
    with p.open("r", encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            words = line.split()
            if words[:1] == ["facet"]:
                triangles += 1
            elif words[:1] == ["vertex"]:
                corners += 1
                try:
                    ok = all(math.isfinite(float(x)) for x in words[1:4])
                except ValueError:
                    raise _not_a_vertex(p, n, line) from None
                if not ok:
                    raise _not_finite(p, f"vertex {corners} (line {n})")
    return MeshFileFacts(triangles)


#: glTF accessor component types and element sizes.
_GLTF_COMPONENTS = {5120: "i1", 5121: "u1", 5122: "<i2", 5123: "<u2", 5125: "<u4", 5126: "<f4"}
_GLTF_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


def _scan_gltf(p: Path) -> MeshFileFacts:
    doc, buffers = _read_gltf(p)
    seen: set[int] = set()
    for mesh in doc.get("meshes", []):
        for prim in mesh.get("primitives", []):
            acc = prim.get("attributes", {}).get("POSITION")
            if not isinstance(acc, int) or acc in seen:
                continue
            seen.add(acc)
            xyz = _accessor(doc, buffers, acc)
            k = None if xyz is None else _first_bad(xyz.reshape(-1, 3))
            if k is not None:
                raise _not_finite(p, f"vertex {k + 1} of mesh {mesh.get('name') or doc['meshes'].index(mesh)}")
    return MeshFileFacts(_gltf_faces(doc))


def _read_gltf(p: Path) -> tuple[dict, dict[int, bytes]]:
    """The JSON document and the bytes of each buffer this reader can reach (the GLB's own chunk,
    data URIs, files beside it)."""
    raw = p.read_bytes()
    buffers: dict[int, bytes] = {}
    try:
        if raw[:4] == b"glTF":
            (json_len,) = struct.unpack("<I", raw[12:16])
            doc = json.loads(raw[20 : 20 + json_len])
            rest = 20 + json_len
            if len(raw) >= rest + 8 and raw[rest + 4 : rest + 8] == b"BIN\x00":
                (bin_len,) = struct.unpack("<I", raw[rest : rest + 4])
                buffers[0] = raw[rest + 8 : rest + 8 + bin_len]
        else:
            doc = json.loads(raw)
    except (ValueError, struct.error, UnicodeDecodeError) as e:
        raise ValidationError("input", f"{p.name} is not a readable glTF file: {e}") from None
    if not isinstance(doc, dict):
        raise ValidationError("input", f"{p.name} is not a readable glTF file")
    for i, buf in enumerate(doc.get("buffers", [])):
        uri = buf.get("uri") if isinstance(buf, dict) else None
        if not isinstance(uri, str):
            continue
        if uri.startswith("data:"):
            buffers[i] = base64.b64decode(uri.split(",", 1)[-1])
        elif (p.parent / uri).is_file():
            buffers[i] = (p.parent / uri).read_bytes()
    return doc, buffers


def _accessor(doc: dict, buffers: dict[int, bytes], index: int) -> np.ndarray | None:
    """The float elements of accessor ``index`` as (count, width), or None (integers cannot be NaN;
    a buffer this reader cannot reach is left to Blender's)."""
    try:
        acc = doc["accessors"][index]
        if _GLTF_COMPONENTS.get(acc["componentType"]) != "<f4" or "bufferView" not in acc:
            return None
        view = doc["bufferViews"][acc["bufferView"]]
        data = buffers.get(view.get("buffer", 0))
        if data is None:
            return None
        width, count = _GLTF_WIDTH[acc["type"]], int(acc["count"])
        start = int(view.get("byteOffset", 0)) + int(acc.get("byteOffset", 0))
        stride = int(view.get("byteStride", 0)) or 4 * width
        rows = np.lib.stride_tricks.as_strided(
            np.frombuffer(data, np.uint8, offset=start), shape=(count, 4 * width), strides=(stride, 1)
        )
        return np.ascontiguousarray(rows).view("<f4").reshape(count, width)
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _gltf_faces(doc: dict) -> int | None:
    """Triangles of the meshes the default scene places (each placement counted)."""
    try:
        nodes = doc.get("nodes", [])
        scenes = doc.get("scenes", [])
        roots = scenes[doc.get("scene", 0)]["nodes"] if scenes else range(len(nodes))
        total, stack = 0, list(roots)
        while stack:
            node = nodes[stack.pop()]
            stack += node.get("children", [])
            if "mesh" in node:
                for prim in doc["meshes"][node["mesh"]].get("primitives", []):
                    total += _primitive_triangles(doc, prim)
        return total
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _primitive_triangles(doc: dict, prim: dict) -> int:
    mode = prim.get("mode", 4)
    ref = prim.get("indices", prim.get("attributes", {}).get("POSITION"))
    n = int(doc["accessors"][ref]["count"])
    if mode == 4:
        return n // 3
    return max(n - 2, 0) if mode in (5, 6) else 0
