"""Checks on a mesh file before anything reads it: the CLI runs them before it starts Blender, the
headless importer before Blender's importers (which read garbage as an empty mesh and turn NaN
coordinates into 0 without a word)."""

from __future__ import annotations

import math
from pathlib import Path

from .errors import ValidationError

#: File signatures of things that are not meshes, whatever their name says.
_NOT_MESHES = {
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image", b"%PDF": "a PDF document",
    b"PK\x03\x04": "a zip archive", b"\x1f\x8b": "a gzip archive",
}  # fmt: skip


def check_mesh_file(p: Path) -> None:
    """Refuse, before Blender reads it, a file that is not what its suffix says (Blender's importers
    read garbage as an empty mesh) and an OBJ or ASCII PLY whose vertex coordinates are NaN or infinite
    (Blender's importers turn those into 0 without a word)."""
    with p.open("rb") as fh:
        head = fh.read(512)
    for magic, what in _NOT_MESHES.items():
        if head.startswith(magic):
            raise ValidationError("input", f"{p.name} is {what}, not a {p.suffix.lower()} mesh")
    ext = p.suffix.lower()
    text_format = ext == ".obj" or (ext == ".ply" and b"format ascii" in head)
    if not text_format:
        return
    if b"\x00" in head:
        raise ValidationError("input", f"{p.name} is binary data, not a text {ext} file")
    with p.open("r", encoding="utf-8", errors="replace") as fh:
        body = fh if ext == ".obj" else _ply_vertex_lines(fh)
        for n, line in enumerate(body, 1):
            if ext == ".obj" and not line.startswith("v "):
                continue
            fields = line.split()[1:4] if ext == ".obj" else line.split()[:3]
            try:
                xyz = [float(x) for x in fields]
            except ValueError:
                raise ValidationError("input", f"{p.name}: line {n} is not a vertex: {line.strip()[:60]!r}") from None
            if not all(map(math.isfinite, xyz)):
                where = f"line {n}" if ext == ".obj" else f"vertex {n}"
                raise ValidationError("input", f"{p.name}: {where} has a NaN or infinite coordinate")


def _ply_vertex_lines(fh):
    """The vertex lines of an ASCII PLY (the first ``element vertex N`` lines after ``end_header``)."""
    count = 0
    while line := fh.readline():
        if line.startswith("element vertex"):
            count = int(line.split()[2])
        if line.strip() == "end_header":
            break
    for _ in range(count):
        line = fh.readline()
        if not line:
            return
        yield line
