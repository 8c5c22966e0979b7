"""``partdistill batch --ray ADDRESS``: the same batch on an existing Ray cluster.

Each mesh is two Ray tasks: its capture (a CPU task: headless Blender in the worker) and its labelling
(teacher and distillation: a GPU task where the cluster has GPUs, else a CPU one). Ray schedules
them and retries a task whose worker died; this process only writes each finished mesh's outputs
(write, then rename), keeps the progress bar, the log and the index, exactly as a local batch does.
The inputs (and detections files beside them) must be readable by the workers at the same paths: a
shared file system, as usual for Ray. ``ADDRESS`` is what ``ray.init`` takes ("auto", "HOST:PORT",
"ray://HOST:10001"); "local" starts a private local instance.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

from ..io import InputError

_TEACHERS: dict[tuple, object] = {}  # per worker process: a teacher is loaded once, not per mesh


def _capture(path: str, views: int, resolution: int, engine: str):
    from ..io.inputs import read_input

    return read_input(Path(path), views=views, resolution=resolution, quiet=True, engine=engine)


def _label(capture, detections_file: str | None, names: tuple[str, ...], options: dict):
    from partdistill.shared.detections import Detections
    from partdistill.shared.options import SegmentOptions

    from ..tta import segment

    opts = SegmentOptions.from_dict(options)
    detections = None
    if detections_file is not None:
        detections = Detections.load_json(detections_file).validate(capture.n_views, capture.image_size)
    teacher = None
    if detections is None and opts.teacher is not None and not opts.category_model:
        key = (opts.teacher, opts.teacher_model, opts.sam_model, opts.device)
        if key not in _TEACHERS:
            from .arguments import teacher as load_teacher

            _TEACHERS[key] = load_teacher(opts)
        teacher = _TEACHERS[key]
    return capture, segment(capture, names, options=opts, detections=detections, teacher=teacher)


# One secret per process for the private instances it starts (Ray caches the token a process read).
_LOCAL_TOKEN = secrets.token_hex(32)

TOKEN_HELP = (
    "copy the cluster's token (`ray get-auth-token` on its head node) into RAY_AUTH_TOKEN, or into a file "
    "named by RAY_AUTH_TOKEN_PATH (default ~/.ray/auth_token), and set RAY_AUTH_MODE=token"
)


@contextlib.contextmanager
def connected(ray, address: str) -> Iterator[None]:
    """``ray.init`` for ``address`` until the block ends. "local" starts a private instance secured
    by a token of its own, given to it in the environment (nothing is read from or written to
    ``~/.ray``). A cluster that cannot be reached, or that refuses this machine's token, is an
    :class:`InputError` of one line saying what to do."""
    saved = ""  # None: this block set RAY_AUTH_TOKEN, and removes it again
    try:
        if address == "local":
            if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
                os.environ["RAY_AUTH_TOKEN"], saved = _LOCAL_TOKEN, None
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            try:
                with _held_stderr() as held:
                    ray.init(address=address, log_to_driver=False)
                    held.keep = True
            except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as e:
                if "authentic" in f"{e} {e.__cause__}".lower():
                    raise InputError(f"the Ray cluster at {address} refused {_token_offered()}: {TOKEN_HELP}") from None
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise InputError(f"cannot reach the Ray cluster at {address}: {first}") from None
        yield
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop("RAY_AUTH_TOKEN", None)


@contextlib.contextmanager
def _held_stderr() -> Iterator[SimpleNamespace]:
    """Hold what is written to file descriptor 2 (Ray's C++ core logs there directly, a warning a
    second while a cluster refuses the token); it is written out at the end only if ``keep`` was
    set, so a refusal reads as the one line of the error that follows."""
    held = SimpleNamespace(keep=False)
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as buffer:
        os.dup2(buffer.fileno(), 2)
        try:
            yield held
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if held.keep:
                buffer.seek(0)
                sys.stderr.write(buffer.read().decode(errors="replace"))


def _token_offered() -> str:
    """The token this process offered, found where Ray looks for one, in Ray's order."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "the token in RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return f"the token in {os.environ['RAY_AUTH_TOKEN_PATH']} (RAY_AUTH_TOKEN_PATH)"
    default = Path.home() / ".ray" / "auth_token"
    return f"the token in {default}" if default.is_file() else "to connect without a token (none found)"


def run_on_ray(address: str, args, inputs: list[Path], todo: list[int], names: tuple[str, ...], finish) -> None:
    """Label ``inputs[i]`` for every ``i`` in ``todo`` on the Ray cluster at ``address``; each outcome
    goes to ``finish(i, (capture, result) | exception)`` as it arrives."""
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs Ray: `pip install 'partdistill[ray]'`") from None
    from tqdm import tqdm

    from ..io.inputs import detections_file
    from .segment import engine_options

    with connected(ray, address):
        gpu = ray.cluster_resources().get("GPU", 0) > 0
        capture = ray.remote(num_cpus=1, max_retries=2)(_capture)
        label = ray.remote(num_cpus=0 if gpu else 1, num_gpus=1 if gpu else 0, max_retries=1)(_label)
        refs = {}
        for i in todo:
            det = detections_file(inputs[i])
            options = engine_options(args, with_teacher=det is None and not args.category_model).to_dict()
            cap_ref = capture.remote(str(inputs[i].resolve()), args.views, args.resolution, args.render)
            refs[label.remote(cap_ref, None if det is None else str(det.resolve()), names, options)] = i
        pending = list(refs)
        with tqdm(total=len(todo), desc="batch (ray)", unit="mesh", file=sys.stderr, disable=args.quiet) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                try:
                    outcome = ray.get(done[0])
                except Exception as e:  # noqa: BLE001 - a task's failure is that mesh's outcome
                    outcome = getattr(e, "cause", None) or e
                finish(refs[done[0]], outcome)
                bar.update(1)
