"""The ``partdistill bench`` sub-commands (quality, speed, real, fewshot, points, pretrain, ...).

They are added to the product's CLI through the ``partdistill.commands`` entry point (the product
never imports the evaluation tools). What each one does is in ``commands.py``."""

from __future__ import annotations

import argparse
from pathlib import Path

from partdistill.shared.options import DEVICES, RENDER_TYPES, SegmentOptions

from .commands import (
    run_backbone,
    run_fewshot,
    run_fuzz,
    run_load,
    run_points,
    run_pretrain,
    run_quality,
    run_real,
    run_speed,
    run_teacher,
)


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("bench", help="quality / speed benchmarks with SIMULATED teachers (see README)")
    which = b.add_subparsers(dest="which", required=True)
    q = which.add_parser("quality", help="procedural shape families (Table A layout)")
    q.add_argument("--data", type=Path, default=Path(".cache/bench"), help="cached benchmark captures")
    q.add_argument("--out", type=Path, default=Path("out/bench"))
    q.add_argument("--families", default=None, help="comma-separated subset (default: all)")
    q.add_argument("--per-family", type=int, default=12)
    q.add_argument("--n-test", type=int, default=4)
    q.add_argument("--teachers", default="box,mask", help="simulated teachers: box (B-VLM-like), mask (P-VLM-like)")
    q.add_argument("--pre-epochs", type=int, default=None, help="epochs of the Pre fit (default: --epochs)")
    q.set_defaults(func=run_quality)
    s = which.add_parser("speed", help="seconds of TTA and Pre against voting on a 10k-face mesh")
    s.add_argument("--data", type=Path, default=Path(".cache/bench"), help="cached benchmark captures")
    s.add_argument("--out", type=Path, default=Path("out/bench"))
    s.add_argument("--repeats", type=int, default=3, help="runs per figure (the median is printed)")
    s.add_argument(
        "--large-faces",
        type=int,
        default=1_000_000,
        help="also time each stage of one run on a mesh of about this many faces (0: skip)",
    )
    s.set_defaults(func=run_speed)
    t = which.add_parser(
        "teacher", help="each teacher at full size (random weights) against a plain transformers loop, with its levers"
    )
    t.add_argument("--cache", type=Path, default=Path(".cache/bench-teacher"), help="built models and captures")
    t.add_argument("--out", type=Path, default=Path("out/bench-teacher"))
    t.add_argument("--models", default="grounding-dino-tiny", help="comma-separated FULL_SIZE names, or 'all'")
    t.add_argument("--levers", default=None, help="comma-separated (default: all that apply)")
    t.add_argument("--views", type=int, default=10)
    t.add_argument("--resolution", type=int, default=512)
    t.add_argument("--device", default="cpu", choices=DEVICES)
    t.add_argument("--tiny", action="store_true", help="tiny random models of the same architectures (a quick check)")
    t.add_argument("--no-large", action="store_true", help="only the example chair, not the 30,000-face one")
    t.set_defaults(func=run_teacher)
    r = which.add_parser("real", help="every method on real meshes (validation and test splits apart)")
    _real_mesh_args(r, Path("out/bench-real"))
    r.add_argument("--split", choices=("val", "test", "all"), default="all")
    r.add_argument("--per-category", type=int, default=None, help="shapes per category and split (default: all 4)")
    r.add_argument("--teachers", default="box,mask")
    r.add_argument("--levels", default="perfect,realistic", help="perfect, mild, realistic, hard")
    r.add_argument("--methods", default=None, help="comma-separated (default: all)")
    r.add_argument(
        "--fit-calibration",
        action="store_true",
        help="refit the product's confidence calibration on the validation runs of distill",
    )
    r.add_argument(
        "--collection",
        action="store_true",
        help="collection mode: each category's shapes of a split as one collection (box teacher, realistic), "
        "every variant beside one-shape-at-a-time, Pre and the baselines; the flags' precision and recall",
    )
    r.add_argument(
        "--variants",
        default=None,
        help="with --collection: the collection variants to run on the --split asked (default: all); the "
        "report takes every run in the logs",
    )
    r.add_argument(
        "--pooled",
        action="store_true",
        help="with --collection and --split all: each category's shapes of both splits as one collection (the "
        "fits see no labels); to report only, as the variant is chosen on one split's collections; the report "
        "reads the pooled runs alone",
    )
    r.set_defaults(func=run_real)
    f = which.add_parser("fewshot", help="mIoU against k painted faces (TTA) and k labelled shapes (Pre)")
    _real_mesh_args(f, Path("out/bench-fewshot"))
    f.add_argument(
        "--per-category",
        type=int,
        default=None,
        help="test shapes per category (default all 4); Pre always trains on all 4 validation shapes",
    )
    f.add_argument("--level", default="realistic", help="perfect, mild, realistic, hard")
    f.add_argument("--teacher", default="box", choices=("box", "mask"))
    f.add_argument("--curves", default="tta,pre", help="tta (painted faces), pre (labelled shapes) or both")
    f.add_argument("--split", choices=("val", "test"), default="test", help="the shapes of the TTA curve")
    f.set_defaults(func=run_fewshot)
    pc = which.add_parser("points", help="point clouds sampled from the real meshes, every method, per-point mIoU")
    _real_mesh_args(pc, Path("out/bench-points"), captures=False)
    pc.add_argument(
        "--split", choices=("val", "test", "all"), default="test", help="all: with --collection, collections of 8"
    )
    pc.add_argument("--per-category", type=int, default=None, help="clouds per category (default: all 4)")
    pc.add_argument("--n-points", type=int, default=20_000, help="points sampled per mesh")
    pc.add_argument("--levels", default="perfect,realistic")
    pc.add_argument("--collection", action="store_true", help="also each category's clouds together (collection mode)")
    pc.add_argument(
        "--methods",
        default=None,
        help="the methods to run, separated by commas: vote-fill, superpoint, distill (each cloud alone), "
        "collection-pre, collection, collection-given (each category's clouds together; collection-given is "
        "--frame given); default: the first three, and with --collection the next two",
    )
    pc.set_defaults(func=run_points)
    pt = which.add_parser("pretrain", help="pretrain the student's encoder (masked points) on the procedural shapes")
    pt.add_argument("--out", type=Path, default=Path("models/backbone-procedural"))
    pt.add_argument("--steps", type=int, default=3000)
    pt.add_argument("--per-family", type=int, default=40, help="procedural shapes per family in the corpus")
    pt.add_argument("--seed", type=int, default=0)
    pt.set_defaults(func=run_pretrain)
    bb = which.add_parser("backbone", help="Fig. B: pretrained encoder (frozen / fine-tuned) vs from scratch")
    bb.add_argument("--backbone", type=Path, default=Path("models/backbone-procedural"))
    _real_mesh_args(bb, Path("out/bench-backbone"))
    bb.add_argument("--split", choices=("val", "test", "all"), default="val")
    bb.add_argument("--per-category", type=int, default=1)
    bb.set_defaults(func=run_backbone)
    z = which.add_parser("fuzz", help="hostile messages against a live backend: replies, crashes, hangs, RSS")
    z.add_argument("--n", type=int, default=10000, help="messages to send")
    z.add_argument("--seed", type=int, default=0)
    z.set_defaults(func=run_fuzz)
    ld = which.add_parser("load", help="a served backend under load and faults: concurrent clients, kills, RSS")
    ld.add_argument("--out", type=Path, default=Path("out/bench-load"), help="the servers' logs")
    ld.add_argument("--example", type=Path, default=Path("examples/chair"), help="folder of the example chair")
    ld.add_argument("--clients", type=int, default=8)
    ld.add_argument("--jobs", type=int, default=5, help="jobs per client")
    ld.add_argument("--consecutive", type=int, default=200, help="jobs one after another (RSS)")
    ld.add_argument("--large-faces", type=int, default=200_000, help="faces of the large job (20 views)")
    ld.set_defaults(func=run_load)
    for p in (q, s, r, f, bb, pc):
        _engine_args(p, render_type=p is r)


