"""``bench teacher`` in small: a tiny random Grounding DINO through the product and a plain loop, each
in a process of its own, on the example chair captured by headless Blender."""

from __future__ import annotations

import json

from partdistill.bench import teacher


def test_the_teacher_bench_times_the_product_against_a_plain_loop_and_reports_agreement(tmp_path):
    levers = ("plain loop", "default", "4 views per forward", "fp16")
    doc = teacher.run(
        tmp_path / "cache",
        tmp_path / "out",
        levers=levers,
        views=2,
        resolution=96,
        tiny=True,
        large=False,
        log=lambda m: None,
    )
    rows = {r["lever"]: r for r in doc["rows"]}
    assert set(rows) == {"plain loop", "default", "4 views per forward"}  # fp16 does not run on a CPU
    assert rows["plain loop"]["ratio_to_plain_loop"] == 1.0 and rows["default"]["ratio_to_plain_loop"] > 0
    assert rows["default"]["views_per_forward"] == 1 and rows["4 views per forward"]["views_per_forward"] == 2
    assert rows["4 views per forward"]["agreement"] > 0.99  # batching views changes no detection
    assert 0 < rows["default"]["teacher_share"] < 1 and rows["default"]["peak_rss_gb"] > 0.1
    saved = json.loads((tmp_path / "out" / "teacher.json").read_text())
    assert len(saved["rows"]) == 3 and (tmp_path / "out" / "teacher.png").stat().st_size > 1000
    assert "grounding-dino-tiny, example chair, default" in (tmp_path / "out" / "teacher.md").read_text()
