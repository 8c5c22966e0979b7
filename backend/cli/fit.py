"""``partdistill fit``: pre-align one student over many shapes of a category (the paper's Pre)."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from partdistill.shared.atomic import FolderLock
from partdistill.shared.detections import Detections
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import SegmentOptions

from ..io.inputs import detections_file, expand_inputs, read_few_shot_labels, read_input
from . import arguments
from .console import ProgressBars


def register(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser("fit", help="pre-align one student over many shapes of a category (Pre)")
    f.add_argument("inputs", type=Path, nargs="+", help="mesh files, capture bundles, or folders of them")
    arguments.add_parts_arg(f)
    f.add_argument("--out", type=Path, required=True, help="checkpoint folder")
    f.add_argument(
        "--teacher", default=arguments.DEFAULT_TEACHER, help="teacher for inputs without <stem>.detections.json"
    )
    f.add_argument("--teacher-model", default="", help="hub id or local folder of the teacher's weights")
    f.add_argument(
        "--shapes-per-step", type=int, default=1, help="shapes per optimiser step (under torchrun: one per process)"
    )
    arguments.add_capture_args(f)
    arguments.add_training_args(f)
    arguments.add_run_args(f)
    f.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..parallel import DataParallel

    names = arguments.part_names(args.parts)
    options = SegmentOptions(
        teacher=args.teacher,
        teacher_model=args.teacher_model,
        **arguments.training_options(args),
    ).validate()
    if args.shapes_per_step < 1:
        raise ValidationError("--shapes-per-step", "must be at least 1")
    parallel = DataParallel.from_env(args.device)  # under torchrun: this process's share of the shapes
    writer = parallel is None or parallel.rank == 0  # every process holds the same student; one writes it
    with FolderLock(args.out, field="--out") if writer else contextlib.nullcontext():
        _fit(args, names, options, parallel)
    if parallel is not None:  # only on success: after an error the others may never reach the barrier
        parallel.close()
    return 0


def _fit(args: argparse.Namespace, names: tuple[str, ...], options: SegmentOptions, parallel) -> None:
    from ..checkpoint import save_checkpoint
    from ..pre import TrainingShape, fit

    quiet = args.quiet or (parallel is not None and parallel.rank > 0)
    shapes, need_teacher = [], False
    for g, path in enumerate(expand_inputs(args.inputs)):
        if parallel is not None and not parallel.owns(g):
            shapes.append(None)
            continue
        cap = read_input(path, views=args.views, resolution=args.resolution, quiet=quiet, engine=args.render)
        det_file = detections_file(path)
        det = None if det_file is None else Detections.load_json(det_file).validate(cap.n_views, cap.image_size)
        lab_file = path.with_name(path.stem + ".labels.npz")
        labels = read_few_shot_labels(lab_file, cap, names) if lab_file.exists() else None
        need_teacher |= det is None and labels is None
        shapes.append(TrainingShape(cap, det, labels))
    with ProgressBars(quiet) as bar:
        ckpt = fit(
            shapes,
            names,
            options,
            teacher=arguments.teacher(options) if need_teacher else None,
            progress=bar.update,
            shapes_per_step=args.shapes_per_step,
            parallel=parallel,
        )
    if parallel is None or parallel.rank == 0:  # every process holds the same student
        save_checkpoint(args.out, ckpt)
        tr = ckpt.meta["training"]
        print(
            f"fitted on {tr['n_shapes']} shapes ({tr['n_units']} knowledge units) in {tr['seconds']:.1f} s "
            f"({tr['processes']} process(es)); backward distillation from epoch {tr['trigger_epoch']}; "
            f"wrote {args.out}"
        )
