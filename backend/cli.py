"""``partdistill``: segment meshes, serve the backend, make CurveZMQ keys.

partdistill segment INPUT --parts seat,back,leg --out DIR [--detections FILE.json]
                    [--teacher grounding_dino] [--teacher-model ID|DIR] [--method distill|vote]
                    [--backend tcp://host:port] [--views 10] [--resolution 512]
partdistill capture MESH --out BUNDLE.npz [--views 10] [--resolution 512]
partdistill serve [--bind tcp://127.0.0.1:5555] [--curve-keys DIR]
partdistill keys DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..shared.bundle import load_bundle
from ..shared.capture import Capture
from ..shared.detections import Detections
from ..shared.errors import ValidationError
from ..shared.options import SegmentOptions
from ..shared.result import SegmentationResult
from ..shared.validation import parse_part_names

MESH_SUFFIXES = (".obj", ".ply", ".stl", ".glb", ".gltf", ".fbx", ".blend")
DEFAULT_TEACHER = "grounding_dino"


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return args.func(args)
    except (CliError, ValidationError) as e:
        print(f"partdistill: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("partdistill: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from ..shared.client import BackendError, BackendTimeout
        from .teachers.base import TeacherUnavailableError

        if isinstance(e, TeacherUnavailableError | BackendError | BackendTimeout):
            print(f"partdistill: error: {e}", file=sys.stderr)
            return 2
        raise


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="partdistill", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("segment", help="segment a mesh file or a capture bundle into named parts")
    s.add_argument("input", type=Path, help=f"a mesh file ({' '.join(MESH_SUFFIXES)}) or a capture bundle .npz")
    s.add_argument("--parts", required=True, help="comma-separated part names, e.g. seat,back,leg,arm")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--detections", type=Path, help="2D detections JSON (format in the README); no teacher then")
    s.add_argument("--teacher", default=None, help=f"2D teacher when no --detections (default {DEFAULT_TEACHER})")
    s.add_argument("--teacher-model", default="", help="hub id or local folder of the teacher's weights")
    s.add_argument("--prompt-template", default="{part}", help='text per part, e.g. "the {part} of a {object}"')
    s.add_argument("--object", default="", help="object name for {object} in the prompt template")
    s.add_argument("--sam-model", default=None, help="refine boxes into masks with SAM ('default' or hub id/folder)")
    s.add_argument("--text-encoder", default="", help="CLIP text encoder (hub id/folder) for part-name embeddings")
    s.add_argument("--labels", type=Path, help="few-shot: a labels.npz (face_labels, part_names) of faces you labelled")
    s.add_argument("--whole-object-cover", type=float, default=SegmentOptions.whole_object_cover,
                   help="drop boxes covering this much of the object (PartSLIP); above 1 keeps all")  # fmt: skip
    s.add_argument("--method", choices=("distill", "vote"), default="distill")
    s.add_argument("--backend", default=None, help="address of a running `partdistill serve`; default: in-process")
    s.add_argument("--server-key", type=Path, help="the backend's CurveZMQ public key file (server.key)")
    s.add_argument("--timeout", type=float, default=30.0, help="seconds of backend silence before giving up")
    s.add_argument("--views", type=int, default=10, help="camera-ring views when capturing a mesh file")
    s.add_argument("--resolution", type=int, default=512, help="view size in pixels when capturing a mesh file")
    s.add_argument("--points", type=int, default=SegmentOptions.n_points, help="surface points for the student")
    s.add_argument("--epochs", type=int, default=SegmentOptions.epochs, help="maximum distillation epochs")
    s.add_argument("--no-backward", action="store_true", help="forward distillation only")
    s.add_argument("--box-threshold", type=float, default=SegmentOptions.box_threshold)
    s.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_segment)

    f = sub.add_parser("fit", help="pre-align one student over many shapes of a category (Pre)")
    f.add_argument("inputs", type=Path, nargs="+", help="mesh files, capture bundles, or folders of them")
    f.add_argument("--parts", required=True)
    f.add_argument("--out", type=Path, required=True, help="checkpoint folder")
    f.add_argument("--teacher", default=DEFAULT_TEACHER, help="teacher for inputs without <stem>.detections.json")
    f.add_argument("--teacher-model", default="")
    f.add_argument("--views", type=int, default=10)
    f.add_argument("--resolution", type=int, default=512)
    f.add_argument("--points", type=int, default=SegmentOptions.n_points)
    f.add_argument("--epochs", type=int, default=SegmentOptions.epochs)
    f.add_argument("--no-backward", action="store_true")
    f.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--quiet", action="store_true")
    f.set_defaults(func=cmd_fit)

    r = sub.add_parser("predict", help="label a shape with a pre-aligned student alone (no teacher)")
    r.add_argument("input", type=Path)
    r.add_argument("--model", type=Path, required=True, help="checkpoint folder made by `partdistill fit`")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--views", type=int, default=10, help="views rendered for the preview of a mesh file")
    r.add_argument("--resolution", type=int, default=512)
    r.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_predict)

    b = sub.add_parser("bench", help="quality / speed benchmarks with SIMULATED teachers (see README)")
    b.add_argument("which", choices=("quality", "speed"))
    b.add_argument("--data", type=Path, default=Path(".cache/bench"), help="cached benchmark captures")
    b.add_argument("--out", type=Path, default=Path("out/bench"))
    b.add_argument("--families", default=None, help="comma-separated subset (default: all)")
    b.add_argument("--per-family", type=int, default=12)
    b.add_argument("--n-test", type=int, default=4)
    b.add_argument("--views", type=int, default=10)
    b.add_argument("--resolution", type=int, default=512)
    b.add_argument("--teachers", default="box,mask", help="simulated teachers: box (B-VLM-like), mask (P-VLM-like)")
    b.add_argument("--points", type=int, default=SegmentOptions.n_points)
    b.add_argument("--epochs", type=int, default=SegmentOptions.epochs)
    b.add_argument("--pre-epochs", type=int, default=None, help="epochs of the Pre fit (default: --epochs)")
    b.add_argument("--repeats", type=int, default=3, help="speed: runs per figure (the median is printed)")
    b.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    b.set_defaults(func=cmd_bench)

    c = sub.add_parser("capture", help="render a mesh file into a capture bundle (headless Blender)")
    c.add_argument("input", type=Path)
    c.add_argument("--out", type=Path, required=True, help="bundle path (.npz)")
    c.add_argument("--views", type=int, default=10)
    c.add_argument("--resolution", type=int, default=512)
    c.set_defaults(func=cmd_capture)

    v = sub.add_parser("serve", help="run the ZeroMQ backend")
    v.add_argument("--bind", default="tcp://127.0.0.1:5555")
    v.add_argument("--curve-keys", type=Path, help="folder made by `partdistill keys` (required off loopback)")
    v.set_defaults(func=cmd_serve)

    k = sub.add_parser("keys", help="make CurveZMQ key pairs for an encrypted non-loopback backend")
    k.add_argument("folder", type=Path)
    k.set_defaults(func=cmd_keys)
    return p


# ---- segment ---------------------------------------------------------------------------------


def cmd_segment(args: argparse.Namespace) -> int:
    names = _part_names(args.parts)
    if args.detections is not None and args.teacher is not None:
        raise CliError("give either --detections or --teacher, not both")
    options = SegmentOptions(
        method=args.method,
        teacher=None if args.detections is not None else (args.teacher or DEFAULT_TEACHER),
        teacher_model=args.teacher_model,
        prompt_template=args.prompt_template,
        object_name=args.object,
        sam_model=None if args.sam_model is None else ("" if args.sam_model == "default" else args.sam_model),
        text_encoder=args.text_encoder,
        whole_object_cover=args.whole_object_cover,
        box_threshold=args.box_threshold,
        n_points=args.points,
        epochs=args.epochs,
        backward=not args.no_backward,
        device=args.device,
        seed=args.seed,
    ).validate()
    t0 = time.perf_counter()
    capture = read_input(args.input, views=args.views, resolution=args.resolution, quiet=args.quiet)
    t_capture = time.perf_counter() - t0
    detections = None
    if args.detections is not None:
        detections = Detections.load_json(args.detections).validate(capture.n_views, capture.image_size)
    labelled = _few_shot_labels(args.labels, capture, names) if args.labels is not None else None

    with _Progress(args.quiet) as bar:
        if args.backend:
            from ..shared.client import BackendClient

            key = args.server_key.read_bytes().strip() if args.server_key else None
            client = BackendClient(args.backend, timeout_s=args.timeout, server_public_key=key)
            result = client.segment(
                capture, names, options, detections, on_progress=bar.client_update, labelled_faces=labelled
            )
        else:
            from .engine import segment

            teacher = _teacher(options) if detections is None else None
            result = segment(
                capture, names, options=options, detections=detections, teacher=teacher, labelled_faces=labelled,
                progress=bar.update,
            )  # fmt: skip
    result.timings = {"capture": t_capture, **result.timings, "total": time.perf_counter() - t0}
    written = write_outputs(args.out, capture, result)
    _summary(result, written, capture)
    return 0


def read_input(path: Path, *, views: int = 10, resolution: int = 512, quiet: bool = False) -> Capture:
    """A capture bundle is read directly; a mesh file is captured with headless Blender in a child
    process (bpy and torch stay in separate processes; a crash in Blender cannot take the engine down)."""
    if not path.exists():
        raise CliError(f"input not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_bundle(path)
    if suffix not in MESH_SUFFIXES:
        raise CliError(
            f"unknown input type {path.suffix!r}: expected a capture bundle .npz or a mesh file {MESH_SUFFIXES}"
        )
    with tempfile.TemporaryDirectory(prefix="partdistill-capture-") as tmp:
        bundle = Path(tmp) / "capture.npz"
        capture_in_blender(path, bundle, views=views, resolution=resolution, quiet=quiet)
        return load_bundle(bundle)


def capture_in_blender(mesh: Path, bundle: Path, *, views: int, resolution: int, quiet: bool = False) -> None:
    cmd = [sys.executable, "-m", "partdistill.blender_addon.headless", "capture", str(mesh), str(bundle),
           "--views", str(views), "--resolution", str(resolution)]  # fmt: skip
    if not quiet:
        print(f"capturing {mesh} ({views} views, {resolution} px) with headless Blender ...", file=sys.stderr)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_blender_env())
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit status {proc.returncode}"
        if "No module named 'bpy'" in (proc.stderr or ""):
            last = "Blender as a Python module (bpy) is not installed: `pip install 'partdistill[blender]'`"
        raise CliError(f"capturing {mesh} failed: {last.removeprefix('partdistill: error: ')}")


def _blender_env() -> dict[str, str]:
    env = dict(os.environ)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "partdistill"
    env.setdefault("XDG_CACHE_HOME", str(cache.parent))  # keeps compiled Workbench shaders between runs
    env.setdefault("BLENDER_USER_RESOURCES", str(cache / "blender-user"))
    return env


def write_outputs(out: Path, capture: Capture, result: SegmentationResult) -> dict[str, Path]:
    """labels.npz, labels.json, segmented.glb, preview.png (and loss.png after distillation)."""
    from .export_glb import write_glb
    from .preview import save_loss_curve, save_preview

    out.mkdir(parents=True, exist_ok=True)
    written = {}
    written["labels"] = out / "labels.npz"
    np.savez_compressed(
        written["labels"],
        face_labels=result.face_labels,
        face_confidence=result.face_confidence,
        polygon_labels=result.polygon_labels,
        part_names=np.array(result.part_names, dtype=np.str_),
    )
    written["json"] = out / "labels.json"
    written["json"].write_text(json.dumps({
        "part_names": list(result.part_names),
        "face_labels": result.face_labels.tolist(),
        "polygon_labels": result.polygon_labels.tolist(),
        "face_confidence": [round(float(c), 4) for c in result.face_confidence],
        "stats": {k: v for k, v in result.stats.items() if k != "loss"},
        "timings": {k: round(float(v), 4) for k, v in result.timings.items()},
    }))  # fmt: skip
    m = capture.mesh
    written["mesh"] = write_glb(out / "segmented.glb", m.vertices, m.faces, result.face_labels, result.part_names)
    written["preview"] = save_preview(out / "preview.png", capture, result.face_labels, result.part_names)
    if result.stats.get("loss"):
        written["loss"] = save_loss_curve(out / "loss.png", result.stats["loss"], result.stats.get("trigger_epoch"))
    return written


def _summary(result: SegmentationResult, written: dict[str, Path], capture: Capture) -> None:
    counts = np.bincount(result.face_labels + 1, minlength=len(result.part_names) + 1)
    print(f"segmented {capture.mesh.n_faces} faces into {len(result.part_names)} parts:")
    for i, name in enumerate(result.part_names):
        print(f"  {name:>16}: {counts[i + 1]} faces")
    if counts[0]:
        print(f"  {'(unlabelled)':>16}: {counts[0]} faces")
    if capture.gt_face_labels is not None and tuple(capture.part_names) == tuple(result.part_names):
        from .metrics import shape_miou

        miou = shape_miou(result.face_labels, capture.gt_face_labels, len(result.part_names), capture.mesh.face_areas())
        print(f"mIoU against the bundle's ground truth: {100 * miou:.1f}")
    print("timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items()))
    for kind, path in written.items():
        print(f"wrote {kind}: {path}")


class _Progress:
    """tqdm bars, one per stage (teacher, distill, ...)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None
        self.stage = None

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, done: int, total: int, stage: str) -> None:
        if self.quiet or total <= 0:
            return
        from tqdm import tqdm

        if stage != self.stage:
            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=total, desc=stage, unit="step", leave=False, file=sys.stderr)
            self.stage = stage
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def client_update(self, done: int, total: int, stage: str, message: str) -> None:
        self.update(done, total, stage)


