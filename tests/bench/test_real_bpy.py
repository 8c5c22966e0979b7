"""``partdistill bench real``, small: two real meshes captured through headless Blender, every method,
the report's tables and pictures. Skipped where the real-mesh set is not beside the project."""

from __future__ import annotations

import json

import pytest
from partdistill.backend import cli
from partdistill.bench import psb
from partdistill.bench.real import METHODS

pytestmark = [
    pytest.mark.bpy,
    pytest.mark.skipif(not psb.available(), reason="the real-mesh set (../shared/data/psb-dev.npz) is not here"),
]


def test_bench_real_small_runs_every_method_and_writes_tables_and_pictures(tmp_path, torch_single_thread):
    pytest.importorskip("bpy")
    out = tmp_path / "out"
    argv = [
        "bench",
        "real",
        "--data",
        str(tmp_path / "cache"),
        "--out",
        str(out),
        "--categories",
        "Bird,Glasses",
        "--per-category",
        "1",
        "--split",
        "val",
        "--teachers",
        "box",
        "--levels",
        "realistic",
        "--views",
        "4",
        "--resolution",
        "128",
        "--points",
        "1024",
        "--epochs",
        "12",
    ]
    assert cli.main(argv) == 0
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert {r["method"] for r in runs} == set(METHODS)
    assert {r["shape"] for r in runs} == {"Bird_241", "Glasses_41"}
    assert all(r["split"] == "val" and 0 <= r["miou"] <= 100 and r["seconds"] > 0 for r in runs)
    assert all("miou2d_before" in r for r in runs if r["method"].startswith("distill"))
    tables = json.loads((out / "results.json").read_text())
    t = tables["val/box/realistic"]
    assert t["categories"] == ["Bird", "Glasses"] and set(t["methods"]) == set(METHODS)
    assert t["versus_baseline"]["strongest_baseline"] in ("vote", "vote-fill", "superpoint")
    assert (out / "segmentations_val_box_realistic.png").is_file() and (out / "teacher_Bird_241_box.png").is_file()
    md = (out / "results.md").read_text()
    assert "| Overall |" in md and "strongest baseline" in md
    # a second call finds every run done and starts no training
    before = (out / "runs.jsonl").read_text()
    assert cli.main(argv) == 0
    assert (out / "runs.jsonl").read_text() == before


def test_bench_real_collection_small_sets_the_variants_beside_the_methods_chooses_on_validation_and_pools(
    tmp_path, torch_single_thread
):
    pytest.importorskip("bpy")
    out = tmp_path / "out"
    small = ["--views", "4", "--resolution", "128", "--points", "1024", "--epochs", "12"]
    argv = ["bench", "real", "--data", str(tmp_path / "cache"), "--out", str(out), "--categories", "Bird"]
    argv += ["--per-category", "2", "--collection", "--variants", "collection-pre,collection-pre-k3", *small]
    assert cli.main([*argv, "--split", "val"]) == 0
    rows = [json.loads(line) for line in (out / "collection.jsonl").read_text().splitlines()]
    assert sorted((r["method"], r["shape"]) for r in rows) == sorted(
        (m, s) for m in ("collection-pre", "collection-pre-k3") for s in ("Bird_241", "Bird_242")
    )
    assert all(0 <= r["miou"] <= 100 and 0 <= r["disagreement"] <= 1 and r["parts"] for r in rows)
    summary = json.loads((out / "collection.json").read_text())
    assert summary["variant"] in ("collection-pre", "collection-pre-k3")
    best = max(("collection-pre", "collection-pre-k3"), key=lambda v: summary["tables"]["val"]["Overall"][v])
    assert summary["variant"] == best  # chosen on validation
    assert set(summary["tables"]["val"]["Overall"]) >= {"distill", "pre", "superpoint", "vote-fill"}
    assert "recall (%)" in (out / "collection.md").read_text() and (out / "collection.png").is_file()
    # pooled: a category's shapes of both splits are one collection, and each row keeps its split
    assert cli.main([*argv, "--split", "val", "--pooled"]) == 2
    assert cli.main([*argv, "--split", "all", "--pooled", "--variants", "collection-pre"]) == 0
    pooled = [json.loads(line) for line in (out / "collection.jsonl").read_text().splitlines()][len(rows) :]
    assert sorted((r["shape"], r["split"]) for r in pooled) == [
        ("Bird_241", "val"),
        ("Bird_242", "val"),
        ("Bird_245", "test"),
        ("Bird_246", "test"),
    ]
    assert all(len(r["collection"]) == 4 for r in pooled)
    summary = json.loads((out / "collection.json").read_text())
    assert summary["tables"]["test"]["Overall"]["collection-pre"] is not None
    assert summary["tables"]["val"]["Overall"]["collection-pre-k3"] is None  # only the pooled runs are read
