"""The engine: capture + part names (+ a teacher or given detections) -> per-face part labels.

teacher(views, part names) -> detections          (or detections brought by the user)
drop whole-object boxes; lift(detections, face-id maps) -> knowledge units over surface points
distill(student, units) -> per-point -> per-face -> per-polygon labels + confidences
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch

from ..shared.capture import Capture
from ..shared.detections import Detection, Detections
from ..shared.errors import ValidationError
from ..shared.options import SegmentOptions
from ..shared.result import SegmentationResult
from .cancel import Cancelled
from .distill import DistillConfig, distill
from .shape_prep import PreparedShape, prepare_shape
from .students.edge_point_net import EdgePointNet
from .students.part_embeddings import PartEmbedder
from .transfer import faces_to_polygons, points_to_faces
from .voting import vote

Progress = Callable[[int, int, str], None]


def resolve_device(name: str) -> torch.device:
    """ "auto" -> CUDA when present; an explicit "cuda" without a GPU is a ValidationError."""
    from .teachers.base import resolve_device as resolve

    return torch.device(resolve(name))


@lru_cache(maxsize=4)
def part_embedder(text_encoder: str, device: str) -> PartEmbedder:
    """Loaded once per process (a CLIP text encoder takes seconds to load)."""
    return PartEmbedder(text_encoder, device=device)


def align_detections(detections: Detections, part_names: Sequence[str]) -> Detections:
    """Re-index detections onto ``part_names`` (by name). Detections of parts not asked for are an
    error: silently dropping them would hide a typo in the part list."""
    names = tuple(part_names)
    if tuple(detections.part_names) == names:
        return detections
    missing = [n for n in detections.part_names if n not in names]
    if missing:
        raise ValidationError("detections.part_names", f"{missing} not among the requested parts {list(names)}")
    remap = [names.index(n) for n in detections.part_names]
    views = [[Detection(remap[d.part], d.score, d.box, d.mask) for d in dets] for dets in detections.views]
    return Detections(names, views, detections.image_size)


def make_detections(
    capture: Capture,
    names: tuple[str, ...],
    options: SegmentOptions,
    detections: Detections | None,
    teacher,
    progress: Progress | None,
    cancel: Callable[[], bool] | None,
    timings: dict,
    stats: dict,
) -> Detections:
    """The teacher's (or the given) detections, validated, aligned to ``names``, whole-object boxes dropped."""
    t = time.perf_counter()
    if detections is None:
        if teacher is None:
            raise ValidationError("detections", "no detections given and no teacher to make them")
        detections = teacher.detect(capture.rgb, names, progress=progress, cancel=cancel)
        timings["teacher"] = time.perf_counter() - t
        stats["teacher"] = getattr(teacher, "name", type(teacher).__name__)
    detections = align_detections(detections.validate(capture.n_views, capture.image_size), names)
    before = detections.n_detections
    if options.whole_object_cover <= 1.0:
        from .teachers.base import drop_whole_object_boxes

        detections = drop_whole_object_boxes(detections, capture.face_id >= 0, options.whole_object_cover)
    stats["n_detections"] = detections.n_detections
    stats["dropped_whole_object_boxes"] = before - detections.n_detections
    return detections


