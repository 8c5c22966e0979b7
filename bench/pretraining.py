"""``partdistill bench pretrain`` and ``partdistill bench backbone``: a pretrained encoder.

A backbone pretrained without labels on the procedural families, and the paper's Fig. B with it.

Pretraining corpus: ``n_per_family`` shapes of each of the 10 procedural families (``families.py``,
random parameters; their part labels are not used), 4096 surface points each. Pretext and format:
``partdistill.backend.backbone``.

Fig. B: test-time distillation of real meshes (SIMULATED realistic box teacher) with three students
that differ only in their encoder: from scratch (the product's default), the pretrained encoder
frozen (the paper's set-up), and the pretrained encoder fine-tuned. The loss and the mIoU (the
student's argmax on the faces, every 5 epochs) are recorded per epoch; the choice is made on the
validation split, the test split is reported."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from partdistill.backend.backbone import load_backbone, pretrain, save_backbone
from partdistill.backend.metrics import shape_miou
from partdistill.backend.pipeline.detect import make_detections
from partdistill.backend.pipeline.distill import DistillConfig, distill
from partdistill.backend.pipeline.label import label_faces
from partdistill.backend.pipeline.mesh_graph import face_graph
from partdistill.backend.pipeline.sample import sample_surface
from partdistill.backend.pipeline.shape import prepare_shape
from partdistill.backend.students.build import new_student
from partdistill.shared.capture import Mesh
from partdistill.shared.options import SegmentOptions

from .families import FAMILIES, make_shape
from .levels import simulate
from .psb import CATEGORIES, real_shapes
from .reporting import pyplot, table_head, table_row, write_report
from .runlog import Log, RunLog, RunSetup

CONFIGS = {"scratch": {}, "frozen": {"finetune_backbone": False}, "finetuned": {"finetune_backbone": True}}
EVAL_EVERY = 5


def corpus(n_per_family: int, n_points: int = 4096, seed: int = 10_000) -> list[tuple[np.ndarray, np.ndarray]]:
    """Surface samples ``(xyz, normals)`` of ``n_per_family`` shapes of every procedural family (seeds
    from ``seed`` on, apart from the benchmark's shapes)."""
    out = []
    for fam in FAMILIES:
        for i in range(n_per_family):
            shape = make_shape(fam, seed + i)
            faces, _ = shape.triangles()
            pts = sample_surface(Mesh(np.asarray(shape.vertices, np.float32), faces), n_points, seed=i)
            out.append((pts.xyz, pts.normals))
    return out


def run_pretrain(out: Path, *, steps: int, n_per_family: int, seed: int = 0, log: Log = print) -> Path:
    """Pretrain on the procedural corpus and save the backbone (with its model card) in ``out``."""
    t = time.perf_counter()
    shapes = corpus(n_per_family)
    log(f"corpus: {len(shapes)} shapes ({n_per_family} per family) in {time.perf_counter() - t:.1f} s")

    def progress(done: int, total: int, loss: float) -> None:
        if done % 100 == 0 or done == total:
            log(f"step {done}/{total}  loss {loss:.4f}")

    t = time.perf_counter()
    net, losses = pretrain(shapes, steps=steps, seed=seed, progress=progress)
    info = {
        "name": str(out),
        "corpus": f"{len(shapes)} procedural shapes ({n_per_family} of each of "
        f"{len(FAMILIES)} families: {', '.join(FAMILIES)}), 4096 surface points each",
        "steps": steps,
        "n_points": 2048,
        "patches": 32,
        "patch_size": 32,
        "mask_ratio": 0.6,
        "seed": seed,
        "seconds": round(time.perf_counter() - t, 1),
        "loss": [round(x, 5) for x in losses],
    }
    return save_backbone(out, net, info)


def fig_b(
    data: Path,
    cache: Path,
    out: Path,
    backbone: Path,
    *,
    split: str,
    per_category: int | None,
    setup: RunSetup,
    categories=CATEGORIES,
    log: Log = print,
) -> list[dict]:
    """Distil every chosen shape with each config of ``CONFIGS``; rows in ``out/figb.jsonl`` (resumable)."""
    options = setup.options
    runs = RunLog.open(out / "figb.jsonl")
    kw = {"views": setup.views, "resolution": setup.resolution}
    for s in real_shapes(data, cache, categories=categories, split=split, per_category=per_category, **kw):
        cap = None
        for name, key in runs.missing((name, f"{s.key}/{name}/{options.epochs}/{options.seed}") for name in CONFIGS):
            if cap is None:
                cap = s.load()
                det = simulate(cap, "realistic", "box", seed=s.seed, graph=face_graph(cap.mesh))
            opts = replace(options, backbone=str(backbone) if name != "scratch" else "", **CONFIGS[name])
            t = time.perf_counter()
            loss, curve, final = _distil_with_curve(cap, s.part_names, det, opts)
            row = {
                "key": key,
                "shape": s.key,
                "category": s.category,
                "split": s.split,
                "config": name,
                "loss": loss,
                "miou_curve": curve,
                "miou": final,
                "seconds": round(time.perf_counter() - t, 1),
            }
            runs.add(row)
            log(f"{s.key:>12} {name:9} mIoU {final:5.1f}  {row['seconds']:5.1f} s")
    return runs.rows


def _distil_with_curve(cap, names, det, options: SegmentOptions) -> tuple[list[float], list[list[float]], float]:
    """The product's test-time distillation, with the student's face mIoU every ``EVAL_EVERY`` epochs;
    returns the loss per epoch, ``[[epoch, mIoU], ...]`` and the final mIoU (the product's refinement)."""
    timings, stats = {}, {}
    det = make_detections(cap, names, options, det, None, lambda *a: None, None, timings, stats)
    setup = new_student(names, options.text_encoder, "cpu", options.seed)
    student, emb = setup.student, setup.embeddings
    if options.backbone:
        load_backbone(student, options.backbone, frozen=not options.finetune_backbone)
    shape = prepare_shape(cap, det, options.n_points, options.seed, setup.device, student.k)
    area = cap.mesh.face_areas()
    curve = []

    def miou(refine: str) -> float:
        res = label_faces(student, shape, emb, tuple(names), {}, {}, refine)
        return round(100 * shape_miou(res.face_labels, cap.gt_face_labels, len(names), area), 2)

    def progress(epoch: int, total: int, stage: str) -> None:
        if epoch % EVAL_EVERY == 0:
            student.eval()
            curve.append([epoch, miou("none")])
            student.train()

    rep = distill(
        lambda i: student(shape.xyz, shape.normals, emb, shape.nbr)[0].float().cpu(),
        [p for p in student.parameters() if p.requires_grad],
        [shape.units],
        len(names),
        DistillConfig.from_options(options),
        seed=options.seed,
        progress=progress,
    )
    return [round(x, 5) for x in rep.loss], curve, miou(options.refine)


def report(rows: list[dict], out: Path) -> str:
    """``figb.md`` (final mIoU per config and split) and ``figb.png`` (mean loss and mIoU per epoch)."""
    lines = table_head(
        "split", ["config", "shapes", "mIoU (final, graph-cut)", "mIoU at epoch 25 (argmax)", "loss at the end"]
    )
    fig, (ax_l, ax_m) = pyplot().subplots(1, 2, figsize=(11, 4))
    for split in ("val", "test"):
        for name in CONFIGS:
            sub = [r for r in rows if r["split"] == split and r["config"] == name]
            if not sub:
                continue
            n = min(len(r["loss"]) for r in sub)
            loss = np.mean([r["loss"][:n] for r in sub], axis=0)
            m = min(len(r["miou_curve"]) for r in sub)
            ep = [e for e, _ in sub[0]["miou_curve"][:m]]
            mi = np.mean([[v for _, v in r["miou_curve"][:m]] for r in sub], axis=0)
            at25 = mi[ep.index(25)] if 25 in ep else float("nan")
            final = np.mean([r["miou"] for r in sub])
            lines.append(table_row(split, [name, str(len(sub)), f"{final:.1f}", f"{at25:.1f}", f"{loss[-1]:.4f}"]))
            if split == "val":
                ax_l.plot(np.arange(1, n + 1), loss, label=name)
                ax_m.plot(ep, mi, "o-", ms=3, label=name)
    ax_l.set(xlabel="epoch", ylabel="distillation loss", title="loss (validation split, mean)")
    ax_m.set(xlabel="epoch", ylabel="mIoU (%)", title="student's mIoU (validation split, mean)")
    for ax in (ax_l, ax_m):
        ax.grid(alpha=0.3)
        ax.legend()
    title = "Fig. B: pretrained encoder (frozen / fine-tuned) vs from scratch, SIMULATED realistic box teacher"
    return write_report(out, "figb", lines, fig, title)
