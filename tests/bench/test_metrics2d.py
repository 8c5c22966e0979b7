"""The paper's mIoU2D (supplementary B, Eq. A-D) on small hand-computed grids."""

from __future__ import annotations

import time

import numpy as np
import pytest
from partdistill.bench.metrics2d import (
    gt_label_maps,
    iou2d_part,
    iou2d_table,
    iou2d_terms,
    miou2d,
    miou2d_from_capture,
)
from partdistill.shared.capture import Capture
from partdistill.shared.detections import Detection, Detections
from synthetic import assemble


def grid(h: int, w: int, rows, cols) -> np.ndarray:
    """(h, w) bool with rows x cols set (slices)."""
    m = np.zeros((h, w), dtype=bool)
    m[rows, cols] = True
    return m


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-12)


# --- Eq. B, C, D one at a time --------------------------------------------------------------------------


def test_eq_b_sums_over_units_so_overlaps_count_twice():
    gt = grid(4, 4, slice(0, 2), slice(None))  # rows 0-1: |G| = 8
    a = grid(4, 4, slice(0, 2), slice(0, 3))  # 6 px, all in G
    b = grid(4, 4, slice(0, 2), slice(1, 4))  # 6 px, all in G; 4 px shared with a
    i_r, lam, gam = iou2d_terms([a, b], [0.5, 1.0], gt)
    # I = 0.5 * 6 + 1.0 * 6 = 9 > |G| = 8: the 4 shared pixels count once per unit
    assert i_r == approx(9.0)
    assert lam == approx(0.0)  # nothing outside G
    assert gam == approx(0.0)  # a ∪ b covers G
    assert iou2d_part([a, b], [0.5, 1.0], gt) == approx(1.0)  # 9 / (9 + 0 + 0)


def test_eq_c_union_outside_gt_weighted_by_the_average_confidence():
    gt = grid(4, 4, slice(None), 0)  # column 0: |G| = 4
    inside = grid(4, 4, slice(None), 0)  # = G
    outside = grid(4, 4, slice(0, 2), slice(2, 4))  # 4 px outside G
    i_r, lam, gam = iou2d_terms([inside, outside], [0.9, 0.3], gt)
    assert i_r == approx(0.9 * 4)  # 3.6
    assert lam == approx((0.9 + 0.3) / 2 * 4)  # Avg over both units (0.6) x 4 px = 2.4
    assert gam == approx(0.0)
    assert iou2d_part([inside, outside], [0.9, 0.3], gt) == approx(3.6 / 6.0)  # = 0.6
    # a third unit on the same outside pixels: the union outside G is still 4 px (counted once), but its
    # confidence 0 joins the average: lambda = (0.9 + 0.3 + 0) / 3 * 4 = 1.6
    _, lam3, _ = iou2d_terms([inside, outside, outside.copy()], [0.9, 0.3, 0.0], gt)
    assert lam3 == approx(1.6)


def test_eq_d_missed_gt_pixels_are_not_weighted():
    gt = grid(4, 4, slice(0, 2), slice(None))  # |G| = 8
    a = grid(4, 4, 0, slice(0, 2))  # 2 px in G
    for c in (0.7, 0.2):
        i_r, lam, gam = iou2d_terms([a], [c], gt)
        assert (i_r, lam, gam) == (approx(2 * c), approx(0.0), approx(6.0))  # gamma = 8 - 2, whatever C
    assert iou2d_part([a], [0.7], gt) == approx(1.4 / 7.4)


def test_eq_a_with_all_three_terms_non_zero():
    gt = grid(4, 4, slice(None), slice(0, 2))  # columns 0-1: |G| = 8
    a = grid(4, 4, slice(0, 2), slice(0, 2))  # rows 0-1 cols 0-1: 4 px in G
    b = grid(4, 4, slice(0, 2), slice(1, 3))  # rows 0-1 cols 1-2: 2 px in G (col 1), 2 px outside (col 2)
    i_r, lam, gam = iou2d_terms([a, b], [0.5, 0.8], gt)
    assert i_r == approx(0.5 * 4 + 0.8 * 2)  # 3.6 (col 1 rows 0-1 counted by both units)
    assert lam == approx((0.5 + 0.8) / 2 * 2)  # union outside G = col 2 rows 0-1 = 2 px; x 0.65 = 1.3
    assert gam == approx(4.0)  # rows 2-3 of cols 0-1
    assert iou2d_part([a, b], [0.5, 0.8], gt) == approx(3.6 / (3.6 + 1.3 + 4.0))  # = 36/89