# ---- bench ---------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    options = SegmentOptions(n_points=args.points, epochs=args.epochs, device=args.device).validate()
    if args.which == "speed":
        figures = bench.speed(args.data, repeats=args.repeats, options=options)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "speed.json").write_text(json.dumps(figures, indent=1))
        print(f"wrote {args.out / 'speed.json'}")
        return 0
    teachers = tuple(t.strip() for t in args.teachers.split(",") if t.strip())
    unknown = [t for t in teachers if t not in bench.TEACHERS]
    if unknown or not teachers:
        raise CliError(f"--teachers must be among {sorted(bench.TEACHERS)}")
    families = tuple(f.strip() for f in args.families.split(",")) if args.families else None
    if families:
        from .shape_families import FAMILIES

        bad = [f for f in families if f not in FAMILIES]
        if bad:
            raise CliError(f"unknown families {bad}; known: {sorted(FAMILIES)}")
    if not 1 <= args.n_test < args.per_family:
        raise CliError("--n-test must be at least 1 and smaller than --per-family")
    bench.quality(
        args.data, args.out, families=families, per_family=args.per_family, n_test=args.n_test, views=args.views,
        resolution=args.resolution, teachers=teachers, options=options, pre_epochs=args.pre_epochs,
    )  # fmt: skip
    print(f"wrote {args.out}/results.json, results.md, loss_curves.png, segmentations.png")
    return 0


