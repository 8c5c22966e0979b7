"""``partdistill batch``: label a whole collection of meshes, resumably.

Inputs are files, folders or globs of every supported mesh format (and capture bundles). Each input
gets a folder ``OUT/<name>/`` with the ``segment`` outputs; ``<stem>.detections.json`` beside an input
is used when present, otherwise the teacher. Captures run in ``--jobs`` long-lived Blender processes
while the engine (in process, or ``--backend``) works on the earlier ones. A failed mesh is logged
with its reason and the run goes on. Outputs are written to a hidden folder and renamed when
complete, so a re-run skips exactly the finished meshes. At the end: a summary, ``index.json`` and
``index.csv`` of every input, and an exit status of 1 when anything failed.
"""

from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from partdistill.shared.atomic import FolderLock
from partdistill.shared.detections import Detections
from partdistill.shared.errors import ValidationError, one_line
from partdistill.shared.options import (
    BLEND,
    BOTH_FRAMES_STUDENTS,
    CATEGORY_STUDENTS,
    COLLECTION_MODES,
    FINETUNE_EPOCHS,
    FRAME,
    FRAMES,
    STRETCH,
    CollectionOptions,
    collection_ruled_out,
)
from partdistill.shared.protocol import check_address

from ..io.inputs import INPUT_SUFFIXES, MESH_SUFFIXES, POINT_SUFFIXES, detections_file
from ..io.outputs import write_outputs
from .arguments import add_output_args, add_parts_arg, part_names, teacher
from .segment import add_engine_args, backend_client, engine_options

INDEX_FIELDS = ("input", "output", "status", "reason", "seconds", "faces", "confidence", "warnings")


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("batch", help="label a whole collection of meshes (resumable, with an index)")
    b.add_argument("inputs", nargs="+", help="mesh files, capture bundles, folders or globs (quote them)")
    add_parts_arg(b)
    b.add_argument("--out", type=Path, required=True, help="output folder: one sub-folder per input")
    b.add_argument("--jobs", type=int, default=1, help="Blender processes capturing ahead of the engine")
    b.add_argument(
        "--ray",
        default=None,
        metavar="ADDRESS",
        help="run on a Ray cluster (auto, HOST:PORT, ray://...; 'local' starts one)",
    )
    b.add_argument(
        "--mode",
        choices=COLLECTION_MODES,
        default=None,
        help="pre (collection mode, the default in this process): category students fitted over the batch "
        "(--students) label every shape; pre-tta: the first fine-tuned on each shape and blended with them; "
        "ensemble: the category students averaged with a student distilled from scratch for each shape; "
        "tta: each shape on its own "
        "(the only mode with --backend or --ray)",
    )
    b.add_argument(
        "--finetune-epochs",
        type=int,
        default=FINETUNE_EPOCHS,
        help="epochs of each shape's fine-tuning from the category student (pre-tta)",
    )
    b.add_argument(
        "--blend",
        type=float,
        default=BLEND,
        help="pre-tta and ensemble: the weight of the category student's probabilities in each shape's labels "
        "(0: the shape's own student alone)",
    )
    b.add_argument(
        "--students",
        type=int,
        default=None,
        help="category students fitted from as many seeds and averaged (each takes as long to fit as one; "
        f"default {BOTH_FRAMES_STUDENTS} with --frame both, {CATEGORY_STUDENTS} with the others)",
    )
    b.add_argument(
        "--stretch",
        type=float,
        default=STRETCH,
        help="each step of the category fit stretches its shape along each axis by a random factor up to this "
        "(1: not at all)",
    )
    b.add_argument(
        "--frame",
        choices=FRAMES,
        default=None,
        help="the axes the category students see each shape along: as the file has it, its principal axes "
        "(for collections whose files lie along different axes), or both, the students taking turns "
        f"(mode pre; {BOTH_FRAMES_STUDENTS} students on half the points unless --students says, in less time "
        f"than {CATEGORY_STUDENTS} along one on all of them). Default: {FRAME} in mode pre, given otherwise",
    )
    b.add_argument(
        "--downweight",
        action="store_true",
        help="pre-tta: lower the weight of the detections the category student contradicts before fine-tuning",
    )
    add_engine_args(b, "; with --frame both, half of them for each category student")
    add_output_args(b)
    b.set_defaults(func=run)


