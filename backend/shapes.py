"""Procedural shapes whose part labels are known by construction: boxes and cylinders assembled
into objects (a chair, ...). Used for the bundled example and for benchmarks with ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class LabelledShape:
    """A polygon mesh with one part label per polygon.

    vertices: (V, 3) float32. polygons: list of vertex-index lists (quads and n-gons allowed).
    labels: (n_polygons,) int32 index into part_names."""

    part_names: tuple[str, ...]
    vertices: np.ndarray
    polygons: list[list[int]]
    labels: np.ndarray

    def triangles(self) -> tuple[np.ndarray, np.ndarray]:
        """Fan triangulation: faces (F, 3) int32 and face_to_polygon (F,) int32."""
        faces, owner = [], []
        for i, poly in enumerate(self.polygons):
            for k in range(1, len(poly) - 1):
                faces.append((poly[0], poly[k], poly[k + 1]))
                owner.append(i)
        return np.asarray(faces, dtype=np.int32), np.asarray(owner, dtype=np.int32)

    def write_obj(self, path: str | Path) -> Path:
        """Wavefront OBJ, one object, polygons in order, ``usemtl <part>`` before each part's run (so
        the part names survive as material names in any importer). OBJ is y-up by convention, so
        our z-up coordinates are written as (x, z, -y); importers turn them back to z-up."""
        path = Path(path)
        lines = ["# partdistill procedural shape; materials name the ground-truth parts", f"o {path.stem}"]
        lines += [f"v {x:.6f} {z:.6f} {-y:.6f}" for x, y, z in self.vertices]
        current = None
        for poly, label in zip(self.polygons, self.labels, strict=True):
            if label != current:
                lines.append(f"usemtl {self.part_names[label]}")
                current = label
            lines.append("f " + " ".join(str(i + 1) for i in poly))
        path.write_text("\n".join(lines) + "\n")
        return path


@dataclass
class ShapeBuilder:
    part_names: tuple[str, ...]
    vertices: list[np.ndarray] = field(default_factory=list)
    polygons: list[list[int]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    _n: int = 0

    def _add(self, part: str, verts: np.ndarray, polys: list[list[int]]) -> None:
        label = self.part_names.index(part)
        self.vertices.append(np.asarray(verts, dtype=np.float32))
        self.polygons += [[i + self._n for i in p] for p in polys]
        self.labels += [label] * len(polys)
        self._n += len(verts)

    def box(self, part: str, lo, hi, divisions: int = 1) -> ShapeBuilder:
        """An axis-aligned box, each side split into ``divisions`` x ``divisions`` quads."""
        lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        verts, polys = [], []
        d = divisions
        t = np.linspace(0, 1, d + 1)
        for axis in range(3):
            for side in (0, 1):
                a, b = [(axis + 1) % 3, (axis + 2) % 3]
                base = len(verts)
                for i in range(d + 1):
                    for j in range(d + 1):
                        p = np.empty(3)
                        p[axis] = hi[axis] if side else lo[axis]
                        p[a] = lo[a] + t[i] * (hi[a] - lo[a])
                        p[b] = lo[b] + t[j] * (hi[b] - lo[b])
                        verts.append(p)
                for i in range(d):
                    for j in range(d):
                        q = [base + i * (d + 1) + j, base + (i + 1) * (d + 1) + j,
                             base + (i + 1) * (d + 1) + j + 1, base + i * (d + 1) + j + 1]  # fmt: skip
                        polys.append(q if side else q[::-1])
        self._add(part, np.asarray(verts), polys)
        return self

    def cylinder(self, part: str, p0, p1, radius: float, segments: int = 16, rings: int = 4) -> ShapeBuilder:
        """A capped cylinder from p0 to p1, its side split into ``rings`` bands of quads."""
        p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
        axis = p1 - p0
        length = np.linalg.norm(axis)
        z = axis / length
        x = np.cross(z, [1.0, 0, 0] if abs(z[0]) < 0.9 else [0, 1.0, 0])
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        ang = np.linspace(0, 2 * np.pi, segments, endpoint=False)
        circle = radius * (np.cos(ang)[:, None] * x + np.sin(ang)[:, None] * y)
        verts = [p0 + t * axis + circle for t in np.linspace(0, 1, rings + 1)]
        verts = np.concatenate(verts)
        polys = []
        for r in range(rings):
            for s in range(segments):
                a, b = r * segments + s, r * segments + (s + 1) % segments
                polys.append([a, b, b + segments, a + segments])
        polys.append(list(range(segments))[::-1])  # n-gon caps
        polys.append([rings * segments + s for s in range(segments)])
        self._add(part, verts, polys)
        return self

    def build(self) -> LabelledShape:
        return LabelledShape(
            self.part_names,
            np.concatenate(self.vertices),
            list(self.polygons),
            np.asarray(self.labels, np.int32),
        )


def chair(
    seat_h: float = 0.45, width: float = 0.5, depth: float = 0.48, back_h: float = 0.45, arms: bool = True
) -> LabelledShape:
    """A chair (z up): seat, back, four legs, and optionally two arms on posts."""
    names = ("seat", "back", "leg", "arm") if arms else ("seat", "back", "leg")
    b = ShapeBuilder(names)
    w, d, t = width / 2, depth / 2, 0.05
    b.box("seat", (-w, -d, seat_h), (w, d, seat_h + t), divisions=4)
    b.box("back", (-w, d - 0.04, seat_h + t), (w, d, seat_h + t + back_h), divisions=4)
    for sx in (-1, 1):
        for sy in (-1, 1):
            c = (sx * (w - 0.04), sy * (d - 0.04))
            b.cylinder("leg", (c[0], c[1], 0.0), (c[0], c[1], seat_h), 0.025)
    if arms:
        for sx in (-1, 1):
            x = sx * (w - 0.03)
            b.box("arm", (x - 0.03, -d + 0.04, seat_h + 0.22), (x + 0.03, d - 0.04, seat_h + 0.26), divisions=2)
            b.cylinder("arm", (x, -d + 0.08, seat_h + t), (x, -d + 0.08, seat_h + 0.22), 0.018, segments=12, rings=2)
    return b.build()
