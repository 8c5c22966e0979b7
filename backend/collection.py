"""Collection mode: the shapes of a category teach each other.

A category student is distilled over the whole collection (the paper's Pre), from several seeds
whose probabilities are averaged (one fit's result depends on its seed by several mIoU points),
and labels each shape; in mode "pre-tta" it is then fine-tuned on each shape with that shape's own
knowledge units (test-time alignment started from the category student, with fewer epochs). The
category student's labels stay beside each result: where a shape's own evidence departs from them,
``pipeline.outliers`` flags the shape.

Modes (``COLLECTION_MODES``): "pre" (the category student alone, the default: fitted from
``CollectionOptions.students`` seeds and averaged, it beat fine-tuning on the validation split),
"pre-tta" (the above), "ensemble" (each shape's own student distilled from scratch, as
``tta.segment``, its probabilities averaged with the category student's) and "tta" (every shape
on its own, as ``tta.segment``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from partdistill.shared import limits
from partdistill.shared.detections import Detections
from partdistill.shared.errors import ValidationError, one_line
from partdistill.shared.options import CollectionOptions, SegmentOptions, collection_ruled_out, member_frames
from partdistill.shared.progress import Progress
from partdistill.shared.request import Member
from partdistill.shared.result import SegmentationResult
from partdistill.shared.validation import check_part_names

from .cancel import Cancelled
from .checkpoint import Checkpoint
from .pipeline.detect import make_detections
from .pipeline.distill import TTA_LR, DistillConfig, distill, rescore
from .pipeline.label import label_faces
from .pipeline.outliers import FLAG_PREFIX, disagreement, flag_collection, result_figures
from .pipeline.review import review
from .pipeline.shape import PreparedShape, along, prepare_points, prepare_shape
from .pipeline.vote import superpoint_vote
from .pre import category_student, students_in, train, trained_frame
from .students.build import part_embedder
from .students.mixture import StudentMixture


@dataclass
class CollectionResult:
    """results: one per member (None where it failed, with its one-line reason in ``errors``).
    student_labels: per member, the category student's face labels ``(F,) int32`` (None in mode
    "tta" or for a failed member). differs: per member, ``(F,) bool``, the faces where the shape's
    own evidence and the category student disagree (``own_evidence_differs``; None where
    ``student_labels`` is). checkpoint: the category student (None in mode "tta")."""

    results: list[SegmentationResult | None]
    errors: list[str]
    student_labels: list[np.ndarray | None]
    checkpoint: Checkpoint | None = None
    timings: dict[str, float] = field(default_factory=dict)
    differs: list[np.ndarray | None] = field(default_factory=list)

    def disagreements(self) -> np.ndarray:
        """(S,) float64: the share of each member's surface where its labels differ from the category
        student's; in mode "pre", where its labels are the category student's, the share of its voted
        surface where they differ from its own detections' superpoint vote (NaN without a student or a
        result)."""
        out = np.full(len(self.results), np.nan)
        for i, (r, s) in enumerate(zip(self.results, self.student_labels, strict=True)):
            if r is not None and s is not None:
                out[i] = float(r.stats["disagreement"])
        return out


def segment_collection(
    members: Sequence[Member],
    part_names: Sequence[str],
    options: SegmentOptions | None = None,
    collection: CollectionOptions | None = None,
    *,
    teacher=None,
    checkpoint: Checkpoint | None = None,
    fitted: Callable[[Checkpoint], None] | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> CollectionResult:
    """Label every member (see the module docstring). A member is asked for its ``capture`` once
    per pass, so it may read it from disk (``io.capture_cache.CachedMember``). ``checkpoint``: a category student fitted
    before over the same collection (an interrupted batch resumed), used instead of fitting one;
    ``fitted`` is called with the category student as soon as it is fitted. A
    member that cannot be labelled (empty views, detections that cover nothing) is reported in
    ``errors`` and the others go on; a collection of which none can be labelled raises
    ``ValidationError``."""
    options = (options or SegmentOptions()).validate()
    collection = (collection or CollectionOptions()).validate()
    names = check_part_names("part_names", part_names, limits.MAX_PARTS, limits.MAX_PART_NAME_CHARS)
    if not members:
        raise ValidationError("inputs", "a collection needs at least one shape")
    why = collection_ruled_out(options)
    if why is not None and collection.mode != "tta":
        raise ValidationError("collection.mode", f"{collection.mode} is not for {why}: use mode tta")
    if collection.mode == "tta":
        return _one_by_one(members, names, options, teacher, progress, cancel)
    options = replace(options, n_points=collection.fit_points(options))
    t0 = time.perf_counter()
    n = len(members)
    setup = category_student(names, options)
    prepared: list[PreparedShape | None] = [None] * n
    dets: list[Detections | None] = [None] * n
    errors = [""] * n
    for i, m in enumerate(members):
        _check_cancel(cancel)
        try:
            cap = m.capture  # once: a member may read it from disk on each use
            cap.validate()
            cap.check_views_show_object()
            dets[i] = make_detections(cap, names, options, m.detections, teacher, None, cancel, {}, {})
            shape = prepare_shape(cap, dets[i], options.n_points, options.seed + i, setup.device, setup.student.k)
            if shape.units.n_units == 0 or not (shape.units.coverage() > 0).any():
                raise ValidationError("detections", "no detection covers any visible part of the mesh")
            prepared[i] = shape
        except ValidationError as e:
            errors[i] = one_line(str(e))
        _report(progress, i + 1, n, "detect")
    ok = [i for i in range(n) if prepared[i] is not None]
    if not ok:
        raise ValidationError("inputs", f"no shape of the collection could be labelled (first: {errors[0]})")
    confidence = [prepared[i].units.weight.copy() for i in ok]
    t1 = time.perf_counter()
    if checkpoint is None:
        ckpt = _fit(setup, [prepared[i] for i in ok], confidence, names, options, collection, progress, cancel)
        if fitted is not None:
            fitted(ckpt)
    else:
        if tuple(checkpoint.part_names) != names:
            raise ValidationError(
                "checkpoint", f"the category student knows the parts {list(checkpoint.part_names)}, not {list(names)}"
            )
        ckpt = Checkpoint(
            checkpoint.student.to(setup.device).eval(),
            names,
            checkpoint.text_encoder,
            checkpoint.n_points,
            checkpoint.meta,
        )
    frames = member_frames(trained_frame(ckpt), students_in(ckpt))
    emb = (
        setup.embeddings
        if ckpt.text_encoder == setup.text_encoder
        else part_embedder(ckpt.text_encoder, str(setup.device))(names)
    )
    timings = {"detect_lift": t1 - t0, "fit": time.perf_counter() - t1}
    results: list[SegmentationResult | None] = [None] * n
    student_labels: list[np.ndarray | None] = [None] * n
    differs: list[np.ndarray | None] = [None] * n
    t2 = time.perf_counter()
    for k, i in enumerate(ok):
        _check_cancel(cancel)
        shape, cap = prepared[i], members[i].capture
        # on points the student was not trained on: it learnt each shape's own detections on its
        # training points, and its prior is what it makes of the shape itself
        fresh = prepare_points(cap.mesh, ckpt.n_points, options.seed + n + i, setup.device, ckpt.student.k)
        fresh.axes = shape.axes  # the same mesh: its principal axes, where the fit computed them
        pre = label_faces(ckpt.student, fresh, emb, names, {"method": "pre"}, {}, options.refine, frames)
        student_labels[i] = pre.face_labels
        if collection.mode == "pre":
            result = pre
        else:
            shape.units.weight = confidence[k]  # the category fit re-scored them; each shape starts afresh
            # one frame for every member here (``CollectionOptions.validate``)
            result = _finetune(ckpt, along(shape, frames[0]), emb, names, options, collection, cancel)
        result.stats.update(method=f"collection-{collection.mode}", n_views=cap.n_views)
        own = superpoint_vote(cap, dets[i])[0] if collection.mode == "pre" else None
        differs[i] = own_evidence_differs(result.face_labels, pre.face_labels, own)
        areas = cap.mesh.face_areas()
        result.stats["disagreement"] = round(disagreement(differs[i], areas, None if own is None else own >= 0), 4)
        result.face_confidence = np.where(
            differs[i], result.face_confidence * collection.disagree_confidence, result.face_confidence
        ).astype(np.float32)
        # a detected part left without a face is worded by the collection's review (review_members)
        results[i] = review(result, cap.mesh, dets[i], cap.face_id, cap.warnings, missing_parts=False).validate()
        _report(progress, k + 1, len(ok), "label" if collection.mode == "pre" else "tune")
    timings["label"] = time.perf_counter() - t2
    shared = {"detect_lift": timings["detect_lift"] / len(ok), "category_fit": timings["fit"] / len(ok)}
    for i in ok:  # each shape's seconds carry its share of the collection's work, so they add up to the run
        results[i].timings = {**shared, **results[i].timings}
    return CollectionResult(results, errors, student_labels, ckpt, timings, differs)


def own_evidence_differs(labels: np.ndarray, student_labels: np.ndarray, own_vote: np.ndarray | None) -> np.ndarray:
    """(F,) bool: the faces where what a shape's own evidence shows and the category student
    disagree. ``labels``, ``student_labels``: (F,) int32, the shape's result and the category
    student's. ``own_vote``: (F,) int32, the shape's own detections' superpoint vote (-1 where no
    detection reached), given in mode "pre", where the result is the category student's own; in the
    other modes the result carries the shape's own evidence (None)."""
    if own_vote is None:
        return labels != student_labels
    return (own_vote >= 0) & (own_vote != labels)


