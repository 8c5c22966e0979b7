"""``partdistill bench teacher``: each teacher at its published size against a plain transformers loop.

Every teacher is built at random with the published checkpoint's configuration (``full_size_teachers``,
or the tiny ones of ``random_teachers`` with ``tiny``), saved as a folder and loaded through the
product's real ``from_pretrained`` path. On the captured views of the example chair and of a
30,000-face chair it runs, each in a process of its own (so that its peak memory is its own): a
plain transformers loop (processor defaults, one view per forward, fp32, inference mode, the
processor's post-processing), the product's default, and each lever (``LEVERS``). Printed per
teacher: seconds per view, views per forward, peak RSS (and CUDA's peak where a GPU runs it), system
seconds and minor page faults, the teacher's share of one shape's end-to-end time, and how much each
lever's detections agree with the default's (mean best IoU of same-part boxes, both ways).
"""

from __future__ import annotations

import json
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from partdistill.shared.bundle import load_bundle
from partdistill.shared.capture import Capture
from partdistill.shared.detections import Detection, Detections

from .full_size_teachers import FULL_SIZE, build_full
from .reporting import pyplot, table_head, table_row, write_report
from .runlog import Log

#: lever -> the teacher's settings; "plain loop" is transformers alone, "default" the product's.
LEVERS: dict[str, dict | None] = {
    "plain loop": None,
    "default": {},
    "4 views per forward": {"batch_size": 4},
    "system allocator": {"allocator": "system"},
    "render size": {"keep_render_size": True},
    "bf16": {"precision": "bf16"},
    "fp16": {"precision": "fp16"},
    "int8": {"precision": "int8"},
}
#: The parts asked for on the chairs.
PARTS = ("seat", "back", "leg", "arm")
TINY = {
    "grounding-dino-tiny": "build_tiny_grounding_dino",
    "owlv2-base": "build_tiny_owlv2",
    "clipseg-rd64": "build_tiny_clipseg",
    "sam-vit-base": "build_tiny_sam",
}


def run(
    cache: Path,
    out: Path,
    *,
    models: tuple[str, ...] = ("grounding-dino-tiny",),
    levers: tuple[str, ...] = tuple(LEVERS),
    views: int = 10,
    resolution: int = 512,
    device: str = "cpu",
    tiny: bool = False,
    large: bool = True,
    log: Log = print,
) -> dict:
    """Measure ``levers`` of ``models`` (``FULL_SIZE`` names) on the chairs; writes
    ``out/teacher.json``, ``teacher.md`` and ``teacher.png`` and returns the figures."""
    unknown = [m for m in models if m not in FULL_SIZE] + [v for v in levers if v not in LEVERS]
    if unknown:
        raise ValueError(f"unknown models or levers {unknown}; models: {', '.join(FULL_SIZE)}")
    meshes = _captures(cache / "captures", views, resolution, large, log)
    rows = []
    for name in models:
        folder = _model(cache / ("tiny" if tiny else "full"), name, tiny, log)
        teacher = FULL_SIZE[name][0]
        for mesh, (cap, capture_s) in meshes.items():
            default = None
            for lever in ("default", *[v for v in levers if v != "default"]):
                why = _not_here(teacher, lever, device)
                if why:
                    log(f"{name} {mesh} {lever}: skipped ({why})")
                    continue
                job = {"folder": str(folder), "teacher": teacher, "lever": lever, "device": device}
                job |= {"images": cap.rgb, "boxes": _boxes(cap) if teacher == "sam" else None}
                with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                    got = pool.submit(_measure, job).result()
                det = got.pop("detections")
                if lever == "default":
                    default = det
                    got["end_to_end_s"] = capture_s + got["seconds"] + _rest_seconds(cap)
                    got["teacher_share"] = got["seconds"] / got["end_to_end_s"]
                if det is not None and default is not None:
                    got["agreement"] = agreement(default, det)
                row = {"model": name, "mesh": mesh, "faces": cap.mesh.n_faces, "lever": lever, **got}
                rows.append(row)
                log(_line(row))
    for r in rows:
        base = next(x for x in rows if x["model"] == r["model"] and x["mesh"] == r["mesh"] and x["lever"] == levers[0])
        r["ratio_to_" + levers[0].replace(" ", "_")] = r["seconds"] / base["seconds"]
    doc = {"device": device, "tiny": tiny, "views": views, "resolution": resolution, "rows": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "teacher.json").write_text(json.dumps(doc, indent=1, default=float) + "\n")
    _report(out, doc, levers[0])
    return doc


def agreement(a: Detections, b: Detections) -> float:
    """How much ``b`` says what ``a`` says: per detection, the best IoU (boxes, or masks where both
    have them) with a detection of the same part in the same view, averaged over both directions;
    1 when neither has any."""
    scores = [_best(x, vb) for va, vb in zip(a.views, b.views, strict=True) for x in va]
    scores += [_best(y, va) for va, vb in zip(a.views, b.views, strict=True) for y in vb]
    return float(np.mean(scores)) if scores else 1.0


