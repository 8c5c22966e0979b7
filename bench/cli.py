"""``partdistill bench ...``: added to the product's CLI through the ``partdistill.commands`` entry
point (the product never imports the evaluation tools). Heavy modules load only when a benchmark runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from partdistill.backend.io import InputError
from partdistill.shared.options import SegmentOptions


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("bench", help="quality / speed benchmarks with SIMULATED teachers (see README)")
    b.add_argument("which", choices=("quality", "speed"))
    b.add_argument("--data", type=Path, default=Path(".cache/bench"), help="cached benchmark captures")
    b.add_argument("--out", type=Path, default=Path("out/bench"))
    b.add_argument("--families", default=None, help="comma-separated subset (default: all)")
    b.add_argument("--per-family", type=int, default=12)
    b.add_argument("--n-test", type=int, default=4)
    b.add_argument("--views", type=int, default=10)
    b.add_argument("--resolution", type=int, default=512)
    b.add_argument("--teachers", default="box,mask", help="simulated teachers: box (B-VLM-like), mask (P-VLM-like)")
    b.add_argument("--points", type=int, default=SegmentOptions.n_points)
    b.add_argument("--epochs", type=int, default=SegmentOptions.epochs)
    b.add_argument("--pre-epochs", type=int, default=None, help="epochs of the Pre fit (default: --epochs)")
    b.add_argument("--repeats", type=int, default=3, help="speed: runs per figure (the median is printed)")
    b.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    b.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = SegmentOptions(n_points=args.points, epochs=args.epochs, device=args.device).validate()
    if args.which == "speed":
        from .speed import speed

        figures = speed(args.data, repeats=args.repeats, options=options)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "speed.json").write_text(json.dumps(figures, indent=1))
        print(f"wrote {args.out / 'speed.json'}")
        return 0
    from . import quality
    from .families import FAMILIES

    teachers = tuple(t.strip() for t in args.teachers.split(",") if t.strip())
    unknown = [t for t in teachers if t not in quality.TEACHERS]
    if unknown or not teachers:
        raise InputError(f"--teachers must be among {sorted(quality.TEACHERS)}")
    families = tuple(f.strip() for f in args.families.split(",")) if args.families else None
    bad = [f for f in families or () if f not in FAMILIES]
    if bad:
        raise InputError(f"unknown families {bad}; known: {sorted(FAMILIES)}")
    if not 1 <= args.n_test < args.per_family:
        raise InputError("--n-test must be at least 1 and smaller than --per-family")
    quality.quality(
        args.data, args.out, families=families, per_family=args.per_family, n_test=args.n_test, views=args.views,
        resolution=args.resolution, teachers=teachers, options=options, pre_epochs=args.pre_epochs,
    )  # fmt: skip
    print(f"wrote {args.out}/results.json, results.md, loss_curves.png, segmentations.png")
    return 0
