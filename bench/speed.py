"""``partdistill bench speed``: CPU (or GPU) cost of TTA and Pre prediction on a ~10k-face mesh with
10 views of 512², printed as figures and as ratios against voting measured in the same run (machines
are shared and noisy: never assert on seconds)."""

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

from .capture import attach_ground_truth
from .families import make_shape
from .quality import simulated
from .shapes import LabelledShape


def speed(data: Path, *, repeats: int = 3, options: SegmentOptions | None = None, log=print) -> dict:
    """Time TTA and Pre prediction on a ~10k-face mesh with 10 views of 512² (captured once, cached)."""
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
    capture_s = {f"{e}_{n // 1000}k": _capture_seconds(Path(data), e, n) for n in (10_000, 30_000)
                 for e in ("raster", "workbench")}  # fmt: skip
    out = {
        "mesh_faces": cap.mesh.n_faces, "views": cap.n_views, "image": list(cap.image_size),
        "device": "cuda" if torch.cuda.is_available() and options.device != "cpu" else "cpu",
        "threads": torch.get_num_threads(), "median_seconds": med,
        "ratio_to_vote": {k: med[k] / med["vote"] for k in ("tta", "pre_predict")},
        "capture_seconds_per_view": capture_s,
    }  # fmt: skip
    log(f"{out['mesh_faces']} faces, {out['views']} views of {out['image'][1]}x{out['image'][0]}, {out['device']}, "
        f"{out['threads']} threads, median of {repeats}:")  # fmt: skip
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
    return out


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
        cmd = [sys.executable, "-m", "partdistill.blender_addon.headless", "capture", str(obj), f"{tmp}/c.npz",
               "--views", str(views), "--resolution", "512", "--timings", "--engine", engine]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=blender_env())
        faces = int(np.load(f"{tmp}/c.npz")["faces"].shape[0])
    t = json.loads(proc.stdout.strip().splitlines()[-1])
    per = {"render": t["render_s"] / views, "face_ids": (t["raycast_s"] + t.get("raster_s", 0.0)) / views,
           "read": t["read_s"] / views}  # fmt: skip
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
