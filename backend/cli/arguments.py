"""Command-line arguments several commands share, and turning them into engine inputs."""

from __future__ import annotations

import argparse

from partdistill.shared.errors import ValidationError
from partdistill.shared.limits import MAX_PARTS
from partdistill.shared.options import BACKWARD_RULES, DEVICES, REFINES, SegmentOptions
from partdistill.shared.validation import parse_part_names

DEFAULT_TEACHER = "grounding_dino"


def add_capture_args(p: argparse.ArgumentParser, what: str = "when capturing a mesh file") -> None:
    p.add_argument("--views", type=int, default=10, help=f"camera-ring views {what}")
    p.add_argument("--resolution", type=int, default=512, help=f"view size in pixels {what}")
    p.add_argument(
        "--render",
        choices=("auto", "raster", "workbench", "cycles"),
        default="auto",
        help="capture engine: raster (face ids and a flat-shaded picture from one numpy z-buffer, "
        "~25 ms a view), workbench or cycles (Blender renders, face ids by ray casting); auto: "
        "raster, or $PARTDISTILL_RENDER_ENGINE",
    )


def add_training_args(p: argparse.ArgumentParser, points_help: str = "") -> None:
    """The student's training options; ``points_help`` adds to ``--points``'s help (left out: the
    student's ``SegmentOptions.n_points``)."""
    p.add_argument(
        "--points",
        type=int,
        default=None,
        help=f"surface points for the student (default {SegmentOptions.n_points}{points_help})",
    )
    p.add_argument("--epochs", type=int, default=SegmentOptions.epochs, help="maximum distillation epochs")
    p.add_argument("--no-backward", action="store_true", help="forward distillation only")
    p.add_argument(
        "--backward-rule",
        choices=BACKWARD_RULES,
        default=SegmentOptions.backward_rule,
        help="backward distillation: part-relative (ours) or paper (PartDistill as published)",
    )
    add_refine_arg(p)


def add_refine_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--refine",
        choices=REFINES,
        default=SegmentOptions.refine,
        help="the student's prediction on the mesh: none (its argmax, as in the paper), superpoints "
        "(pooled over superpoints) or graph-cut (pooled, then a graph cut over the faces)",
    )


def add_parts_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--parts",
        required=True,
        help=f"part names separated by commas or semicolons (at most {MAX_PARTS}), e.g. seat,back,leg,arm",
    )


def add_output_args(p: argparse.ArgumentParser) -> None:
    """The options of the files a labelling run writes."""
    p.add_argument(
        "--per-face-json",
        action="store_true",
        help="also write the per-face arrays into labels.json (they are always in labels.npz)",
    )


def add_run_args(p: argparse.ArgumentParser, seed: bool = True) -> None:
    p.add_argument("--device", choices=DEVICES, default="auto")
    if seed:
        p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def training_options(args: argparse.Namespace) -> dict[str, object]:
    """The ``SegmentOptions`` fields of ``add_training_args`` and ``add_run_args`` (but ``refine``)."""
    return {
        "n_points": SegmentOptions.n_points if args.points is None else args.points,
        "epochs": args.epochs,
        "backward": not args.no_backward,
        "backward_rule": args.backward_rule,
        "device": args.device,
        "seed": args.seed,
    }


def part_names(text: str) -> tuple[str, ...]:
    """``--parts`` as a tuple of names."""
    try:
        return parse_part_names(text)
    except ValidationError as e:
        raise ValidationError("--parts", e.problem) from None


def teacher(options: SegmentOptions):
    """The teacher ``options`` ask for, loaded (see ``teachers.teacher_from_options``)."""
    from ..teachers import teacher_from_options

    return teacher_from_options(options)
