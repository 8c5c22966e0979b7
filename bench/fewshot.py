"""``partdistill bench fewshot``: mIoU against the number of labelled examples.

On the real-mesh set, with a SIMULATED teacher (``levels.py``):

- **TTA with painted faces**: on each test shape, ``k`` faces per part are given their true part
  (as a user paints them in Blender, ``labelled_faces``) on top of the teacher's detections;
  k = 0, 1, 2, 4, 8 faces per part. The faces are drawn with probability proportional to their
  area (a user paints what is easy to see), with a fixed seed per shape.
- **Pre with labelled shapes**: one student per category fitted on the category's 4 validation
  shapes (all with the teacher's detections), ``k`` of them also fully labelled (few-shot labels on
  every face), then predicting the 4 test shapes; k = 0, 1, 2, 4 (the set has 4 validation shapes
  per category, so the paper's 8-shot point cannot be made here without using test shapes).

Every run is a line of ``fewshot.jsonl`` (resumable); ``fewshot.md`` and ``fewshot.png`` are made
from them."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from partdistill.backend.metrics import shape_miou
from partdistill.backend.pipeline.mesh_graph import face_graph
from partdistill.backend.pre import TrainingShape, fit, predict
from partdistill.backend.tta import segment
from partdistill.shared.capture import Capture

from .levels import simulate
from .psb import CATEGORIES, real_shapes
from .reporting import pyplot, table_head, table_row, write_report
from .runlog import Log, RunLog, RunSetup

FACES_PER_PART = (0, 1, 2, 4, 8)
LABELLED_SHAPES = (0, 1, 2, 4)


def paint(capture: Capture, k: int, seed: int) -> np.ndarray | None:
    """``(F,) int32`` with ``k`` faces per part set to their true part (area-weighted draw), -1 elsewhere."""
    if k == 0:
        return None
    gt = capture.gt_face_labels
    area = capture.mesh.face_areas()
    rng = np.random.default_rng(seed)
    out = np.full(len(gt), -1, np.int32)
    for part in np.unique(gt[gt >= 0]):
        faces = np.flatnonzero(gt == part)
        p = area[faces] / area[faces].sum() if area[faces].sum() > 0 else None
        chosen = rng.choice(faces, size=min(k, len(faces)), replace=False, p=p)
        out[chosen] = part
    return out


def run(
    data: Path,
    cache: Path,
    out: Path,
    *,
    level: str = "realistic",
    teacher: str = "box",
    per_category: int | None = None,
    categories=CATEGORIES,
    setup: RunSetup | None = None,
    curves=("tta", "pre"),
    split: str = "test",
    log: Log = print,
) -> list[dict]:
    """Run what is missing of the ``curves``; returns every row. ``split``: the shapes the TTA curve
    runs on (Pre always fits on the validation shapes and predicts the test shapes)."""
    setup = setup or RunSetup()
    options = setup.options
    runs = RunLog.open(out / "fewshot.jsonl")

    def record(row: dict) -> None:
        runs.add(row)
        log(f"{row['curve']:>4} {row['shape']:>12} k={row['k']} mIoU {row['miou']:5.1f}  {row['seconds']:6.1f} s")

    kw = {"views": setup.views, "resolution": setup.resolution, "per_category": per_category}
    for cat in categories:
        test = real_shapes(data, cache, categories=[cat], split="test", **kw)
        for s in real_shapes(data, cache, categories=[cat], split=split, **kw) if "tta" in curves else []:
            cap, det = None, None
            for k, key in runs.missing(
                (k, f"tta/{s.key}/{teacher}/{level}/{k}/{options.seed}") for k in FACES_PER_PART
            ):
                if cap is None:
                    cap = s.load()
                    det = simulate(cap, level, teacher, seed=s.seed, graph=face_graph(cap.mesh))
                t = time.perf_counter()
                res = segment(cap, s.part_names, options=options, detections=det, labelled_faces=paint(cap, k, s.seed))
                record(_row(key, "tta", s, cap, res.face_labels, k, time.perf_counter() - t))
        if "pre" not in curves:
            continue
        keys = {k: [f"pre/{s.key}/{teacher}/{level}/{k}/{options.seed}" for s in test] for k in LABELLED_SHAPES}
        if runs.all_done([key for ks in keys.values() for key in ks]):
            continue
        val = real_shapes(data, cache, categories=[cat], split="val", views=setup.views, resolution=setup.resolution)
        train = [
            (c, simulate(c, level, teacher, seed=s.seed, graph=face_graph(c.mesh)))
            for s, c in ((s, s.load()) for s in val)
        ]
        for k in LABELLED_SHAPES:
            if runs.all_done(keys[k]):
                continue
            t = time.perf_counter()
            shapes = [TrainingShape(c, d, c.gt_face_labels if i < k else None) for i, (c, d) in enumerate(train)]
            ckpt = fit(shapes, val[0].part_names, options)
            fit_s = (time.perf_counter() - t) / len(test)
            for s, key in zip(test, keys[k], strict=True):
                cap = s.load()
                t = time.perf_counter()
                res = predict(cap, ckpt, device=options.device, refine=options.refine)
                record(_row(key, "pre", s, cap, res.face_labels, k, fit_s + time.perf_counter() - t))
    return runs.rows


def _row(key: str, curve: str, s, cap: Capture, labels: np.ndarray, k: int, seconds: float) -> dict:
    miou = shape_miou(labels, cap.gt_face_labels, len(s.part_names), cap.mesh.face_areas())
    return {
        "key": key,
        "curve": curve,
        "shape": s.key,
        "category": s.category,
        "split": s.split,
        "k": k,
        "miou": round(100 * miou, 2),
        "seconds": round(seconds, 2),
    }


def report(rows: list[dict], out: Path) -> str:
    """``fewshot.md`` (overall and per category, per k) and ``fewshot.png`` (both curves)."""
    lines = []
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 4))
    for ax, curve, ks, what in (
        (axes[0], "tta", FACES_PER_PART, "painted faces per part (TTA)"),
        (axes[1], "pre", LABELLED_SHAPES, "labelled shapes per category (Pre)"),
    ):
        sub = [r for r in rows if r["curve"] == curve]
        if not sub:
            continue
        cats = sorted({r["category"] for r in sub}, key=CATEGORIES.index)
        split = "/".join(sorted({r.get("split", "test") for r in sub}))
        lines += [
            f"**{what}** ({split} split, {len({r['shape'] for r in sub})} shapes)",
            "",
            *table_head("k", [*cats, "Overall"]),
        ]
        overall = []
        for k in ks:
            at = [r for r in sub if r["k"] == k]
            if not at:
                continue
            per = [np.mean([r["miou"] for r in at if r["category"] == c] or [np.nan]) for c in cats]
            overall.append((k, float(np.mean([r["miou"] for r in at]))))
            lines.append(table_row(k, [*(f"{v:.1f}" for v in per), f"**{overall[-1][1]:.1f}**"]))
        lines.append("")
        ax.plot([k for k, _ in overall], [v for _, v in overall], "o-")
        ax.set_xlabel(what)
        ax.set_ylabel("mIoU (%)")
        ax.set_xticks(list(ks))
        ax.grid(alpha=0.3)
    return write_report(
        out, "fewshot", lines, fig, "Few-shot: mIoU against k (real meshes, SIMULATED realistic box teacher)"
    )
