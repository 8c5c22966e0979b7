"""``partdistill bench speed``: the cost of TTA and Pre prediction against voting.

CPU (or GPU) seconds on a ~10k-face mesh with 10 views of 512², printed as figures and as ratios
against voting measured in the same run (machines are shared and noisy: never assert on seconds)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from partdistill.backend.io.inputs import capture_in_blender
from partdistill.backend.pre import TrainingShape, fit, predict
from partdistill.backend.tta import segment
from partdistill.shared.bundle import load_bundle, save_bundle
from partdistill.shared.options import SegmentOptions

from .capture_cache import attach_ground_truth
from .families import make_shape
from .quality import simulated
from .shapes import LabelledShape


def speed(
    data: Path, *, repeats: int = 3, options: SegmentOptions | None = None, large_faces: int = 1_000_000, log=print
) -> dict:
    """Time TTA and Pre prediction on a ~10k-face mesh with 10 views of 512² (captured once, cached),
    and the stages of one TTA run on a mesh of ``large_faces`` faces (0: skip it)."""
    options = (options or SegmentOptions()).validate()
    cap = _speed_capture(Path(data))
    det = simulated(cap, "box", 0)
    names = cap.part_names
    figures: dict[str, list[float]] = {"vote": [], "tta": [], "pre_predict": []}
    ckpt = None
    for _ in range(repeats):
        t = time.perf_counter()
        segment(cap, names, options=replace(options, method="vote"), detections=det)
        figures["vote"].append(time.perf_counter() - t)
        t = time.perf_counter()
        segment(cap, names, options=options, detections=det)
        figures["tta"].append(time.perf_counter() - t)
        if ckpt is None:
            ckpt = fit([TrainingShape(cap, det)], names, replace(options, epochs=10))
        t = time.perf_counter()
        predict(cap, ckpt, device=options.device)
        figures["pre_predict"].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) for k, v in figures.items()}
    capture_s = {
        f"{e}_{n // 1000}k": _capture_seconds(Path(data), e, n)
        for n in (10_000, 30_000)
        for e in ("raster", "workbench")
    }
    out = {
        "mesh_faces": cap.mesh.n_faces,
        "views": cap.n_views,
        "image": list(cap.image_size),
        "device": "cuda" if torch.cuda.is_available() and options.device != "cpu" else "cpu",
        "threads": torch.get_num_threads(),
        "median_seconds": med,
        "ratio_to_vote": {k: med[k] / med["vote"] for k in ("tta", "pre_predict")},
        "capture_seconds_per_view": capture_s,
    }
    log(
        f"{out['mesh_faces']} faces, {out['views']} views of {out['image'][1]}x{out['image'][0]}, {out['device']}, "
        f"{out['threads']} threads, median of {repeats}:"
    )
    for k, v in med.items():
        log(
            f"  {k:>12}: {v:7.3f} s"
            + (f"   ({out['ratio_to_vote'][k]:.1f}x voting)" if k in out["ratio_to_vote"] else "")
        )
    for k, c in capture_s.items():
        log(
            f"  capture per 512² view, {k} ({c['faces']} faces): {c['total']:.3f} s = render {c['render']:.3f} + "
            f"face ids {c['face_ids']:.3f} + read {c['read']:.3f} (start-up {c['setup']:.2f} s once per capture)"
        )
    for n in ("10k", "30k"):
        r, w = capture_s[f"raster_{n}"]["total"], capture_s[f"workbench_{n}"]["total"]
        log(f"  capture {n}: raster / workbench = {r / w:.2f}")
    if large_faces:
        out["large_mesh"] = large = _large_mesh_stages(Path(data), large_faces, options)
        t = large["seconds"]
        log(
            f"  one TTA run on {large['faces']:,} faces: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in t.items())
            + f"; labelling is {t['label'] / t['distill']:.2f}x the distillation"
        )
    return out


def _large_mesh_stages(data: Path, n_faces: int, options: SegmentOptions) -> dict:
    """Seconds of each stage of one TTA run (default options, simulated boxes) on a chair whose
    triangles are each split into k² to reach about ``n_faces`` (captured once, cached)."""
    path = data / "speed" / f"chair_{n_faces // 1000}k_fine_v10_r512.npz"
    if path.exists():
        cap = load_bundle(path)
    else:
        shape = _split_triangles_to(make_shape("chair", 0), n_faces)
        path.parent.mkdir(parents=True, exist_ok=True)
        obj = shape.write_obj(path.with_suffix(".obj"))
        capture_in_blender(obj, path, views=10, resolution=512, quiet=True)
        cap = attach_ground_truth(load_bundle(path), shape)
        save_bundle(path, cap)
    det = simulated(cap, "box", 0)
    t = time.perf_counter()
    result = segment(cap, cap.part_names, options=options, detections=det)
    seconds = {k: float(result.timings[k]) for k in ("lift", "distill", "label")}
    return {"faces": cap.mesh.n_faces, "seconds": {**seconds, "total": time.perf_counter() - t}}


def _split_triangles_to(shape: LabelledShape, n_faces: int) -> LabelledShape:
    """Every triangle of ``shape``'s fan triangulation split into k² (k the least giving ``n_faces``),
    as a scanner or a remesher makes a fine mesh of a simple one; labels carried along."""
    faces, owner = shape.triangles()
    k = int(np.ceil(np.sqrt(n_faces / len(faces))))
    grid = [(i, j) for i in range(k + 1) for j in range(k + 1 - i)]
    index = {ij: n for n, ij in enumerate(grid)}
    small = []
    for i in range(k):
        for j in range(k - i):
            small.append((index[i, j], index[i + 1, j], index[i, j + 1]))
            if j < k - i - 1:
                small.append((index[i + 1, j], index[i + 1, j + 1], index[i, j + 1]))
    bary = np.array([(1 - (i + j) / k, i / k, j / k) for i, j in grid])
    verts = np.einsum("pk,tkd->tpd", bary, shape.vertices[faces].astype(np.float64)).reshape(-1, 3)
    tris = (np.array(small)[None] + (np.arange(len(faces)) * len(grid))[:, None, None]).reshape(-1, 3)
    labels = np.repeat(shape.labels[owner], len(small))
    return LabelledShape(shape.part_names, verts.astype(np.float32), tris.tolist(), labels.astype(np.int32))


def _capture_seconds(data: Path, engine: str, n_faces: int, views: int = 10) -> dict[str, float]:
    """One fresh headless capture of a chair subdivided to at least ``n_faces`` triangles with ``engine``:
    seconds per view, render and face ids apart (face ids: the rasteriser's z-buffer or ray casting)."""
    import json
    import subprocess
    import sys
    import tempfile

    from partdistill.backend.io.inputs import blender_env

    obj = data / "speed" / f"chair_{n_faces // 1000}k.obj"
    if not obj.exists():
        obj.parent.mkdir(parents=True, exist_ok=True)
        _subdivide_to(make_shape("chair", 0), n_faces).write_obj(obj)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "partdistill.blender_addon.headless",
            "capture",
            str(obj),
            f"{tmp}/c.npz",
            "--views",
            str(views),
            "--resolution",
            "512",
            "--timings",
            "--engine",
            engine,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=blender_env())
        faces = int(np.load(f"{tmp}/c.npz")["faces"].shape[0])
    t = json.loads(proc.stdout.strip().splitlines()[-1])
    per = {
        "render": t["render_s"] / views,
        "face_ids": (t["raycast_s"] + t.get("raster_s", 0.0)) / views,
        "read": t["read_s"] / views,
    }
    return {**per, "total": sum(per.values()), "setup": t["setup_s"], "faces": faces}


