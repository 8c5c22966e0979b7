"""The outputs of a labelling run are never lost or mixed: Ctrl+C at any moment of the writing leaves
the previous result whole or the new one complete, a second run into a folder in use is refused,
and ``labels.json`` holds the summary (the per-face arrays only when asked for)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_in_process import assert_one_line_error, run_cli
from partdistill.backend.io.glb import read_glb_json
from partdistill.bench.simulated import simulate_detections
from partdistill.shared.atomic import FolderLock
from partdistill.shared.bundle import save_bundle
from synthetic import assemble, capture_of, table

OUTPUT_NAMES = {"labels.npz", "labels.json", "segmented.glb", "preview.png"}


@pytest.fixture(scope="module")
def two_shapes(tmp_path_factory) -> dict:
    """Two bundles with their detections: a table (60 faces) and a stool (36 faces)."""
    folder = tmp_path_factory.mktemp("two_shapes")
    stool, stool_gt = assemble([(0, ((-0.5, -0.5, 0.9), (0.5, 0.5, 1.0))), (1, ((-0.1, -0.1, 0.0), (0.1, 0.1, 0.9)))])
    shapes = {
        "table": capture_of(*table(), n_views=4, size=96),
        "stool": capture_of(stool, stool_gt, ("top", "leg"), n_views=4, size=96),
    }
    out = {}
    for name, cap in shapes.items():
        save_bundle(folder / f"{name}.npz", cap)
        simulate_detections(cap).save_json(folder / f"{name}.json")
        out[name] = (folder / f"{name}.npz", folder / f"{name}.json", cap.mesh.n_faces)
    return out


def _argv(shape: tuple, out: Path) -> list[str]:
    bundle, det, _ = shape
    return [
        "segment",
        str(bundle),
        "--parts",
        "top,leg",
        "--detections",
        str(det),
        "--out",
        str(out),
        "--method",
        "vote",
        "--quiet",
    ]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _faces_of_the_set(folder: Path) -> int:
    """The face count every output in ``folder`` agrees on (fails if they disagree)."""
    with np.load(folder / "labels.npz") as z:
        n = len(z["face_labels"])
    assert json.loads((folder / "labels.json").read_text())["n_faces"] == n
    glb = read_glb_json(folder / "segmented.glb")
    assert sum(glb["accessors"][p["indices"]]["count"] for p in glb["meshes"][0]["primitives"]) == 3 * n
    return n


def _start_and_wait_for_the_writing(shape: tuple, out: Path) -> tuple[subprocess.Popen, float]:
    """Start ``segment`` as a process; return it once its first temporary output file exists."""
    command = [sys.executable, "-m", "partdistill.backend.cli", *_argv(shape, out)]
    run = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not any(".tmp-" in n for n in os.listdir(out)):  # the writing has begun
        assert run.poll() is None and time.monotonic() < deadline, "the run ended before it wrote anything"
        time.sleep(0.0005)
    return run, time.monotonic()


def test_ctrl_c_at_any_moment_of_the_writing_leaves_the_old_result_whole_or_the_new_one_complete(two_shapes, tmp_path):
    out = tmp_path / "out"
    rc, _, err = run_cli(_argv(two_shapes["table"], out))
    assert rc == 0, err
    run, began = _start_and_wait_for_the_writing(two_shapes["stool"], out)  # how long the writing takes here
    run.communicate(timeout=60)
    writing = time.monotonic() - began
    outcomes = []
    # Ctrl+C from the first temporary file on, spread over the writing (and past it); the moments are
    # jittered, so every run of the suite tries others
    rng = random.Random()
    for trial, at in enumerate((0.0, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0, 1.5, 3.0)):
        before = _snapshot(out)
        shape = two_shapes["table" if trial % 2 == 0 else "stool"]
        run, _ = _start_and_wait_for_the_writing(shape, out)
        time.sleep(writing * at * rng.uniform(0.8, 1.2))
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
        # 130: interrupted; 0: done before the signal came; -SIGINT: the signal came while the
        # interpreter was shutting down after the run, when Python's own handler is gone
        assert run.returncode in (0, 130, -signal.SIGINT), err
        after = _snapshot(out)
        assert set(after) == OUTPUT_NAMES, sorted(after)  # no temporary file, no lock, nothing missing
        if after == before:
            outcomes.append("old")
        else:
            assert _faces_of_the_set(out) == shape[2]
            outcomes.append("new")
    assert "old" in outcomes and "new" in outcomes, outcomes  # both ends of the writing were hit


def test_a_second_run_into_a_folder_in_use_is_refused_before_any_work(two_shapes, tmp_path):
    out = tmp_path / "out"
    with FolderLock(out, field="--out"):  # another run holds it
        t0 = time.perf_counter()
        rc, _, err = run_cli(_argv(two_shapes["table"], out))
        assert_one_line_error(rc, err, f"--out: {out} is in use by another partdistill run (process {os.getpid()})")
        assert time.perf_counter() - t0 < 5
    assert not out.exists()


def test_labels_json_holds_the_summary_and_the_per_face_arrays_only_when_asked(two_shapes, tmp_path):
    rc, _, err = run_cli(_argv(two_shapes["table"], tmp_path / "summary"))
    assert rc == 0, err
    doc = json.loads((tmp_path / "summary" / "labels.json").read_text())
    assert {"part_names", "n_faces", "coverage", "warnings", "stats", "timings"} <= set(doc)
    assert "face_labels" not in doc and doc["n_faces"] == 60
    rc, _, err = run_cli([*_argv(two_shapes["table"], tmp_path / "full"), "--per-face-json"])
    assert rc == 0, err
    doc = json.loads((tmp_path / "full" / "labels.json").read_text())
    with np.load(tmp_path / "full" / "labels.npz") as z:
        assert doc["face_labels"] == z["face_labels"].tolist()
        assert doc["polygon_labels"] == z["polygon_labels"].tolist()
        np.testing.assert_allclose(doc["face_confidence"], z["face_confidence"], atol=1e-4)
