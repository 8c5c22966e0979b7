"""``partdistill capture``: a mesh file or a point cloud made into a capture bundle.

A mesh file is rendered with headless Blender; a point cloud with the numpy rasteriser in this
process."""

from __future__ import annotations

import argparse
from pathlib import Path

from partdistill.shared.atomic import check_writable
from partdistill.shared.bundle import load_bundle, save_bundle
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import RENDER_TYPES

from ..io.inputs import (
    INPUT_SUFFIXES,
    capture_in_blender,
    capture_point_file,
    check_input_file,
    is_point_cloud_file,
)
from .arguments import add_capture_args


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("capture", help="render a mesh file or a point cloud into a capture bundle")
    c.add_argument("input", type=Path)
    c.add_argument("--out", type=Path, required=True, help="bundle path (.npz)")
    add_capture_args(c, "")
    c.add_argument(
        "--render-type",
        choices=RENDER_TYPES,
        default="color-mesh",
        help="write the views as this render type shows them (the paper's C.3): gray-mesh repaints "
        "them, dense-points / sparse-points write the bundle of the points sampled",
    )
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_input_file(args.input)
    check_writable(args.out, "--out")  # before rendering, not after
    if is_point_cloud_file(args.input):
        save_bundle(args.out, capture_point_file(args.input, views=args.views, resolution=args.resolution))
    elif args.input.suffix.lower() in INPUT_SUFFIXES:
        capture_in_blender(args.input, args.out, views=args.views, resolution=args.resolution, engine=args.render)
        if args.render_type != "color-mesh":
            from ..render_types import render_as

            save_bundle(args.out, render_as(load_bundle(args.out), args.render_type).capture)
    else:
        raise ValidationError(
            "input", f"unknown input type {args.input.suffix!r}; supported: {' '.join(INPUT_SUFFIXES)}"
        )
    print(f"wrote {args.out}")
    return 0
