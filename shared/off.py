"""Object File Format (``.off``) meshes: the Princeton benchmarks' and ModelNet's format.

An ASCII header keyword (``OFF``, or ``COFF``/``NOFF``/``STOFF``/... with per-vertex colours, normals
or texture coordinates, which are ignored), the counts ``V F [E]`` (on the keyword's own line in some
files: ``OFF1000 2000 0``), ``V`` lines of ``x y z ...``, then ``F`` lines of ``n i1 ... in ...``
(0-based vertex indices, an optional face colour after them). ``#`` starts a comment. Binary OFF and
the 4-D and n-D variants are refused by name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ValidationError

_KEYWORD = re.compile(r"(?P<key>(?:ST)?C?N?4?n?OFF)(?P<rest>.*)")


@dataclass
class OffMesh:
    """vertices: (V, 3) float64. polygons: F lists of vertex indices (3 or more each)."""

    vertices: np.ndarray
    polygons: list[list[int]]


def _lines(p: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number, words)`` of every line with words once comments are stripped."""
    with p.open("r", encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            words = line.split("#", 1)[0].split()
            if words:
                yield n, words


def read_off(p: Path) -> OffMesh:
    """Read an OFF file; a file that breaks the format is a ``ValidationError("input", ...)`` naming
    the file, the line and what is wrong."""

    def bad(n: int, what: str) -> ValidationError:
        return ValidationError("input", f"{p.name}: line {n}: {what}")

    with p.open("rb") as fh:
        if b"\x00" in fh.read(512):
            raise ValidationError("input", f"{p.name} is binary data: only text OFF files are read")
    lines = _lines(p)
    n, words = next(lines, (0, []))
    m = _KEYWORD.fullmatch(" ".join(words))
    if m is None:
        raise ValidationError("input", f"{p.name} does not begin with OFF: it is not an OFF file")
    key = m["key"]
    if "4" in key or "n" in key:
        raise bad(n, f"{key} (4-D or n-D vertices) is not read: only 3-D OFF files are")
    counts = m["rest"].split()
    if counts[:1] == ["BINARY"]:
        raise bad(n, "binary OFF is not read: save the mesh as text OFF, OBJ or PLY")
    if not counts:
        n, counts = next(lines, (n, []))
    try:
        n_vertices, n_faces = int(counts[0]), int(counts[1])
    except (ValueError, IndexError):
        raise bad(n, f"expected the counts 'vertices faces edges', got {' '.join(counts)[:60]!r}") from None
    if n_vertices < 0 or n_faces < 0:
        raise bad(n, f"negative counts {n_vertices} and {n_faces}")
    vertices = np.empty((n_vertices, 3), np.float64)
    for k in range(n_vertices):
        n, words = next(lines, (n, None))
        if words is None:
            raise ValidationError("input", f"{p.name} ends after {k} of the {n_vertices} vertices its header promises")
        try:
            if len(words) < 3:
                raise ValueError
            vertices[k] = [float(x) for x in words[:3]]
        except ValueError:
            raise bad(n, f"vertex {k + 1} is not three numbers: {' '.join(words)[:60]!r}") from None
        if not all(map(math.isfinite, vertices[k])):
            raise ValidationError("input", f"{p.name}: vertex {k + 1} (line {n}) has a NaN or infinite coordinate")
    polygons = []
    for k in range(n_faces):
        n, words = next(lines, (n, None))
        if words is None:
            raise ValidationError("input", f"{p.name} ends after {k} of the {n_faces} faces its header promises")
        try:
            size = int(words[0])
            face = [int(i) for i in words[1 : 1 + size]]
        except ValueError:
            raise bad(n, f"face {k + 1} is not a count and vertex indices: {' '.join(words)[:60]!r}") from None
        if size < 3 or len(face) < size:
            raise bad(n, f"face {k + 1} needs at least 3 vertex indices, got {' '.join(words)[:60]!r}")
        outside = [i for i in face if not 0 <= i < n_vertices]
        if outside:
            raise bad(n, f"face {k + 1} uses the vertex index {outside[0]}; the file's go from 0 to {n_vertices - 1}")
        polygons.append(face)
    return OffMesh(vertices, polygons)