def review_members(members: Sequence[Member], out: CollectionResult, names: tuple[str, ...]) -> list[str]:
    """The collection's review (``pipeline.outliers``): each flagged member's result gets its warnings
    (starting ``FLAG_PREFIX``); returns the collection's own warnings."""
    figures = [
        None if r is None else result_figures(m.capture.mesh, r) for m, r in zip(members, out.results, strict=True)
    ]
    flags = flag_collection(figures, out.disagreements(), names)
    for r, warnings in zip(out.results, flags.shape_warnings, strict=True):
        if r is not None:
            r.warnings = [w for w in r.warnings if not w.startswith(FLAG_PREFIX)] + [FLAG_PREFIX + w for w in warnings]
            del r.warnings[limits.MAX_WARNINGS :]
    return [FLAG_PREFIX + w for w in flags.collection_warnings]


def _fit(
    setup,
    prepared: list[PreparedShape],
    confidence: list[np.ndarray],
    names: tuple[str, ...],
    options: SegmentOptions,
    collection: CollectionOptions,
    progress: Progress | None,
    cancel: Callable[[], bool] | None,
) -> Checkpoint:
    """The category student (``pre.train``); with ``collection.students`` > 1, that many fitted from
    the seeds ``options.seed``, ``options.seed + 1``, ... on the same detections, as one
    ``StudentMixture``."""
    students = collection.students
    fits = []
    for j, frame in enumerate(member_frames(collection.frame, students)):
        for shape, weight in zip(prepared, confidence, strict=True):
            shape.units.weight = weight.copy()  # each fit re-scores them in place
        own = replace(options, seed=options.seed + j)
        step = None if progress is None else _part_of(progress, j, students)
        student = setup if j == 0 else category_student(names, own)
        seen = [along(shape, frame) for shape in prepared]
        fits.append(train(student, seen, names, own, progress=step, cancel=cancel, stretch=collection.stretch))
    for f in fits:
        f.meta["training"]["frame"] = collection.frame  # what labelling with it later must do too
    if students == 1:
        return fits[0]
    meta = {"training": {**fits[0].meta["training"], "students": students}}
    meta["training"]["seconds"] = round(sum(f.meta["training"]["seconds"] for f in fits), 2)
    mixture = StudentMixture([f.student for f in fits]).eval()
    return Checkpoint(mixture, fits[0].part_names, fits[0].text_encoder, fits[0].n_points, meta)


