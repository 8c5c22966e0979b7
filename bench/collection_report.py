"""The collection benchmark's report: modes side by side, and the choices made on validation.

From the rows of ``bench real`` (per-shape methods and baselines) and of ``collection.py`` (the
collection variants), per split: the mIoU per category of every method; the variant with the best
validation mean among those that fit no more than the default (``AFFORDABLE_FIT``); the flag rules
(``FlagRules``) and the confidence drop chosen on the validation collections; and how well the flags
find the bad shapes (recall of the shapes below ``RECALL_BELOW`` mIoU, precision as the share of
flagged shapes below ``PRECISION_BELOW``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from partdistill.backend.pipeline.outliers import FlagRules, PartFigures, flag_collection

from .collection import AFFORDABLE_FIT, BINS, VARIANTS, fit_cost
from .psb import CATEGORIES
from .reporting import pyplot, table_head, table_row, write_report

RECALL_BELOW = 25.0
PRECISION_BELOW = 50.0
#: The per-shape methods and baselines shown beside the collection variants.
SHAPE_METHODS = ("distill", "pre", "superpoint", "vote-fill")
#: Candidate confidence drops for the faces where a shape's own evidence and the category student differ.
DROPS = (1.0, 0.75, 0.5, 0.35, 0.25)
#: The flag rules searched on the validation collections.
GRID = {
    "share_z": (2.0, 3.0, 4.0),
    "share_abs": (0.1, 0.15, 0.2, 0.3),
    "pieces_ratio": (2.0, 3.0, 4.0, np.inf),
    "place_dist": (0.3, 0.5, 0.7, np.inf),
    "disagreement": (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, np.inf),
}


def flagged(rows: Sequence[dict], rules: FlagRules) -> dict[str, bool]:
    """Per row key: whether the shape carries a warning, its own review's or the collection's. Each
    collection is reviewed over the rows of it that ``rows`` holds: give whole collections."""
    out = {}
    for group in _collections(rows).values():
        names = tuple(group[0]["parts"])
        figs = [PartFigures.from_dict(r["parts"], names) for r in group]
        dis = np.array([np.nan if r["disagreement"] is None else r["disagreement"] for r in group])
        flags = flag_collection(figs, dis, names, rules)
        for r, w in zip(group, flags.shape_warnings, strict=True):
            out[r["key"]] = bool(w) or bool(r["warnings"])
    return out


def precision_recall(rows: Sequence[dict], warned: dict[str, bool]) -> dict[str, float | int]:
    bad = [r for r in rows if r["miou"] < RECALL_BELOW]
    hit = [r for r in rows if warned[r["key"]]]
    return {
        "shapes": len(rows),
        "below_recall_line": len(bad),
        "warned": len(hit),
        "recall": round(100 * sum(warned[r["key"]] for r in bad) / len(bad), 1) if bad else 100.0,
        "precision": round(100 * sum(r["miou"] < PRECISION_BELOW for r in hit) / len(hit), 1) if hit else 100.0,
    }


def choose_rules(rows: Sequence[dict], split: str = "val") -> FlagRules:
    """The rules that flag every shape of ``split`` below ``RECALL_BELOW`` (or as many as any rule
    does) with the best precision, then the fewest flags. ``rows``: one variant's whole collections,
    flagged as the product reviews them (a pooled collection's shapes of both splits together),
    scored on ``split``'s shapes alone."""
    scored = [r for r in rows if r["split"] == split]
    best, best_score = FlagRules(), None
    for values in itertools.product(*GRID.values()):
        rules = replace(FlagRules(), **dict(zip(GRID, values, strict=True)))
        pr = precision_recall(scored, flagged(rows, rules))
        score = (pr["recall"], pr["precision"], -pr["warned"])
        if best_score is None or score > best_score:
            best, best_score = rules, score
    return best


def choose_drop(rows: Sequence[dict]) -> float:
    """The confidence drop with the lowest expected calibration error on ``rows``."""
    return min(DROPS, key=lambda d: calibration_error(rows, d))


def calibration_error(rows: Sequence[dict], drop: float) -> float:
    """Expected calibration error (20 bins) of the faces' confidences, those where the shape's own
    evidence and the category student differ scaled by ``drop`` (NaN without rows: a split not run)."""
    if not rows:
        return float("nan")
    centres = (np.arange(BINS) + 0.5) / BINS
    conf = np.concatenate([centres, centres * drop])
    faces = np.concatenate([np.sum([r["agree_faces"] for r in rows], 0), np.sum([r["differ_faces"] for r in rows], 0)])
    right = np.concatenate([np.sum([r["agree_right"] for r in rows], 0), np.sum([r["differ_right"] for r in rows], 0)])
    b = np.minimum((conf * 20).astype(int), 19)
    n, k, c = (np.bincount(b, weights=w, minlength=20) for w in (faces, right, conf * faces))
    used = n > 0
    return float(np.sum(np.abs(k[used] - c[used])) / max(n.sum(), 1))


def summarise(rows: Sequence[dict]) -> dict:
    """Tables per split, the validation choices and the flags' figures."""
    methods = [*SHAPE_METHODS, *VARIANTS]
    by = {(r["split"], r["category"], r["method"]): [] for r in rows}
    for r in rows:
        by[(r["split"], r["category"], r["method"])].append(r["miou"])
    tables = {}
    for split in ("val", "test"):
        t = {c: {m: _mean(by.get((split, c, m), [])) for m in methods} for c in CATEGORIES}
        t["Overall"] = {m: _mean([v for c in CATEGORIES for v in by.get((split, c, m), [])]) for m in methods}
        tables[split] = t
    affordable = [v for v in VARIANTS if fit_cost(v) <= AFFORDABLE_FIT]
    variant = max(affordable, key=lambda v: (tables["val"]["Overall"][v] or -1, -list(VARIANTS).index(v)))
    everything = [r for r in rows if r["method"] == variant]  # a pooled collection spans both splits
    rules = choose_rules(everything, "val")
    drop = choose_drop([r for r in everything if r["split"] == "val"])
    warned = flagged(everything, rules)
    flags = {}
    for split in ("val", "test"):
        mine = [r for r in everything if r["split"] == split]
        before = [r for r in rows if r["split"] == split and r["method"] == "distill"]
        flags[split] = {
            variant: precision_recall(mine, warned),
            "distill (its own warnings)": precision_recall(before, {r["key"]: bool(r["warnings"]) for r in before}),
        }
    ece = {
        split: {
            str(d): round(calibration_error([r for r in rows if r["split"] == split and r["method"] == variant], d), 4)
            for d in DROPS
        }
        for split in ("val", "test")
    }
    return {"tables": tables, "variant": variant, "rules": asdict(rules), "drop": drop, "flags": flags, "ece": ece}


def markdown(summary: dict) -> list[str]:
    methods = [*SHAPE_METHODS, *VARIANTS]
    lines = []
    for split in ("val", "test"):
        lines += [f"### {'Validation' if split == 'val' else 'Test'} split", ""]
        lines += table_head("category", methods)
        for cat, row in summary["tables"][split].items():
            lines.append(table_row(cat, ["" if row[m] is None else f"{row[m]:.1f}" for m in methods]))
        lines.append("")
    rules = {k: v for k, v in summary["rules"].items() if np.isfinite(v)}
    lines += [
        f"Chosen on validation (among variants that fit at most {AFFORDABLE_FIT:g} category students' worth): "
        f"variant **{summary['variant']}**, flag rules {json.dumps(rules)}, confidence drop "
        f"{summary['drop']} for faces where a shape's own evidence and the category students differ.",
        "",
    ]
    lines += table_head("flags", ["shapes", "below 25", "warned", "recall (%)", "precision (%)"])
    for split, per in summary["flags"].items():
        for name, f in per.items():
            cells = [
                str(f["shapes"]),
                str(f["below_recall_line"]),
                str(f["warned"]),
                f"{f['recall']:.0f}",
                f"{f['precision']:.0f}",
            ]
            lines.append(table_row(f"{split}: {name}", cells))
    lines.append("")
    lines += table_head("confidence drop", [str(d) for d in DROPS])
    for split, e in summary["ece"].items():
        cells = ["" if np.isnan(e[str(d)]) else f"{e[str(d)]:.4f}" for d in DROPS]
        lines.append(table_row(f"{split}: calibration error", cells))
    return lines


def write(out: Path, rows: Sequence[dict]) -> dict:
    """``collection.json``, ``collection.md`` and ``collection.png`` (the test table as bars) in ``out``."""
    summary = summarise(rows)
    (out / "collection.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(12, 4))
    shown = ["distill", "pre", summary["variant"], "superpoint"]
    cats = [c for c in summary["tables"]["test"]]
    for k, m in enumerate(shown):
        vals = [summary["tables"]["test"][c][m] or 0 for c in cats]
        ax.bar(np.arange(len(cats)) + (k - 1.5) * 0.2, vals, 0.2, label=m)
    ax.set_xticks(np.arange(len(cats)), cats)
    ax.set_ylabel("mIoU (%)")
    ax.legend()
    write_report(out, "collection", markdown(summary), fig, "Collection mode on the test split (realistic box teacher)")
    return summary


def _collections(rows: Sequence[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], tuple(r["collection"])), []).append(r)
    return groups


def _mean(values: Sequence[float]) -> float | None:
    return round(float(np.mean(values)), 1) if values else None