def collect_inputs(specs: list[str]) -> list[Path]:
    """Files as given, folders -> their meshes and bundles (sorted), globs expanded; each once."""
    out: list[Path] = []
    for spec in specs:
        matches = sorted(glob.glob(spec, recursive=True)) if glob.has_magic(spec) else [spec]
        if not matches:
            raise ValidationError("input", f"no file matches {spec!r}")
        for m in map(Path, matches):
            if m.is_dir():
                out += sorted(f for f in m.iterdir() if _is_input(f) and f.suffix.lower() != ".txt")
            elif m.is_file():
                if not _is_input(m):
                    raise ValidationError(
                        "input",
                        f"{m}: not a mesh file ({' '.join(MESH_SUFFIXES)}), a point cloud "
                        f"({' '.join(POINT_SUFFIXES)}) or a capture bundle .npz",
                    )
                out.append(m)
            else:
                raise ValidationError("input", f"not found: {m}")
    seen, unique = set(), []
    for p in out:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    if not unique:
        raise ValidationError("input", "no mesh files or capture bundles among the inputs")
    return unique


def _is_input(f: Path) -> bool:
    name = f.name.lower()
    return f.is_file() and (
        f.suffix.lower() in INPUT_SUFFIXES or (name.endswith(".npz") and not name.endswith(".labels.npz"))
    )


def output_names(paths: list[Path]) -> list[str]:
    """One folder name per input: its stem, with a short hash of its path where stems repeat."""
    stems = [p.stem for p in paths]
    return [
        s if stems.count(s) == 1 else f"{s}-{hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:6]}"
        for s, p in zip(stems, paths, strict=True)
    ]


def _collection_options(args: argparse.Namespace) -> CollectionOptions:
    """The collection's options from the flags, checked before any long work; an error names the flag."""
    try:
        return CollectionOptions(
            mode=args.mode,
            finetune_epochs=args.finetune_epochs,
            downweight=args.downweight,
            blend=args.blend,
            students=args.students,
            stretch=args.stretch,
            frame=args.frame,
        ).validate()
    except ValidationError as e:
        raise ValidationError("--" + e.field.removeprefix("collection.").replace("_", "-"), e.problem) from None


def run(args: argparse.Namespace) -> int:
    names = part_names(args.parts)
    if args.jobs < 1:
        raise ValidationError("--jobs", "must be at least 1")
    if args.backend:
        check_address(args.backend, "--backend")
    if args.ray and args.backend:
        raise ValidationError("--ray", "runs the engine on the cluster: leave out --backend")
    one_by_one = _one_by_one(args)
    if args.mode is None:
        args.mode = "tta" if one_by_one else "pre"
    elif args.mode != "tta" and one_by_one:
        raise ValidationError("--mode", f"{args.mode} is not for {one_by_one}: leave it out, or give --mode tta")
    args.collection = _collection_options(args)
    inputs = collect_inputs(args.inputs)
    with FolderLock(args.out, field="--out"):  # before any long work: a folder in use is refused now
        return _run(args, names, inputs)


def _run(args: argparse.Namespace, names: tuple[str, ...], inputs: list[Path]) -> int:
    folders = output_names(inputs)
    rows = {
        i: {
            "input": str(p),
            "output": str(args.out / folders[i]),
            "status": "",
            "reason": "",
            "seconds": "",
            "faces": "",
            "confidence": "",
            "warnings": "",
        }
        for i, p in enumerate(inputs)
    }
    before = _read_index(args.out)
    todo = []
    for i in range(len(inputs)):
        if (args.out / folders[i]).is_dir():  # finished by an earlier run (outputs are renamed in when complete)
            rows[i].update({k: v for k, v in before.get(str(inputs[i]), {}).items() if k in INDEX_FIELDS})
            rows[i]["status"] = "skipped"
        else:
            todo.append(i)
    log = open(args.out / "batch.log", "a")
    print(f"{len(inputs)} inputs: {len(inputs) - len(todo)} finished before, {len(todo)} to do", file=sys.stderr)
    t_start = time.perf_counter()

    def finish(i: int, outcome) -> None:
        if isinstance(outcome, BaseException):
            _failed(rows, i, inputs[i], outcome, log)
        else:
            capture, result = outcome
            _write_atomically(args.out, folders[i], capture, result, args.per_face_json)
            _done(rows, i, capture, result, result.timings.get("total", sum(result.timings.values())))

    review = []
    try:
        if args.ray:
            from .batch_ray import run_on_ray

            run_on_ray(args.ray, args, inputs, todo, names, finish)
        elif args.mode != "tta":
            from .batch_collection import label_collection

            label_collection(args, names, inputs, todo, finish)
        else:
            _label(args, inputs, folders, todo, rows, _Engine(args, names), log)
        from .batch_review import review_batch

        review = review_batch(args.out, rows, names, args.mode)
    except BaseException as e:  # Ctrl+C or an error that ends the run: the index says which inputs it left
        why = "interrupted" if isinstance(e, KeyboardInterrupt) else _reason(e)
        for r in rows.values():
            if not r["status"]:
                r.update(status="not done", reason=f"the run stopped before it ({why})")
        raise
    finally:
        log.close()
        _write_index(args.out, [rows[i] for i in range(len(inputs))])
    done = sum(r["status"] == "done" for r in rows.values())
    failed = [r for r in rows.values() if r["status"] == "failed"]
    skipped = sum(r["status"] == "skipped" for r in rows.values())
    secs = [float(r["seconds"]) for r in rows.values() if r["status"] == "done"]
    per = f", {sum(secs) / len(secs):.1f} s per mesh" if secs else ""
    print(
        f"done {done}, failed {len(failed)}, skipped {skipped} (finished before) in "
        f"{time.perf_counter() - t_start:.0f} s{per}; index: {args.out / 'index.csv'}"
    )
    for line in review:
        print(line)
    for r in failed:
        print(f"  failed: {r['input']}: {r['reason']}", file=sys.stderr)
    return 1 if failed else 0


