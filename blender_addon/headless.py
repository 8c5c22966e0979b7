"""Headless Blender (bpy as a Python module) entry points, run by the CLI in a child process:

    python -m partdistill.blender_addon.headless capture MESH BUNDLE.npz [--views 10] [--resolution 512]

Errors are printed as one ``partdistill: error: ...`` line with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._shared import ValidationError, save_bundle


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m partdistill.blender_addon.headless")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("capture", help="import a mesh file and capture it with a ring of cameras")
    c.add_argument("input", type=Path)
    c.add_argument("out", type=Path)
    c.add_argument("--views", type=int, default=10)
    c.add_argument("--resolution", type=int, default=512)
    args = p.parse_args(argv)
    try:
        from .capture import capture_file

        def progress(done: int, total: int, message: str) -> None:
            print(f"captured {message}", file=sys.stderr, flush=True)

        cap = capture_file(args.input, n_views=args.views, resolution=args.resolution, progress=progress)
        save_bundle(args.out, cap)
    except ValidationError as e:
        print(f"partdistill: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