def test_per_pixel_confidence_map_is_averaged_over_the_unit_mask():
    gt = grid(4, 4, slice(0, 2), slice(0, 2))  # |G| = 4
    s = gt.copy()
    cmap = np.ones((4, 4))
    cmap[0:2, 0:2] = [[0.2, 0.4], [0.6, 0.8]]  # Avg over s = 0.5; the 1.0s elsewhere are ignored
    i_r, lam, gam = iou2d_terms([s], [cmap], gt)
    assert (i_r, lam, gam) == (approx(0.5 * 4), approx(0.0), approx(0.0))


# --- properties ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("c", [0.05, 0.5, 1.0, 2.0])
def test_a_perfect_prediction_scores_one_whatever_the_confidence(c):
    gt = grid(5, 5, slice(1, 4), slice(1, 4))
    assert iou2d_part([gt.copy()], [c], gt) == approx(1.0)
    # two units tiling G with different confidences: I = 0.3c*3 + c*6, lambda = gamma = 0 -> 1
    top, rest = grid(5, 5, 1, slice(1, 4)), grid(5, 5, slice(2, 4), slice(1, 4))
    assert iou2d_part([top, rest], [0.3 * c, c], gt) == approx(1.0)


def test_lowering_the_confidence_of_a_unit_outside_gt_raises_iou():
    gt = grid(4, 4, slice(None), 0)  # |G| = 4
    good = grid(4, 4, slice(None), 0)  # = G
    bad = grid(4, 4, slice(None), 3)  # 4 px, all outside G
    # I = 0.8 * 4 = 3.2 in both; lambda = Avg(C) * 4 with Avg over both units
    before = iou2d_part([good, bad], [0.8, 0.8], gt)  # 3.2 / (3.2 + 0.8 * 4) = 1/2
    after = iou2d_part([good, bad], [0.8, 0.2], gt)  # 3.2 / (3.2 + 0.5 * 4) = 8/13
    assert before == approx(0.5) and after == approx(8 / 13) and after > before
    # and lowering the correct unit instead lowers it: 1.6 / (1.6 + 0.6 * 4) = 0.4
    assert iou2d_part([good, bad], [0.4, 0.8], gt) == approx(0.4)


def test_a_single_unit_partly_outside_gt_loses_iou_when_its_confidence_drops():
    # I and lambda scale with C, gamma does not: I = 2C, lambda = 2C, gamma = 2
    gt = grid(4, 4, 0, slice(None))  # row 0: |G| = 4
    s = grid(4, 4, slice(0, 2), slice(0, 2))  # 2 px in G, 2 px outside
    assert iou2d_part([s], [1.0], gt) == approx(2 / 6)
    assert iou2d_part([s], [0.5], gt) == approx(1 / 4)


def test_degenerate_pairs():
    empty = np.zeros((4, 4), dtype=bool)
    gt = grid(4, 4, 0, slice(None))
    assert iou2d_part([], [], empty) is None  # nothing to predict, nothing predicted: 0/0, skipped
    assert iou2d_part([empty], [0.9], empty) is None  # a unit with no pixel does not change that
    assert iou2d_part([], [], gt) == 0.0  # G non-empty, no unit: gamma only
    assert iou2d_part([gt], [0.9], empty) == 0.0  # G empty, a unit predicts: lambda only
    # pixels to score but every confidence 0 (denominator 0): scores 0, the pair is not skipped
    assert iou2d_part([gt], [0.0], empty) == 0.0
    assert iou2d_part([gt], [0.0], gt) == 0.0


def test_miou2d_mean_over_views_and_parts_with_the_skip_rule():
    labels = np.full((2, 4, 4), -1, dtype=np.int32)
    labels[0, 0:2, :] = 0  # view 0: part 0 rows 0-1, part 1 rows 2-3, part 2 absent
    labels[0, 2:4, :] = 1
    labels[1, :, 0:2] = 0  # view 1: part 0 cols 0-1 (8 px), cols 2-3 background; parts 1, 2 absent
    regions = [
        labels[0] == 0,  # view 0, part 0: perfect -> 1
        grid(4, 4, slice(None), slice(2, 4)),  # view 1, part 2 on background: G^2 empty -> 0
        grid(4, 4, slice(None), 0),  # view 1, part 0: 4 of 8 px, C = 1 -> 4 / (4 + 0 + 4) = 0.5
        np.zeros((4, 4), dtype=bool),  # view 1, part 1: an empty region on an absent part -> skipped
    ]
    parts, views, conf = [0, 2, 0, 1], [0, 1, 1, 1], [0.7, 0.6, 1.0, 0.9]
    table = iou2d_table(regions, parts, views, conf, labels, 3)
    expected = np.array([[1.0, 0.0, np.nan], [0.5, np.nan, 0.0]])  # view 0 part 1: G non-empty, no unit -> 0
    np.testing.assert_allclose(table, expected)
    # defined pairs: 1, 0, 0.5, 0 -> 1.5 / 4
    assert miou2d(table) == approx(0.375)
    # the skipped pairs stay skipped whatever the confidences
    assert np.array_equal(np.isnan(iou2d_table(regions, parts, views, [0.0] * 4, labels, 3)), np.isnan(expected))
    assert np.isnan(miou2d(iou2d_table([], [], [], [], np.full((1, 4, 4), -1, np.int32), 2)))  # nothing defined


