"""The household families of the benchmark: chair, table, lamp, mug and laptop.

The conventions every family keeps and each family's parts are in ``families``.
"""

from __future__ import annotations

import numpy as np

from .family_geometry import X, Z, about, draw, finish, rotation
from .shapes import LabelledShape, ShapeBuilder


def chair(rng: np.random.Generator) -> LabelledShape:
    """Seat, back (a slab or a frame with slats, tilted back by 0-15 degrees), four legs (round,
    square or splayed, sometimes with stretchers, all labelled leg) and, in about half of the shapes,
    two arms on posts. ``arm`` is the one optional part of all families: a chair without arms has no
    arm in its ground truth (the ShapeNetPart metric counts an absent part as IoU 1 when the
    prediction has none either)."""
    b = ShapeBuilder(("seat", "back", "leg", "arm"))
    w, d = draw(rng, 0.2, 0.3), draw(rng, 0.19, 0.27)  # half width / depth
    h, t = draw(rng, 0.38, 0.5), draw(rng, 0.03, 0.08)
    top = h + t
    b.box("seat", (-w, -d, h), (w, d, top), divisions=4)

    bt, bh = draw(rng, 0.025, 0.06), draw(rng, 0.3, 0.6)
    m = b.mark()
    if rng.random() < 0.5:
        b.box("back", (-w, d - bt, top - 0.01), (w, d, top + bh), divisions=4)
    else:  # a frame: two posts, a top rail and vertical slats
        post, rail = draw(rng, 0.015, 0.03), draw(rng, 0.05, 0.1)
        for sx in (-1, 1):
            x = sx * (w - post)
            b.box("back", (x - post, d - bt, top - 0.01), (x + post, d, top + bh), divisions=2)
        b.box("back", (-w + 0.01, d - bt, top + bh - rail), (w - 0.01, d, top + bh - 0.005), divisions=3)
        n_slats = int(rng.integers(2, 6))
        slat = draw(rng, 0.008, 0.02)
        for x in np.linspace(-w + 2 * post, w - 2 * post, n_slats + 2)[1:-1]:
            b.box("back", (x - slat, d - 0.8 * bt, top - 0.01), (x + slat, d - 0.2 * bt, top + bh - rail + 0.01))
    b.apply(m, about((0, d, top), rotation(X, -np.deg2rad(draw(rng, 0, 15)))))

    style, lr, inset = int(rng.integers(3)), draw(rng, 0.014, 0.03), draw(rng, 0.025, 0.05)
    splay = draw(rng, 0.03, 0.08)
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
        z = draw(rng, 0.08, 0.2)
        for sx in (-1, 1):
            x = sx * (w - inset)
            b.cylinder("leg", (x, -d + inset, z), (x, d - inset, z), 0.6 * lr, segments=10, rings=2)

    if rng.random() < 0.5:
        aw, az = draw(rng, 0.015, 0.035), top + draw(rng, 0.17, 0.26)
        ar = draw(rng, 0.01, 0.02)
        for sx in (-1, 1):
            x = sx * (w - aw)
            b.box("arm", (x - aw, -d + 0.01, az - 0.035), (x + aw, d - bt * 0.5, az), divisions=3)
            b.cylinder("arm", (x, -d + 0.05, top - 0.01), (x, -d + 0.05, az - 0.03), ar, segments=10, rings=2)
    return finish(b, rng)


