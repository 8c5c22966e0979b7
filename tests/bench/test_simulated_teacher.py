"""The SIMULATED teacher (an evaluation tool): boxes and masks from ground truth, and its noises."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from partdistill.bench.regions import morph_mask
from partdistill.bench.simulated import (
    DEFAULT_BOX_NOISE,
    DEFAULT_MASK_NOISE,
    SimulatedNoise,
    simulate_detections,
    simulate_mask_detections,
)
from partdistill.shared.errors import ValidationError
from scipy import ndimage
from synthetic import capture_of, table


@pytest.fixture(scope="module")
def cap():
    mesh, gt, names = table()
    return capture_of(mesh, gt, names, n_views=4, size=64)


def _label_maps(cap) -> np.ndarray:
    """(N, H, W) int: the ground-truth part at each pixel, -1 on the background."""
    return np.where(cap.face_id >= 0, cap.gt_face_labels[np.maximum(cap.face_id, 0)], -1)


def _regions(label_map: np.ndarray, part: int, min_pixels: int = 4) -> list[np.ndarray]:
    """The connected regions (8-neighbour-free: scipy's default 4-connectivity) of one part."""
    comps, n = ndimage.label(label_map == part)
    return [comps == i for i in range(1, n + 1) if (comps == i).sum() >= min_pixels]


def _bbox(mask: np.ndarray) -> tuple[float, float, float, float]:
    rows, cols = np.nonzero(mask)
    return (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))


def test_noise_free_boxes_are_the_regions_bounding_boxes(cap):
    dets = simulate_detections(cap)
    maps = _label_maps(cap)
    assert dets.part_names == cap.part_names and len(dets.views) == cap.n_views
    for v, view in enumerate(dets.views):
        want = sorted((p, _bbox(r)) for p in range(len(cap.part_names)) for r in _regions(maps[v], p))
        got = sorted((d.part, tuple(float(x) for x in d.box)) for d in view)
        assert got == want
        assert all(d.score == pytest.approx(0.9) and d.mask is None for d in view)
    # every view sees the top and at least two legs
    assert all({d.part for d in view} == {0, 1} for view in dets.views)


def test_miss_rate_one_gives_no_detections(cap):
    for mode in ("box", "mask"):
        dets = simulate_detections(cap, SimulatedNoise(miss_rate=1.0), mode=mode)
        assert dets.n_detections == 0


def test_label_swap_one_never_keeps_the_true_label(cap):
    clean = simulate_detections(cap)
    swapped = simulate_detections(cap, SimulatedNoise(label_swap=1.0))
    for a, b in zip(clean.views, swapped.views, strict=True):
        assert len(a) == len(b)
        for da, db in zip(a, b, strict=True):
            assert np.array_equal(da.box, db.box) and da.part != db.part
    masks = simulate_detections(cap, SimulatedNoise(label_swap=1.0), mode="mask")
    maps = _label_maps(cap)
    for v, view in enumerate(masks.views):
        for d in view:
            true_part = int(np.bincount(maps[v][d.mask]).argmax())
            assert d.part != true_part


def test_noise_free_masks_equal_the_regions(cap):
    dets = simulate_mask_detections(cap)
    maps = _label_maps(cap)
    for v, view in enumerate(dets.views):
        fg = cap.face_id[v] >= 0
        for d in view:
            assert d.mask.dtype == bool and d.mask.shape == cap.image_size
            assert not (d.mask & ~fg).any(), "a noise-free mask lies inside the foreground"
            assert tuple(float(x) for x in d.box) == _bbox(d.mask)
        for p in range(len(cap.part_names)):
            want = sorted(np.flatnonzero(r).tolist() for r in _regions(maps[v], p))
            got = sorted(np.flatnonzero(d.mask).tolist() for d in view if d.part == p)
            assert got == want
    # the same as mode="mask", deterministic
    again = simulate_detections(cap, mode="mask")
    assert all(
        np.array_equal(a.mask, b.mask)
        for va, vb in zip(dets.views, again.views, strict=True)
        for a, b in zip(va, vb, strict=True)
    )


def test_morph_mask_grows_and_shrinks():
    m = np.zeros((40, 40), bool)
    m[10:30, 12:25] = True
    area = m.sum()
    for k in (1, 2, 3):
        grown, shrunk = morph_mask(m, k), morph_mask(m, -k)
        assert grown.sum() > area and (grown & m).sum() == area, "dilation contains the mask"
        assert shrunk.sum() < area and not (shrunk & ~m).any(), "erosion lies inside the mask"
        assert morph_mask(m, k).sum() < morph_mask(m, k + 1).sum()
    # erosion by 1 with a disk of radius 1 removes exactly the one-pixel rim of a rectangle
    assert morph_mask(m, -1).sum() == (20 - 2) * (13 - 2)
    assert np.array_equal(morph_mask(m, 0), m)
    # a region cut by the image edge is not eroded from the edge
    edge = np.zeros((20, 20), bool)
    edge[:, :5] = True
    assert morph_mask(edge, -1)[:, 0].all() and not morph_mask(edge, -1)[:, 4].any()
    # thin parts vanish under erosion
    thin = np.zeros((20, 20), bool)
    thin[5:15, 9:11] = True
    assert not morph_mask(thin, -1).any()