def test_raising_correct_and_lowering_wrong_confidences_raises_miou2d():
    labels = np.zeros((1, 4, 4), dtype=np.int32)
    labels[0, :, 2:4] = 1  # part 0 cols 0-1, part 1 cols 2-3 (8 px each)
    left, right = labels[0] == 0, labels[0] == 1
    regions = [left, right, right, left]  # part 0 right, part 0 wrong, part 1 right, part 1 wrong
    parts, views = [0, 0, 1, 1], [0, 0, 0, 0]
    # before: per part I = 0.5 * 8 = 4, lambda = 0.5 * 8 = 4, gamma = 0 -> 1/2
    before = miou2d(iou2d_table(regions, parts, views, [0.5, 0.5, 0.5, 0.5], labels, 2))
    # after: I = 0.9 * 8 = 7.2, lambda = Avg(0.9, 0.1) * 8 = 4 -> 7.2 / 11.2 = 9/14
    after = miou2d(iou2d_table(regions, parts, views, [0.9, 0.1, 0.9, 0.1], labels, 2))
    assert before == approx(0.5) and after == approx(9 / 14) and after > before


# --- from a capture: F(b) and the ground-truth label maps --------------------------------------------------


def _capture(fid: np.ndarray, face_labels: np.ndarray) -> Capture:
    n, h, w = fid.shape
    mesh, _ = assemble([(0, ((0, 0, 0), (1, 1, 1)))])  # 12 triangles; only face ids matter here
    return Capture(
        mesh,
        np.zeros((n, h, w, 3), np.uint8),
        fid,
        np.tile(np.eye(3), (n, 1, 1)),
        np.tile(np.eye(4), (n, 1, 1)),
        part_names=("a", "b"),
        gt_face_labels=face_labels,
    ).validate()


def test_gt_label_maps_background_is_minus_one_not_the_last_face():
    fid = np.full((1, 4, 4), -1, np.int32)
    fid[0, 1:3] = 0
    fid[0, 3] = 11
    labels = np.full(12, -1, np.int32)
    labels[0], labels[11] = 0, 1  # face -1 must not wrap around to face 11
    gt = gt_label_maps(_capture(fid, labels))
    expected = np.full((1, 4, 4), -1)
    expected[0, 1:3], expected[0, 3] = 0, 1
    np.testing.assert_array_equal(gt, expected)


def test_box_unit_counts_only_foreground_pixels():
    fid = np.full((1, 4, 4), -1, np.int32)
    fid[0, 1:3] = 0  # rows 1-2: face 0 (part 0); row 0 background
    fid[0, 3] = 1  # row 3: face 1 (part 1)
    labels = np.zeros(12, np.int32)
    labels[1] = 1
    cap = _capture(fid, labels)
    box = np.array([0, 0, 4, 3], np.float32)  # rows 0-2, all columns: 4 background + 8 part-0 pixels
    det = Detections(("a", "b"), [[Detection(0, 0.5, box=box)]])
    # F(b) = rows 1-2 = G^0 -> IoU 1; part 1 has G (row 3) and no unit -> 0; mean 1/2
    assert miou2d_from_capture(cap, det, None, 2) == approx(0.5)
    assert miou2d_from_capture(cap, det, [0.1], 2) == approx(0.5)  # perfect: any confidence
    # the same region as a mask keeping its background (the paper's raw P-VLM s^i): 4 background px count in
    # lambda: 0.5 * 8 / (0.5 * 8 + 0.5 * 4) = 2/3 -> mean (2/3 + 0) / 2 = 1/3
    mask = grid(4, 4, slice(0, 3), slice(None))
    det_mask = Detections(("a", "b"), [[Detection(0, 0.5, mask=mask)]])
    assert miou2d_from_capture(cap, det_mask, None, 2) == approx(0.5)  # default: mask ∩ foreground
    assert miou2d_from_capture(cap, det_mask, None, 2, mask_background=True) == approx(1 / 3)