def _best(d: Detection, others: list[Detection]) -> float:
    same = [o for o in others if o.part == d.part]
    if not same:
        return 0.0
    if d.mask is not None and all(o.mask is not None for o in same):
        return max(float((d.mask & o.mask).sum() / max((d.mask | o.mask).sum(), 1)) for o in same)
    return max(_box_iou(d.box, o.box) for o in same)


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union) if union > 0 else 0.0


def _not_here(teacher: str, lever: str, device: str) -> str:
    """Why ``lever`` does not apply to ``teacher`` on ``device`` ("" when it does)."""
    if lever == "render size" and teacher != "grounding_dino":
        return "the model takes one input size"
    if lever == "int8" and device != "cpu":
        return "int8 runs on the CPU"
    if lever == "fp16" and device == "cpu":
        return "fp16 runs on a GPU"
    return ""


def _measure(job: dict) -> dict:
    """In a child process: load the model, run the views once, and say what it cost."""
    import torch
    from partdistill.backend.device import resolve_device

    device = resolve_device(job["device"])
    if LEVERS[job["lever"]] is None or LEVERS[job["lever"]].get("allocator") == "system":
        from partdistill.backend.allocator import ENV_VAR

        os.environ[ENV_VAR] = "system"  # transformers alone, or the product with the C library's allocator
    t = time.perf_counter()
    run = _plain(job, device) if LEVERS[job["lever"]] is None else _product(job, device)
    load_s = time.perf_counter() - t
    before = resource.getrusage(resource.RUSAGE_SELF)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    det, per_forward = run()
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_SELF)
    n = len(job["images"])
    return {
        "load_s": load_s,
        "seconds": seconds,
        "s_per_view": seconds / n,
        "views_per_forward": per_forward,
        "peak_rss_gb": after.ru_maxrss * 1024 / 1e9,
        "cuda_peak_gb": torch.cuda.max_memory_allocated() / 1e9 if device.startswith("cuda") else None,
        "system_s": after.ru_stime - before.ru_stime,
        "minor_faults": after.ru_minflt - before.ru_minflt,
        "detections": det,
    }


def _product(job: dict, device: str):
    from partdistill.backend.teachers import make_teacher
    from partdistill.backend.teachers.sam import SamRefiner

    settings = {k: v for k, v in LEVERS[job["lever"]].items() if k != "allocator"}
    images = job["images"]
    if job["teacher"] == "sam":
        sam = SamRefiner(job["folder"], device=device, **settings)
        given = Detections(PARTS, [[Detection(k % len(PARTS), 1.0, b) for k, b in enumerate(v)] for v in job["boxes"]])
        return lambda: (sam.refine(images, given), min(sam.views_per_forward(), len(images)))
    teacher = make_teacher(job["teacher"], job["folder"], device=device, **settings)
    return lambda: (teacher.detect(images, PARTS), min(teacher.views_per_forward(), len(images)))


def _plain(job: dict, device: str):
    """transformers alone: processor defaults, one view per forward, fp32, inference mode."""
    import torch
    import transformers as tf

    processor = tf.AutoProcessor.from_pretrained(job["folder"])
    kind = {
        "grounding_dino": tf.AutoModelForZeroShotObjectDetection,
        "owlv2": tf.Owlv2ForObjectDetection,
        "clipseg": tf.CLIPSegForImageSegmentation,
        "sam": tf.SamModel,
    }[job["teacher"]]
    model = kind.from_pretrained(job["folder"]).eval().to(device)
    images = job["images"]
    size = [images.shape[1:3]]

    def loop():
        with torch.inference_mode():
            for k, view in enumerate(images):
                if job["teacher"] == "grounding_dino":
                    inputs = processor(images=view, text=". ".join(PARTS) + ".", return_tensors="pt").to(device)
                    out = model(**inputs)
                    processor.post_process_grounded_object_detection(out, inputs.input_ids, target_sizes=size)
                elif job["teacher"] == "owlv2":
                    inputs = processor(text=[list(PARTS)], images=view, return_tensors="pt").to(device)
                    processor.post_process_grounded_object_detection(model(**inputs), threshold=0.1, target_sizes=size)
                elif job["teacher"] == "clipseg":
                    inputs = processor(
                        text=list(PARTS), images=[view] * len(PARTS), padding=True, return_tensors="pt"
                    ).to(device)
                    torch.sigmoid(model(**inputs).logits)
                else:
                    boxes = [[b.tolist() for b in job["boxes"][k]]]
                    inputs = processor(images=view, input_boxes=boxes, return_tensors="pt").to(device)
                    out = model(**inputs, multimask_output=True)
                    processor.post_process_masks(
                        out.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"]
                    )
        return None, 1

    return loop