# ---- fit / predict (Pre) ---------------------------------------------------------------------


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given; folders -> their bundles and mesh files (sorted), detections files skipped."""
    out = []
    for p in inputs:
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix.lower() in (".npz", *MESH_SUFFIXES)
                          and not f.name.endswith(".labels.npz"))  # fmt: skip
        elif p.exists():
            out.append(p)
        else:
            raise CliError(f"input not found: {p}")
    if not out:
        raise CliError("no mesh files or capture bundles among the inputs")
    return out


def cmd_fit(args: argparse.Namespace) -> int:
    from .checkpoint import save_checkpoint
    from .pre_alignment import TrainingShape, fit

    names = _part_names(args.parts)
    options = SegmentOptions(
        teacher=args.teacher, teacher_model=args.teacher_model, n_points=args.points, epochs=args.epochs,
        backward=not args.no_backward, device=args.device, seed=args.seed,
    ).validate()  # fmt: skip
    shapes, need_teacher = [], False
    for path in expand_inputs(args.inputs):
        cap = read_input(path, views=args.views, resolution=args.resolution, quiet=args.quiet)
        det_file = path.with_name(path.stem + ".detections.json")
        det = Detections.load_json(det_file).validate(cap.n_views, cap.image_size) if det_file.exists() else None
        lab_file = path.with_name(path.stem + ".labels.npz")
        labels = _few_shot_labels(lab_file, cap, names) if lab_file.exists() else None
        need_teacher |= det is None and labels is None
        shapes.append(TrainingShape(cap, det, labels))
    teacher = _teacher(options) if need_teacher else None
    with _Progress(args.quiet) as bar:
        ckpt = fit(shapes, names, options, teacher=teacher, progress=bar.update)
    save_checkpoint(args.out, ckpt)
    tr = ckpt.meta["training"]
    print(f"fitted on {tr['n_shapes']} shapes ({tr['n_units']} knowledge units) in {tr['seconds']:.1f} s; "
          f"backward distillation from epoch {tr['trigger_epoch']}; wrote {args.out}")  # fmt: skip
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .engine import resolve_device
    from .pre_alignment import predict

    ckpt = load_checkpoint(args.model, device=resolve_device(args.device))
    t0 = time.perf_counter()
    capture = read_input(args.input, views=args.views, resolution=args.resolution, quiet=args.quiet)
    t_capture = time.perf_counter() - t0
    result = predict(capture, ckpt, device=args.device)
    result.timings = {"capture": t_capture, **result.timings}
    written = write_outputs(args.out, capture, result)
    _summary(result, written, capture)
    return 0


def _few_shot_labels(path: Path, cap: Capture, names: tuple[str, ...]) -> np.ndarray:
    """``<stem>.labels.npz`` (the ``labels.npz`` format: face_labels + part_names) -> (F,) int32 labels
    re-indexed onto ``names``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            labels, their = z["face_labels"].astype(np.int32), [str(n) for n in z["part_names"]]
    except (OSError, KeyError, ValueError) as e:
        raise CliError(f"{path}: not a labels file with face_labels and part_names ({e})") from None
    if labels.shape != (cap.mesh.n_faces,):
        raise CliError(f"{path}: {labels.shape[0]} face labels for a mesh of {cap.mesh.n_faces} faces")
    unknown = [n for n in their if n not in names]
    if unknown:
        raise CliError(f"{path}: parts {unknown} are not among --parts")
    remap = np.array([names.index(n) for n in their] + [-1], dtype=np.int32)
    return remap[np.where(labels >= 0, labels, len(their))]


