"""``partdistill bench quality``: every method on the procedural shape families.

Over procedurally generated shape families (ground truth by construction, captured through the real
headless-Blender path and cached), with SIMULATED teachers (``bench/simulated.py``: a B-VLM-like box
teacher and a P-VLM-like mask teacher at their documented default noise), it measures per category, in
the layout of the paper's Table A: multi-view voting, TTA without backward distillation, TTA with it,
and Pre (one student fitted on the train shapes, predicting the test shapes alone); plus mIoU2D (the
paper's Eq. A-D) before/after backward distillation, the loss curves with the trigger epoch (the
paper's Fig. B) and a grid of coloured segmentations. Outputs JSON, Markdown, PNGs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from partdistill.backend.metrics import shape_miou
from partdistill.backend.pipeline.detect import drop_whole_object_boxes
from partdistill.backend.pre import TrainingShape, fit, predict
from partdistill.backend.tta import segment
from partdistill.shared.options import SegmentOptions

from .dataset import DatasetEntry, build_dataset, load_dataset
from .metrics2d import miou2d_from_capture
from .reporting import pyplot, save_figure, table_head, table_row
from .simulated import DEFAULT_BOX_NOISE, DEFAULT_MASK_NOISE, simulate_detections

TEACHERS = {"box": DEFAULT_BOX_NOISE, "mask": DEFAULT_MASK_NOISE}
METHODS = ("vote", "tta_forward", "tta", "pre")
METHOD_TITLES = {"vote": "Voting", "tta_forward": "TTA (no BD)", "tta": "TTA", "pre": "Pre"}


def simulated(capture, teacher: str, seed: int):
    return simulate_detections(capture, TEACHERS[teacher], seed=seed, mode=teacher)


def quality(
    data: Path,
    out: Path,
    *,
    families: Sequence[str] | None = None,
    per_family: int = 12,
    n_test: int = 4,
    views: int = 10,
    resolution: int = 512,
    teachers: Sequence[str] = ("box", "mask"),
    options: SegmentOptions | None = None,
    pre_epochs: int | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Run the quality benchmark; returns the results dict (also written to ``out/results.json``)."""
    options = (options or SegmentOptions()).validate()
    t0 = time.perf_counter()
    entries = _dataset(data, families, per_family, n_test, views, resolution, log)
    fams = sorted({e.family for e in entries}, key=[e.family for e in entries].index)
    results: dict = {
        "settings": {
            "families": fams,
            "per_family": per_family,
            "n_test": n_test,
            "views": views,
            "resolution": resolution,
            "options": options.to_dict(),
            "noise": {t: TEACHERS[t].as_dict() for t in teachers},
        },
        "miou": {},
        "miou2d": {},
        "curves": {},
        "per_shape": [],
    }
    grid: list[tuple] = []
    for teacher in teachers:
        results["miou"][teacher] = {m: {} for m in METHODS}
        results["miou2d"][teacher] = {"before": {}, "after": {}}
        for fam in fams:
            train = [e for e in entries if e.family == fam and e.split == "train"]
            test = [e for e in entries if e.family == fam and e.split == "test"]
            scores = {m: [] for m in METHODS}
            m2d = {"before": [], "after": []}
            ckpt = fit(
                [TrainingShape(c, simulated(c, teacher, e.seed)) for e, c in ((e, e.load()) for e in train)],
                test[0].part_names,
                replace(options, epochs=pre_epochs or options.epochs),
            )
            if fam == fams[0]:
                results["curves"][f"{teacher}/pre"] = {
                    "loss": ckpt.meta["training"]["loss"],
                    "trigger_epoch": ckpt.meta["training"]["trigger_epoch"],
                }
            for e in test:
                cap = e.load()
                n = len(e.part_names)
                det = simulated(cap, teacher, e.seed)
                area = cap.mesh.face_areas()
                res = {
                    "vote": segment(cap, e.part_names, options=replace(options, method="vote"), detections=det),
                    "tta_forward": segment(cap, e.part_names, options=replace(options, backward=False), detections=det),
                    "tta": segment(cap, e.part_names, options=options, detections=det),
                    "pre": predict(cap, ckpt, device=options.device),
                }
                row = {"teacher": teacher, "family": fam, "seed": e.seed}
                for m, r in res.items():
                    scores[m].append(shape_miou(r.face_labels, cap.gt_face_labels, n, area))
                    row[m] = round(100 * scores[m][-1], 2)
                kept = drop_whole_object_boxes(det, cap.face_id >= 0, options.whole_object_cover)
                for when, key in (("before", "unit_weights_before"), ("after", "unit_weights_after")):
                    m2d[when].append(miou2d_from_capture(cap, kept, res["tta"].stats[key], n))
                    row[f"miou2d_{when}"] = round(100 * m2d[when][-1], 2)
                results["per_shape"].append(row)
                if e is test[0] and teacher == teachers[0]:
                    grid.append((fam, cap, {m: r.face_labels for m, r in res.items()}, e.part_names))
                if e is test[0] and fam == fams[0]:
                    results["curves"][f"{teacher}/tta"] = {
                        "loss": res["tta"].stats["loss"],
                        "trigger_epoch": res["tta"].stats["trigger_epoch"],
                    }
            for m in METHODS:
                results["miou"][teacher][m][fam] = 100 * float(np.mean(scores[m]))
            for when in m2d:
                results["miou2d"][teacher][when][fam] = 100 * float(np.nanmean(m2d[when]))
            log(
                f"[{teacher}] {fam}: "
                + ", ".join(f"{METHOD_TITLES[m]} {results['miou'][teacher][m][fam]:.1f}" for m in METHODS)
                + f"; mIoU2D {results['miou2d'][teacher]['before'][fam]:.1f} -> "
                f"{results['miou2d'][teacher]['after'][fam]:.1f}"
            )
        for m in METHODS:
            results["miou"][teacher][m]["Overall"] = float(np.mean([results["miou"][teacher][m][f] for f in fams]))
        for when in ("before", "after"):
            d = results["miou2d"][teacher][when]
            d["Overall"] = float(np.mean([d[f] for f in fams]))
    results["targets"] = targets(results, fams)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    write_outputs(out, results, grid, fams)
    log(markdown(results, fams))
    return results


