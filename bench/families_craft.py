"""The vehicle, instrument and tool families of the benchmark: airplane, guitar, knife, rocket, skateboard.

The conventions every family keeps and each family's parts are in ``families``.
"""

from __future__ import annotations

import numpy as np

from .family_geometry import X, Y, Z, about, draw, ellipse_exit, finish, rotation
from .shapes import LabelledShape, ShapeBuilder


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
    lift_dir=Z,
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
        le = root + s * semi * span_dir + s * sweep * X + s * lift * lift_dir
        xs = c * (0.5 - 0.5 * np.cos(ang))
        zs = 0.5 * thick * c * np.sin(ang)
        rings.append(le + xs[:, None] * X + zs[:, None] * lift_dir)
    b.loft(part, rings)


def airplane(rng: np.random.Generator) -> LabelledShape:
    """A fuselage (body) along x with a rising tail cone, swept tapered wings with dihedral at low,
    mid or high position, a tail (vertical fin and horizontal stabilisers, conventional or T-tail)
    and two or four engine nacelles on pylons under the wings."""
    b = ShapeBuilder(("body", "wing", "tail", "engine"))
    fr, nose, tail0 = draw(rng, 0.035, 0.06), draw(rng, 0.08, 0.15), draw(rng, 0.65, 0.75)
    tail_r = fr * draw(rng, 0.15, 0.35)
    hs = np.linspace(0, 1, 7)
    profile = [(fr * np.sqrt(1 - (1 - h) ** 2), h * nose) for h in hs]
    profile += [(fr, h) for h in np.linspace(nose, tail0, 8)[1:]]
    profile += [(fr + (tail_r - fr) * s, tail0 + s * (1 - tail0)) for s in np.linspace(0, 1, 6)[1:]]
    profile += [(0, 1.0)]
    m = b.mark()
    b.lathe("body", profile, (0, 0, 0), X, segments=24)
    rise = fr * draw(rng, 0.3, 0.8)

    def tail_lift(x: float | np.ndarray) -> float | np.ndarray:
        return rise * np.clip((x - tail0) / (1 - tail0), 0, 1) ** 2

    b.apply(m, lambda p: p + np.stack([0 * p[:, 0], 0 * p[:, 0], tail_lift(p[:, 0])], axis=1))

    semi, chord = draw(rng, 0.4, 0.6), draw(rng, 0.15, 0.25)
    taper, sweep = draw(rng, 0.25, 0.5), draw(rng, 0.0, 0.25)
    x_root, z_w = draw(rng, 0.3, 0.45), fr * draw(rng, -0.6, 0.5)
    dihedral = np.tan(np.deg2rad(draw(rng, 0, 6)))
    thick = draw(rng, 0.08, 0.14)
    for sy in (-1, 1):
        _wing(b, "wing", (x_root, 0, z_w), (0, sy, 0), semi, chord, taper, sweep, thick, lift=semi * dihedral)

    t_semi, t_chord = semi * draw(rng, 0.25, 0.4), chord * draw(rng, 0.45, 0.65)
    f_h, f_chord = draw(rng, 0.12, 0.22), draw(rng, 0.12, 0.2)
    x_f = 1.0 - f_chord - draw(rng, 0.0, 0.03)
    z_tail = float(tail_lift(x_f + 0.5 * f_chord))
    _wing(b, "tail", (x_f, 0, z_tail), Z, f_h, f_chord, draw(rng, 0.4, 0.7), f_chord * draw(rng, 0.3, 0.8), 0.1, Y)
    t_tail = rng.random() < 0.25
    x_t = 1.0 - t_chord - draw(rng, 0.0, 0.03)
    z_t = z_tail + 0.9 * f_h if t_tail else z_tail + 0.2 * fr
    if t_tail:
        x_t = x_f + f_chord * 0.6
    for sy in (-1, 1):
        _wing(b, "tail", (x_t, 0, z_t), (0, sy, 0), t_semi, t_chord, 0.5, t_chord * 0.5, 0.1)

    n_eng = 4 if rng.random() < 0.3 else 2
    er, el = draw(rng, 0.022, 0.04), draw(rng, 0.12, 0.2)
    spans = [draw(rng, 0.25, 0.4)] + ([draw(rng, 0.55, 0.7)] if n_eng == 4 else [])
    profile = [(0, 0.01), (0.85 * er, 0), (er, 0.15 * el), (er, 0.6 * el), (0.6 * er, el), (0, el)]
    for sy in (-1, 1):
        for f in spans:
            y = sy * f * semi
            x_le = x_root + f * sweep
            z_wing = z_w + f * semi * dihedral
            ze = z_wing - er - draw(rng, 0.008, 0.02)
            xe = x_le - el * draw(rng, 0.3, 0.55)
            b.lathe("engine", profile, (xe, y, ze), X, segments=20)
            b.tapered_box(
                "engine",
                (xe + 0.5 * el, y, ze + 0.5 * er),
                (xe + 0.5 * el, y, z_wing + 0.005),
                (0.3 * el, 0.004),
                (0.25 * el, 0.004),
                X,
            )
    return finish(b, rng)


