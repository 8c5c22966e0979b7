"""The procedural benchmark dataset, captured and cached.

Procedural shapes (``families``) captured through the real headless Blender capture path, with
ground-truth part labels attached, cached on disk.

Layout under ``root``::

    manifest.json                                  what the last build_dataset call produced
    <family>/<seed>_<objhash>.obj                  the shape (y-up OBJ, polygons in label order)
    <family>/<seed>_<objhash>_v<views>_r<res>.npz  its capture bundle with part_names + gt_face_labels

The bundle's name is its cache key: ``objhash`` hashes the OBJ text (so a change to a family's
generator never reuses a stale capture), ``views`` and ``resolution`` the capture settings. Bundles of
other settings or older generators stay beside the current ones and are simply not listed.
Capturing is ``capture.capture_jobs``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from partdistill.shared.bundle import load_bundle
from partdistill.shared.capture import Capture
from partdistill.shared.progress import Progress

from .capture_cache import CaptureJob, capture_jobs
from .families import FAMILIES, make_shape

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


def build_dataset(
    root: str | Path,
    families: Sequence[str] | None = None,
    per_family: int = 12,
    n_test: int = 4,
    views: int = 10,
    resolution: int = 512,
    progress: Progress | None = None,
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

    jobs: list[CaptureJob] = []
    where: list[tuple[str, int, str]] = []
    for family in families:
        for seed in range(per_family):
            shape = make_shape(family, seed)
            text = shape.obj_text(f"{family}_{seed}")
            key = hashlib.sha1(text.encode()).hexdigest()[:10]
            folder = root / family
            obj, bundle = folder / f"{seed}_{key}.obj", folder / f"{seed}_{key}_v{views}_r{resolution}.npz"
            jobs.append(CaptureJob(f"{family} {seed}", shape, text, obj, bundle))
            where.append((family, seed, "test" if seed >= per_family - n_test else "train"))
    capture_jobs(jobs, root, views, resolution, workers, progress)
    entries = [
        DatasetEntry(family, seed, split, j.bundle, j.n_faces, j.shape.part_names)
        for j, (family, seed, split) in zip(jobs, where, strict=True)
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
