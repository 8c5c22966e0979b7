"""Headless Blender (bpy as a Python module) entry points, run by the CLI in a child process:

    python -m partdistill.blender_addon.headless capture MESH BUNDLE.npz [--views 10] [--resolution 512]
        [--timings]
    python -m partdistill.blender_addon.headless capture-many JOBS.json [--views 10] [--resolution 512]
        [--no-compress]

``capture-many`` captures a list of mesh files in one Blender process (importing bpy and probing the
render engine once instead of once per file). JOBS.json is a list of ``{"input": MESH, "output":
BUNDLE.npz}``. After each file it prints one line on stdout, ``partdistill: captured K/N OUTPUT``
(or ``partdistill: failed K/N INPUT: reason``), flushed, so a parent can follow progress and pick up
each bundle as soon as it exists. A failed file does not stop the others; the exit status is then 2.

Errors are printed as one ``partdistill: error: ...`` line with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from partdistill.shared.bundle import save_bundle
from partdistill.shared.errors import ValidationError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m partdistill.blender_addon.headless")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("capture", help="import a mesh file and capture it with a ring of cameras")
    c.add_argument("input", type=Path)
    c.add_argument("out", type=Path)
    c.add_argument("--views", type=int, default=10)
    c.add_argument("--resolution", type=int, default=512)
    c.add_argument("--engine", choices=("auto", "raster", "workbench", "cycles"), default="auto")
    c.add_argument("--timings", action="store_true", help="print the capture's timings (JSON) on stdout")
    m = sub.add_parser("capture-many", help="capture a list of mesh files in one Blender process")
    m.add_argument("jobs", type=Path, help='JSON list of {"input": MESH, "output": BUNDLE.npz}')
    m.add_argument("--views", type=int, default=10)
    m.add_argument("--resolution", type=int, default=512)
    m.add_argument("--engine", choices=("auto", "raster", "workbench", "cycles"), default="auto")
    m.add_argument("--no-compress", action="store_true", help="write uncompressed .npz (faster, larger)")
    args = p.parse_args(argv)
    if args.command == "capture-many":
        return _capture_many(args.jobs, args.views, args.resolution, args.engine, compress=not args.no_compress)
    try:
        from .mesh_import import capture_file

        def progress(done: int, total: int, message: str) -> None:
            print(f"captured {message}", file=sys.stderr, flush=True)

        cap = capture_file(
            args.input, n_views=args.views, resolution=args.resolution, engine=args.engine, progress=progress
        )
        save_bundle(args.out, cap)
        if args.timings:
            print(json.dumps(cap.meta.get("timings", {})), flush=True)
    except ValidationError as e:
        print(f"partdistill: error: {e}", file=sys.stderr)
        return 2
    return 0


def _read_jobs(path: Path) -> list[tuple[Path, Path]]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValidationError("jobs", f"cannot read {path}: {e}") from None
    if not isinstance(raw, list) or not all(
        isinstance(j, dict) and isinstance(j.get("input"), str) and isinstance(j.get("output"), str) for j in raw
    ):
        raise ValidationError("jobs", f'{path} must hold a list of {{"input": str, "output": str}}')
    return [(Path(j["input"]), Path(j["output"])) for j in raw]


def _capture_many(jobs_file: Path, views: int, resolution: int, engine: str, *, compress: bool) -> int:
    try:
        jobs = _read_jobs(jobs_file)
        from .mesh_import import capture_file
    except ValidationError as e:
        print(f"partdistill: error: {e}", file=sys.stderr)
        return 2
    failed = 0
    for k, (src, out) in enumerate(jobs, start=1):
        try:
            cap = capture_file(src, n_views=views, resolution=resolution, engine=engine)
            save_bundle(out, cap, compress=compress)
        except (ValidationError, RuntimeError, OSError) as e:  # one bad file must not stop the batch
            failed += 1
            # the parent names the input: a ValidationError's field would say it twice
            reason = " ".join(str(e.problem if isinstance(e, ValidationError) else e).split())
            print(f"partdistill: failed {k}/{len(jobs)} {src}: {reason}", flush=True)
            continue
        print(f"partdistill: captured {k}/{len(jobs)} {out}", flush=True)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
