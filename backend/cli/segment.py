"""``partdistill segment``: a mesh file or capture bundle -> labels, coloured mesh, previews."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from partdistill.shared.atomic import FolderLock
from partdistill.shared.detections import Detections
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import METHODS, RENDER_TYPES, TEACHER_INPUTS, TEACHER_PRECISIONS, SegmentOptions
from partdistill.shared.protocol import check_address

from ..io.inputs import MESH_SUFFIXES, read_few_shot_labels, read_input
from ..io.outputs import write_outputs
from . import arguments
from .console import ProgressBars, print_summary
from .keys import read_key


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("segment", help="segment a mesh file or a capture bundle into named parts")
    s.add_argument("input", type=Path, help=f"a mesh file ({' '.join(MESH_SUFFIXES)}) or a capture bundle .npz")
    arguments.add_parts_arg(s)
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--detections", type=Path, help="2D detections JSON (format in the README); no teacher then")
    s.add_argument("--labels", type=Path, help="few-shot: a labels.npz (face_labels, part_names) of faces you labelled")
    add_engine_args(s)
    arguments.add_output_args(s)
    s.set_defaults(func=run)


def add_engine_args(s: argparse.ArgumentParser, points_help: str = "") -> None:
    """The options of the teacher, the method and the backend (``segment`` and ``batch``;
    ``points_help``: ``arguments.add_training_args``)."""
    s.add_argument(
        "--teacher", default=None, help=f"2D teacher when no --detections (default {arguments.DEFAULT_TEACHER})"
    )
    s.add_argument("--teacher-model", default="", help="hub id or local folder of the teacher's weights")
    s.add_argument("--prompt-template", default="{part}", help='text per part, e.g. "the {part} of a {object}"')
    s.add_argument("--object", default="", help="object name for {object} in the prompt template")
    s.add_argument("--sam-model", default=None, help="refine boxes into masks with SAM ('default' or hub id/folder)")
    s.add_argument(
        "--text-encoder",
        default="",
        help="CLIP text encoder (hub id/folder) for part-name embeddings; "
        "default: openai/clip-vit-base-patch32 when its weights are on this machine, else hashed names "
        "('hashed' forces those)",
    )
    s.add_argument(
        "--whole-object-cover",
        type=float,
        default=SegmentOptions.whole_object_cover,
        help="drop boxes covering this much of the object (PartSLIP); above 1 keeps all",
    )
    s.add_argument(
        "--category-model",
        default="",
        help="label with a category model from `partdistill fit` (its folder, or a name the server "
        "allows) instead of a teacher",
    )
    s.add_argument(
        "--render-type",
        choices=RENDER_TYPES,
        default=SegmentOptions.render_type,
        help="what the teacher sees (the paper's C.3): the mesh as captured, the mesh in grey, or "
        "dense coloured / sparse grey points sampled on it (labels return to the faces)",
    )
    s.add_argument(
        "--backbone",
        default="",
        help="folder of a pretrained student encoder (frozen unless "
        "--finetune-backbone); see `partdistill bench pretrain`",
    )
    s.add_argument("--finetune-backbone", action="store_true", help="train the pretrained encoder too")
    s.add_argument(
        "--method",
        choices=METHODS,
        default="distill",
        help="distill (the student) or a baseline without one: vote, vote-fill, superpoint",
    )
    s.add_argument("--backend", default=None, help="address of a running `partdistill serve`; default: in-process")
    s.add_argument("--server-key", type=Path, help="the backend's CurveZMQ public key file (server.key)")
    s.add_argument("--client-key", type=Path, help="this client's NAME.key_secret (`partdistill keys --client`)")
    s.add_argument("--timeout", type=float, default=30.0, help="seconds of backend silence before giving up")
    arguments.add_capture_args(s)
    arguments.add_training_args(s, points_help)
    s.add_argument("--box-threshold", type=float, default=SegmentOptions.box_threshold)
    s.add_argument(
        "--teacher-batch",
        type=int,
        default=0,
        help="views per forward pass of the teacher (default 0: one on a CPU, on a GPU as many as fit its memory)",
    )
    s.add_argument(
        "--teacher-precision",
        choices=TEACHER_PRECISIONS,
        default="fp32",
        help="fp32 (exact), bf16/fp16 autocast (fp16 on GPUs), int8 linear layers (CPU); all but fp32 change "
        "the detections a little (see docs/benchmark.md)",
    )
    s.add_argument(
        "--teacher-input",
        choices=TEACHER_INPUTS,
        default="processor",
        help="the size the teacher sees a view at: its processor's resize, or the render's own (grounding_dino)",
    )
    arguments.add_run_args(s)


def engine_options(args: argparse.Namespace, with_teacher: bool) -> SegmentOptions:
    """The job options from the command line; ``with_teacher``: no detections given."""
    return SegmentOptions(
        method=args.method,
        teacher=(args.teacher or arguments.DEFAULT_TEACHER) if with_teacher else None,
        teacher_model=args.teacher_model,
        prompt_template=args.prompt_template,
        object_name=args.object,
        sam_model=None if args.sam_model is None else ("" if args.sam_model == "default" else args.sam_model),
        text_encoder=args.text_encoder,
        whole_object_cover=args.whole_object_cover,
        box_threshold=args.box_threshold,
        refine=args.refine,
        render_type=args.render_type,
        backbone=args.backbone,
        finetune_backbone=args.finetune_backbone,
        category_model=args.category_model,
        teacher_batch=args.teacher_batch,
        teacher_precision=args.teacher_precision,
        teacher_input=args.teacher_input,
        **arguments.training_options(args),
    ).validate()


def backend_client(args: argparse.Namespace):
    """A client of ``--backend`` with the key files given."""
    from partdistill.shared.client import BackendClient

    key = read_key(args.server_key) if args.server_key else None
    mine = (None, None)
    if args.client_key:
        mine = (read_key(args.client_key), read_key(args.client_key, secret=True))
    return BackendClient(
        args.backend,
        timeout_s=args.timeout,
        server_public_key=key,
        client_public_key=mine[0],
        client_secret_key=mine[1],
    )


def run(args: argparse.Namespace) -> int:
    names = arguments.part_names(args.parts)
    if args.detections is not None and args.teacher is not None:
        raise ValidationError("--detections", "give either --detections or --teacher, not both")
    if args.category_model and (args.detections is not None or args.teacher is not None):
        raise ValidationError("--category-model", "labels without a teacher: leave out --detections and --teacher")
    options = engine_options(args, with_teacher=args.detections is None and not args.category_model)
    if args.backend:
        check_address(args.backend, "--backend")
    with FolderLock(args.out, field="--out"):  # before any long work: a folder in use is refused now
        t0 = time.perf_counter()
        capture = read_input(
            args.input, views=args.views, resolution=args.resolution, quiet=args.quiet, engine=args.render
        )
        t_capture = time.perf_counter() - t0
        detections = None
        if args.detections is not None:
            detections = Detections.load_json(args.detections).validate(capture.n_views, capture.image_size)
        labelled = read_few_shot_labels(args.labels, capture, names) if args.labels is not None else None

        with ProgressBars(args.quiet) as bar:
            if args.backend:
                result = backend_client(args).segment(
                    capture, names, options, detections, on_progress=bar.client_update, labelled_faces=labelled
                )
            else:
                from ..tta import segment

                result = segment(
                    capture,
                    names,
                    options=options,
                    detections=detections,
                    teacher=arguments.teacher(options) if detections is None and not options.category_model else None,
                    labelled_faces=labelled,
                    progress=bar.update,
                )
        result.timings = {"capture": t_capture, **result.timings, "total": time.perf_counter() - t0}
        written = write_outputs(args.out, capture, result, per_face_json=args.per_face_json)
    print_summary(result, written, capture)
    return 0
