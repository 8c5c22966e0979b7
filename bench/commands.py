"""What each ``partdistill bench`` sub-command (``cli.py``) does with its arguments.

Heavy modules load only when a benchmark runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from partdistill.shared.errors import ValidationError
from partdistill.shared.options import SegmentOptions

from .runlog import RunSetup

if TYPE_CHECKING:
    from .psb import Selection


def _options(args: argparse.Namespace) -> SegmentOptions:
    render_type = getattr(args, "render_type", SegmentOptions.render_type)
    return SegmentOptions(
        n_points=args.points, epochs=args.epochs, device=args.device, render_type=render_type, seed=args.seed
    ).validate()


def _setup(args: argparse.Namespace) -> RunSetup:
    """How the real-mesh runners make each run, from the engine's arguments (``_engine_args``)."""
    return RunSetup(_options(args), args.views, args.resolution)


def _selection(args: argparse.Namespace) -> Selection:
    """The real meshes ``--categories``, ``--split`` and ``--per-category`` select."""
    from .psb import CATEGORIES, SPLITS, Selection

    splits = SPLITS if args.split == "all" else (args.split,)
    return Selection(tuple(_list(args.categories) or CATEGORIES), splits, args.per_category)


def _psb_data(args: argparse.Namespace) -> Path:
    """The real-mesh set's folder (``--psb`` or the default), or a one-line error when it is not there."""
    from . import psb

    data = args.psb or psb.default_data_dir()
    if not psb.available(data):
        raise ValidationError(
            "--psb", f"the real-mesh set is not at {data} (psb-dev.npz, psb-dev.json): give --psb FOLDER"
        )
    return data


def _list(text: str | None) -> tuple[str, ...] | None:
    return tuple(x.strip() for x in text.split(",") if x.strip()) if text else None


def run_fewshot(args: argparse.Namespace) -> int:
    from . import fewshot, psb

    data = _psb_data(args)
    cats = _list(args.categories) or psb.CATEGORIES
    rows = fewshot.run(
        data,
        args.data,
        args.out,
        level=args.level,
        teacher=args.teacher,
        per_category=args.per_category,
        categories=cats,
        setup=_setup(args),
        curves=_list(args.curves),
        split=args.split,
    )
    print(fewshot.report(rows, args.out))
    print(f"wrote {args.out}/fewshot.jsonl, fewshot.md, fewshot.png")
    return 0


def run_points(args: argparse.Namespace) -> int:
    from . import points

    data = _psb_data(args)
    try:
        methods, together = points.split_methods(_list(args.methods), args.collection)
    except ValueError as e:
        raise ValidationError("--methods", str(e)) from None
    rows = points.run(
        data,
        args.out,
        split=None if args.split == "all" else args.split,
        categories=_selection(args).categories,
        per_category=args.per_category,
        n_points=args.n_points,
        levels=_list(args.levels),
        methods=methods,
        collection=together,
        setup=_setup(args),
    )
    print(points.report(rows, args.out))
    print(f"wrote {args.out}/points.jsonl, points.md")
    return 0


def run_pretrain(args: argparse.Namespace) -> int:
    from .pretraining import run_pretrain as pretrain

    out = pretrain(args.out, steps=args.steps, n_per_family=args.per_family, seed=args.seed)
    print(f"wrote {out} (backbone.safetensors, backbone.json, README.md)")
    return 0


def run_backbone(args: argparse.Namespace) -> int:
    from . import pretraining, psb

    data = _psb_data(args)
    rows = []
    for split in ("val", "test") if args.split == "all" else (args.split,):
        rows += pretraining.fig_b(
            data,
            args.data,
            args.out,
            args.backbone,
            split=split,
            per_category=args.per_category,
            setup=_setup(args),
            categories=_list(args.categories) or psb.CATEGORIES,
        )
    print(pretraining.report(rows, args.out))
    print(f"wrote {args.out}/figb.jsonl, figb.md, figb.png")
    return 0


def run_fuzz(args: argparse.Namespace) -> int:
    from .fuzz import print_report
    from .fuzz import run_fuzz as fuzz

    rep = fuzz(args.n, args.seed)
    print_report(rep)
    return 1 if rep.crashed or rep.hangs or rep.replies.get("error:internal") else 0


def run_load(args: argparse.Namespace) -> int:
    from .load import run_load as load

    load(args.out, args.example, args.clients, args.jobs, args.consecutive, args.large_faces)
    return 0


