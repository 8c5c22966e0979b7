"""Forward and backward distillation of knowledge units into a 3D student (PartDistill §3).

Forward: a confidence-weighted cross-entropy between the student's prediction on each unit's points
and the unit's label, averaged over the units covering each point; uncovered points contribute nothing.
Backward: once the loss has settled, re-score every unit once from a snapshot of the student, then
train on with the new weights. The trigger and the snapshot come from the loss alone (no ground truth
at test time). Two rules (``DistillConfig.rule``):

- ``"part-relative"`` (ours, the default): trigger when the 5-epoch moving average of the loss
  changes by less than 0.5 % (relative), never before 40 % of the epochs and at the latest at 60 %;
  new weight = confidence x min(1, precision / the mean precision of that part's units), where a
  unit's precision is the share of its points the student gives its part.
- ``"paper"`` (PartDistill as published): trigger when the 5-epoch moving average changes by less
  than 0.01 (absolute); new weight = confidence x IoU between the points of the unit's view the
  student gives the unit's part (the student's projected mask) and the unit's points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from partdistill.shared.options import BACKWARD_RULES, SegmentOptions
from partdistill.shared.progress import Progress

from ..parallel import Share
from .lift import KnowledgeUnits

MIN_PART_AGREEMENT = 0.05
PAPER_MA_CHANGE = 0.01
#: Adam's learning rate for one shape (TTA). Chosen on the real-mesh validation split (box teacher,
#: 40 shapes, 100 epochs): 2.5e-3 scored 51.2 at realistic noise and 92.4 with perfect boxes, against
#: 50.5 and 90.8 for 5e-3 and 44.6 (realistic) for 1e-2; 130 epochs at 2.5e-3 gained nothing. Pre (one
#: student over many shapes, many steps per epoch) keeps ``DistillConfig.lr``: on the validation
#: split of ``bench real --collection`` (three category students, seeds 0 and 1) 5e-3 scored 53.4
#: and 54.5, 2.5e-3 53.9 and 52.6.
TTA_LR = 2.5e-3


@dataclass
class DistillConfig:
    """epochs: maximum optimisation steps (full batch). lr: Adam learning rate.
    backward: run backward distillation. ma_window / ma_tolerance: trigger when the moving average of
    the loss over ``ma_window`` epochs changes by less than ``ma_tolerance`` (relative) between epochs.
    min_epochs: never trigger before this many epochs, nor before ``min_fraction`` of ``epochs`` (a
    young student's snapshot entrenches its own mistakes: on the benchmark a trigger at 30 of 100
    epochs lost to forward-only, one at 50 gained); at ``max_fraction`` the trigger is forced.
    post_epochs: training after re-scoring (0 = on to ``epochs``). rescale_per_part: keep each
    part's mean weight when re-scoring (re-rank units within a part, not between parts). rule:
    "part-relative" (the fields above) or "paper" (absolute trigger ``PAPER_MA_CHANGE``, no earliest
    or latest epoch, IoU re-scoring; see the module docstring)."""

    epochs: int = 200
    lr: float = 5e-3
    backward: bool = True
    ma_window: int = 5
    ma_tolerance: float = 0.005
    min_epochs: int = 10
    min_fraction: float = 0.4
    max_fraction: float = 0.6
    post_epochs: int = 0
    rescale_per_part: bool = True
    class_balance: bool = True
    rule: str = "part-relative"

    @classmethod
    def from_options(cls, options: SegmentOptions, lr: float | None = None) -> DistillConfig:
        """The job options' distillation settings (the rest keep their defaults; ``lr`` None: the
        default's)."""
        return cls(
            lr=cls.lr if lr is None else lr,
            epochs=options.epochs,
            backward=options.backward,
            ma_window=options.backward_window,
            ma_tolerance=options.backward_tolerance,
            rule=options.backward_rule,
        )


@dataclass
class DistillReport:
    loss: list[float] = field(default_factory=list)
    trigger_epoch: int | None = None
    weights_before: np.ndarray | None = None
    weights_after: np.ndarray | None = None


