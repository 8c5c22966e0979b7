"""Procedural shape families for the benchmark, named after ShapeNetPart categories.

Each family is a function ``family(rng) -> LabelledShape`` that draws varied proportions and styles
from the generator and assembles the shape from the primitives of ``shapes.ShapeBuilder``, so every
polygon's part label is known by construction. Conventions for every family:

- z up; the shape rests on z = 0, centred on the z axis in x and y, and is scaled so that its largest
  extent is drawn uniformly from [1, 2] units.
- The part list is fixed per family (the order of ``part_names`` never changes between shapes), and
  every part appears in every shape drawn, except the parts listed in ``OPTIONAL_PARTS`` (the chair's
  arms), which are present in about half of the shapes by design.
- Each family has thin parts (legs, a cord, a handle, fins, a blade, keys, ...) because those are what
  2D teachers miss and what the 3D student has to recover.
- 500 to 6000 triangles per shape (``LabelledShape.triangles()``), no degenerate triangles.

``make_shape(family, seed)`` is the deterministic entry point: the same (family, seed) always gives
the same shape, and different families never share a random stream.

Families and parts:

======================  ====================================
family                  parts
======================  ====================================
chair                   seat, back, leg, arm (arm optional)
table                   top, leg
lamp                    base, pole, shade, cord
mug                     body, handle
airplane                body, wing, tail, engine
guitar                  body, neck, head
knife                   blade, handle
rocket                  body, fin, nose
laptop                  screen, keyboard
skateboard              deck, wheel, truck
======================  ====================================

The skateboard has a third part, ``truck`` (the axle and its mount; ShapeNetPart calls it "belt"),
rather than labelling the trucks as wheels or deck.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from .shapes import LabelledShape, ShapeBuilder

Family = Callable[[np.random.Generator], LabelledShape]

#: Parts a family may leave out of a shape, by design (documented in the family's docstring).
OPTIONAL_PARTS: dict[str, tuple[str, ...]] = {"chair": ("arm",)}

#: Triangle counts every family keeps to (``LabelledShape.triangles()``).
MIN_TRIANGLES, MAX_TRIANGLES = 500, 6000

_X, _Y, _Z = np.eye(3)


# --------------------------------------------------------------------------- helpers


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _rot(axis, angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` radians about ``axis`` (right-handed)."""
    a = np.asarray(axis, np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def _about(pivot, rotation: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Vertex map rotating (N, 3) points about ``pivot``."""
    pivot = np.asarray(pivot, np.float64)
    return lambda p: (p - pivot) @ rotation.T + pivot


def _finish(b: ShapeBuilder, rng: np.random.Generator) -> LabelledShape:
    """Rest the shape on z = 0, centre it in x and y, and scale its largest extent to U(1, 2)."""
    shape = b.build()
    v = shape.vertices.astype(np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    v -= np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    v *= _u(rng, 1.0, 2.0) / float((hi - lo).max())
    shape.vertices = v.astype(np.float32)
    return shape


def _ellipse_exit(d: np.ndarray, center: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Distance along unit directions ``d`` (N, 2) from the origin to where the ray leaves the ellipse
    ``|(p - center) / radii| = 1`` (the origin must lie inside it)."""
    a = ((d / radii) ** 2).sum(axis=1)
    b = -2 * ((d * center) / radii**2).sum(axis=1)
    c = ((center / radii) ** 2).sum() - 1.0
    return (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)


# --------------------------------------------------------------------------- families


def chair(rng: np.random.Generator) -> LabelledShape:
    """Seat, back (a slab or a frame with slats, tilted back by 0-15 degrees), four legs (round,
    square or splayed, sometimes with stretchers, all labelled leg) and, in about half of the shapes,
    two arms on posts. ``arm`` is the one optional part of all families: a chair without arms has no
    arm in its ground truth (the ShapeNetPart metric counts an absent part as IoU 1 when the
    prediction has none either)."""
    b = ShapeBuilder(("seat", "back", "leg", "arm"))
    w, d = _u(rng, 0.2, 0.3), _u(rng, 0.19, 0.27)  # half width / depth
    h, t = _u(rng, 0.38, 0.5), _u(rng, 0.03, 0.08)
    top = h + t
    b.box("seat", (-w, -d, h), (w, d, top), divisions=4)

    bt, bh = _u(rng, 0.025, 0.06), _u(rng, 0.3, 0.6)
    m = b.mark()
    if rng.random() < 0.5:
        b.box("back", (-w, d - bt, top - 0.01), (w, d, top + bh), divisions=4)
    else:  # a frame: two posts, a top rail and vertical slats
        post, rail = _u(rng, 0.015, 0.03), _u(rng, 0.05, 0.1)
        for sx in (-1, 1):
            x = sx * (w - post)
            b.box("back", (x - post, d - bt, top - 0.01), (x + post, d, top + bh), divisions=2)
        b.box("back", (-w + 0.01, d - bt, top + bh - rail), (w - 0.01, d, top + bh - 0.005), divisions=3)
        n_slats = int(rng.integers(2, 6))
        slat = _u(rng, 0.008, 0.02)
        for x in np.linspace(-w + 2 * post, w - 2 * post, n_slats + 2)[1:-1]:
            b.box("back", (x - slat, d - 0.8 * bt, top - 0.01), (x + slat, d - 0.2 * bt, top + bh - rail + 0.01))
    b.apply(m, _about((0, d, top), _rot(_X, -np.deg2rad(_u(rng, 0, 15)))))

    style, lr, inset = int(rng.integers(3)), _u(rng, 0.014, 0.03), _u(rng, 0.025, 0.05)
    splay = _u(rng, 0.03, 0.08)
    feet = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            cx, cy = sx * (w - inset), sy * (d - inset)
            if style == 0:
                b.cylinder("leg", (cx, cy, 0.0), (cx, cy, h + 0.01), lr, segments=12, rings=3)
                feet.append((cx, cy))
            elif style == 1:
                b.box("leg", (cx - lr, cy - lr, 0.0), (cx + lr, cy + lr, h + 0.01), divisions=2)
                feet.append((cx, cy))
            else:
                fx, fy = cx + sx * splay, cy + sy * splay
                b.cylinder("leg", (fx, fy, 0.0), (cx, cy, h + 0.01), lr, segments=12, rings=3)
                feet.append((fx, fy))
    if style != 2 and rng.random() < 0.4:  # stretchers between front and back legs
        z = _u(rng, 0.08, 0.2)
        for sx in (-1, 1):
            x = sx * (w - inset)
            b.cylinder("leg", (x, -d + inset, z), (x, d - inset, z), 0.6 * lr, segments=10, rings=2)

    if rng.random() < 0.5:
        aw, az = _u(rng, 0.015, 0.035), top + _u(rng, 0.17, 0.26)
        ar = _u(rng, 0.01, 0.02)
        for sx in (-1, 1):
            x = sx * (w - aw)
            b.box("arm", (x - aw, -d + 0.01, az - 0.035), (x + aw, d - bt * 0.5, az), divisions=3)
            b.cylinder("arm", (x, -d + 0.05, top - 0.01), (x, -d + 0.05, az - 0.03), ar, segments=10, rings=2)
    return _finish(b, rng)


def table(rng: np.random.Generator) -> LabelledShape:
    """A rectangular or round top on four legs (round, square or tapered, sometimes with
    stretchers) or on a pedestal (a column on a disc or on radiating feet, all labelled leg)."""
    b = ShapeBuilder(("top", "leg"))
    h, t = _u(rng, 0.45, 0.8), _u(rng, 0.025, 0.06)
    round_top = rng.random() < 0.4
    if round_top:
        r = _u(rng, 0.35, 0.6)
        profile = [(0, 0), (0.4 * r, 0), (0.8 * r, 0), (r, 0), (r, t), (0.8 * r, t), (0.4 * r, t), (0, t)]
        b.lathe("top", profile, (0, 0, h - t), segments=48)
        lx = ly = r / np.sqrt(2)
    else:
        lx, ly = _u(rng, 0.4, 0.8), _u(rng, 0.25, 0.5)
        b.box("top", (-lx, -ly, h - t), (lx, ly, h), divisions=6)
    pedestal = rng.random() < (0.7 if round_top else 0.2)
    lr = _u(rng, 0.015, 0.04)
    if pedestal:
        cr = _u(rng, 0.025, 0.06)
        b.cylinder("leg", (0, 0, 0.01), (0, 0, h - t + 0.01), cr, segments=16, rings=4)
        reach = 0.8 * min(lx, ly) * _u(rng, 0.5, 0.9)
        if rng.random() < 0.5:
            b.lathe("leg", [(0, 0), (reach, 0), (reach * 0.8, 0.03), (0, 0.03)], segments=32)
        else:
            n_feet = int(rng.integers(3, 5))
            for k in range(n_feet):
                a = 2 * np.pi * k / n_feet
                tip = (reach * 1.3 * np.cos(a), reach * 1.3 * np.sin(a), 0.0)
                b.tapered_box("leg", (0, 0, 0.03), tip, (0.03, 0.025), (0.015, 0.012), x_axis=_Z, divisions=3)
    else:
        inset, style = _u(rng, 0.03, 0.1), int(rng.integers(3))
        corners = [(sx * (lx - inset), sy * (ly - inset)) for sx in (-1, 1) for sy in (-1, 1)]
        if round_top:
            corners = [(0.9 * x, 0.9 * y) for x, y in corners]
        for cx, cy in corners:
            if style == 0:
                b.cylinder("leg", (cx, cy, 0), (cx, cy, h - t + 0.01), lr, segments=12, rings=4)
            elif style == 1:
                b.box("leg", (cx - lr, cy - lr, 0), (cx + lr, cy + lr, h - t + 0.01), divisions=3)
            else:
                b.tapered_box("leg", (cx, cy, 0), (cx, cy, h - t + 0.01), (0.6 * lr, 0.6 * lr), (lr, lr), _X, 4)
        if rng.random() < 0.4:
            z = _u(rng, 0.1, 0.25) * h
            (x0, y0), (x1, y1) = corners[0], corners[3]
            for x in (x0, x1):
                b.cylinder("leg", (x, y0, z), (x, y1, z), 0.5 * lr, segments=10, rings=3)
            b.cylinder("leg", (x0, 0, z), (x1, 0, z), 0.5 * lr, segments=10, rings=3)
    return _finish(b, rng)


def lamp(rng: np.random.Generator) -> LabelledShape:
    """A floor/table lamp (straight pole, drum shade) or a desk lamp (bent arm, cone shade pointing
    down), on a round or square base, with a thin cord lying on the floor away from the base."""
    b = ShapeBuilder(("base", "pole", "shade", "cord"))
    rb, hb = _u(rng, 0.1, 0.18), _u(rng, 0.02, 0.05)
    round_base = rng.random() < 0.6
    if round_base:
        b.lathe("base", [(0, 0), (rb, 0), (rb * _u(rng, 0.6, 1.0), hb), (0, hb)], segments=32)
    else:
        b.box("base", (-rb, -0.8 * rb, 0), (rb, 0.8 * rb, hb), divisions=3)
    height, pr, th = _u(rng, 0.45, 0.9), _u(rng, 0.007, 0.016), _u(rng, 0.004, 0.008)
    if rng.random() < 0.6:  # straight pole, drum or conical shade around its top
        sb, sh = _u(rng, 0.1, 0.22), _u(rng, 0.1, 0.22)
        st = sb * _u(rng, 0.4, 0.95)
        z0 = height - sh * _u(rng, 0.3, 0.7)
        b.tube("pole", np.stack([np.zeros(12), np.zeros(12), np.linspace(hb - 0.005, z0 + 0.8 * sh, 12)], 1), pr, 12)
        shell = [(sb, 0), (st, sh), (st - th, sh), (sb - th, 0)]
        b.lathe("shade", shell, (0, 0, z0), segments=36, closed=True)
        # two spokes hold the shade on the pole: they belong to the shade
        hub = np.array([0, 0, z0 + 0.8 * sh])
        for a in (0.0, np.pi / 2):
            d = np.array([np.cos(a), np.sin(a), 0.0]) * (sb + 0.8 * (st - sb) - 0.5 * th)
            b.cylinder("shade", hub - d, hub + d, 0.003, 6, 1)
    else:  # desk lamp: vertical post, bent into an arm, cone shade at its end pointing down
        z1, reach = height * _u(rng, 0.5, 0.7), _u(rng, 0.2, 0.4)
        z2 = height * _u(rng, 0.8, 1.0)
        s = np.linspace(0, 1, 20)[:, None]
        p0, c, p1 = np.array([0, 0, z1]), np.array([0, 0, z2 + 0.05]), np.array([reach, 0, z2])
        bend = (1 - s) ** 2 * p0 + 2 * s * (1 - s) * c + s**2 * p1
        post = np.stack([np.zeros(6), np.zeros(6), np.linspace(hb - 0.005, z1, 6)], 1)
        b.tube("pole", np.concatenate([post[:-1], bend]), pr, 12)
        tilt = np.deg2rad(_u(rng, 0, 40))
        axis = np.array([np.sin(tilt), 0.0, -np.cos(tilt)])
        rn, rw, sh = _u(rng, 0.02, 0.04), _u(rng, 0.07, 0.14), _u(rng, 0.1, 0.18)
        shell = [(rn, 0), (rw, sh), (rw - th, sh), (rn - th, 0)]
        b.lathe("shade", shell, p1 - 0.01 * axis, axis, segments=32, closed=True)
        b.lathe("shade", [(0, 0), (rn, 0), (rn, 0.012), (0, 0.012)], p1 - 0.012 * axis, axis, segments=32)
    # the cord leaves the base on the floor and wanders away from it
    cr, length = _u(rng, 0.004, 0.008), _u(rng, 0.25, 0.5)
    phi = _u(rng, 0, 2 * np.pi)
    d, side = np.array([np.cos(phi), np.sin(phi), 0.0]), np.array([-np.sin(phi), np.cos(phi), 0.0])
    s = np.linspace(0, length, 30)
    wiggle = _u(rng, 0.02, 0.06) * np.sin(2 * np.pi * s / length * _u(rng, 0.7, 1.6) + _u(rng, 0, np.pi))
    start = 0.6 * rb * d + np.array([0, 0, cr])
    path = start + s[:, None] * d + (wiggle - wiggle[0])[:, None] * side
    b.tube("cord", path, cr, 8)
    if rng.random() < 0.6:  # a plug at the cord's end
        e = path[-1]
        b.tapered_box("cord", e - 0.005 * d, e + 0.035 * d, (0.012, 0.008), (0.012, 0.008), _Z)
    return _finish(b, rng)


def mug(rng: np.random.Generator) -> LabelledShape:
    """A hollow mug body (straight, flared or tapered wall) with a C- or D-shaped handle whose ends
    sink into the wall."""
    b = ShapeBuilder(("body", "handle"))
    rb, height = _u(rng, 0.035, 0.05), _u(rng, 0.08, 0.12)
    rt = rb * _u(rng, 0.85, 1.15)
    tw, tb = _u(rng, 0.003, 0.006), _u(rng, 0.005, 0.01)
    zs = np.linspace(0, height, 8)
    outer = [(rb + (rt - rb) * z / height, z) for z in zs]
    inner = [(rb - tw + (rt - rb) * z / height, z) for z in zs[::-1] if z >= tb]
    profile = [(0, 0), (0.5 * rb, 0), *outer, *inner, (rb - tw + (rt - rb) * tb / height, tb), (0, tb)]
    b.lathe("body", profile, segments=36)

    # handle: a superellipse arc (p = 2: C-shaped, larger: D-shaped) in the xz plane
    zc, half_h = height * _u(rng, 0.42, 0.58), height * _u(rng, 0.25, 0.36)
    a, p, hr = _u(rng, 0.02, 0.035), _u(rng, 2.0, 4.0), _u(rng, 0.004, 0.008)
    theta = np.deg2rad(_u(rng, 105, 120))
    t = np.linspace(-theta, theta, 24)
    x = a * np.sign(np.cos(t)) * np.abs(np.cos(t)) ** (2 / p)
    z = zc + half_h * np.sign(np.sin(t)) * np.abs(np.sin(t)) ** (2 / p)
    wall = rb + (rt - rb) * z / height
    x = x - x[0] + wall - 0.5 * tw  # sheared along the (tapered) wall: both ends sit inside it
    b.tube("handle", np.stack([x, np.zeros_like(x), z], axis=1), hr, 12)
    return _finish(b, rng)


def _wing(
    b: ShapeBuilder,
    part: str,
    root,
    span_dir,
    semi: float,
    chord: float,
    taper: float,
    sweep: float,
    thick: float,
    lift_dir=_Z,
    lift: float = 0.0,
    stations: int = 6,
) -> None:
    """A lofted wing-like surface: elliptic sections (chord along +x, thickness along ``lift_dir``)
    from ``root`` (the leading edge at the root) out along ``span_dir`` for ``semi``; the chord tapers
    to ``taper * chord``, the leading edge moves back by ``sweep`` and up by ``lift`` at the tip."""
    root, span_dir, lift_dir = (np.asarray(v, np.float64) for v in (root, span_dir, lift_dir))
    ang = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    rings = []
    for s in np.linspace(0, 1, stations):
        c = chord * (1 - s * (1 - taper))
        le = root + s * semi * span_dir + s * sweep * _X + s * lift * lift_dir
        xs = c * (0.5 - 0.5 * np.cos(ang))
        zs = 0.5 * thick * c * np.sin(ang)
        rings.append(le + xs[:, None] * _X + zs[:, None] * lift_dir)
    b.loft(part, rings)


def airplane(rng: np.random.Generator) -> LabelledShape:
    """A fuselage (body) along x with a rising tail cone, swept tapered wings with dihedral at low,
    mid or high position, a tail (vertical fin and horizontal stabilisers, conventional or T-tail)
    and two or four engine nacelles on pylons under the wings."""
    b = ShapeBuilder(("body", "wing", "tail", "engine"))
    fr, nose, tail0 = _u(rng, 0.035, 0.06), _u(rng, 0.08, 0.15), _u(rng, 0.65, 0.75)
    tail_r = fr * _u(rng, 0.15, 0.35)
    hs = np.linspace(0, 1, 7)
    profile = [(fr * np.sqrt(1 - (1 - h) ** 2), h * nose) for h in hs]
    profile += [(fr, h) for h in np.linspace(nose, tail0, 8)[1:]]
    profile += [(fr + (tail_r - fr) * s, tail0 + s * (1 - tail0)) for s in np.linspace(0, 1, 6)[1:]]
    profile += [(0, 1.0)]
    m = b.mark()
    b.lathe("body", profile, (0, 0, 0), _X, segments=24)
    rise = fr * _u(rng, 0.3, 0.8)

    def tail_lift(x: float | np.ndarray) -> float | np.ndarray:
        return rise * np.clip((x - tail0) / (1 - tail0), 0, 1) ** 2

    b.apply(m, lambda p: p + np.stack([0 * p[:, 0], 0 * p[:, 0], tail_lift(p[:, 0])], axis=1))

    semi, chord = _u(rng, 0.4, 0.6), _u(rng, 0.15, 0.25)
    taper, sweep = _u(rng, 0.25, 0.5), _u(rng, 0.0, 0.25)
    x_root, z_w = _u(rng, 0.3, 0.45), fr * _u(rng, -0.6, 0.5)
    dihedral = np.tan(np.deg2rad(_u(rng, 0, 6)))
    thick = _u(rng, 0.08, 0.14)
    for sy in (-1, 1):
        _wing(b, "wing", (x_root, 0, z_w), (0, sy, 0), semi, chord, taper, sweep, thick, lift=semi * dihedral)

    t_semi, t_chord = semi * _u(rng, 0.25, 0.4), chord * _u(rng, 0.45, 0.65)
    f_h, f_chord = _u(rng, 0.12, 0.22), _u(rng, 0.12, 0.2)
    x_f = 1.0 - f_chord - _u(rng, 0.0, 0.03)
    z_tail = float(tail_lift(x_f + 0.5 * f_chord))
    _wing(b, "tail", (x_f, 0, z_tail), _Z, f_h, f_chord, _u(rng, 0.4, 0.7), f_chord * _u(rng, 0.3, 0.8), 0.1, _Y)
    t_tail = rng.random() < 0.25
    x_t = 1.0 - t_chord - _u(rng, 0.0, 0.03)
    z_t = z_tail + 0.9 * f_h if t_tail else z_tail + 0.2 * fr
    if t_tail:
        x_t = x_f + f_chord * 0.6
    for sy in (-1, 1):
        _wing(b, "tail", (x_t, 0, z_t), (0, sy, 0), t_semi, t_chord, 0.5, t_chord * 0.5, 0.1)

    n_eng = 4 if rng.random() < 0.3 else 2
    er, el = _u(rng, 0.022, 0.04), _u(rng, 0.12, 0.2)
    spans = [_u(rng, 0.25, 0.4)] + ([_u(rng, 0.55, 0.7)] if n_eng == 4 else [])
    profile = [(0, 0.01), (0.85 * er, 0), (er, 0.15 * el), (er, 0.6 * el), (0.6 * er, el), (0, el)]
    for sy in (-1, 1):
        for f in spans:
            y = sy * f * semi
            x_le = x_root + f * sweep
            z_wing = z_w + f * semi * dihedral
            ze = z_wing - er - _u(rng, 0.008, 0.02)
            xe = x_le - el * _u(rng, 0.3, 0.55)
            b.lathe("engine", profile, (xe, y, ze), _X, segments=20)
            b.tapered_box(
                "engine",
                (xe + 0.5 * el, y, ze + 0.5 * er),
                (xe + 0.5 * el, y, z_wing + 0.005),
                (0.3 * el, 0.004),
                (0.25 * el, 0.004),
                _X,
            )
    return _finish(b, rng)


def guitar(rng: np.random.Generator) -> LabelledShape:
    """An upright guitar: a body whose outline is the union of two bouts (acoustic: deep, electric:
    thin) with a bridge, a tapering neck and a head tilted back by 0-15 degrees with six pegs."""
    b = ShapeBuilder(("body", "neck", "head"))
    r1 = _u(rng, 0.17, 0.22)
    r2 = r1 * _u(rng, 0.7, 0.85)
    ra, rb2 = np.array([r1, r1 * _u(rng, 0.9, 1.05)]), np.array([r2, r2 * _u(rng, 0.9, 1.05)])
    sep = (ra[1] + rb2[1]) * _u(rng, 0.55, 0.72)
    oz = (sep - rb2[1] + ra[1]) / 2  # a point inside both bouts: the outline is star-shaped about it
    ang = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    dirs = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    dist = np.maximum(
        _ellipse_exit(dirs, np.array([0.0, -oz]), ra), _ellipse_exit(dirs, np.array([0.0, sep - oz]), rb2)
    )
    outline = dirs * dist[:, None] + np.array([0.0, oz])
    depth = _u(rng, 0.08, 0.12) if rng.random() < 0.5 else _u(rng, 0.035, 0.05)
    b.extrude("body", outline, (0, 0, 0), _X, _Z, depth, layers=2)  # x and z: the body faces -y
    front = -depth / 2
    b.box("body", (-0.05, front - 0.008, 0.35 * r1), (0.05, front + 0.005, 0.35 * r1 + 0.025))  # the bridge

    w0, th = _u(rng, 0.024, 0.03), _u(rng, 0.01, 0.015)
    w1, length = w0 * _u(rng, 0.75, 0.9), _u(rng, 0.4, 0.55)
    yn = front + th * 0.9
    z0 = sep + rb2[1] - 0.03
    z1 = z0 + length
    b.tapered_box("neck", (0, yn, z0), (0, yn, z1), (w0, th), (w1, th), _X, divisions=6)

    m = b.mark()
    hl, hw = _u(rng, 0.14, 0.2), _u(rng, 0.035, 0.05)
    b.tapered_box("head", (0, yn, z1 - 0.005), (0, yn, z1 + hl), (w1 * 1.1, 0.8 * th), (hw, 0.8 * th), _X, 3)
    for k in range(3):
        z = z1 + hl * (0.3 + 0.25 * k)
        half = w1 * 1.1 + (hw - w1 * 1.1) * (z - z1) / hl
        for sx in (-1, 1):
            b.cylinder("head", (sx * (half - 0.005), yn, z), (sx * (half + 0.03), yn, z), 0.005, 8, 1)
    b.apply(m, _about((0, yn, z1), _rot(_X, -np.deg2rad(_u(rng, 0, 15)))))
    return _finish(b, rng)


def knife(rng: np.random.Generator) -> LabelledShape:
    """A knife along x: a thin blade (chef's: spine straight to the tip; clip point: the spine drops
    to the tip) and a bulging handle, flattened sideways, sometimes with a guard."""
    b = ShapeBuilder(("blade", "handle"))
    lb, hb, tb = _u(rng, 0.12, 0.25), _u(rng, 0.02, 0.05), _u(rng, 0.002, 0.004)
    zs = hb * _u(rng, 0.3, 0.5)
    ze = zs - hb
    pw = _u(rng, 2.5, 5.0)
    z_tip = zs if rng.random() < 0.5 else zs - hb * _u(rng, 0.3, 0.6)
    x_drop = lb * _u(rng, 0.6, 0.8) if z_tip < zs else lb
    xs = np.linspace(-0.01, lb, 25)
    edge = np.stack([xs, ze + (z_tip - ze) * np.clip(xs / lb, 0, 1) ** pw], axis=1)
    spine = [(lb + (x_drop - lb) * s, z_tip + (zs - z_tip) * s) for s in np.linspace(0, 1, 6)[1:]] if z_tip < zs else []
    spine += [(x, zs) for x in np.linspace(x_drop, -0.01, 8)[1:]]
    outline = np.concatenate([edge, np.asarray(spine)])
    b.extrude("blade", outline, (0, 0, 0), _X, _Z, tb)

    hl, hr = _u(rng, 0.09, 0.13), _u(rng, 0.01, 0.016)
    bulge = _u(rng, 0.0, 0.3)
    hs = np.linspace(0, hl, 10)
    profile = [(hr * (1 + bulge * np.sin(np.pi * h / hl)), h) for h in hs] + [(0, hl + 0.4 * hr)]
    m = b.mark()
    b.lathe("handle", [(0, -0.005), *profile], (0.003, 0, 0), -_X, segments=24)
    flat = _u(rng, 0.55, 0.9)
    b.apply(m, lambda p: p * np.array([1.0, flat, 1.0]))
    if rng.random() < 0.6:
        gz = hr * _u(rng, 1.2, 1.8)
        b.box("handle", (-0.006, -1.3 * hr * flat, -gz), (0.006, 1.3 * hr * flat, max(gz, zs + 0.003)), divisions=2)
    return _finish(b, rng)


def rocket(rng: np.random.Generator) -> LabelledShape:
    """An upright rocket: a cylindrical body with an engine bell, a nose (cone to ogive, sometimes
    blunt) and three or four swept fins at the bottom."""
    b = ShapeBuilder(("body", "fin", "nose"))
    r, length = _u(rng, 0.04, 0.08), _u(rng, 0.55, 0.7)
    z0 = _u(rng, 0.04, 0.08)
    profile = [(0, 0), (0.85 * r, 0)] + [(r, h) for h in np.linspace(0.02, length, 9)] + [(0, length)]
    b.lathe("body", profile, (0, 0, z0), segments=24)
    b.frustum("body", (0, 0, z0 + 0.01), (0, 0, z0 - _u(rng, 0.03, 0.06)), 0.35 * r, r * _u(rng, 0.5, 0.7), 16, 2)

    nh, k = _u(rng, 0.15, 0.3), _u(rng, 1.0, 2.5)
    hs = np.linspace(0, 1, 9)
    nose = [(r * (1 - h**k), h * nh) for h in hs]
    nose[-1] = (0.0, nh)
    b.lathe("nose", [(0, 0), *nose], (0, 0, z0 + length - 0.005), segments=24)

    n_fins = 3 if rng.random() < 0.5 else 4
    chord, span, thick = _u(rng, 0.15, 0.3), _u(rng, 0.06, 0.16), _u(rng, 0.006, 0.012)
    zr = z0 + _u(rng, 0.0, 0.03)
    zt = zr - _u(rng, -0.02, 0.06)
    tip = chord * _u(rng, 0.3, 0.7)
    phase = _u(rng, 0, 2 * np.pi)
    outline = np.array([(0.7 * r, zr), (r + span, zt), (r + span, zt + tip), (0.7 * r, zr + chord)])
    for i in range(n_fins):
        a = phase + 2 * np.pi * i / n_fins
        radial = np.array([np.cos(a), np.sin(a), 0.0])
        b.extrude("fin", outline, (0, 0, 0), radial, _Z, thick, layers=2)
    return _finish(b, rng)


def laptop(rng: np.random.Generator) -> LabelledShape:
    """An open laptop: a base with a grid of keys and a touchpad (keyboard) and a thin screen opened
    95-130 degrees, with a display panel on its face (screen)."""
    b = ShapeBuilder(("screen", "keyboard"))
    w, d, th = _u(rng, 0.15, 0.2), _u(rng, 0.1, 0.14), _u(rng, 0.012, 0.025)
    b.box("keyboard", (-w, -d, 0), (w, d, th), divisions=3)
    rows, cols = int(rng.integers(4, 7)), int(rng.integers(10, 15))
    x_edges = np.linspace(-0.9 * w, 0.9 * w, cols + 1)
    y_edges = np.linspace(-0.05 * d, 0.85 * d, rows + 1)
    gap = 0.15 * min(x_edges[1] - x_edges[0], y_edges[1] - y_edges[0])
    for i in range(rows):
        for j in range(cols):
            lo = (x_edges[j] + gap, y_edges[i] + gap, th - 0.001)
            b.box("keyboard", lo, (x_edges[j + 1] - gap, y_edges[i + 1] - gap, th + 0.002))
    pad_w, pad_d = w * _u(rng, 0.25, 0.4), d * _u(rng, 0.25, 0.4)
    b.box("keyboard", (-pad_w, -0.93 * d, th - 0.001), (pad_w, -0.93 * d + 2 * pad_d, th + 0.0005), divisions=2)

    st, sd = _u(rng, 0.004, 0.01), 2 * d * _u(rng, 0.9, 1.0)
    m = b.mark()
    b.box("screen", (-w, d - st, th), (w, d, th + sd), divisions=4)
    bezel = _u(rng, 0.008, 0.02)
    b.box("screen", (-w + bezel, d - st - 0.001, th + bezel), (w - bezel, d - st + 0.001, th + sd - bezel), 3)
    b.apply(m, _about((0, d, th), _rot(_X, -np.deg2rad(_u(rng, 5, 40)))))
    return _finish(b, rng)


def skateboard(rng: np.random.Generator) -> LabelledShape:
    """A deck (rounded ends, concave, kicked-up nose and tail), two trucks (a mount and an axle
    each) and four wheels."""
    b = ShapeBuilder(("deck", "wheel", "truck"))
    half_l, hw, dt = _u(rng, 0.35, 0.43), _u(rng, 0.095, 0.115), _u(rng, 0.01, 0.015)
    x_kick, kick = half_l * _u(rng, 0.6, 0.72), _u(rng, 0.03, 0.07)
    concave = _u(rng, 0.0, 1.0)
    wr, ww = _u(rng, 0.025, 0.03), _u(rng, 0.03, 0.045)
    zd = 2 * wr + _u(rng, 0.01, 0.025)

    xs = np.linspace(-half_l, half_l, 41)
    end = half_l - hw
    width = np.where(np.abs(xs) < end, hw, hw * np.sqrt(np.clip(1 - ((np.abs(xs) - end) / hw) ** 2, 0.06, 1)))
    lift = kick * (np.clip(np.abs(xs) - x_kick, 0, None) / (half_l - x_kick)) ** 2
    section = np.array([(-1, 0), (-0.6, 0), (0, 0), (0.6, 0), (1, 0), (1, 1), (0.6, 1), (0, 1), (-0.6, 1), (-1, 1)])
    rings = []
    for x, wdt, z in zip(xs, width, lift, strict=True):
        y = section[:, 0] * wdt
        zz = zd + z + section[:, 1] * dt + concave * 0.3 * dt * (y / hw) ** 2
        rings.append(np.stack([np.full_like(y, x), y, zz], axis=1))
    b.loft("deck", rings)

    x_truck = x_kick - _u(rng, 0.02, 0.07)
    y_wheel = hw * _u(rng, 0.75, 0.95)
    for sx in (-1, 1):
        x = sx * x_truck
        b.tapered_box("truck", (x, 0, wr), (x, 0, zd + 0.003), (0.02, 0.03), (0.03, 0.04), _X, divisions=2)
        b.cylinder("truck", (x, -y_wheel, wr), (x, y_wheel, wr), 0.006, segments=10, rings=3)
        for sy in (-1, 1):
            y = sy * y_wheel
            b.cylinder("wheel", (x, y - sy * 0.005, wr), (x, y + sy * (ww - 0.005), wr), wr, segments=20, rings=2)
    return _finish(b, rng)


FAMILIES: dict[str, Family] = {
    "chair": chair,
    "table": table,
    "lamp": lamp,
    "mug": mug,
    "airplane": airplane,
    "guitar": guitar,
    "knife": knife,
    "rocket": rocket,
    "laptop": laptop,
    "skateboard": skateboard,
}


def make_shape(family: str, seed: int) -> LabelledShape:
    """The shape number ``seed`` of ``family``: deterministic, and each family has its own random
    stream (the family name is hashed into its generator's seed). Raises KeyError for an unknown family and
    RuntimeError if a required part is missing (a generator bug)."""
    if family not in FAMILIES:
        raise KeyError(f"unknown shape family {family!r}; known: {', '.join(FAMILIES)}")
    rng = np.random.default_rng([zlib.crc32(family.encode()), int(seed)])
    shape = FAMILIES[family](rng)
    present = set(np.unique(shape.labels).tolist())
    missing = [
        n for i, n in enumerate(shape.part_names) if i not in present and n not in OPTIONAL_PARTS.get(family, ())
    ]
    if missing:
        raise RuntimeError(f"{family} seed {seed}: parts {missing} are missing")
    return shape
