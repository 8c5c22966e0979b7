"""The benchmark dataset: procedural shapes captured with headless Blender (child processes), ground
truth attached and checked, bundles cached. The bpy tests build a reduced dataset (2 families x
2 shapes x 3 views at 96 px)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
from partdistill.bench import capture_cache as bench_capture
from partdistill.bench.capture_cache import attach_ground_truth
from partdistill.bench.dataset import build_dataset, load_dataset
from partdistill.bench.families import OPTIONAL_PARTS, make_shape
from partdistill.bench.shapes import LabelledShape
from partdistill.shared.capture import Capture, Mesh

FAMILIES = ["lamp", "mug"]  # the lamp's cord and the mug's handle are thin parts
SMALL = dict(families=FAMILIES, per_family=2, n_test=1, views=3, resolution=96)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    pytest.importorskip("bpy")
    root = tmp_path_factory.mktemp("bench")
    calls = []
    t0 = time.perf_counter()
    entries = build_dataset(root, **SMALL, progress=lambda *a: calls.append(a))
    return root, entries, calls, time.perf_counter() - t0


@pytest.mark.bpy
def test_reduced_dataset_builds_with_ground_truth(built):
    root, entries, calls, _ = built
    assert [(e.family, e.seed, e.split) for e in entries] == [
        ("lamp", 0, "train"),
        ("lamp", 1, "test"),
        ("mug", 0, "train"),
        ("mug", 1, "test"),
    ]
    assert [c[:2] for c in calls] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    for e in entries:
        assert e.path.is_file() and e.path.parent == root / e.family
        assert "_v3_r96.npz" in e.path.name
        cap = e.load()
        assert cap.part_names == make_shape(e.family, e.seed).part_names == e.part_names
        assert cap.rgb.shape == (3, 96, 96, 3) and cap.face_id.shape == (3, 96, 96)
        assert cap.gt_face_labels is not None and cap.gt_face_labels.shape == (cap.mesh.n_faces,) == (e.n_faces,)
        present = set(np.unique(cap.gt_face_labels).tolist())
        assert present == set(range(len(cap.part_names))), "every part is in the ground truth"
        # the labels are the shape's, through face_to_polygon
        shape = make_shape(e.family, e.seed)
        assert np.array_equal(cap.gt_face_labels, shape.labels[cap.mesh.face_to_polygon])
        # the views show the object
        assert (cap.face_id >= 0).mean() > 0.02


@pytest.mark.bpy
def test_manifest_parses_and_matches(built):
    root, entries, _, _ = built
    data = json.loads((root / "manifest.json").read_text())
    assert data["views"] == 3 and data["resolution"] == 96 and data["families"] == FAMILIES
    assert [e["path"] for e in data["entries"]] == [e.path.relative_to(root).as_posix() for e in entries]
    assert load_dataset(root) == entries


@pytest.mark.bpy
def test_second_call_reuses_the_cache_without_blender(built, monkeypatch):
    root, entries, _, first = built
    mtimes = {e.path: e.path.stat().st_mtime_ns for e in entries}

    def no_blender(*args, **kwargs):
        raise AssertionError("Blender was started for a cached dataset")

    monkeypatch.setattr(bench_capture, "capture_files", no_blender)
    calls = []
    t0 = time.perf_counter()
    again = build_dataset(root, **SMALL, progress=lambda *a: calls.append(a))
    elapsed = time.perf_counter() - t0
    assert again == entries
    assert {e.path: e.path.stat().st_mtime_ns for e in again} == mtimes
    assert len(calls) == 4 and all("cached" in c[2] for c in calls)
    assert elapsed < 2.0 and elapsed < first / 2
    # other capture settings are another cache key: they would start Blender
    with pytest.raises(AssertionError, match="Blender was started"):
        build_dataset(root, **{**SMALL, "resolution": 64})
    with pytest.raises(AssertionError, match="Blender was started"):
        build_dataset(root, **{**SMALL, "views": 4})


@pytest.mark.bpy
def test_capture_many_keeps_going_after_a_bad_file(tmp_path):
    pytest.importorskip("bpy")
    good = make_shape("knife", 0).write_obj(tmp_path / "knife.obj")
    jobs = [
        {"input": str(tmp_path / "missing.obj"), "output": str(tmp_path / "missing.npz")},
        {"input": str(good), "output": str(tmp_path / "knife.npz")},
    ]
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    cmd = [
        sys.executable,
        "-m",
        "partdistill.blender_addon.headless",
        "capture-many",
        str(tmp_path / "jobs.json"),
        "--views",
        "2",
        "--resolution",
        "32",
    ]
    from partdistill.backend.io.inputs import blender_env as _blender_env

    proc = subprocess.run(cmd, capture_output=True, text=True, env=_blender_env(), timeout=300)
    assert proc.returncode == 2
    assert "partdistill: failed 1/2" in proc.stdout and "partdistill: captured 2/2" in proc.stdout
    assert (tmp_path / "knife.npz").is_file() and not (tmp_path / "missing.npz").exists()


# ---- the ground-truth check (no Blender needed) --------------------------------------------------


def _capture_of_shape(shape: LabelledShape) -> Capture:
    faces, f2p = shape.triangles()
    fid = np.zeros((1, 4, 4), np.int32)
    return Capture(
        Mesh(shape.vertices.copy(), faces, f2p, len(shape.polygons)),
        np.zeros((1, 4, 4, 3), np.uint8),
        fid,
        np.eye(3)[None],
        np.eye(4)[None],
    ).validate()


def test_attach_ground_truth_labels_faces():
    shape = make_shape("rocket", 2)
    cap = attach_ground_truth(_capture_of_shape(shape), shape)
    assert cap.part_names == shape.part_names
    assert np.array_equal(cap.gt_face_labels, shape.labels[cap.mesh.face_to_polygon])


def test_attach_ground_truth_refuses_a_reordered_mesh():
    shape = make_shape("guitar", 1)
    cap = _capture_of_shape(shape)
    # the same polygons in another order: the labels would land on the wrong faces
    order = np.random.default_rng(0).permutation(len(shape.polygons))
    shuffled = replace(shape, polygons=[shape.polygons[i] for i in order], labels=shape.labels[order])
    with pytest.raises(RuntimeError, match="polygon"):
        attach_ground_truth(cap, shuffled)
    # a polygon fewer
    fewer = replace(shape, polygons=shape.polygons[:-1], labels=shape.labels[:-1])
    with pytest.raises(RuntimeError, match="source polygons"):
        attach_ground_truth(_capture_of_shape(shape), fewer)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown shape families"):
        build_dataset(tmp_path, families=["teapot"])
    with pytest.raises(ValueError, match="n_test"):
        build_dataset(tmp_path, per_family=2, n_test=3)
    with pytest.raises(FileNotFoundError, match="build_dataset"):
        load_dataset(tmp_path / "nothing")


def test_optional_parts_are_only_the_chair_arms():
    assert OPTIONAL_PARTS == {"chair": ("arm",)}
