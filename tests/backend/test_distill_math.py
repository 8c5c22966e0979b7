"""Distillation loss, backward re-scoring, voting and mIoU on small hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import torch
from partdistill.backend.metrics import part_ious, shape_miou
from partdistill.backend.pipeline.distill import DistillConfig, UnitLoss, distill, rescore
from partdistill.backend.pipeline.lift import KnowledgeUnits


def units_from(lists, parts, conf, n_points, fixed=None):
    conf = np.asarray(conf, np.float32)
    return KnowledgeUnits(
        part=np.asarray(parts, np.int64),
        confidence=conf,
        weight=conf.copy(),
        view=np.zeros(len(parts), np.int32),
        fixed=np.zeros(len(parts), bool) if fixed is None else np.asarray(fixed),
        ptr=np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int64),
        idx=np.concatenate([np.asarray(x, np.int64) for x in lists]),
        pixels=np.asarray([len(x) for x in lists], np.int64),
        n_points=n_points,
    )


def test_unit_loss_matches_the_hand_computed_value():
    # 3 points, 2 parts. u0 = {0, 1} label 0 conf 1.0; u1 = {1} label 1 conf 0.5; point 2 uncovered.
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]])
    units = units_from([[0, 1], [1]], [0, 1], [1.0, 0.5], 3)
    loss = UnitLoss(units)(logits, torch.tensor(units.weight))

    def ce(row, label):
        return -math.log(math.exp(row[label]) / sum(math.exp(x) for x in row))

    expected = (ce([2, 0], 0) * 1.0 + 0.5 * (ce([0, 1], 0) * 1.0 + ce([0, 1], 1) * 0.5)) / 2
    assert abs(float(loss) - expected) < 1e-5


def test_uncovered_points_contribute_nothing():
    units = units_from([[0]], [0], [1.0], 2)
    a = UnitLoss(units)(torch.tensor([[1.0, 0.0], [0.0, 9.0]]), torch.tensor(units.weight))
    b = UnitLoss(units)(torch.tensor([[1.0, 0.0], [9.0, -9.0]]), torch.tensor(units.weight))
    assert float(a) == float(b)


def test_rescoring_lowers_the_wrong_unit_and_keeps_the_right_ones():
    # student says points 0-5 are part 0 and 6-9 part 1
    pred = np.array([0] * 6 + [1] * 4)
    units = units_from(
        [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9], [0, 1, 2, 3]],  # the last one claims part 1 on part-0 points
        [0, 0, 1, 1],
        [0.9, 0.9, 0.8, 0.8],
        10,
    )
    plain = rescore(pred, units, rescale_per_part=False)
    np.testing.assert_allclose(plain, [0.9, 0.9, 0.8, 0.0])
    ranked = rescore(pred, units, rescale_per_part=True)
    # part 1: IoUs 1 and 0, mean 0.5 -> factors min(1, 1/0.5) = 1 and 0; part 0: both at the mean
    np.testing.assert_allclose(ranked, [0.9, 0.9, 0.8, 0.0], rtol=1e-6)
    assert ranked[3] < units.confidence[3] and (ranked[:3] == units.confidence[:3]).all()


def test_rescoring_keeps_a_part_the_student_does_not_predict_yet():
    pred = np.zeros(6, np.int64)  # the snapshot predicts part 0 everywhere
    units = units_from([[0, 1, 2], [3, 4], [5]], [0, 1, 1], [0.9, 0.7, 0.6], 6)
    np.testing.assert_allclose(rescore(pred, units, rescale_per_part=True), [0.9, 0.7, 0.6], rtol=1e-6)
    np.testing.assert_allclose(rescore(pred, units, rescale_per_part=False), [0.9, 0.0, 0.0], rtol=1e-6)


def test_rescoring_ranks_units_within_a_part_by_relative_agreement():
    pred = np.array([1, 1, 1, 1, 0, 0, 1, 0])
    # part 1 units: points 0-3 all agree (IoU 1); of points 4-7 only point 6 does (IoU 0.25)
    units = units_from([[0, 1, 2, 3], [4, 5, 6, 7]], [1, 1], [0.8, 0.8], 8)
    # IoUs 1.0 and 0.25, mean 0.625 -> factors 1 and 0.4
    np.testing.assert_allclose(rescore(pred, units), [0.8, 0.32], rtol=1e-6)


def test_rescoring_uses_iou_with_partial_agreement_and_never_touches_fixed_units():
    pred = np.array([0, 0, 1, 1])
    units = units_from([[0, 1, 2, 3], [2, 3]], [0, 0], [1.0, 1.0], 4, fixed=[False, True])
    new = rescore(pred, units, rescale_per_part=False)
    np.testing.assert_allclose(new, [0.5, 1.0])  # unit 0: 2 of its 4 points agree; unit 1 is fixed


def test_distill_triggers_backward_once_and_records_the_curve():
    torch.manual_seed(0)
    n = 40
    x = torch.randn(n, 4)
    layer = torch.nn.Linear(4, 2)
    truth = (x[:, 0] > 0).long().numpy()
    good0 = np.nonzero(truth == 0)[0]
    good1 = np.nonzero(truth == 1)[0]
    wrong = good0[:5]
    units = units_from([good0, good1, wrong], [0, 1, 1], [0.9, 0.9, 0.9], n)
    cfg = DistillConfig(epochs=200, lr=0.05, min_epochs=20, min_fraction=0.1, class_balance=False)
    rep = distill(lambda i: layer(x), list(layer.parameters()), [units], 2, cfg)
    assert rep.trigger_epoch is not None and 20 <= rep.trigger_epoch <= 100
    assert len(rep.loss) > rep.trigger_epoch
    assert rep.weights_after[2] < rep.weights_before[2]
    assert rep.weights_after[0] >= rep.weights_before[0] - 1e-6


def test_part_ious_and_absent_parts_count_one():
    pred = np.array([0, 0, 1, 1, 1])
    gt = np.array([0, 1, 1, 1, -1])  # the last element has no ground truth and is ignored
    ious = part_ious(pred, gt, 3)
    np.testing.assert_allclose(ious, [1 / 2, 2 / 3, 1.0])
    assert abs(shape_miou(pred, gt, 3) - (0.5 + 2 / 3 + 1) / 3) < 1e-12
    w = np.array([1.0, 3.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(part_ious(pred, gt, 2, w), [1 / 4, 2 / 5])


def test_paper_rescoring_is_confidence_times_the_iou_with_the_students_mask_in_the_units_view():
    # 6 points; view 0 sees points 0-3, view 1 sees 2-5. The student predicts part 0 on 0, 1, 2, 4
    # and part 1 on 3, 5.
    pred = np.array([0, 0, 0, 1, 0, 1])
    units = units_from([[0, 1], [2, 3], [4, 5]], [0, 0, 1], [1.0, 0.8, 0.5], 6)
    units.view = np.array([0, 0, 1], np.int32)
    units.visible = [np.array([0, 1, 2, 3]), np.array([2, 3, 4, 5])]
    w = rescore(pred, units, rule="paper")
    # u0 (view 0, part 0): the student's part-0 mask in view 0 = {0, 1, 2}; unit = {0, 1}: IoU 2/3
    # u1 (view 0, part 0): mask {0, 1, 2}; unit = {2, 3}: IoU 1/4
    # u2 (view 1, part 1): the student's part-1 mask in view 1 = {3, 5}; unit = {4, 5}: IoU 1/3
    np.testing.assert_allclose(w, [1.0 * 2 / 3, 0.8 / 4, 0.5 / 3], rtol=1e-6)
    # ours takes the precision relative to the part's mean: u0 1/1 and u1 1/2 (mean 3/4) -> 1, 2/3
    np.testing.assert_allclose(rescore(pred, units), [1.0, 0.8 * (0.5 / 0.75), 0.5], rtol=1e-6)


def test_paper_trigger_is_an_absolute_change_of_the_moving_average():
    from partdistill.backend.pipeline.distill import _triggers

    paper = DistillConfig(epochs=100, rule="paper", ma_window=2)
    ours = DistillConfig(epochs=100, ma_window=2)
    # moving averages of a loss settling around 1.0: changes of 0.5, 0.2, 0.05, 0.009
    ma = [3.0, 2.5, 2.3, 2.25, 2.241]
    assert [_triggers(paper, ma[:k], k) for k in range(1, 6)] == [False, False, False, False, True]
    # ours waits for 40 % of the epochs whatever the loss does, and is forced at 60 %
    assert not _triggers(ours, ma, 5) and _triggers(ours, ma, 60)
    # the paper's rule has no latest epoch: a loss that never settles never triggers
    assert not _triggers(paper, [3.0, 2.0, 1.0, 0.0], 99)