def segment(
    capture: Capture,
    part_names: Sequence[str],
    *,
    options: SegmentOptions | None = None,
    detections: Detections | None = None,
    teacher=None,
    labelled_faces: np.ndarray | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> SegmentationResult:
    """Segment ``capture`` into ``part_names`` (test-time alignment: a student distilled for this shape).

    Give ``detections`` or a ``teacher`` (``backend.teachers.base.Teacher``). ``labelled_faces``
    (F,) int32 (-1 = unknown), optional: few-shot labels (faces a user painted) that enter as units of
    confidence 1 which backward distillation never lowers."""
    options = (options or SegmentOptions()).validate()
    capture.validate()
    names = tuple(part_names)
    timings: dict[str, float] = {}
    stats: dict[str, object] = {"method": options.method, "n_views": capture.n_views, "n_faces": capture.mesh.n_faces}

    def report(done: int, total: int, stage: str) -> None:
        if cancel is not None and cancel():
            raise Cancelled()
        if progress is not None:
            progress(done, total, stage)

    if labelled_faces is not None:
        _check_labelled_faces(labelled_faces, capture.mesh.n_faces, len(names))
    if detections is not None or teacher is not None or labelled_faces is None or options.method == "vote":
        detections = make_detections(capture, names, options, detections, teacher, report, cancel, timings, stats)
    report(0, 1, "lift")

    if options.method == "vote":
        t = time.perf_counter()
        labels, scores = vote(capture, detections)
        timings["vote"] = time.perf_counter() - t
        confidence = np.where(labels >= 0, scores.max(axis=1), 0.0).astype(np.float32)
        polygons = faces_to_polygons(capture.mesh, scores, labels)
        return SegmentationResult(names, labels, confidence, polygons, stats, timings).validate()

    t = time.perf_counter()
    # Early training produces denormal floats in the backward pass; on x86 CPUs they made each epoch
    # 30x slower (1.2 s instead of 0.04 s for 4k points). Flushing them to zero changes nothing visible.
    torch.set_flush_denormal(True)
    torch.manual_seed(options.seed)
    device = resolve_device(options.device)
    embedder = part_embedder(options.text_encoder, str(device))
    emb = embedder(names)
    student = EdgePointNet(text_dim=embedder.dim).to(device)
    shape = prepare_shape(capture, detections, options.n_points, options.seed, device, student.k, labelled_faces)
    units = shape.units
    timings["lift"] = time.perf_counter() - t
    covered = int((units.coverage() > 0).sum())
    stats.update(n_units=units.n_units, n_points=shape.points.n, covered_points=covered)
    if units.n_units == 0 or covered == 0:
        raise ValidationError("detections", "no detection covers any visible part of the mesh: nothing to learn from")

    t = time.perf_counter()
    rep = distill(
        lambda i: student(shape.xyz, shape.normals, emb, shape.nbr)[0].float().cpu(),
        list(student.parameters()),
        [units],
        len(names),
        distill_config(options),
        seed=options.seed,
        progress=report,
        cancel=cancel,
    )
    timings["distill"] = time.perf_counter() - t
    stats.update(
        trigger_epoch=rep.trigger_epoch, epochs_run=len(rep.loss), final_loss=rep.loss[-1] if rep.loss else None
    )
    stats["loss"] = [round(x, 5) for x in rep.loss]
    stats["unit_weights_before"] = [round(float(x), 4) for x in rep.weights_before]
    stats["unit_weights_after"] = [round(float(x), 4) for x in rep.weights_after]
    return label_faces(student, shape, emb, names, stats, timings)


def distill_config(options: SegmentOptions) -> DistillConfig:
    return DistillConfig(
        epochs=options.epochs,
        backward=options.backward,
        ma_window=options.backward_window,
        ma_tolerance=options.backward_tolerance,
    )


def label_faces(
    student: EdgePointNet, shape: PreparedShape, emb: torch.Tensor, names: tuple[str, ...], stats: dict, timings: dict
) -> SegmentationResult:
    """Run the student on the shape's points and carry its prediction to faces and polygons."""
    t = time.perf_counter()
    with torch.inference_mode():
        probs = torch.softmax(student(shape.xyz, shape.normals, emb, shape.nbr)[0].float(), dim=-1).cpu().numpy()
    face_scores = points_to_faces(shape.mesh, shape.points, probs)
    labels = face_scores.argmax(axis=1).astype(np.int32)
    confidence = face_scores.max(axis=1).astype(np.float32).clip(0, 1)
    polygons = faces_to_polygons(shape.mesh, face_scores, labels)
    timings["label"] = time.perf_counter() - t
    return SegmentationResult(names, labels, confidence, polygons, stats, timings).validate()


def _check_labelled_faces(labels: np.ndarray, n_faces: int, n_parts: int) -> None:
    from ..shared.validation import check_array, check_index_range

    check_array("labelled_faces", labels, np.int32, (n_faces,))
    check_index_range("labelled_faces", labels, -1, n_parts)