def _speed_capture(data: Path):
    """A chair subdivided to ~10k faces, captured with 10 views of 512² (cached)."""
    path = data / "speed" / "chair_10k_v10_r512.npz"
    if path.exists():
        return load_bundle(path)
    shape = _subdivide_to(make_shape("chair", 0), 10_000)
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = shape.write_obj(path.with_suffix(".obj"))
    capture_in_blender(obj, path, views=10, resolution=512, quiet=True)
    cap = attach_ground_truth(load_bundle(path), shape)
    save_bundle(path, cap)
    return cap


def _subdivide_to(shape, n_faces: int):
    """Split every quad into 4 until the triangle count reaches ``n_faces`` (labels carried along)."""
    while len(shape.triangles()[0]) < n_faces:
        verts = [tuple(v) for v in shape.vertices]
        polys, labels = [], []
        for poly, lab in zip(shape.polygons, shape.labels, strict=True):
            if len(poly) != 4:
                polys.append(poly)
                labels.append(lab)
                continue
            a, b, c, d = (np.asarray(verts[i]) for i in poly)
            new = [(a + b) / 2, (b + c) / 2, (c + d) / 2, (d + a) / 2, (a + b + c + d) / 4]
            ids = list(range(len(verts), len(verts) + 5))
            verts += [tuple(p) for p in new]
            ab, bc, cd, da, m = ids
            for q in ([poly[0], ab, m, da], [ab, poly[1], bc, m], [m, bc, poly[2], cd], [da, m, cd, poly[3]]):
                polys.append(q)
                labels.append(lab)
        shape = LabelledShape(shape.part_names, np.asarray(verts, np.float32), polys, np.asarray(labels, np.int32))
    return shape