def table(rng: np.random.Generator) -> LabelledShape:
    """A rectangular or round top on four legs (round, square or tapered, sometimes with
    stretchers) or on a pedestal (a column on a disc or on radiating feet, all labelled leg)."""
    b = ShapeBuilder(("top", "leg"))
    h, t = draw(rng, 0.45, 0.8), draw(rng, 0.025, 0.06)
    round_top = rng.random() < 0.4
    if round_top:
        r = draw(rng, 0.35, 0.6)
        profile = [(0, 0), (0.4 * r, 0), (0.8 * r, 0), (r, 0), (r, t), (0.8 * r, t), (0.4 * r, t), (0, t)]
        b.lathe("top", profile, (0, 0, h - t), segments=48)
        lx = ly = r / np.sqrt(2)
    else:
        lx, ly = draw(rng, 0.4, 0.8), draw(rng, 0.25, 0.5)
        b.box("top", (-lx, -ly, h - t), (lx, ly, h), divisions=6)
    pedestal = rng.random() < (0.7 if round_top else 0.2)
    lr = draw(rng, 0.015, 0.04)
    if pedestal:
        cr = draw(rng, 0.025, 0.06)
        b.cylinder("leg", (0, 0, 0.01), (0, 0, h - t + 0.01), cr, segments=16, rings=4)
        reach = 0.8 * min(lx, ly) * draw(rng, 0.5, 0.9)
        if rng.random() < 0.5:
            b.lathe("leg", [(0, 0), (reach, 0), (reach * 0.8, 0.03), (0, 0.03)], segments=32)
        else:
            n_feet = int(rng.integers(3, 5))
            for k in range(n_feet):
                a = 2 * np.pi * k / n_feet
                tip = (reach * 1.3 * np.cos(a), reach * 1.3 * np.sin(a), 0.0)
                b.tapered_box("leg", (0, 0, 0.03), tip, (0.03, 0.025), (0.015, 0.012), x_axis=Z, divisions=3)
    else:
        inset, style = draw(rng, 0.03, 0.1), int(rng.integers(3))
        corners = [(sx * (lx - inset), sy * (ly - inset)) for sx in (-1, 1) for sy in (-1, 1)]
        if round_top:
            corners = [(0.9 * x, 0.9 * y) for x, y in corners]
        for cx, cy in corners:
            if style == 0:
                b.cylinder("leg", (cx, cy, 0), (cx, cy, h - t + 0.01), lr, segments=12, rings=4)
            elif style == 1:
                b.box("leg", (cx - lr, cy - lr, 0), (cx + lr, cy + lr, h - t + 0.01), divisions=3)
            else:
                b.tapered_box("leg", (cx, cy, 0), (cx, cy, h - t + 0.01), (0.6 * lr, 0.6 * lr), (lr, lr), X, 4)
        if rng.random() < 0.4:
            z = draw(rng, 0.1, 0.25) * h
            (x0, y0), (x1, y1) = corners[0], corners[3]
            for x in (x0, x1):
                b.cylinder("leg", (x, y0, z), (x, y1, z), 0.5 * lr, segments=10, rings=3)
            b.cylinder("leg", (x0, 0, z), (x1, 0, z), 0.5 * lr, segments=10, rings=3)
    return finish(b, rng)


def lamp(rng: np.random.Generator) -> LabelledShape:
    """A floor/table lamp (straight pole, drum shade) or a desk lamp (bent arm, cone shade pointing
    down), on a round or square base, with a thin cord lying on the floor away from the base."""
    b = ShapeBuilder(("base", "pole", "shade", "cord"))
    rb, hb = draw(rng, 0.1, 0.18), draw(rng, 0.02, 0.05)
    round_base = rng.random() < 0.6
    if round_base:
        b.lathe("base", [(0, 0), (rb, 0), (rb * draw(rng, 0.6, 1.0), hb), (0, hb)], segments=32)
    else:
        b.box("base", (-rb, -0.8 * rb, 0), (rb, 0.8 * rb, hb), divisions=3)
    height, pr, th = draw(rng, 0.45, 0.9), draw(rng, 0.007, 0.016), draw(rng, 0.004, 0.008)
    if rng.random() < 0.6:  # straight pole, drum or conical shade around its top
        sb, sh = draw(rng, 0.1, 0.22), draw(rng, 0.1, 0.22)
        st = sb * draw(rng, 0.4, 0.95)
        z0 = height - sh * draw(rng, 0.3, 0.7)
        b.tube("pole", np.stack([np.zeros(12), np.zeros(12), np.linspace(hb - 0.005, z0 + 0.8 * sh, 12)], 1), pr, 12)
        shell = [(sb, 0), (st, sh), (st - th, sh), (sb - th, 0)]
        b.lathe("shade", shell, (0, 0, z0), segments=36, closed=True)
        # two spokes hold the shade on the pole: they belong to the shade
        hub = np.array([0, 0, z0 + 0.8 * sh])
        for a in (0.0, np.pi / 2):
            d = np.array([np.cos(a), np.sin(a), 0.0]) * (sb + 0.8 * (st - sb) - 0.5 * th)
            b.cylinder("shade", hub - d, hub + d, 0.003, 6, 1)
    else:  # desk lamp: vertical post, bent into an arm, cone shade at its end pointing down
        z1, reach = height * draw(rng, 0.5, 0.7), draw(rng, 0.2, 0.4)
        z2 = height * draw(rng, 0.8, 1.0)
        s = np.linspace(0, 1, 20)[:, None]
        p0, c, p1 = np.array([0, 0, z1]), np.array([0, 0, z2 + 0.05]), np.array([reach, 0, z2])
        bend = (1 - s) ** 2 * p0 + 2 * s * (1 - s) * c + s**2 * p1
        post = np.stack([np.zeros(6), np.zeros(6), np.linspace(hb - 0.005, z1, 6)], 1)
        b.tube("pole", np.concatenate([post[:-1], bend]), pr, 12)
        tilt = np.deg2rad(draw(rng, 0, 40))
        axis = np.array([np.sin(tilt), 0.0, -np.cos(tilt)])
        rn, rw, sh = draw(rng, 0.02, 0.04), draw(rng, 0.07, 0.14), draw(rng, 0.1, 0.18)
        shell = [(rn, 0), (rw, sh), (rw - th, sh), (rn - th, 0)]
        b.lathe("shade", shell, p1 - 0.01 * axis, axis, segments=32, closed=True)
        b.lathe("shade", [(0, 0), (rn, 0), (rn, 0.012), (0, 0.012)], p1 - 0.012 * axis, axis, segments=32)
    # the cord leaves the base on the floor and wanders away from it
    cr, length = draw(rng, 0.004, 0.008), draw(rng, 0.25, 0.5)
    phi = draw(rng, 0, 2 * np.pi)
    d, side = np.array([np.cos(phi), np.sin(phi), 0.0]), np.array([-np.sin(phi), np.cos(phi), 0.0])
    s = np.linspace(0, length, 30)
    wiggle = draw(rng, 0.02, 0.06) * np.sin(2 * np.pi * s / length * draw(rng, 0.7, 1.6) + draw(rng, 0, np.pi))
    start = 0.6 * rb * d + np.array([0, 0, cr])
    path = start + s[:, None] * d + (wiggle - wiggle[0])[:, None] * side
    b.tube("cord", path, cr, 8)
    if rng.random() < 0.6:  # a plug at the cord's end
        e = path[-1]
        b.tapered_box("cord", e - 0.005 * d, e + 0.035 * d, (0.012, 0.008), (0.012, 0.008), Z)
    return finish(b, rng)


