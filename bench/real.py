"""``partdistill bench real``: every method on the real-mesh set, with SIMULATED teachers.

The meshes are those of ``psb.py``, the teachers those of ``levels.py`` at several noise levels, the
validation and test splits apart.

Each run (a shape, a teacher, a level, a method) is one line of ``runs.jsonl`` in the output folder:
its mIoU, seconds, warnings, mIoU2D before/after backward distillation and how often its faces are
right per confidence bin. A run already there is not run again, so an interrupted benchmark resumes,
and a later call with other levels or methods adds to the same tables. ``report.py`` turns the lines
into the tables (the paper's Table A layout), pictures and figures.

Methods (``METHODS``) are product options, nothing else: what the benchmark measures is what users get.
"Pre" fits one student per category on the (unlabelled) shapes of the split, then predicts each.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from partdistill.backend.metrics import shape_miou
from partdistill.backend.pipeline.detect import drop_whole_object_boxes
from partdistill.backend.pipeline.mesh_graph import face_graph
from partdistill.backend.pre import TrainingShape, fit, predict
from partdistill.backend.tta import segment
from partdistill.shared.options import SegmentOptions
from partdistill.shared.result import SegmentationResult

from .levels import LEVELS, simulate
from .metrics2d import miou2d_from_capture
from .psb import RealShape, Selection
from .runlog import Log, RunLog, RunSetup

#: name -> the options that make it (on top of the run's base options); "pre" is fit + predict.
METHODS: dict[str, dict] = {
    "vote": {"method": "vote"},
    "vote-fill": {"method": "vote-fill"},
    "superpoint": {"method": "superpoint"},
    "distill-forward": {"backward": False},
    "distill-paper": {"backward_rule": "paper"},
    "distill": {},
    "pre": {},
}
BASELINES = ("vote", "vote-fill", "superpoint")
TEACHERS = ("box", "mask")
CONFIDENCE_BINS = 20


def run(
    data: Path,
    cache: Path,
    out: Path,
    *,
    selection: Selection | None = None,
    teachers: Sequence[str] = TEACHERS,
    levels: Sequence[str] = ("perfect", "realistic"),
    methods: Sequence[str] = tuple(METHODS),
    setup: RunSetup | None = None,
    log: Log = print,
) -> list[dict]:
    """Run what is missing from ``out/runs.jsonl`` and return every line that matches the request."""
    setup, selection = setup or RunSetup(), selection or Selection()
    bad = [m for m in methods if m not in METHODS] + [lv for lv in levels if lv not in LEVELS]
    bad += [t for t in teachers if t not in TEACHERS]
    if bad:
        raise ValueError(f"unknown methods, levels or teachers: {bad}")
    runs = RunLog.open(out / "runs.jsonl")
    shapes = [
        s
        for split in selection.splits
        for s in selection.shapes(
            data, cache, split, setup.views, setup.resolution, lambda d, n, m: log(f"capture {d}/{n} {m}")
        )
    ]
    t0 = time.perf_counter()
    for teacher in teachers:
        for level in levels:
            for split in selection.splits:
                for cat in selection.categories:
                    group = [s for s in shapes if s.split == split and s.category == cat]
                    _run_group(group, teacher, level, methods, setup.options, runs, log)
    log(f"{len(runs.rows)} runs in {time.perf_counter() - t0:.0f} s")
    return runs.rows


def run_key(shape: RealShape, teacher: str, level: str, method: str, options: SegmentOptions) -> str:
    """What identifies a run: the shape, the teacher, the level, the method and every option."""
    opts = json.dumps(_options(method, options).to_dict(), sort_keys=True)
    return f"{shape.key}/{teacher}/{level}/{method}/" + hashlib.sha1(opts.encode()).hexdigest()[:8]


def _options(method: str, options: SegmentOptions) -> SegmentOptions:
    return replace(options, **METHODS[method])


def _run_group(group, teacher, level, methods, options, runs: RunLog, log) -> None:
    pre_train = []
    for s in group:
        keys = {m: run_key(s, teacher, level, m, options) for m in methods}
        runs.rows += [runs.done[k] for k in keys.values() if k in runs.done]
        missing = [m for m in methods if keys[m] not in runs.done]
        if not missing:
            continue
        cap = s.load()
        det = simulate(cap, level, teacher, seed=s.seed, graph=face_graph(cap.mesh))
        for m in missing:
            if m == "pre":
                pre_train.append((s, cap, det, keys[m]))
                continue
            t = time.perf_counter()
            res = segment(cap, s.part_names, options=_options(m, options), detections=det)
            row = result_row(s, cap, det, res, teacher, level, m, time.perf_counter() - t, options, keys[m])
            _keep_labels(runs.path.parent, s is group[0], row, res)
            runs.add(row)
            log(f"{s.key:>12} {teacher:4} {level:9} {m:16} mIoU {row['miou']:5.1f}  {row['seconds']:5.1f} s")
    if pre_train:  # one student per category, fitted on the split's shapes (all of them, unlabelled)
        train = []
        for s in group:
            c = s.load()
            train.append(TrainingShape(c, simulate(c, level, teacher, seed=s.seed, graph=face_graph(c.mesh))))
        t = time.perf_counter()
        ckpt = fit(train, group[0].part_names, _options("pre", options))
        fit_s = (time.perf_counter() - t) / len(group)
        for s, cap, det, key in pre_train:
            t = time.perf_counter()
            res = predict(cap, ckpt, device=options.device, refine=options.refine)
            row = result_row(s, cap, det, res, teacher, level, "pre", fit_s + time.perf_counter() - t, options, key)
            _keep_labels(runs.path.parent, s is group[0], row, res)
            runs.add(row)
            log(f"{s.key:>12} {teacher:4} {level:9} {'pre':16} mIoU {row['miou']:5.1f}")


def result_row(s: RealShape, cap, det, res: SegmentationResult, teacher, level, method, seconds, options, key) -> dict:
    """The line of ``runs.jsonl`` for one run: its mIoU against the bundle's ground truth, seconds,
    warnings, mIoU2D before/after backward distillation and faces right per confidence bin."""
    n = len(s.part_names)
    gt = cap.gt_face_labels
    row = {
        "key": key,
        "shape": s.key,
        "category": s.category,
        "split": s.split,
        "teacher": teacher,
        "level": level,
        "method": method,
        "miou": round(100 * shape_miou(res.face_labels, gt, n, cap.mesh.face_areas()), 2),
        "seconds": round(seconds, 3),
        "n_faces": cap.mesh.n_faces,
        "warnings": list(res.warnings),
        "trigger_epoch": res.stats.get("trigger_epoch"),
        "bundle": str(s.path),
        "seed": s.seed,
    }
    # mIoU2D scores the units on this capture's views; with a point render type they were lifted on
    # the point capture's views (other whole-object drops, other regions), so it is not comparable
    if "unit_weights_before" in res.stats and not options.render_type.endswith("points"):
        opts = _options(method, options)
        kept = drop_whole_object_boxes(det, cap.face_id >= 0, opts.whole_object_cover)
        for when in ("before", "after"):
            v = miou2d_from_capture(cap, kept, res.stats[f"unit_weights_{when}"], n)
            row[f"miou2d_{when}"] = None if np.isnan(v) else round(100 * v, 2)
    # how often faces are right at each confidence: (bins,) counts of faces and of right ones
    b = np.minimum((res.face_confidence * CONFIDENCE_BINS).astype(int), CONFIDENCE_BINS - 1)
    right = res.face_labels == gt
    row["confidence_faces"] = np.bincount(b, minlength=CONFIDENCE_BINS).tolist()
    row["confidence_right"] = np.bincount(b, weights=right, minlength=CONFIDENCE_BINS).astype(int).tolist()
    return row


def labels_path(out: Path, row: dict) -> Path:
    """Where the face labels of a run are kept (the first shape of each category and split only, for
    the pictures)."""
    return out / "labels" / (row["key"].replace("/", "__") + ".npy")


def _keep_labels(out: Path, first: bool, row: dict, res: SegmentationResult) -> None:
    if first:
        path = labels_path(out, row)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, res.face_labels.astype(np.int8))
