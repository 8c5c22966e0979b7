"""``partdistill batch`` in collection mode: category students over the batch, then each shape.

Every input is captured (in ``--jobs`` Blender processes; each capture waits on disk in
``OUT/.captures`` until it is labelled, ``io.capture_cache``) and gets its detections; the category
students are fitted over all of them and saved as one ``OUT/category-model`` (a re-run of an
interrupted batch reuses it, and ``segment --category-model OUT/category-model`` labels more
shapes like them later); then each unfinished shape is labelled by them ("pre") or fine-tuned
from the first ("pre-tta").
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from partdistill.shared.errors import ValidationError

from ..io.inputs import detections_file
from .arguments import teacher
from .console import ProgressBars
from .segment import engine_options

CATEGORY_MODEL = "category-model"


def label_collection(
    args: argparse.Namespace,
    names: tuple[str, ...],
    inputs: list[Path],
    todo: list[int],
    finish: Callable[[int, object], None],
) -> None:
    """Label ``inputs[i]`` for every ``i`` in ``todo`` in collection mode (``args.collection``, the
    checked ``CollectionOptions``); each outcome goes to ``finish(i, (capture, result) | exception)``."""
    from partdistill.shared.detections import Detections

    from ..checkpoint import load_checkpoint, save_checkpoint
    from ..collection import segment_collection
    from ..io.capture_cache import CachedMember, CaptureCache
    from ..io.capture_pool import capture_files
    from ..pre import trained_frame

    saved = args.out / CATEGORY_MODEL
    checkpoint = None
    if (saved / "partdistill.json").is_file():  # before any capture: a mismatch is known now
        checkpoint = load_checkpoint(saved)
        training = checkpoint.meta.get("training", {})
        n_fitted, stretched = training.get("students", 1), float(training.get("stretch", 1.0))
        framed = trained_frame(checkpoint)
        for flag, fitted, asked, how in (
            (
                "--parts",
                tuple(checkpoint.part_names),
                names,
                f"for the parts {list(checkpoint.part_names)}: give those",
            ),
            ("--students", n_fitted, args.collection.students, f"with {n_fitted} category student(s): give those"),
            ("--stretch", stretched, float(args.collection.stretch), f"with --stretch {stretched:g}: give that"),
            ("--frame", framed, args.collection.frame, f"with --frame {framed}: give that"),
        ):
            if fitted != asked:
                raise ValidationError(flag, f"{saved} was fitted {how}, or another --out")
        print(f"using the category student fitted before: {saved}", file=sys.stderr)
    cache = CaptureCache(args.out, views=args.views, resolution=args.resolution, engine=args.render)
    files = {i: f for i in todo if (f := cache.find(inputs[i])) is not None}
    rest = [i for i in todo if i not in files]
    if files:
        print(f"using {len(files)} capture(s) kept by an earlier run in {cache.folder}", file=sys.stderr)
    stream = capture_files(
        [inputs[i] for i in rest], views=args.views, resolution=args.resolution, workers=args.jobs, engine=args.render
    )
    with ProgressBars(args.quiet) as bars:  # every shape is captured before the fit: show it move
        for done, (k, got) in enumerate(stream, start=1):
            if isinstance(got, str):
                finish(rest[k], ValidationError("input", got))
            else:
                files[rest[k]] = cache.keep(inputs[rest[k]], got)
            bars.update(done, len(rest), "capture")
    members, where = [], []
    for i in sorted(files):  # in input order, however the captures arrived
        try:
            f = detections_file(inputs[i])
            cap = CachedMember(files[i]).capture
            det = None if f is None else Detections.load_json(f).validate(cap.n_views, cap.image_size)
        except ValidationError as e:
            finish(i, e)
            continue
        members.append(CachedMember(files[i], det))
        where.append(i)
    if not members:
        cache.remove()
        return
    options = engine_options(args, with_teacher=any(m.detections is None for m in members))
    need_teacher = any(m.detections is None for m in members)
    n = args.collection.students
    fits = "one category student" if n == 1 else f"{n} category students"
    doing = f"fitting {fits}, then each shape" if checkpoint is None else "each shape"
    shapes = "1 shape" if len(members) == 1 else f"{len(members)} shapes"
    print(f"collection of {shapes}: {doing}", file=sys.stderr)
    with ProgressBars(args.quiet) as bars:
        out = segment_collection(
            members,
            names,
            options,
            args.collection,
            teacher=teacher(options) if need_teacher else None,
            checkpoint=checkpoint,
            fitted=lambda ckpt: save_checkpoint(saved, ckpt),  # kept at once: an interrupted run resumes from it
            progress=bars.update,
        )
    for k, i in enumerate(where):
        if out.results[k] is None:
            finish(i, ValidationError("input", out.errors[k]))
        else:
            finish(i, (members[k].capture, out.results[k]))
    cache.remove()