def _part_names(text: str) -> tuple[str, ...]:
    try:
        return parse_part_names(text)
    except ValidationError:
        raise CliError("--parts needs at least one part name") from None


def _teacher(options: SegmentOptions):
    from .teachers import teacher_from_options

    return teacher_from_options(options)


# ---- capture / serve / keys ------------------------------------------------------------------


def cmd_capture(args: argparse.Namespace) -> int:
    if args.input.suffix.lower() not in MESH_SUFFIXES:
        raise CliError(f"unknown mesh type {args.input.suffix!r}; supported: {MESH_SUFFIXES}")
    if not args.input.exists():
        raise CliError(f"input not found: {args.input}")
    capture_in_blender(args.input, args.out, views=args.views, resolution=args.resolution)
    print(f"wrote {args.out}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import Server

    secret = public = None
    if args.curve_keys is not None:
        secret, public = load_server_keys(args.curve_keys)
    try:
        server = Server(args.bind, curve_secret_key=secret, curve_public_key=public)
    except ValueError as e:
        raise CliError(str(e)) from None
    print(f"partdistill backend on {args.bind} (Ctrl+C to stop)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    import zmq

    args.folder.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.curve_keypair()
    (args.folder / "server.key").write_bytes(public)
    sec = args.folder / "server.key_secret"
    sec.write_bytes(secret)
    sec.chmod(0o600)
    print(f"wrote {args.folder}/server.key (give it to clients) and server.key_secret (keep it on the server)")
    return 0


def load_server_keys(folder: Path) -> tuple[bytes, bytes]:
    try:
        return (folder / "server.key_secret").read_bytes().strip(), (folder / "server.key").read_bytes().strip()
    except FileNotFoundError as e:
        raise CliError(f"CurveZMQ keys not found: {e.filename} (make them with `partdistill keys {folder}`)") from None


if __name__ == "__main__":
    sys.exit(main())