def guitar(rng: np.random.Generator) -> LabelledShape:
    """An upright guitar: a body whose outline is the union of two bouts (acoustic: deep, electric:
    thin) with a bridge, a tapering neck and a head tilted back by 0-15 degrees with six pegs."""
    b = ShapeBuilder(("body", "neck", "head"))
    r1 = draw(rng, 0.17, 0.22)
    r2 = r1 * draw(rng, 0.7, 0.85)
    ra, rb2 = np.array([r1, r1 * draw(rng, 0.9, 1.05)]), np.array([r2, r2 * draw(rng, 0.9, 1.05)])
    sep = (ra[1] + rb2[1]) * draw(rng, 0.55, 0.72)
    oz = (sep - rb2[1] + ra[1]) / 2  # a point inside both bouts: the outline is star-shaped about it
    ang = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    dirs = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    dist = np.maximum(ellipse_exit(dirs, np.array([0.0, -oz]), ra), ellipse_exit(dirs, np.array([0.0, sep - oz]), rb2))
    outline = dirs * dist[:, None] + np.array([0.0, oz])
    depth = draw(rng, 0.08, 0.12) if rng.random() < 0.5 else draw(rng, 0.035, 0.05)
    b.extrude("body", outline, (0, 0, 0), X, Z, depth, layers=2)  # x and z: the body faces -y
    front = -depth / 2
    b.box("body", (-0.05, front - 0.008, 0.35 * r1), (0.05, front + 0.005, 0.35 * r1 + 0.025))  # the bridge

    w0, th = draw(rng, 0.024, 0.03), draw(rng, 0.01, 0.015)
    w1, length = w0 * draw(rng, 0.75, 0.9), draw(rng, 0.4, 0.55)
    yn = front + th * 0.9
    z0 = sep + rb2[1] - 0.03
    z1 = z0 + length
    b.tapered_box("neck", (0, yn, z0), (0, yn, z1), (w0, th), (w1, th), X, divisions=6)

    m = b.mark()
    hl, hw = draw(rng, 0.14, 0.2), draw(rng, 0.035, 0.05)
    b.tapered_box("head", (0, yn, z1 - 0.005), (0, yn, z1 + hl), (w1 * 1.1, 0.8 * th), (hw, 0.8 * th), X, 3)
    for k in range(3):
        z = z1 + hl * (0.3 + 0.25 * k)
        half = w1 * 1.1 + (hw - w1 * 1.1) * (z - z1) / hl
        for sx in (-1, 1):
            b.cylinder("head", (sx * (half - 0.005), yn, z), (sx * (half + 0.03), yn, z), 0.005, 8, 1)
    b.apply(m, about((0, yn, z1), rotation(X, -np.deg2rad(draw(rng, 0, 15)))))
    return finish(b, rng)


def knife(rng: np.random.Generator) -> LabelledShape:
    """A knife along x: a thin blade (chef's: spine straight to the tip; clip point: the spine drops
    to the tip) and a bulging handle, flattened sideways, sometimes with a guard."""
    b = ShapeBuilder(("blade", "handle"))
    lb, hb, tb = draw(rng, 0.12, 0.25), draw(rng, 0.02, 0.05), draw(rng, 0.002, 0.004)
    zs = hb * draw(rng, 0.3, 0.5)
    ze = zs - hb
    pw = draw(rng, 2.5, 5.0)
    z_tip = zs if rng.random() < 0.5 else zs - hb * draw(rng, 0.3, 0.6)
    x_drop = lb * draw(rng, 0.6, 0.8) if z_tip < zs else lb
    xs = np.linspace(-0.01, lb, 25)
    edge = np.stack([xs, ze + (z_tip - ze) * np.clip(xs / lb, 0, 1) ** pw], axis=1)
    spine = [(lb + (x_drop - lb) * s, z_tip + (zs - z_tip) * s) for s in np.linspace(0, 1, 6)[1:]] if z_tip < zs else []
    spine += [(x, zs) for x in np.linspace(x_drop, -0.01, 8)[1:]]
    outline = np.concatenate([edge, np.asarray(spine)])
    b.extrude("blade", outline, (0, 0, 0), X, Z, tb)

    hl, hr = draw(rng, 0.09, 0.13), draw(rng, 0.01, 0.016)
    bulge = draw(rng, 0.0, 0.3)
    hs = np.linspace(0, hl, 10)
    profile = [(hr * (1 + bulge * np.sin(np.pi * h / hl)), h) for h in hs] + [(0, hl + 0.4 * hr)]
    m = b.mark()
    b.lathe("handle", [(0, -0.005), *profile], (0.003, 0, 0), -X, segments=24)
    flat = draw(rng, 0.55, 0.9)
    b.apply(m, lambda p: p * np.array([1.0, flat, 1.0]))
    if rng.random() < 0.6:
        gz = hr * draw(rng, 1.2, 1.8)
        b.box("handle", (-0.006, -1.3 * hr * flat, -gz), (0.006, 1.3 * hr * flat, max(gz, zs + 0.003)), divisions=2)
    return finish(b, rng)


