"""``partdistill predict``: label a shape with a pre-aligned student alone (no teacher)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from partdistill.shared.atomic import FolderLock

from ..io.inputs import read_input
from ..io.outputs import write_outputs
from .arguments import add_capture_args, add_output_args, add_refine_arg, add_run_args
from .console import print_summary


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("predict", help="label a shape with a pre-aligned student alone (no teacher)")
    r.add_argument("input", type=Path)
    r.add_argument("--model", type=Path, required=True, help="checkpoint folder made by `partdistill fit`")
    r.add_argument("--out", type=Path, required=True)
    add_capture_args(r, "rendered for the preview of a mesh file")
    add_refine_arg(r)
    add_output_args(r)
    add_run_args(r, seed=False)
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import load_checkpoint
    from ..device import resolve_device
    from ..pre import predict

    with FolderLock(args.out, field="--out"):  # before any long work: a folder in use is refused now
        ckpt = load_checkpoint(args.model, device=resolve_device(args.device))
        t0 = time.perf_counter()
        capture = read_input(
            args.input, views=args.views, resolution=args.resolution, quiet=args.quiet, engine=args.render
        )
        t_capture = time.perf_counter() - t0
        result = predict(capture, ckpt, device=args.device, refine=args.refine)
        result.timings = {"capture": t_capture, **result.timings}
        written = write_outputs(args.out, capture, result, per_face_json=args.per_face_json)
    print_summary(result, written, capture)
    return 0