def _boxes(cap: Capture) -> list[list[np.ndarray]]:
    """SAM's prompts: per view, the object's box cut into three horizontal bands."""
    out = []
    for fid in cap.face_id:
        ys, xs = np.nonzero(fid >= 0)
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        cuts = np.linspace(y0, y1, 4)
        out.append([np.array([x0, cuts[k], x1, cuts[k + 1]], np.float32) for k in range(3)])
    return out


def _rest_seconds(cap: Capture) -> float:
    """Seconds of one shape's lifting, distillation and labelling after the teacher, on boxes of
    three bands of the object per view (a random teacher's own boxes mean nothing)."""
    from partdistill.backend.tta import segment

    bands = Detections(PARTS, [[Detection(k, 0.9, b) for k, b in enumerate(v)] for v in _boxes(cap)])
    t = time.perf_counter()
    segment(cap, PARTS, detections=bands)
    return time.perf_counter() - t


def _captures(folder: Path, views: int, resolution: int, large: bool, log: Log) -> dict:
    """name -> (capture, capture seconds) of the example chair and (``large``) a 30,000-face chair,
    captured through headless Blender once and cached with the time it took."""
    from partdistill.backend.io.inputs import capture_in_blender

    from .families import make_shape
    from .speed import _subdivide_to

    folder.mkdir(parents=True, exist_ok=True)
    example = Path(__file__).resolve().parents[1] / "examples" / "chair" / "chair.obj"
    meshes = {"example chair": example}
    if large:
        obj = folder / "chair_30k.obj"
        if not obj.exists():
            _subdivide_to(make_shape("chair", 0), 30_000).write_obj(obj)
        meshes["30k-face chair"] = obj
    out = {}
    for name, obj in meshes.items():
        bundle = folder / f"{obj.stem}_v{views}_r{resolution}.npz"
        timing = bundle.with_suffix(".json")
        if not bundle.exists():
            log(f"capturing {name} ({views} views, {resolution} px)")
            t = time.perf_counter()
            capture_in_blender(obj, bundle, views=views, resolution=resolution, quiet=True)
            timing.write_text(json.dumps({"seconds": time.perf_counter() - t}))
        cap = load_bundle(bundle)
        cap.part_names = PARTS
        out[name] = (cap, json.loads(timing.read_text())["seconds"])
    return out


def _model(folder: Path, name: str, tiny: bool, log: Log) -> Path:
    path = folder / name
    if not (path / "config.json").exists():
        log(f"building {'a tiny' if tiny else 'the full-size'} random {name} in {path}")
        if tiny:
            from . import random_teachers

            getattr(random_teachers, TINY[name])(path)
        else:
            build_full(name, path)
    return path


def _line(r: dict) -> str:
    agree = f"  agreement {r['agreement']:.3f}" if "agreement" in r else ""
    share = f"  {100 * r['teacher_share']:.0f} % of end to end" if "teacher_share" in r else ""
    return (
        f"{r['model']:>20} {r['mesh']:>15} {r['lever']:>20}: {r['s_per_view']:6.2f} s/view, "
        f"{r['views_per_forward']} per forward, peak RSS {r['peak_rss_gb']:.2f} GB, system {r['system_s']:.1f} s, "
        f"{r['minor_faults']:,} faults{share}{agree}"
    )


def _report(out: Path, doc: dict, base: str) -> None:
    rows = doc["rows"]
    key = "ratio_to_" + base.replace(" ", "_")
    cols = ["s/view", f"x {base}", "per forward", "peak RSS (GB)", "system s", "faults", "share", "agreement"]
    lines = [f"Device {doc['device']}, {doc['views']} views of {doc['resolution']} px.", ""]
    lines += table_head("model, mesh, lever", cols)
    for r in rows:
        cells = [
            f"{r['s_per_view']:.2f}",
            f"{r[key]:.2f}",
            str(r["views_per_forward"]),
            f"{r['peak_rss_gb']:.2f}",
            f"{r['system_s']:.1f}",
            f"{r['minor_faults']:,}",
            f"{100 * r['teacher_share']:.0f} %" if "teacher_share" in r else "",
            f"{r['agreement']:.3f}" if "agreement" in r else "",
        ]
        lines.append(table_row(f"{r['model']}, {r['mesh']}, {r['lever']}", cells))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(rows) + 1.5))
    labels = [f"{r['model']} / {r['mesh']} / {r['lever']}" for r in rows]
    ax.barh(np.arange(len(rows)), [r["s_per_view"] for r in rows])
    ax.set_yticks(np.arange(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds per view")
    write_report(out, "teacher", lines, fig, f"Teachers at full size on {doc['device']} (lower is faster)")
