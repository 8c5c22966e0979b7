"""Reading point clouds from PLY files.

Just enough of PLY: the header, and the vertex element's x y z, colours and
normals in ASCII or binary (either byte order). Meshes (a face element with faces) go to Blender."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ValidationError

_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}
_COLUMNS = (("x", "y", "z"), ("red", "green", "blue"), ("nx", "ny", "nz"))


def ply_header(path: Path) -> tuple[str, list[tuple[str, int, list[tuple[str, str]]]], int]:
    """(format, elements as (name, count, [(property, type)]), byte offset of the body)."""
    with open(path, "rb") as fh:
        if fh.readline().strip() != b"ply":
            raise ValidationError("input", f"{path} is not a PLY file (no 'ply' magic line)")
        fmt, elements = "", []
        while True:
            line = fh.readline()
            if not line:
                raise ValidationError("input", f"{path}: the PLY header has no end_header")
            words = line.decode("ascii", "replace").split()
            if not words or words[0] in ("comment", "obj_info"):
                continue
            if words[0] == "format":
                fmt = words[1]
            elif words[0] == "element":
                elements.append((words[1], int(words[2]), []))
            elif words[0] == "property" and elements:
                if words[1] == "list":
                    elements[-1][2].append((words[-1], "list"))
                else:
                    elements[-1][2].append((words[2], words[1]))
            elif words[0] == "end_header":
                return fmt, elements, fh.tell()


def ply_has_faces(path: str | Path) -> bool:
    """Whether a PLY file holds faces (a mesh) rather than points only."""
    _, elements, _ = ply_header(Path(path))
    return any(name == "face" and count > 0 for name, count, _ in elements)


def read_ply_points(path: str | Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(N, 3) float64`` x y z, and ``(N, 3)`` red green blue and nx ny nz when the vertices have them."""
    path = Path(path)
    fmt, elements, offset = ply_header(path)
    if not elements or elements[0][0] != "vertex":
        raise ValidationError("input", f"{path}: the first PLY element must be 'vertex'")
    _, count, props = elements[0]
    names = [n for n, _ in props]
    if any(t == "list" for _, t in props):
        raise ValidationError("input", f"{path}: list properties on vertices are not supported")
    if not all(c in names for c in _COLUMNS[0]):
        raise ValidationError("input", f"{path}: the vertices lack x, y or z")
    if fmt == "ascii":
        with open(path, "rb") as fh:
            fh.seek(offset)
            rows = [fh.readline().split() for _ in range(count)]
        data = np.array(rows, dtype=np.float64)
        table = {n: data[:, k] for k, n in enumerate(names)}
    elif fmt in ("binary_little_endian", "binary_big_endian"):
        order = "<" if fmt == "binary_little_endian" else ">"
        dtype = np.dtype([(n, order + _TYPES[t]) for n, t in props])
        rec = np.fromfile(path, dtype=dtype, count=count, offset=offset)
        if len(rec) != count:
            raise ValidationError("input", f"{path}: the file ends after {len(rec)} of {count} vertices")
        table = {n: rec[n].astype(np.float64) for n in names}
    else:
        raise ValidationError("input", f"{path}: unknown PLY format {fmt!r}")
    xyz, rgb, nrm = (
        np.stack([table[c] for c in cols], 1) if all(c in table for c in cols) else None for cols in _COLUMNS
    )
    return xyz, rgb, nrm
