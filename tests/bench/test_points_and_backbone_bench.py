"""``partdistill bench points`` (no Blender: clouds are captured in numpy) and ``bench pretrain`` /
``bench backbone`` (Fig. B), small: they run, write their tables and pictures, and resume."""

from __future__ import annotations

import json

import pytest
from partdistill.backend import cli
from partdistill.bench import psb

pytestmark = pytest.mark.skipif(not psb.available(), reason="the real-mesh set (../shared/data) is not here")


def test_bench_points_small_scores_every_method_per_point_and_resumes(tmp_path, torch_single_thread):
    out = tmp_path / "out"
    argv = [
        "bench",
        "points",
        "--out",
        str(out),
        "--split",
        "val",
        "--per-category",
        "1",
        "--n-points",
        "3000",
        "--levels",
        "perfect",
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
    rows = [json.loads(line) for line in (out / "points.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and {r["method"] for r in rows} == {"vote-fill", "superpoint", "distill"}
    assert all(0 <= r["miou"] <= 100 for r in rows)
    assert sum(r["miou"] for r in rows if r["method"] == "vote-fill") / 10 > 60  # perfect boxes on points
    assert "| Overall |" in (out / "points.md").read_text()
    before = (out / "points.jsonl").read_text()
    assert cli.main(argv) == 0 and (out / "points.jsonl").read_text() == before


@pytest.mark.bpy
def test_bench_pretrain_then_fig_b_small(tmp_path, torch_single_thread):
    pytest.importorskip("bpy")
    bb = tmp_path / "bb"
    assert cli.main(["bench", "pretrain", "--out", str(bb), "--steps", "4", "--per-family", "1"]) == 0
    assert (bb / "backbone.safetensors").is_file() and (bb / "README.md").is_file()
    out = tmp_path / "out"
    argv = [
        "bench",
        "backbone",
        "--backbone",
        str(bb),
        "--data",
        str(tmp_path / "cache"),
        "--out",
        str(out),
        "--categories",
        "Vase",
        "--views",
        "4",
        "--resolution",
        "128",
        "--points",
        "512",
        "--epochs",
        "10",
    ]
    assert cli.main(argv) == 0
    rows = [json.loads(line) for line in (out / "figb.jsonl").read_text().splitlines()]
    assert {r["config"] for r in rows} == {"scratch", "frozen", "finetuned"}
    assert all(len(r["loss"]) == 10 and [e for e, _ in r["miou_curve"]] == [5, 10] for r in rows)
    assert (out / "figb.png").is_file() and "| val | frozen |" in (out / "figb.md").read_text()
