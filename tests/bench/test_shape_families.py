"""The benchmark's procedural shape families: every part present, valid labels, no degenerate
triangles, deterministic per seed, varied between seeds, moderate triangle counts."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from partdistill.bench.families import (
    FAMILIES,
    MAX_TRIANGLES,
    MIN_TRIANGLES,
    OPTIONAL_PARTS,
    make_shape,
)
from partdistill.bench.shapes import LabelledShape, ShapeBuilder

SEEDS = range(8)


def _triangle_areas(shape: LabelledShape) -> np.ndarray:
    faces, _ = shape.triangles()
    tri = shape.vertices.astype(np.float64)[faces]
    return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)


def test_at_least_eight_families_named_after_shapenetpart():
    assert len(FAMILIES) >= 8
    for name in ("chair", "table", "lamp", "mug", "airplane", "guitar", "knife", "rocket"):
        assert name in FAMILIES


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_shape_is_valid(family):
    names = None
    for seed in SEEDS:
        shape = make_shape(family, seed)
        if names is None:
            names = shape.part_names
            assert len(names) >= 2 and len(set(names)) == len(names)
        assert shape.part_names == names, "the part list is fixed per family"
        # labels: one per polygon, in range
        assert shape.labels.dtype == np.int32 and shape.labels.shape == (len(shape.polygons),)
        assert shape.labels.min() >= 0 and shape.labels.max() < len(names)
        present = {names[i] for i in np.unique(shape.labels)}
        assert set(names) - present <= set(OPTIONAL_PARTS.get(family, ())), f"seed {seed} lacks parts"
        # polygons: valid indices, no repeated vertex, every vertex used
        v = shape.vertices
        assert v.dtype == np.float32 and np.isfinite(v).all()
        for poly in shape.polygons:
            assert len(poly) >= 3 and len(set(poly)) == len(poly)
        used = np.unique(np.concatenate([np.asarray(p) for p in shape.polygons]))
        assert used[0] == 0 and used[-1] == len(v) - 1 and used.size == len(v)
        # triangles: count in range, none degenerate
        n_tri = len(shape.triangles()[0])
        assert MIN_TRIANGLES <= n_tri <= MAX_TRIANGLES, f"seed {seed}: {n_tri} triangles"
        extent = np.ptp(v, axis=0)
        assert _triangle_areas(shape).min() > 1e-8 * extent.max() ** 2, f"seed {seed} has a degenerate triangle"
        # placement: on the floor, centred, largest side in [1, 2]
        assert abs(v[:, 2].min()) < 1e-6
        lo, hi = v.min(axis=0), v.max(axis=0)
        assert np.allclose((lo[:2] + hi[:2]) / 2, 0, atol=1e-5)
        assert 1.0 - 1e-5 <= extent.max() <= 2.0 + 1e-5


@pytest.mark.parametrize("family", list(FAMILIES))
def test_deterministic_for_a_seed_and_varied_between_seeds(family):
    a, b = make_shape(family, 3), make_shape(family, 3)
    assert np.array_equal(a.vertices, b.vertices)
    assert a.polygons == b.polygons and np.array_equal(a.labels, b.labels)
    # proportions (extents relative to the largest one) differ between seeds, not just the scale
    props = [np.ptp(make_shape(family, s).vertices, axis=0) for s in SEEDS]
    props = np.array([p / p.max() for p in props])
    assert np.ptp(props, axis=0).max() > 0.02
    # parts' sizes relative to the whole shape differ too (e.g. a mug's handle against its body)
    rel = []
    for s in SEEDS:
        shape = make_shape(family, s)
        size = np.ptp(shape.vertices, axis=0).max()
        per_part = []
        for label in range(len(shape.part_names)):
            polys = [shape.polygons[i] for i in np.flatnonzero(shape.labels == label)]
            pts = shape.vertices[np.unique(np.concatenate(polys))] if polys else np.zeros((1, 3))
            per_part.append(np.ptp(pts, axis=0) / size)
        rel.append(np.concatenate(per_part))
    assert np.ptp(np.array(rel), axis=0).max() > 0.02


def test_families_do_not_share_random_streams():
    assert not np.array_equal(make_shape("mug", 0).vertices, make_shape("mug", 1).vertices)


def test_optional_arms_come_and_go():
    has_arm = [3 in make_shape("chair", s).labels for s in range(20)]
    assert any(has_arm) and not all(has_arm)


def test_unknown_family():
    with pytest.raises(KeyError, match="unknown shape family"):
        make_shape("teapot", 0)


def _edges_closed(shape: LabelledShape) -> bool:
    """Every undirected edge is shared by exactly two polygons (a closed surface)."""
    edges = Counter()
    for poly in shape.polygons:
        for i in range(len(poly)):
            edges[frozenset((poly[i], poly[i - 1]))] += 1
    return all(c == 2 for c in edges.values())


@pytest.mark.parametrize(
    "build",
    [
        lambda b: b.sphere("p", (0, 0, 0), 1.0),
        lambda b: b.frustum("p", (0, 0, 0), (0, 0, 1), 0.5, 0.0),
        lambda b: b.frustum("p", (0, 0, 0), (1, 1, 1), 0.5, 0.2, rings=3),
        lambda b: b.lathe("p", [(1, 0), (0.5, 1), (0.4, 1), (0.9, 0)], closed=True),
        lambda b: b.tube("p", [(0, 0, 0), (1, 0, 0), (1, 1, 0), (1, 1, 1)], 0.1),
        lambda b: b.torus_segment("p", (0, 0, 0), (1.0, 0.5), 0.1, (0.0, 3.0)),
        lambda b: b.extrude("p", [(0, 0), (1, 0), (1, 1), (0.2, 0.8)], thickness=0.1, layers=2),
        lambda b: b.tapered_box("p", (0, 0, 0), (0, 0, 1), (0.2, 0.1), (0.1, 0.05), divisions=3),
    ],
)
def test_primitives_are_closed_and_not_degenerate(build):
    b = ShapeBuilder(("p",))
    build(b)
    shape = b.build()
    assert _edges_closed(shape)
    assert _triangle_areas(shape).min() > 1e-9


def test_apply_transforms_only_primitives_after_the_mark():
    b = ShapeBuilder(("a", "b"))
    b.box("a", (0, 0, 0), (1, 1, 1))
    m = b.mark()
    b.box("b", (0, 0, 0), (1, 1, 1))
    b.apply(m, lambda p: p + np.array([5.0, 0, 0]))
    shape = b.build()
    va, vb = (
        shape.vertices[np.unique(np.concatenate([shape.polygons[i] for i in np.flatnonzero(shape.labels == label)]))]
        for label in (0, 1)
    )
    assert va[:, 0].max() == 1.0 and vb[:, 0].min() == 5.0


def test_obj_text_matches_write_obj(tmp_path):
    shape = make_shape("knife", 0)
    path = shape.write_obj(tmp_path / "knife.obj")
    assert path.read_text() == shape.obj_text("knife")