def _one_by_one(args: argparse.Namespace) -> str | None:
    """What rules out collection mode (a category student fitted in this process), if anything."""
    if args.backend or args.ray:
        return "--backend" if args.backend else "--ray"
    return collection_ruled_out(engine_options(args, with_teacher=False))


class _Engine:
    """Labels one capture on its own: in process (teacher loaded once) or through ``--backend``."""

    def __init__(self, args: argparse.Namespace, names: tuple[str, ...]):
        self.args, self.names = args, names
        self.client = backend_client(args) if args.backend else None
        self._teacher = None

    def label(self, capture, detections):
        args = self.args
        options = engine_options(args, with_teacher=detections is None and not args.category_model)
        if self.client is not None:
            return self.client.segment(capture, self.names, options, detections)
        from ..tta import segment

        if detections is None and self._teacher is None and not options.category_model:
            self._teacher = teacher(options)
        return segment(
            capture,
            self.names,
            options=options,
            detections=detections,
            teacher=None if detections is not None else self._teacher,
        )


def _label(args, inputs, folders, todo, rows, engine: _Engine, log) -> None:
    from tqdm import tqdm

    from ..io.capture_pool import capture_files

    stream = capture_files(
        [inputs[i] for i in todo], views=args.views, resolution=args.resolution, workers=args.jobs, engine=args.render
    )
    with tqdm(total=len(todo), desc="batch", unit="mesh", file=sys.stderr, disable=args.quiet) as bar:
        for k, got in stream:
            i = todo[k]
            t0 = time.perf_counter()
            try:
                if isinstance(got, str):
                    raise ValidationError("input", got)
                detections = _detections_beside(inputs[i], got)
                result = engine.label(got, detections)
                _write_atomically(args.out, folders[i], got, result, args.per_face_json)
                _done(rows, i, got, result, time.perf_counter() - t0)
            except Exception as e:  # noqa: BLE001 - one bad mesh must not stop the batch; its reason is kept
                _failed(rows, i, inputs[i], e, log)
            bar.update(1)
            bar.set_postfix(failed=sum(r["status"] == "failed" for r in rows.values()))


def _done(rows: dict, i: int, capture, result, seconds: float) -> None:
    rows[i].update(
        status="done",
        seconds=f"{seconds:.2f}",
        faces=capture.mesh.n_faces,
        confidence=result.stats.get("confidence", ""),
        warnings=" | ".join(result.warnings),
        reason="",
    )


def _reason(e: BaseException) -> str:
    """An exception as the index's one-line reason."""
    return " ".join(one_line(str(e)).split()) or type(e).__name__


def _failed(rows: dict, i: int, path: Path, e: BaseException, log) -> None:
    reason = _reason(e)
    rows[i].update(status="failed", reason=reason)
    log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} failed {path}: {reason}\n")
    log.flush()


def _detections_beside(path: Path, capture) -> Detections | None:
    f = detections_file(path)
    return None if f is None else Detections.load_json(f).validate(capture.n_views, capture.image_size)


def _write_atomically(out: Path, folder: str, capture, result, per_face_json: bool = False) -> None:
    """Write into a hidden folder, then rename it: a half-written output never looks finished. The
    result's part figures go into its stats, for the review of the collection."""
    from ..pipeline.outliers import result_figures

    result.stats["parts"] = result_figures(capture.mesh, result).to_dict(result.part_names)
    partial = out / f".partial-{folder}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        write_outputs(partial, capture, result, per_face_json=per_face_json)
        os.replace(partial, out / folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _read_index(out: Path) -> dict[str, dict]:
    try:
        return {r["input"]: r for r in json.loads((out / "index.json").read_text())}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _write_index(out: Path, rows: list[dict]) -> None:
    tmp = out / ".index.json"
    tmp.write_text(json.dumps(rows, indent=1) + "\n")
    os.replace(tmp, out / "index.json")
    tmp = out / ".index.csv"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=INDEX_FIELDS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, out / "index.csv")
