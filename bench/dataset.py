"""The benchmark dataset: procedural shapes (``families``) captured through the real headless
Blender capture path, with ground-truth part labels attached, cached on disk.

Layout under ``root``::

    manifest.json                                  what the last build_dataset call produced
    <family>/<seed>_<objhash>.obj                  the shape (y-up OBJ, polygons in label order)
    <family>/<seed>_<objhash>_v<views>_r<res>.npz  its capture bundle with part_names + gt_face_labels

The bundle's name is its cache key: ``objhash`` hashes the OBJ text (so a change to a family's
generator never reuses a stale capture), ``views`` and ``resolution`` the capture settings. Bundles of
other settings or older generators stay beside the current ones and are simply not listed.

Captures run in child processes (``python -m partdistill.blender_addon.headless capture-many``), each
capturing a list of OBJ files in one Blender session; the parent attaches the labels and writes the
final bundle as each capture arrives. Ground truth: polygon order survives the OBJ round trip, so a
triangle's label is ``shape.labels[face_to_polygon]``; :func:`attach_ground_truth` checks that claim on
every shape (polygon count and per-polygon centroids) and raises if it ever fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from partdistill.backend.io.inputs import blender_env
from partdistill.shared.bundle import load_bundle, save_bundle
from partdistill.shared.capture import Capture

from .families import FAMILIES, make_shape
from .shapes import LabelledShape

ProgressFn = Callable[[int, int, str], None]
"""``progress(done, total, message)``, called after each shape (cached ones included)."""

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
SPLITS = ("train", "test")


@dataclass
class DatasetEntry:
    """One shape of the dataset. path: its capture bundle (absolute). split: "train" or "test"."""

    family: str
    seed: int
    split: str
    path: Path
    n_faces: int
    part_names: tuple[str, ...]

    def load(self) -> Capture:
        """The capture bundle, with ``part_names`` and ``gt_face_labels``."""
        return load_bundle(self.path)


class CaptureFailed(RuntimeError):
    """Headless Blender could not capture a shape (or is not installed)."""


def build_dataset(
    root: str | Path,
    families: Sequence[str] | None = None,
    per_family: int = 12,
    n_test: int = 4,
    views: int = 10,
    resolution: int = 512,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> list[DatasetEntry]:
    """Build (or reuse from the cache) ``per_family`` shapes of each family, seeds 0..per_family-1;
    the last ``n_test`` seeds of each family are the test split. Returns the entries in family, seed
    order and writes ``root/manifest.json``. Shapes whose bundle exists are not captured again, so a
    second call with the same arguments starts no Blender at all.

    families: names from ``families.FAMILIES`` (default: all). workers: Blender processes run
    at once (default: one per two cores, at most 8; on a 2-core machine a second process gained
    nothing: ~3.1 s per shape at 10 views of 512 px either way, as rendering and the parent's
    compression already use the second core). progress: ``progress(done, total, message)``."""
    root = Path(root)
    families = list(FAMILIES) if families is None else list(families)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown shape families {unknown}; known: {', '.join(FAMILIES)}")
    if not families or len(set(families)) != len(families):
        raise ValueError(f"families must be a non-empty list without repeats, got {families}")
    if not (isinstance(per_family, int) and per_family >= 1 and isinstance(n_test, int) and 0 <= n_test <= per_family):
        raise ValueError(f"need per_family >= 1 and 0 <= n_test <= per_family, got {per_family}, {n_test}")
    if not (isinstance(views, int) and 1 <= views <= 64 and isinstance(resolution, int) and 8 <= resolution <= 4096):
        raise ValueError(f"need 1 <= views <= 64 and 8 <= resolution <= 4096, got {views}, {resolution}")

    jobs: list[_Job] = []
    for family in families:
        for seed in range(per_family):
            shape = make_shape(family, seed)
            text = shape.obj_text(f"{family}_{seed}")
            key = hashlib.sha1(text.encode()).hexdigest()[:10]
            folder = root / family
            jobs.append(
                _Job(
                    family=family,
                    seed=seed,
                    split="test" if seed >= per_family - n_test else "train",
                    shape=shape,
                    obj_text=text,
                    obj=folder / f"{seed}_{key}.obj",
                    bundle=folder / f"{seed}_{key}_v{views}_r{resolution}.npz",
                )
            )
    total, done = len(jobs), 0
    todo = [j for j in jobs if not j.bundle.is_file()]
    for j in jobs:
        if j not in todo:
            done += 1
            _report(progress, done, total, f"{j.family} {j.seed}: cached")
    if todo:
        for j in todo:
            j.obj.parent.mkdir(parents=True, exist_ok=True)
            if not j.obj.is_file() or j.obj.read_text() != j.obj_text:
                j.obj.write_text(j.obj_text)
        n_workers = workers if workers is not None else min(8, max(1, (os.cpu_count() or 2) // 2))

        def captured(j: _Job) -> None:
            nonlocal done
            done += 1
            _report(progress, done, total, f"{j.family} {j.seed}: captured")

        _capture_many(todo, root, views, resolution, max(1, min(n_workers, len(todo))), captured)

    entries = [
        DatasetEntry(j.family, j.seed, j.split, j.bundle, j.n_faces or _n_faces(j.bundle), j.shape.part_names)
        for j in jobs
    ]
    _write_manifest(root, entries, views, resolution, per_family, n_test)
    return entries


def load_dataset(root: str | Path) -> list[DatasetEntry]:
    """The entries listed in ``root/manifest.json`` (written by :func:`build_dataset`)."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no dataset manifest at {path}: run build_dataset({str(root)!r}) first")
    data = json.loads(path.read_text())
    if data.get("version") != MANIFEST_VERSION:
        raise ValueError(f"{path}: unsupported manifest version {data.get('version')!r}")
    return [
        DatasetEntry(
            family=e["family"],
            seed=int(e["seed"]),
            split=e["split"],
            path=root / e["path"],
            n_faces=int(e["n_faces"]),
            part_names=tuple(e["part_names"]),
        )
        for e in data["entries"]
    ]


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


