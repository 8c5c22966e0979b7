"""The real-mesh benchmark's report, from the runs of ``real.py``.

Per split, teacher and noise level, a per-category table of every method (the paper's Table A
layout) with the strongest baseline beside the distillation, mIoU2D before/after backward
distillation, seconds per shape, how often confident faces are right, the shapes that failed (and
whether they said so), and a picture grid."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .real import BASELINES, CONFIDENCE_BINS, METHODS, labels_path
from .reporting import table_head, table_row

FAILED = 20.0  # mIoU below this is a failed shape: it must carry a warning


def summarise(rows: Sequence[dict], main: str = "distill") -> dict:
    """Tables from the runs. ``main``: the method the targets are about."""
    by = defaultdict(list)
    for r in rows:
        by[(r["split"], r["teacher"], r["level"])].append(r)
    tables = {}
    for (split, teacher, level), rs in sorted(by.items()):
        cats = list(dict.fromkeys(r["category"] for r in rs))
        methods = [m for m in METHODS if any(r["method"] == m for r in rs)]
        cell = defaultdict(list)
        for r in rs:
            cell[(r["method"], r["category"])].append(r)
        miou = {m: {c: _mean(x["miou"] for x in cell[(m, c)]) for c in cats} for m in methods}
        for m in methods:
            miou[m]["Overall"] = _mean(v for c, v in miou[m].items() if c != "Overall" and v is not None)
        t = {"categories": cats, "methods": methods, "miou": miou, "n_shapes": len({r["shape"] for r in rs})}
        t["seconds"] = {m: _mean(x["seconds"] for x in rs if x["method"] == m) for m in methods}
        t["miou2d"] = {
            m: {w: _mean(x.get(f"miou2d_{w}") for x in rs if x["method"] == m) for w in ("before", "after")}
            for m in methods
            if any("miou2d_before" in x for x in rs if x["method"] == m)
        }
        t["confidence"] = {m: _reliability([x for x in rs if x["method"] == m]) for m in methods}
        t["failed"] = {
            m: [
                {"shape": x["shape"], "miou": x["miou"], "warned": bool(x["warnings"])}
                for x in rs
                if x["method"] == m and x["miou"] < FAILED
            ]
            for m in methods
        }
        base = [b for b in BASELINES if b in methods and miou[b]["Overall"] is not None]
        if main in methods and base:
            best = max(base, key=lambda b: miou[b]["Overall"])
            t["versus_baseline"] = {
                "strongest_baseline": best,
                "gain_overall": round(miou[main]["Overall"] - miou[best]["Overall"], 2),
                "categories_ahead_of_it": sum(miou[main][c] > miou[best][c] for c in cats),
                "categories_ahead_of_every_baseline": sum(miou[main][c] > max(miou[b][c] for b in base) for c in cats),
                "n_categories": len(cats),
            }
        tables[f"{split}/{teacher}/{level}"] = t
    return tables


def markdown(tables: dict) -> str:
    lines = []
    for name, t in tables.items():
        split, teacher, level = name.split("/")
        methods, cats = t["methods"], t["categories"]
        lines += [
            f"### {split} split, {teacher} teacher, {level} noise ({t['n_shapes']} shapes)",
            "",
            *table_head("Category", methods),
        ]
        for c in [*cats, "Overall"]:
            vals = [t["miou"][m][c] for m in methods]
            best = max(v for v in vals if v is not None)
            cells = ["-" if v is None else (f"**{v:.1f}**" if v == best else f"{v:.1f}") for v in vals]
            lines.append(table_row(c, cells))
        lines.append(table_row("seconds per shape", (f"{t['seconds'][m]:.2f}" for m in methods)))
        if "versus_baseline" in t:
            v = t["versus_baseline"]
            lines += [
                "",
                f"distill vs the strongest baseline ({v['strongest_baseline']}): {v['gain_overall']:+.1f} "
                f"overall, ahead in {v['categories_ahead_of_it']} of {v['n_categories']} categories "
                f"({v['categories_ahead_of_every_baseline']} ahead of every baseline).",
            ]
        if t["miou2d"]:
            lines += [
                "",
                "mIoU2D before -> after backward distillation: "
                + "; ".join(
                    f"{m} {d['before']:.1f} -> {d['after']:.1f}"
                    for m, d in t["miou2d"].items()
                    if d["before"] is not None
                ),
            ]
        lines += [
            "",
            "Faces right among those at confidence >= 0.5 / >= 0.8 (share of faces there): "
            + "; ".join(
                f"{m} {c['right_above_0.5']:.0%} / {c['right_above_0.8']:.0%} ({c['share_above_0.5']:.0%} / "
                f"{c['share_above_0.8']:.0%})"
                for m, c in t["confidence"].items()
                if c
            ),
        ]
        failed = {m: f for m, f in t["failed"].items() if f}
        if failed:
            lines += [
                "",
                f"Shapes below {FAILED:.0f} mIoU (warned = the result carried a warning): "
                + "; ".join(
                    f"{m}: " + ", ".join(f"{x['shape']} {x['miou']:.1f}{' warned' if x['warned'] else ''}" for x in f)
                    for m, f in failed.items()
                ),
            ]
        lines.append("")
    return "\n".join(lines)


def write(out: Path, rows: Sequence[dict]) -> dict:
    """results.json, results.md, one picture grid per (split, teacher, level) and, for the first shape,
    a picture of the SIMULATED teacher's detections at every level, into ``out``."""
    from partdistill.shared.bundle import load_bundle

    from .pictures import teacher_levels

    tables = summarise(rows)
    (out / "results.json").write_text(json.dumps(tables, indent=1))
    (out / "results.md").write_text(markdown(tables))
    for name in tables:
        picture_grid(out, [r for r in rows if f"{r['split']}/{r['teacher']}/{r['level']}" == name], name)
    if rows:
        first = rows[0]
        for teacher in dict.fromkeys(r["teacher"] for r in rows):
            path = out / f"teacher_{first['shape']}_{teacher}.png"
            if not path.is_file():
                teacher_levels(load_bundle(first["bundle"]), first["shape"], teacher, first["seed"], path)
    return tables