def rocket(rng: np.random.Generator) -> LabelledShape:
    """An upright rocket: a cylindrical body with an engine bell, a nose (cone to ogive, sometimes
    blunt) and three or four swept fins at the bottom."""
    b = ShapeBuilder(("body", "fin", "nose"))
    r, length = draw(rng, 0.04, 0.08), draw(rng, 0.55, 0.7)
    z0 = draw(rng, 0.04, 0.08)
    profile = [(0, 0), (0.85 * r, 0)] + [(r, h) for h in np.linspace(0.02, length, 9)] + [(0, length)]
    b.lathe("body", profile, (0, 0, z0), segments=24)
    b.frustum("body", (0, 0, z0 + 0.01), (0, 0, z0 - draw(rng, 0.03, 0.06)), 0.35 * r, r * draw(rng, 0.5, 0.7), 16, 2)

    nh, k = draw(rng, 0.15, 0.3), draw(rng, 1.0, 2.5)
    hs = np.linspace(0, 1, 9)
    nose = [(r * (1 - h**k), h * nh) for h in hs]
    nose[-1] = (0.0, nh)
    b.lathe("nose", [(0, 0), *nose], (0, 0, z0 + length - 0.005), segments=24)

    n_fins = 3 if rng.random() < 0.5 else 4
    chord, span, thick = draw(rng, 0.15, 0.3), draw(rng, 0.06, 0.16), draw(rng, 0.006, 0.012)
    zr = z0 + draw(rng, 0.0, 0.03)
    zt = zr - draw(rng, -0.02, 0.06)
    tip = chord * draw(rng, 0.3, 0.7)
    phase = draw(rng, 0, 2 * np.pi)
    outline = np.array([(0.7 * r, zr), (r + span, zt), (r + span, zt + tip), (0.7 * r, zr + chord)])
    for i in range(n_fins):
        a = phase + 2 * np.pi * i / n_fins
        radial = np.array([np.cos(a), np.sin(a), 0.0])
        b.extrude("fin", outline, (0, 0, 0), radial, Z, thick, layers=2)
    return finish(b, rng)


def skateboard(rng: np.random.Generator) -> LabelledShape:
    """A deck (rounded ends, concave, kicked-up nose and tail), two trucks (a mount and an axle
    each) and four wheels."""
    b = ShapeBuilder(("deck", "wheel", "truck"))
    half_l, hw, dt = draw(rng, 0.35, 0.43), draw(rng, 0.095, 0.115), draw(rng, 0.01, 0.015)
    x_kick, kick = half_l * draw(rng, 0.6, 0.72), draw(rng, 0.03, 0.07)
    concave = draw(rng, 0.0, 1.0)
    wr, ww = draw(rng, 0.025, 0.03), draw(rng, 0.03, 0.045)
    zd = 2 * wr + draw(rng, 0.01, 0.025)

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

    x_truck = x_kick - draw(rng, 0.02, 0.07)
    y_wheel = hw * draw(rng, 0.75, 0.95)
    for sx in (-1, 1):
        x = sx * x_truck
        b.tapered_box("truck", (x, 0, wr), (x, 0, zd + 0.003), (0.02, 0.03), (0.03, 0.04), X, divisions=2)
        b.cylinder("truck", (x, -y_wheel, wr), (x, y_wheel, wr), 0.006, segments=10, rings=3)
        for sy in (-1, 1):
            y = sy * y_wheel
            b.cylinder("wheel", (x, y - sy * 0.005, wr), (x, y + sy * (ww - 0.005), wr), wr, segments=20, rings=2)
    return finish(b, rng)