def _part_of(progress: Progress, j: int, parts: int) -> Progress:
    """Progress of the ``j``-th of ``parts`` equal runs as progress of the whole."""
    return lambda done, total, stage: progress(j * total + done, parts * total, stage)


def _finetune(
    ckpt: Checkpoint,
    shape: PreparedShape,
    emb,
    names: tuple[str, ...],
    options: SegmentOptions,
    collection: CollectionOptions,
    cancel: Callable[[], bool] | None,
) -> SegmentationResult:
    """Test-time alignment of one shape started from the category student (mode "ensemble": from
    scratch, for the job's epochs)."""
    t = time.perf_counter()
    config = DistillConfig.from_options(options, lr=TTA_LR)
    if collection.mode == "ensemble":
        # conditioned on the category student's part embeddings (``emb``), whichever encoder made them
        own = replace(options, text_encoder=ckpt.text_encoder or "hashed")
        student = category_student(names, own).student.train()
    else:
        first = ckpt.student.members[0] if isinstance(ckpt.student, StudentMixture) else ckpt.student
        student = copy.deepcopy(first).train()
        config.epochs = collection.finetune_epochs
    if collection.downweight:
        import torch

        with torch.inference_mode():
            pred = ckpt.student(shape.xyz, shape.normals, emb, shape.nbr)[0].argmax(dim=-1).cpu().numpy()
        shape.units.weight = rescore(pred, shape.units, rescale_per_part=True)
    rep = distill(
        lambda i: student(shape.xyz, shape.normals, emb, shape.nbr)[0].float().cpu(),
        [p for p in student.parameters() if p.requires_grad],
        [shape.units],
        len(names),
        config,
        seed=options.seed,
        cancel=cancel,
    )
    stats = {"epochs_run": len(rep.loss), "trigger_epoch": rep.trigger_epoch, "loss": [round(x, 5) for x in rep.loss]}
    w = collection.blend
    final = student.eval() if not w else StudentMixture([ckpt.student, student.eval()], [w, 1.0 - w])
    return label_faces(final, shape, emb, names, stats, {"distill": time.perf_counter() - t}, options.refine)


def _one_by_one(
    members: Sequence[Member],
    names: tuple[str, ...],
    options: SegmentOptions,
    teacher,
    progress: Progress | None,
    cancel: Callable[[], bool] | None,
) -> CollectionResult:
    from .tta import segment

    results: list[SegmentationResult | None] = []
    errors = []
    for i, m in enumerate(members):
        _check_cancel(cancel)
        try:
            results.append(
                segment(m.capture, names, options=options, detections=m.detections, teacher=teacher, cancel=cancel)
            )
            errors.append("")
        except ValidationError as e:
            results.append(None)
            errors.append(one_line(str(e)))
        _report(progress, i + 1, len(members), "segment")
    if all(r is None for r in results):
        raise ValidationError("inputs", f"no shape of the collection could be labelled (first: {errors[0]})")
    return CollectionResult(results, errors, [None] * len(members), differs=[None] * len(members))


def _check_cancel(cancel: Callable[[], bool] | None) -> None:
    if cancel is not None and cancel():
        raise Cancelled()


def _report(progress: Progress | None, done: int, total: int, stage: str) -> None:
    if progress is not None:
        progress(done, total, stage)
