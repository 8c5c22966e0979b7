"""Procedural shapes whose part labels are known by construction.

Primitives (boxes, cylinders, lofts, lathes, tubes, slabs) assembled into objects. ``chair()`` here
is the bundled example's chair; the benchmark's randomised families live in ``families``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Where the primitives stand and which way they face unless told.
ORIGIN = (0.0, 0.0, 0.0)
X_AXIS, Y_AXIS, Z_AXIS = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


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
        path.write_text(self.obj_text(path.stem))
        return path

    def obj_text(self, name: str = "shape", materials: bool = True) -> str:
        """The text :meth:`write_obj` writes, with object name ``name``; without ``materials`` no
        ``usemtl`` line names the parts (as in a user's mesh)."""
        head = "# partdistill procedural shape; materials name the ground-truth parts" if materials else "# partdistill"
        lines = [head, f"o {name}"]
        lines += [f"v {x:.6f} {z:.6f} {-y:.6f}" for x, y, z in self.vertices]
        current = None
        for poly, label in zip(self.polygons, self.labels, strict=True):
            if materials and label != current:
                lines.append(f"usemtl {self.part_names[label]}")
                current = label
            lines.append("f " + " ".join(str(i + 1) for i in poly))
        return "\n".join(lines) + "\n"


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
                        q = [
                            base + i * (d + 1) + j,
                            base + (i + 1) * (d + 1) + j,
                            base + (i + 1) * (d + 1) + j + 1,
                            base + i * (d + 1) + j + 1,
                        ]
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

    # ---- general primitives: everything below is a loft of rings ----------------------------

    def mark(self) -> int:
        """A marker for :meth:`apply`: the primitives added after it can be transformed together."""
        return len(self.vertices)

    def apply(self, mark: int, fn: Callable[[np.ndarray], np.ndarray]) -> ShapeBuilder:
        """Map the vertices of every primitive added since ``mark`` through ``fn`` ((N, 3) -> (N, 3)),
        e.g. a rotation about a hinge or a bend. Polygons and labels are unchanged."""
        for i in range(mark, len(self.vertices)):
            self.vertices[i] = np.asarray(fn(self.vertices[i].astype(np.float64)), dtype=np.float32)
        return self

    def loft(
        self, part: str, rings, *, cap_start: bool = True, cap_end: bool = True, closed: bool = False
    ) -> ShapeBuilder:
        """A surface through S rings of K points each (``rings``: (S, K, 3)), ring s joined to ring s+1
        by K quads (and the last ring to the first when ``closed``).

        A ring whose points all coincide is an apex: it becomes one vertex and the quads next to it
        triangles, so cones and spheres have no degenerate faces. Open end rings get a cap fanned
        from the ring's centroid (triangles; right for star-shaped rings, which all callers pass)."""
        rings = np.asarray(rings, np.float64)
        if rings.ndim != 3 or rings.shape[2] != 3 or rings.shape[0] < 2 or rings.shape[1] < 3:
            raise ValueError(f"rings must be (S>=2, K>=3, 3), got {rings.shape}")
        n_rings, k = rings.shape[:2]
        scale = max(float(np.ptp(rings.reshape(-1, 3), axis=0).max()), 1e-12)
        verts: list[np.ndarray] = []
        index: list[list[int]] = []
        apex: list[bool] = []
        for ring in rings:
            if np.ptp(ring, axis=0).max() < 1e-9 * scale:
                index.append([len(verts)] * k)
                verts.append(ring.mean(axis=0))
                apex.append(True)
            else:
                index.append(list(range(len(verts), len(verts) + k)))
                verts.extend(ring)
                apex.append(False)
        polys: list[list[int]] = []
        pairs = [(s, s + 1) for s in range(n_rings - 1)] + ([(n_rings - 1, 0)] if closed else [])
        for a, b in pairs:
            for j in range(k):
                j1 = (j + 1) % k
                q = [index[a][j], index[a][j1], index[b][j1], index[b][j]]
                q = [v for i, v in enumerate(q) if v != q[i - 1]]  # an apex repeats a vertex: drop it
                if len(q) >= 3:
                    polys.append(q)
        if not closed:
            for s, wanted, flip in ((0, cap_start, True), (n_rings - 1, cap_end, False)):
                if wanted and not apex[s]:
                    c = len(verts)
                    verts.append(rings[s].mean(axis=0))
                    for j in range(k):
                        tri = [c, index[s][j], index[s][(j + 1) % k]]
                        polys.append(tri[::-1] if flip else tri)
        self._add(part, np.asarray(verts), polys)
        return self

    def lathe(
        self, part: str, profile, p0=ORIGIN, axis=Z_AXIS, segments: int = 24, *, closed: bool = False, caps: bool = True
    ) -> ShapeBuilder:
        """A surface of revolution. profile: (M, 2) ``(radius, height)`` pairs along ``axis`` from
        ``p0``; radius 0 is an apex (closes that end). ``closed``: the profile is a loop (a shell such
        as a lamp shade with thickness). ``caps``: close open ends with flat fans."""
        profile = np.asarray(profile, np.float64)
        p0, z = np.asarray(p0, np.float64), _unit(axis)
        x, y = _perpendicular(z)
        ang = np.linspace(0, 2 * np.pi, segments, endpoint=False)
        circle = np.cos(ang)[:, None] * x + np.sin(ang)[:, None] * y
        rings = [p0 + h * z + r * circle for r, h in profile]
        return self.loft(part, rings, cap_start=caps, cap_end=caps, closed=closed)

    def frustum(
        self, part: str, p0, p1, r0: float, r1: float, segments: int = 20, rings: int = 2, caps: bool = True
    ) -> ShapeBuilder:
        """A cone (``r1 == 0``) or truncated cone from p0 (radius r0) to p1 (radius r1)."""
        p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
        length = float(np.linalg.norm(p1 - p0))
        t = np.linspace(0, 1, rings + 1)
        profile = np.stack([r0 + t * (r1 - r0), t * length], axis=1)
        return self.lathe(part, profile, p0, p1 - p0, segments, caps=caps)

    def sphere(self, part: str, center, radius: float, segments: int = 20, rings: int = 10) -> ShapeBuilder:
        """A UV sphere (apexes at the poles along z)."""
        phi = np.linspace(-np.pi / 2, np.pi / 2, rings + 1)
        profile = np.stack([radius * np.cos(phi), radius * np.sin(phi)], axis=1)
        profile[[0, -1], 0] = 0.0
        return self.lathe(part, profile, center, Z_AXIS, segments)

    def tube(self, part: str, path, radius, segments: int = 10, caps: bool = True) -> ShapeBuilder:
        """A tube of circular section swept along a polyline ``path`` (N, 3); ``radius`` a number or
        (N,) per path point. Frames are parallel-transported, so the tube does not twist."""
        path = np.asarray(path, np.float64)
        radius = np.broadcast_to(np.asarray(radius, np.float64), (len(path),))
        tangents = np.gradient(path, axis=0)
        tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
        x, _ = _perpendicular(tangents[0])
        ang = np.linspace(0, 2 * np.pi, segments, endpoint=False)
        rings = []
        for p, t, r in zip(path, tangents, radius, strict=True):
            x = x - (x @ t) * t  # parallel transport: keep the frame's x perpendicular to the tangent
            x /= np.linalg.norm(x)
            y = np.cross(t, x)
            rings.append(p + r * (np.cos(ang)[:, None] * x + np.sin(ang)[:, None] * y))
        return self.loft(part, rings, cap_start=caps, cap_end=caps)

    def torus_segment(
        self,
        part: str,
        center,
        major: float | tuple[float, float],
        minor: float,
        angles: tuple[float, float],
        u=X_AXIS,
        v=Z_AXIS,
        steps: int = 16,
        segments: int = 10,
    ) -> ShapeBuilder:
        """A bent tube (handles): the arc ``center + a cos(t) u + b sin(t) v`` for t in ``angles``
        (radians), ``major`` = a or (a, b) for an elliptic arc, tube radius ``minor``."""
        a, b = (major, major) if np.isscalar(major) else major
        t = np.linspace(angles[0], angles[1], steps + 1)
        u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
        path = np.asarray(center, np.float64) + a * np.cos(t)[:, None] * u + b * np.sin(t)[:, None] * v
        return self.tube(part, path, minor, segments)

    def extrude(
        self, part: str, outline, origin=ORIGIN, u=X_AXIS, v=Y_AXIS, thickness: float = 0.1, layers: int = 1
    ) -> ShapeBuilder:
        """A slab: the 2D ``outline`` (M, 2) (star-shaped about its centroid) placed in the plane
        ``origin + a u + b v`` and extruded by ``thickness`` along ``u x v``, centred on the plane."""
        outline = np.asarray(outline, np.float64)
        u, v = np.asarray(u, np.float64), np.asarray(v, np.float64)
        n = _unit(np.cross(u, v))
        flat = np.asarray(origin, np.float64) + outline[:, :1] * u + outline[:, 1:] * v
        rings = [flat + (t - 0.5) * thickness * n for t in np.linspace(0, 1, layers + 1)]
        return self.loft(part, rings)

    def tapered_box(self, part: str, p0, p1, half0, half1, x_axis=None, divisions: int = 1) -> ShapeBuilder:
        """A box whose cross-section shrinks or grows linearly from p0 to p1: half sizes ``half0`` =
        (hx, hy) at p0 and ``half1`` at p1, hx along ``x_axis`` (default: any perpendicular)."""
        p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
        z = _unit(p1 - p0)
        if x_axis is None:
            x = _perpendicular(z)[0]
        else:
            x = np.asarray(x_axis, np.float64)
            x = _unit(x - (x @ z) * z)
        y = np.cross(z, x)
        h0, h1 = np.asarray(half0, np.float64), np.asarray(half1, np.float64)
        square = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
        rings = []
        for t in np.linspace(0, 1, divisions + 1):
            h = h0 + t * (h1 - h0)
            rings.append(p0 + t * (p1 - p0) + (square[:, :1] * h[0]) * x + (square[:, 1:] * h[1]) * y)
        return self.loft(part, rings)

    def build(self) -> LabelledShape:
        return LabelledShape(
            self.part_names,
            np.concatenate(self.vertices),
            list(self.polygons),
            np.asarray(self.labels, np.int32),
        )


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def _perpendicular(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors x, y with (x, y, z) a right-handed orthonormal frame."""
    z = _unit(z)
    x = np.cross(z, [1.0, 0, 0] if abs(z[0]) < 0.9 else [0, 1.0, 0])
    x /= np.linalg.norm(x)
    return x, np.cross(z, x)


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