def picture_grid(out: Path, rows: Sequence[dict], name: str) -> Path | None:
    """One row per category (its first shape of the split), ground truth then every method."""
    from partdistill.backend.io.preview import colour_views
    from partdistill.shared.bundle import load_bundle
    from PIL import Image, ImageDraw

    kept = [r for r in rows if labels_path(out, r).is_file()]
    if not kept:
        return None
    methods = [m for m in METHODS if any(r["method"] == m for r in kept)]
    shapes = list(dict.fromkeys(r["shape"] for r in kept))
    tile, left, top = 150, 90, 18
    canvas = Image.new("RGB", (left + tile * (1 + len(methods)), top + tile * len(shapes)), "white")
    draw = ImageDraw.Draw(canvas)
    for j, m in enumerate(["ground truth", *methods]):
        draw.text((left + j * tile + 4, 3), m, fill="black")
    for i, key in enumerate(shapes):
        row0 = next(r for r in kept if r["shape"] == key)
        cap = load_bundle(row0["bundle"])
        view = int(np.argmax((cap.face_id >= 0).sum(axis=(1, 2))))  # the view showing most of the shape
        draw.text((4, top + i * tile + tile // 2), key, fill="black")
        for j, m in enumerate([None, *methods]):
            r = next((x for x in kept if x["shape"] == key and x["method"] == m), None) if m else None
            if m is not None and r is None:
                continue
            labels = cap.gt_face_labels if m is None else np.load(labels_path(out, r)).astype(np.int32)
            img = Image.fromarray(colour_views(cap, labels)[view]).resize((tile, tile))
            canvas.paste(img, (left + j * tile, top + i * tile))
    path = out / f"segmentations_{name.replace('/', '_')}.png"
    canvas.save(path)
    return path


def _mean(values) -> float | None:
    v = [x for x in values if x is not None]
    return round(float(np.mean(v)), 2) if v else None


def _reliability(rs: Sequence[dict]) -> dict:
    if not rs:
        return {}
    faces = np.sum([r["confidence_faces"] for r in rs], axis=0)
    right = np.sum([r["confidence_right"] for r in rs], axis=0)
    out = {}
    for thr in (0.5, 0.8):
        k = int(round(thr * CONFIDENCE_BINS))
        n = faces[k:].sum()
        out[f"right_above_{thr}"] = float(right[k:].sum() / n) if n else 0.0
        out[f"share_above_{thr}"] = float(n / max(faces.sum(), 1))
    out["bins"] = {"faces": faces.tolist(), "right": right.tolist()}
    return out
