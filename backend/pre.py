"""Pre-alignment: one student distilled over a category, then labelling with it alone.

The paper's "Pre": distil one student over many unlabelled shapes of a category once, save it,
then label new shapes with the student alone — no teacher, no rendering needed.
Few-shot: shapes with labelled faces add units of confidence 1 that backward distillation never lowers."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from partdistill.shared.capture import Capture, Mesh
from partdistill.shared.detections import Detections
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import SegmentOptions, member_frames
from partdistill.shared.progress import Progress
from partdistill.shared.result import SegmentationResult

from .cancel import Cancelled
from .checkpoint import Checkpoint
from .device import prepare_torch
from .parallel import DataParallel, Share
from .pipeline.detect import make_detections
from .pipeline.distill import DistillConfig, distill
from .pipeline.label import label_faces
from .pipeline.review import review
from .pipeline.shape import PreparedShape, Stretch, prepare_points, prepare_shape
from .students.build import StudentSetup, new_student, part_embedder
from .students.mixture import StudentMixture


@dataclass
class TrainingShape:
    """One shape to learn from: its capture and either detections (or a teacher, given to ``fit``)
    and/or few-shot ``labelled_faces (F,) int32`` (-1 = unknown)."""

    capture: Capture
    detections: Detections | None = None
    labelled_faces: np.ndarray | None = None


def fit(
    shapes: Sequence[TrainingShape | None],
    part_names: Sequence[str],
    options: SegmentOptions | None = None,
    *,
    teacher=None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    shapes_per_step: int = 1,
    parallel: DataParallel | None = None,
) -> Checkpoint:
    """Distil one student over ``shapes``; returns the checkpoint (save it with ``save_checkpoint``).

    ``shapes_per_step``: shapes per optimiser step (their mean loss). ``parallel``: this process's
    place in a data-parallel job (``partdistill.backend.parallel``): ``shapes`` is the whole
    collection's list, the entries of other processes' shapes may be None and are not touched, and
    a step takes one shape per process; every process returns the same student."""
    options = (options or SegmentOptions()).validate()
    names = tuple(part_names)
    if not shapes:
        raise ValidationError("shapes", "fit needs at least one shape")
    t0 = time.perf_counter()
    setup = category_student(names, options)
    prepared, ids, stats = [], [], {"n_detections": 0}
    for i, s in enumerate(shapes):
        if parallel is not None and not parallel.owns(i):
            continue
        if cancel is not None and cancel():
            raise Cancelled()
        det = s.detections
        if det is not None or teacher is not None:
            det = make_detections(s.capture, names, options, det, teacher, None, cancel, {}, stats)
        if det is None and s.labelled_faces is None:
            raise ValidationError(f"shapes[{i}]", "has neither detections (or a teacher) nor labelled faces")
        prepared.append(
            prepare_shape(
                s.capture, det, options.n_points, options.seed + i, setup.device, setup.student.k, s.labelled_faces
            )
        )
        ids.append(i)
        if progress is not None:
            progress(i + 1, len(shapes), "lift")
    return train(
        setup,
        prepared,
        names,
        options,
        progress=progress,
        cancel=cancel,
        shapes_per_step=shapes_per_step,
        share=None if parallel is None else Share(parallel, ids, len(shapes)),
        started=t0,
    )


def category_student(names: tuple[str, ...], options: SegmentOptions) -> StudentSetup:
    """A new student for a category (with the pretrained encoder ``options.backbone`` names, if any)."""
    setup = new_student(names, options.text_encoder, options.device, options.seed)
    if options.backbone:
        from .backbone import load_backbone

        load_backbone(setup.student, options.backbone, frozen=not options.finetune_backbone)
    return setup


def train(
    setup: StudentSetup,
    prepared: Sequence[PreparedShape],
    names: tuple[str, ...],
    options: SegmentOptions,
    *,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    shapes_per_step: int = 1,
    share: Share | None = None,
    started: float | None = None,
    stretch: float = 1.0,
) -> Checkpoint:
    """Distil ``setup.student`` over the prepared shapes (their units' weights are re-scored in place
    by backward distillation); the checkpoint holds the student and how it was trained.
    ``stretch``: each training step's shape stretched by up to this factor per axis (``Stretch``)."""
    t0 = time.perf_counter() if started is None else started
    student, emb = setup.student, setup.embeddings
    n_shapes = len(prepared) if share is None else share.n_shapes
    parallel = None if share is None else share.parallel
    stretched = Stretch(stretch, options.seed)
    rep = distill(
        lambda i: student(*stretched(prepared[i].xyz, prepared[i].normals), emb, prepared[i].nbr)[0].float().cpu(),
        [p for p in student.parameters() if p.requires_grad],
        [p.units for p in prepared],
        len(names),
        DistillConfig.from_options(options),
        seed=options.seed,
        progress=progress,
        cancel=cancel,
        shapes_per_step=shapes_per_step,
        share=share,
    )
    n_units = torch.tensor([float(sum(p.units.n_units for p in prepared))])
    if parallel is not None:
        parallel.sum_(n_units)
    meta = {
        "training": {
            "n_shapes": n_shapes,
            "n_units": int(n_units.item()),
            "processes": 1 if parallel is None else parallel.world,
            "shapes_per_step": shapes_per_step if parallel is None else parallel.world,
            "epochs_run": len(rep.loss),
            "stretch": stretch,
            "trigger_epoch": rep.trigger_epoch,
            "loss": [round(x, 5) for x in rep.loss],
            "seconds": round(time.perf_counter() - t0, 2),
            "options": options.to_dict(),
        }
    }
    return Checkpoint(student.eval(), names, setup.text_encoder, options.n_points, meta)