def mug(rng: np.random.Generator) -> LabelledShape:
    """A hollow mug body (straight, flared or tapered wall) with a C- or D-shaped handle whose ends
    sink into the wall."""
    b = ShapeBuilder(("body", "handle"))
    rb, height = draw(rng, 0.035, 0.05), draw(rng, 0.08, 0.12)
    rt = rb * draw(rng, 0.85, 1.15)
    tw, tb = draw(rng, 0.003, 0.006), draw(rng, 0.005, 0.01)
    zs = np.linspace(0, height, 8)
    outer = [(rb + (rt - rb) * z / height, z) for z in zs]
    inner = [(rb - tw + (rt - rb) * z / height, z) for z in zs[::-1] if z >= tb]
    profile = [(0, 0), (0.5 * rb, 0), *outer, *inner, (rb - tw + (rt - rb) * tb / height, tb), (0, tb)]
    b.lathe("body", profile, segments=36)

    # handle: a superellipse arc (p = 2: C-shaped, larger: D-shaped) in the xz plane
    zc, half_h = height * draw(rng, 0.42, 0.58), height * draw(rng, 0.25, 0.36)
    a, p, hr = draw(rng, 0.02, 0.035), draw(rng, 2.0, 4.0), draw(rng, 0.004, 0.008)
    theta = np.deg2rad(draw(rng, 105, 120))
    t = np.linspace(-theta, theta, 24)
    x = a * np.sign(np.cos(t)) * np.abs(np.cos(t)) ** (2 / p)
    z = zc + half_h * np.sign(np.sin(t)) * np.abs(np.sin(t)) ** (2 / p)
    wall = rb + (rt - rb) * z / height
    x = x - x[0] + wall - 0.5 * tw  # sheared along the (tapered) wall: both ends sit inside it
    b.tube("handle", np.stack([x, np.zeros_like(x), z], axis=1), hr, 12)
    return finish(b, rng)


def laptop(rng: np.random.Generator) -> LabelledShape:
    """An open laptop: a base with a grid of keys and a touchpad (keyboard) and a thin screen opened
    95-130 degrees, with a display panel on its face (screen)."""
    b = ShapeBuilder(("screen", "keyboard"))
    w, d, th = draw(rng, 0.15, 0.2), draw(rng, 0.1, 0.14), draw(rng, 0.012, 0.025)
    b.box("keyboard", (-w, -d, 0), (w, d, th), divisions=3)
    rows, cols = int(rng.integers(4, 7)), int(rng.integers(10, 15))
    x_edges = np.linspace(-0.9 * w, 0.9 * w, cols + 1)
    y_edges = np.linspace(-0.05 * d, 0.85 * d, rows + 1)
    gap = 0.15 * min(x_edges[1] - x_edges[0], y_edges[1] - y_edges[0])
    for i in range(rows):
        for j in range(cols):
            lo = (x_edges[j] + gap, y_edges[i] + gap, th - 0.001)
            b.box("keyboard", lo, (x_edges[j + 1] - gap, y_edges[i + 1] - gap, th + 0.002))
    pad_w, pad_d = w * draw(rng, 0.25, 0.4), d * draw(rng, 0.25, 0.4)
    b.box("keyboard", (-pad_w, -0.93 * d, th - 0.001), (pad_w, -0.93 * d + 2 * pad_d, th + 0.0005), divisions=2)

    st, sd = draw(rng, 0.004, 0.01), 2 * d * draw(rng, 0.9, 1.0)
    m = b.mark()
    b.box("screen", (-w, d - st, th), (w, d, th + sd), divisions=4)
    bezel = draw(rng, 0.008, 0.02)
    b.box("screen", (-w + bezel, d - st - 0.001, th + bezel), (w - bezel, d - st + 0.001, th + sd - bezel), 3)
    b.apply(m, about((0, d, th), rotation(X, -np.deg2rad(draw(rng, 5, 40)))))
    return finish(b, rng)