class UnitLoss:
    """The forward-distillation loss over fixed units (index tensors built once, reused every epoch).

    loss = (1/|covered|) Σ_i (1/|U_i|) Σ_{u ∋ i} w_u · cw[l_u] · CE(logits_i, l_u)
    where U_i is the set of units covering point i, w_u the unit's weight and cw the class weight."""

    def __init__(self, units: KnowledgeUnits, class_weight: torch.Tensor | None = None):
        self.idx = torch.as_tensor(units.idx)
        self.ent_unit = torch.as_tensor(units.unit_of_entry())
        self.labels = torch.as_tensor(units.part)[self.ent_unit]
        cover = np.bincount(units.idx, minlength=units.n_points)
        self.inv_cover = torch.as_tensor(1.0 / np.maximum(cover, 1), dtype=torch.float32)[self.idx]
        self.n_covered = max(int((cover > 0).sum()), 1)
        self.class_weight = None if class_weight is None else class_weight[self.labels]

    def __call__(self, logits: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """logits (N, P), weight (U,) -> scalar."""
        ce = -torch.log_softmax(logits, dim=-1)[self.idx, self.labels]
        w = weight[self.ent_unit] * self.inv_cover
        if self.class_weight is not None:
            w = w * self.class_weight
        return (w * ce).sum() / self.n_covered


def unit_precision(pred: np.ndarray, units: KnowledgeUnits) -> np.ndarray:
    """(U,) float64: the share of each unit's points the student's argmax ``pred`` (N,) gives the
    unit's part, |{i in P_u : pred_i = l_u}| / |P_u| (0 for an empty unit)."""
    ent_unit = units.unit_of_entry()
    agree = pred[units.idx] == units.part[ent_unit]
    size = np.diff(units.ptr)
    hits = np.bincount(ent_unit, weights=agree, minlength=units.n_units)
    return np.where(size > 0, hits / np.maximum(size, 1), 0.0)


def unit_view_iou(pred: np.ndarray, units: KnowledgeUnits) -> np.ndarray:
    """(U,) float64: per unit u of view v and part p, the IoU between A, the points visible in v that
    the student's argmax ``pred`` (N,) gives p (its projected mask of p in that view), and B, the
    unit's own points: |A ∩ B| / |A ∪ B|. Units without a view (few-shot) get their precision."""
    precision = unit_precision(pred, units)
    if units.visible is None:
        return precision
    size = np.diff(units.ptr)
    inter = precision * size
    out = precision.copy()
    for v in np.unique(units.view[units.view >= 0]):
        predicted = np.bincount(pred[units.visible[v]], minlength=int(units.part.max()) + 1)
        m = units.view == v
        union = predicted[units.part[m]] + size[m] - inter[m]
        out[m] = np.where(union > 0, inter[m] / np.maximum(union, 1), 0.0)
    return out


def rescore(
    pred: np.ndarray, units: KnowledgeUnits, rescale_per_part: bool = True, rule: str = "part-relative"
) -> np.ndarray:
    """New unit weights (U,) float32 from the student's argmax ``pred`` (N,) over the points.

    ``rule="paper"``: new weight = confidence · ``unit_view_iou``.

    ``rule="part-relative"``: from each unit's precision (``unit_precision``). With
    ``rescale_per_part`` the precision is taken relative to the mean precision r_p of the units of
    the same part: new weight = confidence · min(1, precision / r_p). Units are re-ranked within a
    part, not between parts: a thin part's boxes always contain many points of the part behind them,
    so plain precision lowers all of them and the part shrinks, while here only the units worse than
    their part's average lose weight. A part the student does not predict at all (r_p <
    ``MIN_PART_AGREEMENT``) keeps its confidences: the snapshot has no opinion on it, and zeroing it
    would erase the part for good. Without ``rescale_per_part``: confidence · precision.

    Fixed (few-shot) units keep their confidence."""
    if rule not in BACKWARD_RULES:
        raise ValueError(f"rule must be one of {BACKWARD_RULES}, got {rule!r}")
    conf = units.confidence.astype(np.float64)
    size = np.diff(units.ptr)
    if rule == "paper":
        new = conf * unit_view_iou(pred, units)
    elif rescale_per_part:
        precision = unit_precision(pred, units)
        factor = np.ones(units.n_units)
        for p in np.unique(units.part):
            m = (units.part == p) & ~units.fixed & (size > 0)
            ref = precision[m].mean() if m.any() else 0.0
            if ref >= MIN_PART_AGREEMENT:
                factor[m] = np.minimum(1.0, precision[m] / ref)
        factor[size == 0] = 0.0
        new = conf * factor
    else:
        new = conf * unit_precision(pred, units)
    return np.where(units.fixed, units.confidence, new).astype(np.float32)


def _class_weights(units: KnowledgeUnits, n_parts: int) -> torch.Tensor:
    """Inverse-frequency weights over the covered points of each part, normalised to mean 1 over the
    parts present: a big part (a table top) must not drown a small one (a knob)."""
    ent_unit = units.unit_of_entry()
    freq = np.bincount(units.part[ent_unit], minlength=n_parts).astype(np.float64)
    present = freq > 0
    cw = np.zeros(n_parts)
    cw[present] = 1.0 / np.sqrt(freq[present])
    cw[present] /= cw[present].mean()
    return torch.as_tensor(cw, dtype=torch.float32)


def distill(
    forward: Callable[[int], torch.Tensor],
    params: list[torch.nn.Parameter],
    units: Sequence[KnowledgeUnits],
    n_parts: int,
    config: DistillConfig,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    shapes_per_step: int = 1,
    share: Share | None = None,
) -> DistillReport:
    """Train so that ``forward(i)`` -> logits (N_i, P) of shape i agrees with its units ``units[i]``.

    One shape (TTA): one full-batch step per epoch. Several shapes (Pre): each epoch shuffles the
    shapes and takes them ``shapes_per_step`` at a time, one optimiser step on the mean of their
    losses; the epoch's loss is the mean over shapes. Backward distillation re-scores the units of
    every shape once, from the same snapshot of the student. Returns the loss curve, the trigger
    epoch and the unit weights before/after re-scoring (each ``units[i].weight`` is updated).

    Data-parallel (``share``, see ``partdistill.backend.parallel``): this process holds only its
    shapes, ``units[i]`` being the shape of global index ``share.ids[i]`` among ``share.n_shapes``; a
    step takes ``parallel.world`` shapes of the shared order, gradients and losses are summed
    across the processes."""
    report = DistillReport(weights_before=np.concatenate([u.weight for u in units]) if units else None)
    ids = list(range(len(units))) if share is None else list(share.ids)
    total_shapes = len(units) if share is None else share.n_shapes
    parallel = None if share is None else share.parallel
    has = torch.zeros(total_shapes)
    for i, u in enumerate(units):
        if u.n_units and u.idx.size:
            has[ids[i]] = 1.0
    if parallel is not None:
        parallel.sum_(has)
        shapes_per_step = parallel.world
    active = [int(g) for g in torch.nonzero(has).flatten()]  # global ids of the shapes with units
    local = {g: i for i, g in enumerate(ids)}
    if not active:
        report.weights_after = report.weights_before
        return report
    opt = torch.optim.Adam(params, lr=config.lr)
    losses = {
        g: UnitLoss(units[local[g]], _class_weights(units[local[g]], n_parts) if config.class_balance else None)
        for g in active
        if g in local
    }
    weights = {g: torch.as_tensor(units[local[g]].weight, dtype=torch.float32) for g in losses}
    rng = np.random.default_rng(seed)
    end = config.epochs
    ma: list[float] = []
    for epoch in range(config.epochs):
        if epoch >= end:
            break
        order = [active[j] for j in rng.permutation(len(active))] if len(active) > 1 else active
        total = torch.zeros(1)
        for start in range(0, len(order), shapes_per_step):
            step = order[start : start + shapes_per_step]
            if cancel is not None and cancel():
                from ..cancel import Cancelled

                raise Cancelled()
            opt.zero_grad(set_to_none=True)
            for g in step:
                if g in losses:
                    loss = losses[g](forward(local[g]), weights[g])
                    (loss / len(step)).backward()
                    total += float(loss.detach())
            if parallel is not None:
                parallel.sum_grads_(params)
            opt.step()
        if parallel is not None:
            parallel.sum_(total)
        report.loss.append(float(total) / len(active))
        if progress is not None:
            progress(epoch + 1, end, "distill")
        if config.backward and report.trigger_epoch is None:
            window = report.loss[-config.ma_window :]
            ma.append(sum(window) / len(window))
            if _triggers(config, ma, epoch + 1):
                with torch.no_grad():
                    for g in losses:
                        i = local[g]
                        pred = forward(i).argmax(dim=-1).cpu().numpy()
                        units[i].weight = rescore(pred, units[i], config.rescale_per_part, config.rule)
                        weights[g] = torch.as_tensor(units[i].weight, dtype=torch.float32)
                report.trigger_epoch = epoch + 1
                if config.post_epochs:
                    end = min(config.epochs, epoch + 1 + config.post_epochs)
    report.weights_after = np.concatenate([u.weight for u in units])
    return report


def _triggers(config: DistillConfig, ma: list[float], epochs_done: int) -> bool:
    """Whether backward distillation starts after ``epochs_done`` epochs, from the loss's moving
    averages ``ma`` (one per epoch so far)."""
    full = len(ma) > config.ma_window
    if config.rule == "paper":
        return full and abs(ma[-1] - ma[-2]) < PAPER_MA_CHANGE
    settled = full and abs(ma[-1] - ma[-2]) < config.ma_tolerance * max(ma[-2], 1e-8)
    earliest = max(config.min_epochs, int(config.min_fraction * config.epochs))
    return epochs_done >= earliest and (settled or epochs_done >= int(config.max_fraction * config.epochs))
