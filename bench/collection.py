"""``partdistill bench real --collection``: collection mode against one shape at a time and Pre.

A collection is the 4 shapes of one category and one split of the real-mesh set (``psb.py``): the
validation collections choose the variant, the flag rules and the confidence drop, the test ones are
only reported. Each collection is fitted once (its category student) and every variant
(``VARIANTS``) starts from that student, as ``partdistill batch`` would. The rows go to their own run
log (``collection.jsonl``), beside ``bench real``'s per-shape methods and baselines; besides the mIoU each
row keeps what the collection review needs: the part figures, the disagreement with the category
student, and how often faces are right per confidence where the shape's own evidence agrees or
differs with it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from partdistill.backend.collection import segment_collection
from partdistill.backend.pipeline.mesh_graph import face_graph
from partdistill.backend.pipeline.outliers import result_figures
from partdistill.shared.options import CollectionOptions, SegmentOptions
from partdistill.shared.request import Member

from .levels import simulate
from .psb import RealShape, Selection
from .real import result_row
from .runlog import Log, RunLog, RunSetup

#: name -> the ``CollectionOptions`` that make it (the confidence drop is left out of the runs: the
#: report applies each candidate drop to the stored histograms), and ``fit_share``: the category
#: fits' epochs as a share of the run's (``variant_options``). ``points`` left out: the run's.
VARIANTS: dict[str, dict] = {
    "collection-pre": {"mode": "pre"},
    "collection-e15": {"finetune_epochs": 15},
    "collection-e30": {"finetune_epochs": 30},
    "collection-e50": {"finetune_epochs": 50},
    "collection-e30-downweight": {"finetune_epochs": 30, "downweight": True},
    "collection-e50-blend": {"finetune_epochs": 50, "blend": 0.5},
    "collection-ensemble": {"mode": "ensemble", "blend": 0.5},
    "collection-ensemble-b03": {"mode": "ensemble", "blend": 0.3},
    "collection-pre-k3": {"mode": "pre", "students": 3},
    "collection-e50-blend-k3": {"finetune_epochs": 50, "blend": 0.5, "students": 3},
    "collection-pre-k3-s125": {"mode": "pre", "students": 3, "stretch": 1.25},
    "collection-pre-k3-s150": {"mode": "pre", "students": 3, "stretch": 1.5},
    "collection-pre-k5-e60": {"mode": "pre", "students": 5, "fit_share": 0.6},
    "collection-pre-k3-principal": {"mode": "pre", "students": 3, "frame": "principal"},
    "collection-pre-k3-both": {"mode": "pre", "students": 3, "frame": "both"},
    "collection-pre-k6-both": {"mode": "pre", "students": 6, "frame": "both"},
    "collection-pre-k6-both-e50": {"mode": "pre", "students": 6, "frame": "both", "fit_share": 0.5},
    "collection-pre-k4-both-e75": {"mode": "pre", "students": 4, "frame": "both", "fit_share": 0.75},
    "collection-pre-k6-p2048": {"mode": "pre", "students": 6, "points": 2048},
    "collection-pre-k6-both-p2048": {"mode": "pre", "students": 6, "frame": "both", "points": 2048},
    "collection-pre-k4-both-p2048": {"mode": "pre", "students": 4, "frame": "both", "points": 2048},
}
#: The most fitting a variant the report may choose does, in category students of full length: the
#: default's, which meets the time aim for a batch (at most 1.5 times the previous release's ``batch
#: --fit``: 2.0 took 1.1 to 1.3 times it side by side, 3.0 took 1.7 to 2.1 times; ``docs/benchmark.md``,
#: collection mode: time).
AFFORDABLE_FIT = 2.0


def fit_cost(variant: str) -> float:
    """The category fits of ``variant``, in students of full length at the default points (a fit's
    time grows with its epochs and its points)."""
    spec = VARIANTS[variant]
    points = spec.get("points", SegmentOptions.n_points) / SegmentOptions.n_points
    return spec.get("students", 1) * spec.get("fit_share", 1.0) * points


#: Confidence histograms' bins (fine enough to rescale the confidences of the faces that differ).
BINS = 100


def run(
    data: Path,
    cache: Path,
    out: Path,
    *,
    selection: Selection | None = None,
    teacher: str = "box",
    level: str = "realistic",
    variants: Sequence[str] = tuple(VARIANTS),
    setup: RunSetup | None = None,
    pooled: bool = False,
    log: Log = print,
) -> list[dict]:
    """Run every variant on every collection not yet in ``out/collection.jsonl``; returns their rows.
    ``pooled``: a category's shapes of all the selected splits are one collection (``collections``)."""
    setup, selection = setup or RunSetup(), selection or Selection()
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    runs = RunLog.open(out / "collection.jsonl")
    for group in collections(data, cache, selection, setup, pooled):
        _run_collection(group, teacher, level, variants, setup, runs, log)
    return runs.rows


def collections(
    data: Path, cache: Path, selection: Selection, setup: RunSetup, pooled: bool = False
) -> list[list[RealShape]]:
    """The selection's collections: each category's shapes of one split, or with ``pooled`` of all the
    selected splits together (the category fits see no labels, so a collection may hold validation and
    test shapes; each row still carries its shape's split, and choices stay with the 4-shape runs)."""
    shapes = {sp: selection.shapes(data, cache, sp, setup.views, setup.resolution) for sp in selection.splits}
    out = []
    for cat in selection.categories:
        per_split = [[s for s in shapes[sp] if s.category == cat] for sp in selection.splits]
        out += [[s for g in per_split for s in g]] if pooled else per_split
    return [g for g in out if g]


