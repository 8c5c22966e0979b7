"""``partdistill bench points``: every method on point clouds sampled from the real meshes.

The clouds are sampled from the meshes of ``psb.py``, captured as a user's point cloud would be
(numpy surfels, normals estimated, no Blender), segmented by every method with a SIMULATED teacher,
scored per point (mIoU over points, each point labelled with the part of the face it was sampled on).
With ``collection``, each category's clouds of the split are also labelled together, as ``partdistill
batch`` labels a folder of clouds: by one category student (``collection-pre``, the paper's Pre) and
by collection mode's defaults (``collection``), flags included, and on request by collection mode in
the files' own frame (``collection-given``, ``--frame given``); with both splits, a category's 8
clouds are one collection.

Every run is a line of ``points.jsonl`` (resumable); ``points.md`` is the table and the flags' figures."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from partdistill.backend.collection import review_members, segment_collection
from partdistill.backend.metrics import shape_miou
from partdistill.backend.pipeline.sample import sample_surface
from partdistill.backend.tta import segment
from partdistill.shared.capture import Capture, Mesh, PointCloud
from partdistill.shared.detections import Detections
from partdistill.shared.options import CollectionOptions
from partdistill.shared.point_capture import capture_point_cloud
from partdistill.shared.point_cloud import per_face
from partdistill.shared.request import Member

from .collection_report import precision_recall
from .levels import simulate
from .psb import CATEGORIES, mesh_ids, part_words
from .reporting import table_head, table_row, write_report
from .runlog import Log, RunLog, RunSetup

METHODS = ("vote-fill", "superpoint", "distill")
#: A category's clouds labelled together: one category student (the paper's Pre), collection mode
#: as ``partdistill batch`` runs it by default, and as ``batch --frame given`` runs it (three students
#: in the files' frame on all the points: the default's alternative, run when named).
COLLECTION_METHODS = {
    "collection-pre": CollectionOptions(students=1, frame="given"),
    "collection": CollectionOptions(),
    "collection-given": CollectionOptions(frame="given"),
}
#: What ``collection`` runs when no methods are named.
DEFAULT_COLLECTION = ("collection-pre", "collection")


def split_methods(names: tuple[str, ...] | None, collection: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The per-cloud methods (``METHODS``) and the collection methods (``COLLECTION_METHODS``) that
    ``names`` asks for, in their order; None: every per-cloud method, and ``DEFAULT_COLLECTION`` with
    ``collection``. Raises ValueError naming an unknown method."""
    if names is None:
        return METHODS, DEFAULT_COLLECTION if collection else ()
    unknown = [n for n in names if n not in METHODS and n not in COLLECTION_METHODS]
    if unknown:
        known = ", ".join((*METHODS, *COLLECTION_METHODS))
        raise ValueError(f"unknown method {unknown[0]!r} (known: {known})")
    return tuple(m for m in METHODS if m in names), tuple(m for m in COLLECTION_METHODS if m in names)


@dataclass
class Cloud:
    """A sampled, captured cloud: ``labels`` ``(N,) int32`` each point's true part; ``dets`` its
    simulated detections per noise level, made once and shared by every method."""

    key: str
    category: str
    mesh_id: int
    split: str
    labels: np.ndarray
    names: tuple[str, ...]
    capture: Capture
    capture_s: float
    dets: dict[str, Detections] = field(default_factory=dict)

    def detections(self, level: str) -> Detections:
        if level not in self.dets:
            self.dets[level] = simulate(self.capture, level, "box", seed=1000 + self.mesh_id)
        return self.dets[level]


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
    split: str | None = "test",
    categories: tuple[str, ...] = CATEGORIES,
    per_category: int | None = None,
    n_points: int = 20_000,
    levels=("perfect", "realistic"),
    methods: tuple[str, ...] = METHODS,
    collection: tuple[str, ...] = (),
    setup: RunSetup | None = None,
    log: Log = print,
) -> list[dict]:
    """Run what is missing from ``out/points.jsonl``; returns every row asked for. ``methods``: of
    ``METHODS``, each cloud alone. ``collection``: of ``COLLECTION_METHODS``, each category's clouds
    together; with ``split`` None a category's clouds of both splits are one collection (the fits see
    detections, never labels; each row keeps its cloud's split)."""
    setup = setup or RunSetup()
    options, views, resolution = setup.options, setup.views, setup.resolution
    runs = RunLog.open(out / "points.jsonl")
    shapes = mesh_ids(data, categories, split, per_category)
    tag = f"{n_points}/{views}/{resolution}"
    for cat in dict.fromkeys(c for c, _, _ in shapes):
        clouds: dict[int, Cloud] = {}  # a category's clouds, captured when a run first needs them

        def load(mesh_id: int, sp: str, cat: str = cat, clouds: dict = clouds) -> Cloud:
            if mesh_id not in clouds:
                clouds[mesh_id] = _capture(data, cat, mesh_id, sp, n_points, views, resolution)
            return clouds[mesh_id]

        group = [(i, sp) for c, i, sp in shapes if c == cat]
        for mesh_id, sp in group:
            keys = (
                ((level, m), f"{cat}_{mesh_id}/{tag}/{level}/{m}/{options.epochs}/{options.seed}")
                for level in levels
                for m in methods
            )
            for (level, m), run_key in runs.missing(keys):
                c = load(mesh_id, sp)
                t = time.perf_counter()
                res = segment(c.capture, c.names, options=replace(options, method=m), detections=c.detections(level))
                row = _row(c, run_key, level, m, res.polygon_labels, time.perf_counter() - t, res.warnings)
                runs.add(row)
                log(f"{c.key:>12} {level:9} {m:10} mIoU {row['miou']:5.1f}  {row['seconds']:5.1f} s")
        if not collection:
            continue
        members = "+".join(f"{cat}_{i}" for i, _ in group)
        for level in levels:
            for m in collection:
                copts = COLLECTION_METHODS[m]
                # the collection's options too: rows of an earlier default are not this default's
                what = f"{members}/{options.to_dict()}/{copts.to_dict()}"
                digest = hashlib.sha1(what.encode()).hexdigest()[:8]
                keys = [f"{cat}_{i}/{tag}/{level}/{m}/{digest}" for i, _ in group]
                if runs.all_done(keys):
                    continue
                cs = [load(i, sp) for i, sp in group]
                batch = [Member(c.capture, c.detections(level)) for c in cs]
                t = time.perf_counter()
                res = segment_collection(batch, cs[0].names, options, copts)
                review_members(batch, res, cs[0].names)
                each = (time.perf_counter() - t) / len(cs)
                for c, r, key, err in zip(cs, res.results, keys, res.errors, strict=True):
                    if r is None:
                        log(f"{c.key}: {m} failed: {err}")
                        continue
                    row = _row(c, key, level, m, r.polygon_labels, each, r.warnings)
                    runs.add(row)
                    log(f"{c.key:>12} {level:9} {m:14} mIoU {row['miou']:5.1f}  {row['seconds']:5.1f} s")
    return runs.rows


