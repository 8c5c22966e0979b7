"""``partdistill bench points``: every method on point clouds sampled from the real meshes.

The clouds are sampled from the meshes of ``psb.py``, captured as a user's point cloud would be
(numpy surfels, normals estimated, no Blender), segmented by every method with a SIMULATED teacher,
scored per point (mIoU over points, each point labelled with the part of the face it was sampled on).

Every run is a line of ``points.jsonl`` (resumable); ``points.md`` is the table."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from partdistill.backend.metrics import shape_miou
from partdistill.backend.pipeline.sample import sample_surface
from partdistill.backend.tta import segment
from partdistill.shared.capture import Mesh, PointCloud
from partdistill.shared.point_capture import capture_point_cloud
from partdistill.shared.point_cloud import per_face

from .levels import simulate
from .psb import CATEGORIES, mesh_ids, part_words
from .reporting import table_head, table_row, write_report
from .runlog import Log, RunLog, RunSetup

METHODS = ("vote-fill", "superpoint", "distill")


def sample_cloud(data: Path, key: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``n`` points sampled uniformly on the surface of development mesh ``key`` (``Cat_id``), the
    part of each point's face, and the category's part words."""
    cat = key.split("_")[0]
    with np.load(data / "psb-dev.npz") as z:
        v, f, lab = z[f"{key}_vertices"], z[f"{key}_faces"], z[f"{key}_labels"]
    pts = sample_surface(Mesh(v, f.astype(np.int32)), n, seed=seed)
    names = part_words(data, cat)
    return pts.xyz, lab[pts.face].astype(np.int32), names


def run(
    data: Path,
    out: Path,
    *,
    split: str = "test",
    per_category: int | None = None,
    n_points: int = 20_000,
    levels=("perfect", "realistic"),
    methods=METHODS,
    setup: RunSetup | None = None,
    log: Log = print,
) -> list[dict]:
    """Run what is missing from ``out/points.jsonl``; returns every row asked for."""
    setup = setup or RunSetup()
    options, views, resolution = setup.options, setup.views, setup.resolution
    runs = RunLog.open(out / "points.jsonl")
    for cat, mesh_id, sp in mesh_ids(data, CATEGORIES, split, per_category):
        key = f"{cat}_{mesh_id}"
        cap = None
        keys = (
            ((level, m), f"{key}/{n_points}/{views}/{resolution}/{level}/{m}/{options.epochs}/{options.seed}")
            for level in levels
            for m in methods
        )
        for (level, m), run_key in runs.missing(keys):
            if cap is None:
                pts, labels, names = sample_cloud(data, key, n_points)
                t = time.perf_counter()
                cap = capture_point_cloud(PointCloud(pts), n_views=views, resolution=resolution)
                capture_s = time.perf_counter() - t
                cap.part_names, cap.gt_face_labels = names, per_face(labels)
            det = simulate(cap, level, "box", seed=1000 + mesh_id)
            t = time.perf_counter()
            res = segment(cap, names, options=replace(options, method=m), detections=det)
            miou = shape_miou(res.polygon_labels, labels, len(names), np.ones(len(labels)))
            row = {
                "key": run_key,
                "shape": key,
                "category": cat,
                "split": sp,
                "level": level,
                "method": m,
                "miou": round(100 * miou, 2),
                "seconds": round(time.perf_counter() - t, 2),
                "capture_s": round(capture_s, 2),
                "warnings": list(res.warnings),
            }
            runs.add(row)
            log(f"{key:>12} {level:9} {m:10} mIoU {row['miou']:5.1f}  {row['seconds']:5.1f} s")
    return runs.rows


def report(rows: list[dict], out: Path) -> str:
    """``points.md``: per level, mIoU per category and method (the best of each row in bold)."""
    lines = []
    for level in dict.fromkeys(r["level"] for r in rows):
        sub = [r for r in rows if r["level"] == level]
        methods = [m for m in METHODS if any(r["method"] == m for r in sub)]
        cats = [c for c in CATEGORIES if any(r["category"] == c for r in sub)]
        lines += [f"**{level}** ({len({r['shape'] for r in sub})} point clouds)", "", *table_head("Category", methods)]
        for c in [*cats, "Overall"]:
            vals = [
                np.mean([r["miou"] for r in sub if r["method"] == m and c in ("Overall", r["category"])])
                for m in methods
            ]
            best = int(np.argmax(vals))
            lines.append(table_row(c, (f"**{v:.1f}**" if i == best else f"{v:.1f}" for i, v in enumerate(vals))))
        secs = [np.mean([r["seconds"] for r in sub if r["method"] == m]) for m in methods]
        lines += [table_row("seconds per cloud", (f"{s:.2f}" for s in secs)), ""]
    caps = [r["capture_s"] for r in rows]
    if caps:
        lines.append(f"Capture (numpy surfels, 10 views): {np.mean(caps):.2f} s per cloud on average.")
    return write_report(out, "points", lines)