def trained_frame(ckpt: Checkpoint) -> str:
    """The axes ``ckpt``'s students saw their shapes along (``CollectionOptions.frame``); a shape
    they label must be seen the same way (``member_frames(trained_frame(ckpt), students_in(ckpt))``)."""
    return ckpt.meta.get("training", {}).get("frame", "given")


def students_in(ckpt: Checkpoint) -> int:
    """How many students ``ckpt`` holds (the members of a ``StudentMixture``, or 1)."""
    return len(ckpt.student.members) if isinstance(ckpt.student, StudentMixture) else 1


def predict(
    mesh: Mesh | Capture, ckpt: Checkpoint, *, seed: int = 0, device: str = "auto", refine: str = SegmentOptions.refine
) -> SegmentationResult:
    """Label a shape with a pre-aligned student alone (no teacher, no views needed); ``refine`` as in
    ``SegmentOptions``."""
    noted = mesh.warnings if isinstance(mesh, Capture) else []
    mesh = mesh.mesh if isinstance(mesh, Capture) else mesh
    mesh.validate()
    t = time.perf_counter()
    dev = prepare_torch(device, seed)
    student = ckpt.student.to(dev)
    emb = part_embedder(ckpt.text_encoder, str(dev))(ckpt.part_names)
    shape = prepare_points(mesh, ckpt.n_points, seed, dev, student.k)
    frames = member_frames(trained_frame(ckpt), students_in(ckpt))
    timings = {"prepare": time.perf_counter() - t}
    stats = {"method": "pre", "n_faces": mesh.n_faces, "n_points": shape.points.n}
    result = label_faces(student, shape, emb, ckpt.part_names, stats, timings, refine, frames)
    result.timings["total"] = time.perf_counter() - t
    return review(result, mesh, noted=noted).validate()


def predict_named(capture: Capture, part_names: Sequence[str], options: SegmentOptions) -> SegmentationResult:
    """Label ``capture`` with the category model ``options.category_model`` (a ``fit`` folder) in
    the order of ``part_names``, which must be the model's parts (in any order)."""
    from .checkpoint import load_checkpoint

    try:
        ckpt = load_checkpoint(options.category_model)
    except ValidationError as e:
        raise ValidationError("options.category_model", e.problem) from None
    names = tuple(part_names)
    if set(names) != set(ckpt.part_names) or len(names) != len(ckpt.part_names):
        raise ValidationError(
            "part_names", f"the category model knows the parts {list(ckpt.part_names)}; asked for {list(names)}"
        )
    res = predict(capture, ckpt, seed=options.seed, device=options.device, refine=options.refine)
    order = np.array([ckpt.part_names.index(n) for n in names])  # request index -> model index
    to_request = np.empty(len(names) + 1, np.int32)
    to_request[order] = np.arange(len(names))
    to_request[-1] = -1  # unlabelled stays unlabelled (index -1 reads the last entry)
    res.face_labels = to_request[res.face_labels]
    res.polygon_labels = to_request[res.polygon_labels]
    res.part_names = names
    return res