def logged(
    data: Path,
    cache: Path,
    out: Path,
    *,
    selection: Selection,
    teacher: str = "box",
    level: str = "realistic",
    setup: RunSetup,
    pooled: bool = False,
) -> list[dict]:
    """Every run of every variant on the selection's collections already in ``out/collection.jsonl``
    (nothing is run): what a report reads."""
    done = RunLog.open(out / "collection.jsonl").done
    rows = []
    for group in collections(data, cache, selection, setup, pooled):
        keys = [run_key(s, group, teacher, level, v, setup) for v in VARIANTS for s in group]
        rows += [done[k] for k in keys if k in done]
    return rows


def run_key(shape: RealShape, group: Sequence[RealShape], teacher: str, level: str, variant: str, setup) -> str:
    """A run: the shape, its collection, the teacher, the level, the variant and every option."""
    what = {
        "options": setup.options.to_dict(),
        "collection": VARIANTS[variant],
        "members": [s.key for s in group],
    }
    digest = hashlib.sha1(json.dumps(what, sort_keys=True).encode()).hexdigest()[:8]
    return f"{shape.key}/{teacher}/{level}/{variant}/{digest}"


def _run_collection(group, teacher, level, variants, setup: RunSetup, runs: RunLog, log: Log) -> None:
    keys = {v: [run_key(s, group, teacher, level, v, setup) for s in group] for v in variants}
    todo = [v for v in variants if not runs.all_done(keys[v])]
    if not todo:
        return
    caps = [s.load() for s in group]
    dets = [
        simulate(c, level, teacher, seed=s.seed, graph=face_graph(c.mesh)) for s, c in zip(group, caps, strict=True)
    ]
    members = [Member(c, d) for c, d in zip(caps, dets, strict=True)]
    names = group[0].part_names
    fits = {}  # the fit's options -> the collection in mode "pre": each category fit made once per run
    for v in todo:
        fit_options, opts = variant_options(v, setup.options)
        k = (opts.students, opts.stretch, opts.frame, opts.points, fit_options.epochs)
        if k not in fits:
            t = time.perf_counter()
            fit = CollectionOptions(
                mode="pre",
                students=opts.students,
                stretch=opts.stretch,
                frame=opts.frame,
                points=opts.points,
                disagree_confidence=1.0,
            )
            fits[k] = segment_collection(members, names, fit_options, fit)
            took = time.perf_counter() - t
            splits = "+".join(dict.fromkeys(s.split for s in group))
            log(f"{group[0].category} {splits}: {k[0]} category student(s) fitted in {took:.0f} s")
        fitted = fits[k]
        fit_s = fitted.timings["fit"] / len(group)
        t = time.perf_counter()
        if opts.mode == "pre":
            out = fitted
        else:
            out = segment_collection(members, names, setup.options, opts, checkpoint=fitted.checkpoint)
        each = (time.perf_counter() - t) / len(group) if out is not fitted else fitted.timings["label"] / len(group)
        for k, s in enumerate(group):
            res, cap = out.results[k], caps[k]
            if res is None:
                log(f"{s.key}: {v} failed: {out.errors[k]}")
                continue
            row = result_row(s, cap, dets[k], res, teacher, level, v, fit_s + each, setup.options, keys[v][k])
            row["collection"] = [m.key for m in group]
            row["parts"] = result_figures(cap.mesh, res).to_dict(names)
            row["disagreement"] = res.stats.get("disagreement")
            row.update(_confidence_by_agreement(res, out.differs[k], cap.gt_face_labels))
            runs.add(row)
            log(f"{s.key:>12} {teacher:4} {level:9} {v:26} mIoU {row['miou']:5.1f}  {row['seconds']:5.1f} s")


def variant_options(variant: str, options: SegmentOptions) -> tuple[SegmentOptions, CollectionOptions]:
    """What a run of ``variant`` labels with: the engine options of its category fits (the run's
    ``options`` with ``fit_share`` of their epochs) and its checked collection options (one category
    student, no blend, no confidence drop, the shapes as their files have them and the run's points
    unless it says)."""
    spec = dict(VARIANTS[variant])
    share = spec.pop("fit_share", 1.0)
    fit = replace(options, epochs=max(1, round(options.epochs * share)))
    base = {"students": 1, "blend": 0.0, "disagree_confidence": 1.0, "frame": "given", "points": options.n_points}
    return fit, CollectionOptions(**{**base, **spec}).validate()


def _confidence_by_agreement(res, differ: np.ndarray, gt) -> dict[str, list[int]]:
    """Counts of faces and of right faces per confidence bin, apart for the faces where the shape's
    own evidence and the category student agree and those where they differ (``differ`` (F,) bool,
    ``CollectionResult.differs``)."""
    b = np.minimum((res.face_confidence * BINS).astype(int), BINS - 1)
    right = res.face_labels == gt
    out = {}
    for name, m in (("agree", ~differ), ("differ", differ)):
        out[f"{name}_faces"] = np.bincount(b[m], minlength=BINS).tolist()
        out[f"{name}_right"] = np.bincount(b[m], weights=right[m], minlength=BINS).astype(int).tolist()
    return out