def _real_mesh_args(p: argparse.ArgumentParser, out: Path, captures: bool = True) -> None:
    """Where the real-mesh set is (``_psb_data``), where its captures are cached (``captures``), where
    the results go (``out`` by default) and which categories run."""
    p.add_argument("--psb", type=Path, default=None, help="folder of psb-dev.npz (default: ../shared/data)")
    if captures:
        p.add_argument("--data", type=Path, default=Path(".cache/bench-real"), help="cached captures")
    p.add_argument("--out", type=Path, default=out)
    p.add_argument("--categories", default=None, help="comma-separated subset (default: all 10)")


def _engine_args(p: argparse.ArgumentParser, render_type: bool = False) -> None:
    """What ``_options`` and ``_setup`` read: the views' number and size, what they show (only where
    the runner passes ``render_type`` on), and the student's points, epochs, device and seed."""
    p.add_argument("--views", type=int, default=10)
    p.add_argument("--resolution", type=int, default=512)
    if render_type:
        p.add_argument(
            "--render-type",
            choices=RENDER_TYPES,
            default=SegmentOptions.render_type,
            help="what the (simulated) teacher's views show; the detections are the same for every type",
        )
    p.add_argument("--points", type=int, default=SegmentOptions.n_points)
    p.add_argument("--epochs", type=int, default=SegmentOptions.epochs)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument(
        "--seed",
        type=int,
        default=SegmentOptions.seed,
        help="the students' initialisation and point samples (the simulated teacher's detections stay the same)",
    )
