"""Labelled shapes captured through headless Blender and cached on disk.

They are captured through the real headless-Blender capture path: what both benchmark datasets (the
procedural families and the real meshes) are made of.

Captures run in child processes (``python -m partdistill.blender_addon.headless capture-many``), each
capturing a list of OBJ files in one Blender session; the parent attaches the labels and writes the
final bundle as each capture arrives (write, then rename: an interrupted run never leaves a truncated
bundle). Ground truth: polygon order survives the OBJ round trip, so a triangle's label is
``shape.labels[face_to_polygon]``; :func:`attach_ground_truth` checks that claim on every shape
(polygon count and per-polygon centroids) and raises if it ever fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from partdistill.backend.io.capture_pool import capture_files
from partdistill.shared.bundle import save_bundle
from partdistill.shared.capture import Capture
from partdistill.shared.progress import Progress

from .shapes import LabelledShape


@dataclass(eq=False)
class CaptureJob:
    """One shape to capture. name: for messages. obj: where its OBJ goes. bundle: the final bundle
    (the cache: an existing one is not captured again). n_faces: set once captured."""

    name: str
    shape: LabelledShape
    obj_text: str
    obj: Path
    bundle: Path
    n_faces: int = 0


class CaptureFailed(RuntimeError):
    """Headless Blender could not capture a shape (or is not installed)."""


def capture_jobs(
    jobs: Sequence[CaptureJob],
    root: Path,
    views: int,
    resolution: int,
    workers: int | None = None,
    progress: Progress | None = None,
) -> None:
    """Capture every job whose bundle does not exist yet; cached ones are reported and skipped, so a
    second call starts no Blender at all. Sets each job's ``n_faces``. workers: Blender processes run
    at once (default: one per two cores, at most 8; on a 2-core machine a second process gained
    nothing, as rendering and the parent's compression already use the second core)."""
    total, done = len(jobs), 0
    todo = [j for j in jobs if not j.bundle.is_file()]
    for j in jobs:
        if j not in todo:
            done += 1
            j.n_faces = j.n_faces or bundle_faces(j.bundle)
            _report(progress, done, total, f"{j.name}: cached")
    if not todo:
        return
    for j in todo:
        j.obj.parent.mkdir(parents=True, exist_ok=True)
        j.bundle.parent.mkdir(parents=True, exist_ok=True)
        if not j.obj.is_file() or j.obj.read_text() != j.obj_text:
            j.obj.write_text(j.obj_text)
    n_workers = workers if workers is not None else min(8, max(1, (os.cpu_count() or 2) // 2))

    def captured(j: CaptureJob) -> None:
        nonlocal done
        done += 1
        _report(progress, done, total, f"{j.name}: captured")

    _capture_many(todo, Path(root), views, resolution, max(1, min(n_workers, len(todo))), captured)


def attach_ground_truth(capture: Capture, shape: LabelledShape) -> Capture:
    """Set ``capture.part_names`` and ``capture.gt_face_labels = shape.labels[face_to_polygon]``.

    That is right only if the capture's source polygons are the shape's polygons in the same order
    (true for our OBJ files through Blender's importer). Checked here: the polygon count must match
    and each polygon's centroid (mean of its distinct vertices) must equal the shape's, to 1e-4 of
    the shape's size (the OBJ stores 6 decimals). Raises RuntimeError otherwise."""
    mesh = capture.mesh
    n_poly = len(shape.polygons)
    if mesh.face_to_polygon is None or mesh.n_polygons != n_poly:
        raise RuntimeError(
            f"the capture has {mesh.n_polygons} source polygons, the shape {n_poly}: "
            "polygon order did not survive the OBJ round trip"
        )
    f2p = mesh.face_to_polygon
    # distinct (polygon, vertex) pairs: a fan-triangulated n-gon repeats its first vertex
    pairs = np.unique(np.stack([np.repeat(f2p, 3), mesh.faces.ravel()], axis=1), axis=0)
    sums = np.zeros((n_poly, 3))
    np.add.at(sums, pairs[:, 0], mesh.vertices[pairs[:, 1]].astype(np.float64))
    counts = np.bincount(pairs[:, 0], minlength=n_poly)
    if (counts == 0).any():
        raise RuntimeError(f"{int((counts == 0).sum())} polygons of the shape have no triangle in the capture")
    got = sums / counts[:, None]
    verts = shape.vertices.astype(np.float64)
    want = np.stack([verts[p].mean(axis=0) for p in shape.polygons])
    size = float(np.ptp(verts, axis=0).max())
    err = np.abs(got - want).max(axis=1)
    bad = np.flatnonzero(err > 1e-4 * size)
    if bad.size:
        raise RuntimeError(
            f"{bad.size} of {n_poly} polygon centroids moved in the OBJ round trip (first: polygon {bad[0]}, "
            f"{err[bad[0]]:.3g} off): polygon order did not survive, labels would be wrong"
        )
    capture.part_names = tuple(shape.part_names)
    capture.gt_face_labels = shape.labels[f2p].astype(np.int32)
    return capture.validate()


def bundle_faces(bundle: Path) -> int:
    """The triangle count of a cached bundle, read from the ``.npy`` header of ``faces`` only."""
    import zipfile

    fmt = np.lib.format
    with zipfile.ZipFile(bundle) as z, z.open("faces.npy") as fh:
        version = fmt.read_magic(fh)  # only the header is read (and decompressed)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, _ = read(fh)
    return int(shape[0])


# ---- internals -------------------------------------------------------------------------------


def _report(progress: Progress | None, done: int, total: int, message: str) -> None:
    if progress is not None:
        progress(done, total, message)


def _capture_many(
    todo: list[CaptureJob], root: Path, views: int, resolution: int, workers: int, on_done: Callable[[CaptureJob], None]
) -> None:
    """Capture ``todo`` in ``workers`` Blender child processes (the product's capture pool). Each
    capture is labelled, checked and saved compressed under its final name as soon as it arrives,
    and ``on_done(job)`` is called; CaptureFailed at the end names the shapes that failed."""
    root.mkdir(parents=True, exist_ok=True)
    failures = []
    for k, got in capture_files([j.obj for j in todo], views=views, resolution=resolution, workers=workers):
        if isinstance(got, str):
            if "bpy) is not installed" in got:
                raise CaptureFailed(got)
            failures.append(f"{todo[k].obj}: {got}")
            continue
        _finish(todo[k], got)
        on_done(todo[k])
    if failures:
        raise CaptureFailed(f"{len(failures)} shapes could not be captured: " + "; ".join(failures[:5]))


def _finish(job: CaptureJob, capture: Capture) -> None:
    cap = attach_ground_truth(capture, job.shape)
    job.n_faces = cap.mesh.n_faces
    part = job.bundle.with_name(job.bundle.name + ".part")
    save_bundle(part, cap)
    os.replace(part, job.bundle)  # atomic: an interrupted build never leaves a truncated bundle
