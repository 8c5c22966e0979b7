"""``bench real --collection``'s report reviews each collection as the product does: a pooled
collection's shapes of both splits are compared with each other, and each split is scored on its own
shapes."""

from __future__ import annotations

from partdistill.bench.collection import AFFORDABLE_FIT, BINS, fit_cost
from partdistill.bench.collection_report import choose_rules, flagged, precision_recall, summarise


def _row(i: int, split: str, tail_share: float, miou: float) -> dict:
    place = [0.5, 0.5, 0.5]
    return {
        "key": f"Fish_{i}/collection-pre",
        "shape": f"Fish_{i}",
        "category": "Fish",
        "split": split,
        "method": "collection-pre",
        "miou": miou,
        "collection": [f"Fish_{k}" for k in range(8)],  # one collection of 8: 4 validation shapes, 4 test
        "parts": {
            "body": {"share": 1 - tail_share, "pieces": 1, "place": place},
            "tail": {"share": tail_share, "pieces": 1, "place": place},
        },
        "disagreement": None,
        "warnings": [],
        **{k: [0] * BINS for k in ("agree_faces", "agree_right", "differ_faces", "differ_right")},
    }


def _pooled() -> list[dict]:
    """Six shapes with the tail on half the surface; two test shapes with it on 95 % (both bad). Over
    the 8 the two stand out; over the 4 test shapes alone the median is 72.5 % and nothing does."""
    val = [_row(i, "val", 0.5, 80.0) for i in range(4)]
    test = [_row(4, "test", 0.5, 80.0), _row(5, "test", 0.5, 80.0), _row(6, "test", 0.95, 20.0)]
    return [*val, *test, _row(7, "test", 0.95, 15.0)]


def test_a_pooled_collections_test_shapes_are_flagged_against_all_eight():
    summary = summarise(_pooled())
    test = summary["flags"]["test"]["collection-pre"]
    assert (test["below_recall_line"], test["warned"], test["recall"], test["precision"]) == (2, 2, 100.0, 100.0)
    assert summary["flags"]["val"]["collection-pre"]["warned"] == 0


def test_the_rules_are_chosen_on_the_validation_shapes_reviewed_with_the_whole_collection():
    rows = _pooled()
    for r in rows:  # the two bad shapes in validation: over its 4 shapes alone no rule catches them
        r["split"] = "test" if r["split"] == "val" else "val"
    val = [r for r in rows if r["split"] == "val"]
    pr = precision_recall(val, flagged(rows, choose_rules(rows, "val")))
    assert (pr["recall"], pr["warned"]) == (100.0, 2)


def test_a_variant_that_fits_more_than_the_default_is_reported_but_never_chosen():
    rows = _pooled()
    costly = [{**r, "key": r["key"].replace("collection-pre", "collection-pre-k6-both")} for r in rows]
    for r in costly:
        r["method"], r["miou"] = "collection-pre-k6-both", r["miou"] + 10
    assert fit_cost("collection-pre-k6-both") == 6 > AFFORDABLE_FIT >= fit_cost("collection-pre-k4-both-p2048") == 2
    summary = summarise(rows + costly)
    assert summary["tables"]["val"]["Overall"]["collection-pre-k6-both"] == 90.0
    assert summary["variant"] == "collection-pre"