def targets(results: dict, fams: Sequence[str]) -> dict:
    """The issue's targets, checked on the box teacher (B-VLM-like) and the mask teacher alike."""
    out = {}
    for t, r in results["miou"].items():
        gain = {f: r["tta"][f] - r["vote"][f] for f in fams}
        out[t] = {
            "tta_minus_vote_overall": round(r["tta"]["Overall"] - r["vote"]["Overall"], 2),
            "families_where_tta_beats_vote_by_5": sum(g >= 5 for g in gain.values()),
            "backward_gain_3d_overall": round(r["tta"]["Overall"] - r["tta_forward"]["Overall"], 2),
            "backward_gain_2d_overall": round(
                results["miou2d"][t]["after"]["Overall"] - results["miou2d"][t]["before"]["Overall"], 2
            ),
            "pre_minus_tta_overall": round(r["pre"]["Overall"] - r["tta"]["Overall"], 2),
        }
    return out


def markdown(results: dict, fams: Sequence[str]) -> str:
    teachers = list(results["miou"])
    lines = [
        "## 3D mIoU (%) per category, SIMULATED teachers (layout of the paper's Table A)",
        "",
        *table_head("Category", [f"{METHOD_TITLES[m]} ({t})" for t in teachers for m in METHODS]),
    ]
    for f in [*fams, "Overall"]:
        cells = []
        for t in teachers:
            vals = {m: results["miou"][t][m][f] for m in METHODS}
            best = max(vals.values())
            cells += [f"**{v:.1f}**" if v == best else f"{v:.1f}" for v in vals.values()]
        lines.append(table_row(f, cells))
    lines += [
        "",
        "## mIoU2D (%) before / after backward distillation (the paper's Eq. A-D)",
        "",
        *table_head("Category", [f"{t}: {w}" for t in teachers for w in ("before", "after")]),
    ]
    for f in [*fams, "Overall"]:
        cells = [f"{results['miou2d'][t][w][f]:.1f}" for t in teachers for w in ("before", "after")]
        lines.append(table_row(f, cells))
    lines += ["", "## Targets", "", "```", json.dumps(results["targets"], indent=1), "```"]
    return "\n".join(lines)


def write_outputs(out: Path, results: dict, grid: list, fams: Sequence[str]) -> None:
    from partdistill.backend.io.preview import colour_views

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(markdown(results, fams) + "\n")
    curves = results["curves"]
    fig, axes = pyplot().subplots(1, len(curves), figsize=(4.5 * len(curves), 3.2), dpi=100, squeeze=False)
    for ax, (name, c) in zip(axes[0], curves.items(), strict=True):
        ax.plot(np.arange(1, len(c["loss"]) + 1), c["loss"], color="#377eb8")
        if c["trigger_epoch"]:
            ax.axvline(c["trigger_epoch"], color="#e41a1c", linestyle="--", label=f"BD from epoch {c['trigger_epoch']}")
            ax.legend()
        ax.set_title(f"{fams[0]}: {name}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
    fig.tight_layout()
    save_figure(fig, out / "loss_curves.png")
    if grid:
        from PIL import Image, ImageDraw

        cols = ["gt", *METHODS]
        tile = 160
        canvas = Image.new("RGB", (tile * len(cols) + 90, tile * len(grid) + 20), "white")
        draw = ImageDraw.Draw(canvas)
        for j, c in enumerate(cols):
            draw.text((90 + j * tile + 4, 4), "ground truth" if c == "gt" else METHOD_TITLES[c], fill="black")
        for i, (fam, cap, labels, _names) in enumerate(grid):
            draw.text((4, 20 + i * tile + tile // 2), fam, fill="black")
            for j, c in enumerate(cols):
                lab = cap.gt_face_labels if c == "gt" else labels[c]
                img = Image.fromarray(colour_views(cap, lab)[0]).resize((tile, tile))
                canvas.paste(img, (90 + j * tile, 20 + i * tile))
        canvas.save(out / "segmentations.png")


def _dataset(data, families, per_family, n_test, views, resolution, log) -> list[DatasetEntry]:
    manifest = Path(data) / "manifest.json"
    if manifest.exists():
        entries = load_dataset(data)
        m = json.loads(manifest.read_text())
        ok = m.get("views") == views and m.get("resolution") == resolution and m.get("per_family", 0) >= per_family
        fams_ok = families is None or set(families) <= {e.family for e in entries}
        if ok and fams_ok:
            keep = [e for e in entries if (families is None or e.family in families) and e.seed < per_family]
            return [replace(e, split="test" if e.seed >= per_family - n_test else "train") for e in keep]
    log(f"capturing the benchmark shapes into {data} (headless Blender, cached) ...")
    return build_dataset(data, families, per_family, n_test, views, resolution)
