"""`partdistill bench quality` in a reduced size: real headless-Blender captures of two families,
both simulated teachers, all four methods; its output files parse."""

from __future__ import annotations

import json

import pytest
from PIL import Image

pytest.importorskip("bpy")

from partdistill.backend import cli  # noqa: E402
from partdistill.bench.quality import METHODS  # noqa: E402


def test_bench_quality_reduced_writes_table_json_and_pictures(tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "bench",
        "quality",
        "--data",
        str(tmp_path / "data"),
        "--out",
        str(out),
        "--families",
        "mug,knife",
        "--per-family",
        "3",
        "--n-test",
        "1",
        "--views",
        "3",
        "--resolution",
        "96",
        "--points",
        "512",
        "--epochs",
        "20",
    ]
    assert cli.main(argv) == 0, capsys.readouterr().err
    res = json.loads((out / "results.json").read_text())
    for teacher in ("box", "mask"):
        for m in METHODS:
            row = res["miou"][teacher][m]
            assert set(row) == {"mug", "knife", "Overall"} and all(0 <= v <= 100 for v in row.values())
        assert set(res["miou2d"][teacher]) == {"before", "after"}
        assert set(res["targets"][teacher]) >= {"tta_minus_vote_overall", "backward_gain_3d_overall"}
    assert len(res["per_shape"]) == 2 * 2  # 2 families x 1 test shape x 2 teachers
    md = (out / "results.md").read_text()
    assert "| mug |" in md and "| Overall |" in md and "mIoU2D" in md
    for png in ("loss_curves.png", "segmentations.png"):
        with Image.open(out / png) as im:
            assert im.width > 100 and im.height > 100


def test_bench_rejects_unknown_families_and_teachers(tmp_path, capsys):
    assert cli.main(["bench", "quality", "--data", str(tmp_path), "--families", "spaceship"]) == 2
    assert "unknown families" in capsys.readouterr().err
    assert cli.main(["bench", "quality", "--data", str(tmp_path), "--teachers", "glip"]) == 2


def test_bench_speed_times_each_stage_on_a_finely_split_mesh(tmp_path):
    """The large-mesh figure of ``bench speed``, on a small mesh: every triangle split into k² pieces
    whose labels follow, captured, labelled, each stage timed."""
    from partdistill.bench.families import make_shape
    from partdistill.bench.speed import _large_mesh_stages, _split_triangles_to
    from partdistill.shared.options import SegmentOptions

    shape = make_shape("chair", 0)
    fine = _split_triangles_to(shape, 4 * len(shape.triangles()[0]))
    assert len(fine.polygons) == 4 * len(shape.triangles()[0]) and len(fine.labels) == len(fine.polygons)
    figures = _large_mesh_stages(tmp_path, 5000, SegmentOptions(epochs=5, n_points=512))
    assert figures["faces"] >= 5000 and set(figures["seconds"]) == {"lift", "distill", "label", "total"}