# ---- internals -------------------------------------------------------------------------------


@dataclass(eq=False)
class _Job:
    family: str
    seed: int
    split: str
    shape: LabelledShape
    obj_text: str
    obj: Path
    bundle: Path
    n_faces: int = 0


def _report(progress: ProgressFn | None, done: int, total: int, message: str) -> None:
    if progress is not None:
        progress(done, total, message)


def _n_faces(bundle: Path) -> int:
    """The triangle count of a cached bundle, read from the ``.npy`` header of ``faces`` only."""
    import zipfile

    fmt = np.lib.format
    with zipfile.ZipFile(bundle) as z, z.open("faces.npy") as fh:
        version = fmt.read_magic(fh)  # only the header is read (and decompressed)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, _ = read(fh)
    return int(shape[0])


def _capture_many(
    todo: list[_Job], root: Path, views: int, resolution: int, workers: int, on_done: Callable[[_Job], None]
) -> None:
    """Capture ``todo`` in ``workers`` Blender child processes. Each raw (uncompressed) bundle is
    labelled, checked and saved compressed under its final name as soon as its child reports it,
    then deleted, and ``on_done(job)`` is called."""
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".capture-", dir=root) as tmp:
        lines: queue.Queue[tuple[int, str | None]] = queue.Queue()
        procs, chunks = [], [todo[w::workers] for w in range(workers)]
        for w, chunk in enumerate(chunks):
            spec = [{"input": str(j.obj), "output": str(Path(tmp) / f"{w}_{k}.npz")} for k, j in enumerate(chunk)]
            jobs_file = Path(tmp) / f"jobs_{w}.json"
            jobs_file.write_text(json.dumps(spec))
            procs.append(_start_blender(jobs_file, views, resolution))
            threading.Thread(target=_pump, args=(w, procs[-1], lines), daemon=True).start()
        tails: list[list[str]] = [[] for _ in procs]
        open_streams, failures = len(procs), []
        try:
            while open_streams:
                w, line = lines.get()
                if line is None:
                    open_streams -= 1
                    continue
                tails[w] = (tails[w] + [line])[-20:]
                if line.startswith("partdistill: captured "):
                    k = int(line.split()[2].split("/")[0]) - 1
                    job = chunks[w][k]
                    raw = Path(tmp) / f"{w}_{k}.npz"
                    _finish(job, raw)
                    on_done(job)
                elif line.startswith("partdistill: failed "):
                    failures.append(line.removeprefix("partdistill: failed ").strip())
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
        for w, p in enumerate(procs):
            if p.returncode not in (0, 2) or (p.returncode == 2 and not failures):
                text = "\n".join(tails[w])
                if "No module named 'bpy'" in text:
                    raise CaptureFailed(
                        "Blender as a Python module (bpy) is not installed: `pip install 'partdistill[blender]'`"
                    )
                raise CaptureFailed(f"headless Blender exited with status {p.returncode}:\n{text}")
    if failures:
        raise CaptureFailed(f"{len(failures)} shapes could not be captured: " + "; ".join(failures[:5]))


def _start_blender(jobs_file: Path, views: int, resolution: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "partdistill.blender_addon.headless", "capture-many", str(jobs_file),
           "--views", str(views), "--resolution", str(resolution), "--no-compress"]  # fmt: skip
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=blender_env(), bufsize=1
    )


def _pump(worker: int, proc: subprocess.Popen, lines: queue.Queue) -> None:
    """Forward a child's output lines to the queue; None marks its end. stdout and stderr are one
    pipe, read to the end, so the child can never block on a full pipe."""
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put((worker, line.rstrip("\n")))
    lines.put((worker, None))


def _finish(job: _Job, raw: Path) -> None:
    cap = attach_ground_truth(load_bundle(raw), job.shape)
    job.n_faces = cap.mesh.n_faces
    part = job.bundle.with_name(job.bundle.name + ".part")
    save_bundle(part, cap)
    os.replace(part, job.bundle)  # atomic: an interrupted build never leaves a truncated bundle
    raw.unlink()


def _write_manifest(
    root: Path, entries: list[DatasetEntry], views: int, resolution: int, per_family: int, n_test: int
) -> None:
    data = {
        "version": MANIFEST_VERSION,
        "views": views,
        "resolution": resolution,
        "per_family": per_family,
        "n_test": n_test,
        "families": list(dict.fromkeys(e.family for e in entries)),
        "entries": [
            {
                "family": e.family,
                "seed": e.seed,
                "split": e.split,
                "path": e.path.relative_to(root).as_posix(),
                "n_faces": e.n_faces,
                "part_names": list(e.part_names),
            }
            for e in entries
        ],
    }
    tmp = root / (MANIFEST + ".part")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, root / MANIFEST)