def run_teacher(args: argparse.Namespace) -> int:
    from . import teacher

    models = tuple(teacher.FULL_SIZE) if args.models == "all" else tuple(_list(args.models))
    levers = tuple(_list(args.levers)) if args.levers else tuple(teacher.LEVERS)
    try:
        teacher.run(
            args.cache,
            args.out,
            models=models,
            levers=levers,
            views=args.views,
            resolution=args.resolution,
            device=args.device,
            tiny=args.tiny,
            large=not args.no_large,
        )
    except ValueError as e:
        raise ValidationError("bench teacher", str(e)) from None
    print((args.out / "teacher.md").read_text())
    print(f"wrote {args.out}/teacher.json, teacher.md, teacher.png")
    return 0


def run_speed(args: argparse.Namespace) -> int:
    from .speed import speed

    figures = speed(args.data, repeats=args.repeats, options=_options(args), large_faces=args.large_faces)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(figures, indent=1))
    print(f"wrote {args.out / 'speed.json'}")
    return 0


def run_quality(args: argparse.Namespace) -> int:
    from . import quality
    from .families import FAMILIES

    teachers = _list(args.teachers) or ()
    unknown = [t for t in teachers if t not in quality.TEACHERS]
    if unknown or not teachers:
        raise ValidationError("--teachers", f"must be among {sorted(quality.TEACHERS)}")
    families = _list(args.families)
    bad = [f for f in families or () if f not in FAMILIES]
    if bad:
        raise ValidationError("--families", f"unknown families {bad}; known: {sorted(FAMILIES)}")
    if not 1 <= args.n_test < args.per_family:
        raise ValidationError("--n-test", "must be at least 1 and smaller than --per-family")
    quality.quality(
        args.data,
        args.out,
        families=families,
        per_family=args.per_family,
        n_test=args.n_test,
        views=args.views,
        resolution=args.resolution,
        teachers=teachers,
        options=_options(args),
        pre_epochs=args.pre_epochs,
    )
    print(f"wrote {args.out}/results.json, results.md, loss_curves.png, segmentations.png")
    return 0


def run_real(args: argparse.Namespace) -> int:
    from . import real, report

    data = _psb_data(args)
    kw = {}
    for name, value in (
        ("teachers", args.teachers),
        ("levels", args.levels),
        ("methods", args.methods),
    ):
        if value:
            kw[name] = _list(value)
    if args.collection:
        return _run_collection(args, data, kw)
    if args.pooled:
        raise ValidationError("--pooled", "is for --collection")
    try:
        rows = real.run(data, args.data, args.out, selection=_selection(args), setup=_setup(args), **kw)
    except ValueError as e:
        raise ValidationError("bench real", str(e)) from None
    if args.fit_calibration:
        from partdistill.backend.pipeline import calibration

        from . import calibrate

        try:
            fitted = calibrate.write(calibration.TABLE, rows)
        except ValueError as e:
            raise ValidationError("--fit-calibration", str(e)) from None
        print(f"refitted {calibration.TABLE} on {fitted['fitted_on']}")
    report.write(args.out, rows)
    print((args.out / "results.md").read_text())
    print(f"wrote {args.out}/results.json, results.md, segmentations_*.png, runs.jsonl")
    return 0


def _run_collection(args: argparse.Namespace, data: Path, kw: dict) -> int:
    from dataclasses import replace

    from . import collection, collection_report, real
    from .psb import SPLITS

    selection, setup = _selection(args), _setup(args)
    variants = tuple(_list(args.variants)) if args.variants else tuple(collection.VARIANTS)
    if args.pooled and selection.splits != SPLITS:
        raise ValidationError("--pooled", "needs --split all: a pooled collection holds both splits' shapes")
    try:
        # the report chooses on validation: the per-shape methods of both splits are always in it
        rows = real.run(
            data,
            args.data,
            args.out,
            selection=replace(selection, splits=SPLITS),
            teachers=("box",),
            levels=("realistic",),
            methods=collection_report.SHAPE_METHODS,
            setup=setup,
        )
        pooled = args.pooled
        collection.run(data, args.data, args.out, selection=selection, variants=variants, setup=setup, pooled=pooled)
        both = replace(selection, splits=SPLITS)
        rows += collection.logged(data, args.data, args.out, selection=both, setup=setup, pooled=pooled)
    except ValueError as e:
        raise ValidationError("bench real --collection", str(e)) from None
    collection_report.write(args.out, rows)
    print((args.out / "collection.md").read_text())
    print(f"wrote {args.out}/collection.json, collection.md, collection.png, runs.jsonl")
    return 0
