"""``partdistill bench fewshot``, small: one category, one test and one validation mesh captured through
headless Blender, both curves, the table and the plot; and the painting of k faces per part."""

from __future__ import annotations

import json

import numpy as np
import pytest
from partdistill.backend import cli
from partdistill.bench import psb
from partdistill.bench.fewshot import FACES_PER_PART, LABELLED_SHAPES, paint
from synthetic import capture_of, table


def test_painting_gives_k_faces_of_each_part_their_true_part():
    mesh, gt, names = table()
    cap = capture_of(mesh, gt, names, n_views=2, size=32)
    assert paint(cap, 0, seed=1) is None
    lab = paint(cap, 2, seed=1)
    given = lab >= 0
    assert np.array_equal(lab[given], cap.gt_face_labels[given])
    assert np.bincount(lab[given], minlength=len(names)).tolist() == [2] * len(names)
    assert np.array_equal(paint(cap, 2, seed=1), lab)  # the same seed draws the same faces


@pytest.mark.bpy
@pytest.mark.skipif(not psb.available(), reason="the real-mesh set (../shared/data/psb-dev.npz) is not here")
def test_bench_fewshot_small_runs_both_curves_and_resumes(tmp_path, torch_single_thread):
    pytest.importorskip("bpy")
    out = tmp_path / "out"
    argv = [
        "bench",
        "fewshot",
        "--data",
        str(tmp_path / "cache"),
        "--out",
        str(out),
        "--categories",
        "Bird",
        "--per-category",
        "1",
        "--views",
        "4",
        "--resolution",
        "128",
        "--points",
        "512",
        "--epochs",
        "6",
    ]
    assert cli.main(argv) == 0
    rows = [json.loads(line) for line in (out / "fewshot.jsonl").read_text().splitlines()]
    assert sorted(r["k"] for r in rows if r["curve"] == "tta") == list(FACES_PER_PART)
    assert sorted(r["k"] for r in rows if r["curve"] == "pre") == list(LABELLED_SHAPES)
    assert all(r["shape"] == "Bird_245" and 0 <= r["miou"] <= 100 for r in rows)
    assert (out / "fewshot.png").is_file() and "| Overall |" in (out / "fewshot.md").read_text()
    before = (out / "fewshot.jsonl").read_text()
    assert cli.main(argv) == 0  # everything done: nothing runs again
    assert (out / "fewshot.jsonl").read_text() == before