def test_mask_morph_changes_areas_both_ways(cap):
    clean = simulate_mask_detections(cap)
    grew = shrank = 0
    for seed in range(4):
        noisy = simulate_mask_detections(cap, SimulatedNoise(mask_morph=2), seed=seed)
        for v, view in enumerate(noisy.views):
            for d in view:
                # the clean region a noisy mask came from: the one it overlaps most
                src = max(clean.views[v], key=lambda c: (c.mask & d.mask).sum())
                diff = int(d.mask.sum()) - int(src.mask.sum())
                grew += diff > 0
                shrank += diff < 0
                if diff > 0:
                    assert not (src.mask & ~d.mask).any(), "dilation keeps the whole region"
                if diff < 0:
                    assert not (d.mask & ~src.mask).any(), "erosion stays inside the region"
    assert grew and shrank


def test_mask_mode_noises(cap):
    noise = SimulatedNoise(whole_object=1.0, false_positive=1.0, score_noise=0.3)
    dets = simulate_mask_detections(cap, noise, seed=1)
    maps = _label_maps(cap)
    n_regions = [sum(len(_regions(maps[v], p)) for p in range(2)) for v in range(cap.n_views)]
    scores = []
    for v, view in enumerate(dets.views):
        fg = cap.face_id[v] >= 0
        # the regions, one whole-object mask (the silhouette) and one blob touching the object
        assert len(view) == n_regions[v] + 2
        assert any(np.array_equal(d.mask, fg) for d in view), "a whole-object mask"
        assert (view[-1].mask & fg).any(), "the false-positive blob lies on the object"
        assert all(d.mask.any() and d.box is not None for d in view)
        scores += [d.score for d in view]
    assert len(set(scores)) > 1 and all(0.05 <= s <= 1.0 for s in scores)


def test_box_mode_is_unchanged_by_mask_settings(cap):
    """Box mode ignores mask_morph and draws the same random numbers as before masks existed."""
    noise = SimulatedNoise(miss_rate=0.3, spill=0.2, label_swap=0.2, whole_object=0.5, false_positive=0.5)
    a = simulate_detections(cap, noise, seed=5)
    b = simulate_detections(cap, replace(noise, mask_morph=3), seed=5, mode="box")
    for va, vb in zip(a.views, b.views, strict=True):
        assert [(d.part, d.score, d.box.tolist()) for d in va] == [(d.part, d.score, d.box.tolist()) for d in vb]
        assert all(d.mask is None for d in va)


def test_presets_are_valid_and_documented():
    assert DEFAULT_BOX_NOISE.validate() is DEFAULT_BOX_NOISE
    assert DEFAULT_MASK_NOISE.validate() is DEFAULT_MASK_NOISE
    assert DEFAULT_BOX_NOISE.mask_morph == 0 and DEFAULT_BOX_NOISE.spill > 0
    assert DEFAULT_MASK_NOISE.mask_morph == 3 and DEFAULT_MASK_NOISE.spill == 0
    for preset in (DEFAULT_BOX_NOISE, DEFAULT_MASK_NOISE):
        assert 0 < preset.miss_rate < 0.5 and 0 < preset.label_swap < 0.5 and preset.score_noise > 0
    # the default of the function stays noise-free
    assert SimulatedNoise() == SimulatedNoise(0, 0, 0, 0, 0, 0, 0.9, 4, 0)
    doc = SimulatedNoise.__doc__
    for name in SimulatedNoise().as_dict():
        assert f"{name}:" in doc, f"{name} is documented"


@pytest.mark.parametrize(
    "bad",
    [
        {"miss_rate": 1.5},
        {"label_swap": -0.1},
        {"spill": float("nan")},
        {"score_noise": -1},
        {"base_score": 0.0},
        {"min_pixels": 0},
        {"mask_morph": -1},
        {"mask_morph": 1.5},
        {"whole_object": True},
    ],
)
def test_invalid_noise_is_rejected(cap, bad):
    (name,) = bad
    with pytest.raises(ValidationError, match=name):
        simulate_detections(cap, SimulatedNoise(**bad))


def test_unknown_mode_and_missing_ground_truth(cap):
    with pytest.raises(ValidationError, match="mode"):
        simulate_detections(cap, mode="points")
    bare = replace(cap, gt_face_labels=None)
    with pytest.raises(ValidationError, match="gt_face_labels"):
        simulate_mask_detections(bare)


def test_default_presets_degrade_but_keep_most_detections(cap):
    clean = simulate_detections(cap).n_detections
    for mode, preset in (("box", DEFAULT_BOX_NOISE), ("mask", DEFAULT_MASK_NOISE)):
        counts = [simulate_detections(cap, preset, seed=s, mode=mode).n_detections for s in range(5)]
        assert 0.5 * clean < np.mean(counts) < 1.5 * clean
