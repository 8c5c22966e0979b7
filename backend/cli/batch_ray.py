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

import sys
from pathlib import Path

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


def run_on_ray(address: str, args, inputs: list[Path], todo: list[int], names: tuple[str, ...], finish) -> None:
    """Label ``inputs[i]`` for every ``i`` in ``todo`` on the Ray cluster at ``address``; each outcome
    goes to ``finish(i, (capture, result) | exception)`` as it arrives."""
    from tqdm import tqdm

    from ..ray_cluster import connected, import_ray

    ray = import_ray()

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
