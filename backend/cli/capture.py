"""``partdistill capture``: render a mesh file into a capture bundle with headless Blender."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io import InputError
from ..io.inputs import MESH_SUFFIXES, capture_in_blender
from .arguments import add_capture_args


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("capture", help="render a mesh file into a capture bundle (headless Blender)")
    c.add_argument("input", type=Path)
    c.add_argument("--out", type=Path, required=True, help="bundle path (.npz)")
    add_capture_args(c, "")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.input.suffix.lower() not in MESH_SUFFIXES:
        raise InputError(f"unknown mesh type {args.input.suffix!r}; supported: {MESH_SUFFIXES}")
    if not args.input.exists():
        raise InputError(f"input not found: {args.input}")
    capture_in_blender(args.input, args.out, views=args.views, resolution=args.resolution, engine=args.render)
    print(f"wrote {args.out}")
    return 0
