"""``partdistill bench points`` (no Blender: clouds are captured in numpy) and ``bench pretrain`` /
``bench backbone`` (Fig. B), small: they run, write their tables and pictures, and resume."""

from __future__ import annotations

import json

import pytest
from partdistill.backend import cli
from partdistill.bench import points, psb

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


def test_bench_points_collection_labels_a_category_s_clouds_together_and_counts_their_warnings(
    tmp_path, torch_single_thread
):
    out = tmp_path / "out"
    argv = ["bench", "points", "--out", str(out), "--split", "test", "--categories", "Vase", "--per-category", "3"]
    argv += ["--n-points", "2000", "--levels", "realistic", "--views", "4", "--resolution", "128"]
    argv += ["--points", "512", "--epochs", "8", "--collection"]
    assert cli.main(argv) == 0
    rows = [json.loads(line) for line in (out / "points.jsonl").read_text().splitlines()]
    by = {m: [r for r in rows if r["method"] == m] for m in {r["method"] for r in rows}}
    assert set(by) == {"vote-fill", "superpoint", "distill", "collection-pre", "collection"}
    assert all(len(v) == 3 for v in by.values())
    shapes = {r["shape"] for r in by["distill"]}
    assert {r["shape"] for r in by["collection"]} == shapes and all(r["split"] == "test" for r in rows)
    assert all(0 <= r["miou"] <= 100 for r in rows)
    table = (out / "points.md").read_text()
    assert "**test, realistic** (3 point clouds)" in table
    for m, of in by.items():  # the warnings table counts each method's own rows
        warned = sum(bool(r["warnings"]) for r in of)
        assert f"| {m} | 3 | {sum(r['miou'] < 25 for r in of)} | {warned} |" in table
    before = (out / "points.jsonl").read_text()
    assert cli.main(argv) == 0 and (out / "points.jsonl").read_text() == before
    # both splits: one collection of the category's clouds, each row keeping its cloud's split
    argv[argv.index("test")], argv[argv.index("3")] = "all", "2"
    assert cli.main(argv) == 0
    rows = [json.loads(line) for line in (out / "points.jsonl").read_text().splitlines()]
    new = [r for r in rows if r["method"] == "collection" and r["key"] not in before]
    assert sorted(r["split"] for r in new) == ["test", "test", "val", "val"]
    table = (out / "points.md").read_text()
    assert "**val, realistic** (2 point clouds)" in table and "**test, realistic** (2 point clouds)" in table


def test_bench_points_methods_names_what_runs_and_an_unknown_one_is_refused_before_any_work(
    tmp_path, torch_single_thread, capsys
):
    assert points.split_methods(None, False) == (points.METHODS, ())
    assert points.split_methods(None, True) == (points.METHODS, ("collection-pre", "collection"))
    assert points.split_methods(("collection-given", "distill"), False) == (("distill",), ("collection-given",))
    out = tmp_path / "out"
    argv = ["bench", "points", "--out", str(out), "--split", "test", "--categories", "Vase", "--per-category", "2"]
    argv += ["--n-points", "2000", "--levels", "realistic", "--views", "4", "--resolution", "128"]
    argv += ["--points", "512", "--epochs", "4"]
    assert cli.main([*argv, "--methods", "distill,colection"]) == 2
    assert "--methods: unknown method 'colection'" in capsys.readouterr().err and not out.exists()
    assert cli.main([*argv, "--methods", "collection-given,distill"]) == 0
    rows = [json.loads(line) for line in (out / "points.jsonl").read_text().splitlines()]
    assert sorted(r["method"] for r in rows) == ["collection-given"] * 2 + ["distill"] * 2
    assert "| Category | distill | collection-given |" in (out / "points.md").read_text()


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