def test_from_capture_takes_confidences_in_lift_order():
    fid = np.zeros((2, 4, 4), np.int32)
    fid[:, :, 2:] = 1  # both views: cols 0-1 face 0 (part 0), cols 2-3 face 1 (part 1)
    labels = np.zeros(12, np.int32)
    labels[1] = 1
    cap = _capture(fid, labels)
    left = np.array([0, 0, 2, 4], np.float32)  # cols 0-1
    right = np.array([2, 0, 4, 4], np.float32)  # cols 2-3
    # view 0: a right "a" unit. view 1: a wrong "a" unit, a right "a" unit and a right "b" unit
    det = Detections(
        ("a", "b"),
        [
            [Detection(0, 0.6, box=left)],
            [Detection(0, 0.6, box=right), Detection(0, 0.6, box=left), Detection(1, 0.8, box=right)],
        ],
    )
    # view 0: a -> 1, b -> 0 (G non-empty, no unit). view 1: b -> 1, and a with C_wrong, C_right:
    # I = 8 C_right, lambda = (C_wrong + C_right) / 2 * 8, gamma = 0 -> C_right / (C_right + Avg)
    # scores: 0.6 / (0.6 + 0.6) = 1/2
    assert miou2d_from_capture(cap, det, None, 2) == approx((1 + 0 + 0.5 + 1) / 4)
    # confidences follow the flattened view-major order (that of lift): wrong 0.1, right 0.9 -> 0.9 / 1.4
    assert miou2d_from_capture(cap, det, np.array([0.6, 0.1, 0.9, 0.8]), 2) == approx((2 + 9 / 14) / 4)
    # swapped: wrong 0.9, right 0.1 -> 0.1 / 0.6
    assert miou2d_from_capture(cap, det, [0.6, 0.9, 0.1, 0.8], 2) == approx((2 + 1 / 6) / 4)


# --- the vectorised table agrees with the per-part definition; speed ---------------------------------------


def test_table_matches_iou2d_part_on_random_units():
    rng = np.random.default_rng(0)
    n_views, n_parts, h, w = 3, 4, 6, 6
    labels = rng.integers(-1, n_parts - 1, size=(n_views, h, w)).astype(np.int32)  # part 3 never in GT
    u = 20
    regions = [rng.random((h, w)) < 0.3 for _ in range(u)]
    parts = rng.integers(0, n_parts, size=u)
    views = rng.integers(0, n_views, size=u)
    conf = rng.random(u)
    table = iou2d_table(regions, parts, views, conf, labels, n_parts)
    for v in range(n_views):
        for r in range(n_parts):
            ks = [k for k in range(u) if views[k] == v and parts[k] == r]
            ref = iou2d_part([regions[k] for k in ks], [conf[k] for k in ks], labels[v] == r)
            if ref is None:
                assert np.isnan(table[v, r])
            else:
                assert table[v, r] == approx(ref)


def test_ten_views_of_512_with_fifty_units_is_fast():
    rng = np.random.default_rng(1)
    n_views, n_parts, size = 10, 4, 512
    labels = rng.integers(-1, n_parts, size=(n_views, size, size)).astype(np.int32)
    regions, parts, views = [], [], []
    for k in range(50):
        r0, c0 = rng.integers(0, size // 2, size=2)
        regions.append(grid(size, size, slice(r0, r0 + 200), slice(c0, c0 + 200)))
        parts.append(k % n_parts)
        views.append(k % n_views)
    conf = rng.random(50)
    t = time.perf_counter()
    value = miou2d(iou2d_table(regions, parts, views, conf, labels, n_parts))
    assert time.perf_counter() - t < 1.0
    assert 0.0 <= value <= 1.0


def test_bad_inputs_are_rejected():
    gt = grid(4, 4, 0, slice(None))
    with pytest.raises(ValueError):
        iou2d_part([gt], [0.5, 0.5], gt)
    with pytest.raises(ValueError):
        iou2d_part([gt], [-0.1], gt)
    with pytest.raises(ValueError):
        iou2d_part([np.zeros((3, 3), bool)], [0.5], gt)
    with pytest.raises(ValueError):
        iou2d_table([gt], [2], [0], [0.5], gt[None].astype(np.int32), 2)  # part out of range
