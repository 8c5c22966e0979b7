"""The engine: capture + part names (+ a teacher or given detections) -> per-face part labels.

teacher(views, part names) -> detections          (or detections brought by the user)
lift(detections, face-id maps) -> knowledge units over surface points
distill(student, units) -> per-point -> per-face -> per-polygon labels + confidences
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..shared.capture import Capture
from ..shared.detections import Detections
from ..shared.errors import ValidationError
from ..shared.options import SegmentOptions
from ..shared.result import SegmentationResult
from .cancel import Cancelled
from .distill import DistillConfig, distill
from .lifting import compute_visibility, lift
from .sampling import sample_surface
from .students.edge_point_net import EdgePointNet, knn
from .students.part_embeddings import hashed_embeddings
from .transfer import faces_to_polygons, points_to_faces
from .voting import vote

Progress = Callable[[int, int, str], None]


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValidationError("options.device", "cuda was asked for but no CUDA device is available")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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
    views = [[type(d)(remap[d.part], d.score, d.box, d.mask) for d in dets] for dets in detections.views]
    return Detections(names, views)


def segment(
    capture: Capture,
    part_names: Sequence[str],
    *,
    options: SegmentOptions | None = None,
    detections: Detections | None = None,
    teacher=None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> SegmentationResult:
    """Segment ``capture`` into ``part_names``. Give either ``detections`` or a ``teacher``
    (``backend.teachers.base.Teacher``)."""
    options = (options or SegmentOptions()).validate()
    capture.validate()
    names = tuple(part_names)
    timings: dict[str, float] = {}
    stats: dict[str, object] = {
        "method": options.method,
        "n_views": capture.n_views,
        "n_faces": capture.mesh.n_faces,
    }

    def check_cancel() -> None:
        if cancel is not None and cancel():
            raise Cancelled()

    def report(done: int, total: int, stage: str) -> None:
        check_cancel()
        if progress is not None:
            progress(done, total, stage)

    t = time.perf_counter()
    if detections is None:
        if teacher is None:
            raise ValidationError("detections", "no detections given and no teacher to make them")
        detections = teacher.detect(capture.rgb, names, progress=report, cancel=cancel)
        timings["teacher"] = time.perf_counter() - t
        stats["teacher"] = getattr(teacher, "name", type(teacher).__name__)
    detections = align_detections(detections.validate(capture.n_views, capture.image_size), names)
    stats["n_detections"] = detections.n_detections
    check_cancel()

    if options.method == "vote":
        t = time.perf_counter()
        labels, scores = vote(capture, detections)
        timings["vote"] = time.perf_counter() - t
        confidence = np.where(labels >= 0, scores.max(axis=1), 0.0).astype(np.float32)
        polygons = faces_to_polygons(capture.mesh, scores, labels)
        return SegmentationResult(names, labels, confidence, polygons, stats, timings).validate()

    t = time.perf_counter()
    points = sample_surface(capture.mesh, options.n_points, seed=options.seed)
    vis = compute_visibility(capture, points)
    units = lift(capture, detections, points, vis)
    timings["lift"] = time.perf_counter() - t
    covered = int((units.coverage() > 0).sum())
    stats.update(n_units=units.n_units, n_points=points.n, covered_points=covered)
    report(0, options.epochs, "distill")
    if units.n_units == 0 or covered == 0:
        raise ValidationError("detections", "no detection covers any visible part of the mesh: nothing to learn from")

    t = time.perf_counter()
    # Early training produces denormal floats in the backward pass; on x86 CPUs they made each epoch
    # 30x slower (1.2 s instead of 0.04 s for 4k points). Flushing them to zero changes nothing visible.
    torch.set_flush_denormal(True)
    torch.manual_seed(options.seed)
    device = resolve_device(options.device)
    xyz = _normalise(points.xyz)
    xyz_t = torch.as_tensor(xyz, device=device)[None]
    nrm_t = torch.as_tensor(points.normals, device=device)[None]
    student = EdgePointNet().to(device)
    emb = hashed_embeddings(names, student.embed_dim).to(device)
    nbr = knn(xyz_t, student.k)

    def forward() -> torch.Tensor:
        return student(xyz_t, nrm_t, emb, nbr)[0].float().cpu()

    config = DistillConfig(epochs=options.epochs, backward=options.backward)
    rep = distill(forward, list(student.parameters()), units, len(names), config, progress=report, cancel=cancel)
    with torch.no_grad():
        probs = torch.softmax(forward(), dim=-1).numpy()
    timings["distill"] = time.perf_counter() - t
    stats.update(
        trigger_epoch=rep.trigger_epoch,
        epochs_run=len(rep.loss),
        final_loss=rep.loss[-1] if rep.loss else None,
    )
    stats["loss"] = [round(x, 5) for x in rep.loss]

    face_scores = points_to_faces(capture.mesh, points, probs)
    labels = face_scores.argmax(axis=1).astype(np.int32)
    confidence = face_scores.max(axis=1).astype(np.float32).clip(0, 1)
    polygons = faces_to_polygons(capture.mesh, face_scores, labels)
    return SegmentationResult(names, labels, confidence, polygons, stats, timings).validate()


def _normalise(xyz: np.ndarray) -> np.ndarray:
    """Centre on the bounding-box centre and scale into the unit sphere (the student is
    scale-invariant this way; Fourier features assume coordinates in [-1, 1])."""
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    c = (lo + hi) / 2
    r = float(np.linalg.norm(xyz - c, axis=1).max()) or 1.0
    return ((xyz - c) / r).astype(np.float32)