def _capture(data: Path, cat: str, mesh_id: int, split: str, n_points: int, views: int, resolution: int) -> Cloud:
    key = f"{cat}_{mesh_id}"
    pts, labels, names = sample_cloud(data, key, n_points)
    t = time.perf_counter()
    cap = capture_point_cloud(PointCloud(pts), n_views=views, resolution=resolution)
    took = time.perf_counter() - t
    cap.part_names, cap.gt_face_labels = names, per_face(labels)
    return Cloud(key, cat, mesh_id, split, labels, names, cap, took)


def _row(c: Cloud, key: str, level: str, method: str, labels: np.ndarray, seconds: float, warnings) -> dict:
    miou = shape_miou(labels, c.labels, len(c.names), np.ones(len(c.labels)))
    return {
        "key": key,
        "shape": c.key,
        "category": c.category,
        "split": c.split,
        "level": level,
        "method": method,
        "miou": round(100 * miou, 2),
        "seconds": round(seconds, 2),
        "capture_s": round(c.capture_s, 2),
        "warnings": list(warnings),
    }


def report(rows: list[dict], out: Path) -> str:
    """``points.md``: per split and level, mIoU per category and method (the best of each row in
    bold), then the warnings' figures per method (as ``bench real --collection`` counts them)."""
    lines = []
    order = (*METHODS, *COLLECTION_METHODS)
    for split, level in dict.fromkeys((r["split"], r["level"]) for r in rows):
        sub = [r for r in rows if r["level"] == level and r["split"] == split]
        methods = [m for m in order if any(r["method"] == m for r in sub)]
        cats = [c for c in CATEGORIES if any(r["category"] == c for r in sub)]
        n = len({r["shape"] for r in sub})
        lines += [f"**{split}, {level}** ({n} point clouds)", "", *table_head("Category", methods)]
        for c in [*cats, "Overall"]:
            of = [[r["miou"] for r in sub if r["method"] == m and c in ("Overall", r["category"])] for m in methods]
            vals = [np.mean(v) if v else -1.0 for v in of]  # a method with no run there (it failed) gets ""
            best = int(np.argmax(vals))
            cells = ("" if v < 0 else f"**{v:.1f}**" if i == best else f"{v:.1f}" for i, v in enumerate(vals))
            lines.append(table_row(c, cells))
        secs = [np.mean([r["seconds"] for r in sub if r["method"] == m]) for m in methods]
        lines += [table_row("seconds per cloud", (f"{s:.2f}" for s in secs)), ""]
        lines += table_head("warnings", ("clouds", "below 25", "warned", "recall (%)", "precision (%)"))
        for m in methods:
            of = [r for r in sub if r["method"] == m]
            pr = precision_recall(of, {r["key"]: bool(r["warnings"]) for r in of})
            figures = ("shapes", "below_recall_line", "warned", "recall", "precision")
            lines.append(table_row(m, (str(pr[k]) for k in figures)))
        lines.append("")
    caps = [r["capture_s"] for r in rows]
    if caps:
        lines.append(f"Capture (numpy surfels, 10 views): {np.mean(caps):.2f} s per cloud on average.")
    return write_report(out, "points", lines)
