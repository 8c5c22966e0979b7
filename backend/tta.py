"""Test-time alignment (TTA): a student distilled for this one shape, the product's main path.

teacher(views, part names) -> detections          (or detections brought by the user)   pipeline.detect
lift(detections, face-id maps) -> knowledge units over surface points                  pipeline.lift
distill(student, units)                                                                pipeline.distill
student -> per-point -> per-face -> per-polygon labels + confidences                   pipeline.label
(``method`` "vote", "vote-fill", "superpoint": voting baselines instead of a student)   pipeline.vote
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
from partdistill.shared import limits
from partdistill.shared.capture import Capture
from partdistill.shared.detections import Detections
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import VOTING_METHODS, SegmentOptions
from partdistill.shared.progress import Progress
from partdistill.shared.result import SegmentationResult
from partdistill.shared.validation import check_array, check_index_range, check_part_names

from .cancel import Cancelled
from .pipeline.detect import make_detections
from .pipeline.distill import TTA_LR, DistillConfig, distill
from .pipeline.label import faces_to_polygons, keep_labelled, label_faces
from .pipeline.review import review
from .pipeline.shape import prepare_shape
from .pipeline.vote import superpoint_vote, vote, vote_fill
from .render_types import render_as, to_mesh, to_points
from .students.build import new_student


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

    Give ``detections`` or a ``teacher`` (``partdistill.backend.teachers.base.Teacher``). ``labelled_faces``
    (F,) int32 (-1 = unknown), optional: few-shot labels (faces a user painted) that enter as units of
    confidence 1 which backward distillation never lowers, and keep their labels in the result.
    A render type other than ``color-mesh`` is a straight line: render the capture as points, label
    the points, bring the labels back to the faces; the result is reviewed once, on the mesh."""
    options = (options or SegmentOptions()).validate()
    capture.validate()
    names = check_part_names("part_names", part_names, limits.MAX_PARTS, limits.MAX_PART_NAME_CHARS)
    if labelled_faces is not None:
        _check_labelled_faces(labelled_faces, capture.mesh.n_faces, len(names))
    if options.category_model:  # the paper's Pre: a pre-aligned student alone, no teacher
        from .pre import predict_named

        result = keep_labelled(predict_named(capture, names, options), capture.mesh, labelled_faces)
        return review(result, capture.mesh, noted=capture.warnings).validate()
    if options.render_type == "color-mesh":
        result, detections = _label(capture, names, options, detections, teacher, labelled_faces, progress, cancel)
        return review(result, capture.mesh, detections, capture.face_id, capture.warnings).validate()
    rendered = render_as(capture, options.render_type, options.seed)
    inner = replace(options, render_type="color-mesh")
    labelled = None if rendered.point_face is None else to_points(labelled_faces, rendered.point_face)
    result, detections = _label(
        rendered.capture,
        names,
        inner,
        detections,
        teacher,
        labelled_faces if labelled is None else labelled,
        progress,
        cancel,
    )
    if rendered.point_face is None:  # gray-mesh: the mesh itself, repainted
        return review(result, capture.mesh, detections, rendered.capture.face_id, capture.warnings).validate()
    result = to_mesh(result, capture, rendered.point_face)
    result.stats["render_type"] = options.render_type
    result = keep_labelled(result, capture.mesh, labelled_faces)
    return review(result, capture.mesh, detections, noted=capture.warnings).validate()


def _label(
    capture: Capture,
    names: list[str],
    options: SegmentOptions,
    detections: Detections | None,
    teacher,
    labelled_faces: np.ndarray | None,
    progress: Progress | None,
    cancel: Callable[[], bool] | None,
) -> tuple[SegmentationResult, Detections | None]:
    """Teacher (or the user's detections) -> lift -> distill (or vote) -> labels of ``capture``'s
    faces, the faces a user labelled kept; with the detections used, for the review."""
    timings: dict[str, float] = {}
    stats: dict[str, object] = {"method": options.method, "n_views": capture.n_views, "n_faces": capture.mesh.n_faces}

    def report(done: int, total: int, stage: str) -> None:
        if cancel is not None and cancel():
            raise Cancelled()
        if progress is not None:
            progress(done, total, stage)

    capture.check_views_show_object()  # before the teacher: empty views teach nothing
    voting = options.method in VOTING_METHODS
    if detections is not None or teacher is not None or labelled_faces is None or voting:
        detections = make_detections(capture, names, options, detections, teacher, report, cancel, timings, stats)
    report(0, 1, "lift")

    if voting:
        t = time.perf_counter()
        how = {"vote": vote, "vote-fill": vote_fill, "superpoint": superpoint_vote}[options.method]
        labels, scores = how(capture, detections)
        timings["vote"] = time.perf_counter() - t
        confidence = np.where(labels >= 0, scores.max(axis=1), 0.0).astype(np.float32)
        polygons = faces_to_polygons(capture.mesh, scores, labels)
        result = SegmentationResult(names, labels, confidence, polygons, stats, timings)
        return keep_labelled(result, capture.mesh, labelled_faces), detections

    t = time.perf_counter()
    setup = new_student(names, options.text_encoder, options.device, options.seed)
    student, emb = setup.student, setup.embeddings
    stats["text_encoder"] = setup.text_encoder or "hashed"
    if options.backbone:
        from .backbone import load_backbone

        load_backbone(student, options.backbone, frozen=not options.finetune_backbone)
    shape = prepare_shape(capture, detections, options.n_points, options.seed, setup.device, student.k, labelled_faces)
    units = shape.units
    timings["lift"] = time.perf_counter() - t
    covered = int((units.coverage() > 0).sum())
    stats.update(n_units=units.n_units, n_points=shape.points.n, covered_points=covered)
    if units.n_units == 0 or covered == 0:
        raise ValidationError("detections", "no detection covers any visible part of the mesh: nothing to learn from")

    t = time.perf_counter()
    rep = distill(
        lambda i: student(shape.xyz, shape.normals, emb, shape.nbr)[0].float().cpu(),
        [p for p in student.parameters() if p.requires_grad],
        [units],
        len(names),
        DistillConfig.from_options(options, lr=TTA_LR),
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
    result = label_faces(student, shape, emb, names, stats, timings, options.refine)
    return keep_labelled(result, capture.mesh, labelled_faces), detections


def _check_labelled_faces(labels: np.ndarray, n_faces: int, n_parts: int) -> None:
    check_array("labelled_faces", labels, np.int32, (n_faces,))
    check_index_range("labelled_faces", labels, -1, n_parts)
