"""The real-mesh set: 80 meshes of the Labeled Princeton Segmentation Benchmark.

10 categories x 8, watertight, one connected component, named per-face labels, read from
``psb-dev.npz`` beside the project (never copied into it), captured through the real headless-Blender
path and cached.

Split, fixed: per category the 8 mesh ids sorted ascending; the first 4 are VALIDATION (every choice
of method or hyper-parameter is made on them), the last 4 are TEST (only reported).

Part names: the words a user would type instead of the benchmark's own (``PART_WORDS``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from partdistill.shared.bundle import load_bundle
from partdistill.shared.capture import Capture
from partdistill.shared.progress import Progress

from .capture_cache import CaptureJob, capture_jobs
from .shapes import LabelledShape

SPLITS = ("val", "test")
CATEGORIES = ("Human", "FourLeg", "Bird", "Fish", "Glasses", "Plier", "Vase", "Teddy", "Ant", "Octopus")
#: The benchmark's part names -> what a user would type (index order unchanged; others kept as they are).
PART_WORDS: dict[str, dict[str, str]] = {
    "Human": {"upperleg": "upper leg", "lowerleg": "lower leg", "lowerarm": "lower arm", "upperarm": "upper arm"},
    "FourLeg": {"earhorn": "ear"},
    "Glasses": {"skeleton": "frame", "middle": "bridge"},
    "Plier": {"center": "pivot", "edge": "jaw"},
    "Vase": {"top": "rim"},
    "Teddy": {"hand": "arm"},
    "Ant": {"back": "abdomen"},
    "Octopus": {"leg": "tentacle"},
}
ENV_VAR = "PARTDISTILL_PSB_DATA"


@dataclass
class RealShape:
    """One captured real mesh. key: "<Category>_<id>". split: "val" or "test". path: its bundle
    (with ``part_names`` and ``gt_face_labels``). seed: the detections' seed, a fixed function of the id."""

    category: str
    mesh_id: int
    split: str
    path: Path
    n_faces: int
    part_names: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.category}_{self.mesh_id}"

    @property
    def seed(self) -> int:
        return 1000 + self.mesh_id

    def load(self) -> Capture:
        return load_bundle(self.path)


def default_data_dir() -> Path:
    """``$PARTDISTILL_PSB_DATA``, else ``shared/data`` beside the project's folder."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def available(data: Path | None = None) -> bool:
    d = data or default_data_dir()
    return (d / "psb-dev.npz").is_file() and (d / "psb-dev.json").is_file()


def part_words(data: Path, category: str) -> tuple[str, ...]:
    """A category's part names as a user would type them (``PART_WORDS``), in label order."""
    info = json.loads((data / "psb-dev.json").read_text())
    return tuple(PART_WORDS.get(category, {}).get(n, n) for n in info[category]["part_names"])


def mesh_ids(data: Path, categories=CATEGORIES, split: str | None = None, per_category: int | None = None):
    """(category, id, split) in category order, ids ascending; ``per_category`` keeps the first ids of
    each split."""
    info = json.loads((data / "psb-dev.json").read_text())
    out = []
    for c in categories:
        ids = sorted(info[c]["ids"])
        for s, chosen in (("val", ids[:4]), ("test", ids[4:])):
            if split in (None, s):
                out += [(c, i, s) for i in chosen[:per_category]]
    return out


@dataclass(frozen=True)
class Selection:
    """Which real meshes a benchmark runs on: ``categories``, ``splits``, and the first
    ``per_category`` ids of each category's split (all when None)."""

    categories: tuple[str, ...] = CATEGORIES
    splits: tuple[str, ...] = SPLITS
    per_category: int | None = None

    def shapes(
        self, data: Path, cache: Path, split: str, views: int, resolution: int, progress: Progress | None = None
    ) -> list[RealShape]:
        """The selected meshes of ``split``, captured (see ``real_shapes``)."""
        return real_shapes(
            data,
            cache,
            categories=self.categories,
            split=split,
            per_category=self.per_category,
            views=views,
            resolution=resolution,
            progress=progress,
        )


def real_shapes(
    data: Path,
    cache: Path,
    *,
    categories=CATEGORIES,
    split: str | None = None,
    per_category: int | None = None,
    views: int = 10,
    resolution: int = 512,
    progress: Progress | None = None,
) -> list[RealShape]:
    """The chosen meshes, captured (or taken from ``cache``; the bundle's name hashes the OBJ text and
    the capture settings). Raises FileNotFoundError when the set is not at ``data``."""
    if not available(data):
        raise FileNotFoundError(f"the real-mesh set is not at {data} (psb-dev.npz, psb-dev.json); set ${ENV_VAR}")
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown categories {unknown}; known: {', '.join(CATEGORIES)}")
    words = {c: part_words(data, c) for c in categories}
    chosen = mesh_ids(data, categories, split, per_category)
    jobs, shapes = [], []
    with np.load(data / "psb-dev.npz") as z:
        for c, i, s in chosen:
            k = f"{c}_{i}"
            names = words[c]
            faces = z[f"{k}_faces"].astype(np.int64)
            shape = LabelledShape(
                names, z[f"{k}_vertices"].astype(np.float32), faces.tolist(), z[f"{k}_labels"].astype(np.int32)
            )
            text = shape.obj_text(k, materials=False)  # a user's mesh carries no part materials
            h = hashlib.sha1(text.encode()).hexdigest()[:10]
            bundle = cache / f"{k}_{h}_v{views}_r{resolution}.npz"
            jobs.append(CaptureJob(k, shape, text, cache / f"{k}_{h}.obj", bundle))
            shapes.append((c, i, s, names))
    capture_jobs(jobs, cache, views, resolution, progress=progress)
    return [RealShape(c, i, s, j.bundle, j.n_faces, names) for (c, i, s, names), j in zip(shapes, jobs, strict=True)]
