"""2D detections: the JSON file form (boxes, PNG masks), the arrays form for the wire, and a
ValidationError naming the field for each kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from partdistill.shared.detections import Detection, Detections
from partdistill.shared.errors import ValidationError
from PIL import Image

NAMES = ["top", "leg"]


def _mask(h: int = 6, w: int = 8) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[1:3, 2:5] = True
    m[5, 7] = True
    return m


def _write_json(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def _doc(*dets: dict, views: int = 1, **extra) -> dict:
    return {"part_names": NAMES, "views": [list(dets)] + [[] for _ in range(views - 1)], **extra}


def _error(fn, *args, **kw) -> ValidationError:
    with pytest.raises(ValidationError) as e:
        fn(*args, **kw)
    assert str(e.value).startswith(e.value.field + ":")
    return e.value


def _dets() -> Detections:
    """Three views: a box, a mask, a box+mask; an empty view."""
    return Detections(
        ("top", "leg"),
        [
            [Detection(0, 0.9, np.array([1, 2, 7.5, 6], np.float32)), Detection(1, 0.25, mask=_mask())],
            [],
            [Detection(1, 1.0, np.array([0, 0, 8, 6], np.float32), _mask()[::-1].copy())],
        ],
        image_size=(6, 8),
    ).validate(3, (6, 8))


# ---- JSON load ----------------------------------------------------------------------------------


def test_load_json_reads_boxes_and_png_masks_relative_to_the_json_file(tmp_path, monkeypatch):
    folder = tmp_path / "shape"
    (folder / "masks").mkdir(parents=True)
    png = np.where(_mask(), 255, 0).astype(np.uint8)
    png[5, 7] = 1  # any non-zero value is inside
    Image.fromarray(png).save(folder / "masks" / "v0_leg.png")
    path = _write_json(
        folder / "det.json",
        _doc(
            {"part": "top", "score": 0.83, "box": [1, 2.5, 10, 12]},
            {"part": "leg", "score": 0.6, "mask": "masks/v0_leg.png"},
            views=2,
        ),
    )
    monkeypatch.chdir(tmp_path)  # the mask path is relative to the JSON, not to the working directory
    d = Detections.load_json(path)
    assert d.part_names == ("top", "leg") and len(d.views) == 2 and d.views[1] == []
    assert d.image_size is None and d.n_detections == 2
    box, mask = d.views[0]
    assert (box.part, box.mask) == (0, None) and box.score == pytest.approx(0.83)
    assert box.box.dtype == np.float32 and box.box.tolist() == [1, 2.5, 10, 12]
    assert (mask.part, mask.box) == (1, None) and mask.score == pytest.approx(0.6)
    assert mask.mask.dtype == bool
    np.testing.assert_array_equal(mask.mask, _mask())


def test_save_json_then_load_json_gives_back_boxes_masks_scores_and_image_size(tmp_path):
    d = _dets()
    d.save_json(tmp_path / "out" / "det.json")
    mask_files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert mask_files == ["det_masks/view000_001.png", "det_masks/view002_000.png"]
    back = Detections.load_json(tmp_path / "out" / "det.json")
    assert back.part_names == d.part_names and back.image_size == (6, 8)
    assert [len(v) for v in back.views] == [2, 0, 1]
    for got, want in zip([x for v in back.views for x in v], [x for v in d.views for x in v], strict=True):
        assert got.part == want.part and got.score == pytest.approx(want.score)
        if want.box is None:
            assert got.box is None
        else:
            np.testing.assert_allclose(got.box, want.box)
        if want.mask is None:
            assert got.mask is None
        else:
            np.testing.assert_array_equal(got.mask, want.mask)


def test_to_arrays_then_from_arrays_gives_back_every_detection(tmp_path):
    d = _dets()
    a = d.to_arrays()
    assert a["det_view"].tolist() == [0, 0, 2] and a["det_part"].tolist() == [0, 1, 1]
    assert a["det_mask_index"].tolist() == [-1, 0, 1]
    assert np.isnan(a["det_box"][1]).all() and a["det_box"][0].tolist() == [1, 2, 7.5, 6]
    assert a["det_masks"].shape == (2, 6, 8) and a["det_masks"].dtype == np.uint8
    assert {k: v.dtype for k, v in a.items() if k != "det_masks"} == {
        "det_view": np.int32,
        "det_part": np.int32,
        "det_score": np.float32,
        "det_box": np.float32,
        "det_mask_index": np.int32,
    }
    back = Detections.from_arrays(d.part_names, 3, a).validate(3, (6, 8))
    assert [len(v) for v in back.views] == [2, 0, 1]
    for got, want in zip([x for v in back.views for x in v], [x for v in d.views for x in v], strict=True):
        assert got.part == want.part and got.score == pytest.approx(want.score)
        assert (got.box is None) == (want.box is None) and (got.mask is None) == (want.mask is None)
        if want.box is not None:
            np.testing.assert_array_equal(got.box, want.box)
        if want.mask is not None:
            np.testing.assert_array_equal(got.mask, want.mask)


def test_arrays_without_masks_have_no_mask_array_and_round_trip():
    d = Detections(("a",), [[Detection(0, 0.5, np.array([0, 0, 1, 1], np.float32))], []])
    a = d.to_arrays()
    assert "det_masks" not in a
    back = Detections.from_arrays(("a",), 2, a)
    assert [len(v) for v in back.views] == [1, 0] and back.views[0][0].mask is None


def test_from_arrays_rejects_a_view_index_beyond_the_capture():
    a = _dets().to_arrays()
    assert _error(Detections.from_arrays, ("top", "leg"), 2, a).field == "det_view"


# ---- bad JSON -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "det, field",
    [
        ({"part": "seat", "score": 0.5, "box": [0, 0, 1, 1]}, "views[0][1].part"),
        ({"score": 0.5, "box": [0, 0, 1, 1]}, "views[0][1].part"),
        ({"part": "leg", "score": 1.5, "box": [0, 0, 1, 1]}, "views[0][1].score"),
        ({"part": "leg", "score": -0.1, "box": [0, 0, 1, 1]}, "views[0][1].score"),
        ({"part": "leg", "score": "high", "box": [0, 0, 1, 1]}, "views[0][1].score"),
        ({"part": "leg", "score": True, "box": [0, 0, 1, 1]}, "views[0][1].score"),
        ({"part": "leg", "score": 0.5, "box": [5, 0, 4, 1]}, "views[0][1].box"),
        ({"part": "leg", "score": 0.5, "box": [0, 5, 1, 4]}, "views[0][1].box"),
        ({"part": "leg", "score": 0.5, "box": [0, 0, 1]}, "views[0][1].box"),
        ({"part": "leg", "score": 0.5, "box": [0, 0, 1, 1, 1]}, "views[0][1].box"),
        ({"part": "leg", "score": 0.5, "box": "0 0 1 1"}, "views[0][1].box"),
        ({"part": "leg", "score": 0.5}, "views[0][1]"),
        ({"part": "leg", "score": 0.5, "mask": "missing.png"}, "views[0][1].mask"),
        ({"part": "leg", "score": 0.5, "mask": 3}, "views[0][1].mask"),
        ("leg", "views[0][1]"),
    ],
)
def test_a_bad_detection_names_its_field(tmp_path, det, field):
    ok = {"part": "top", "score": 0.5, "box": [0, 0, 2, 2]}
    path = _write_json(tmp_path / "det.json", _doc(ok, det))
    assert _error(Detections.load_json, path).field == field


def test_a_nan_score_is_refused(tmp_path):
    path = tmp_path / "det.json"
    path.write_text('{"part_names": ["top"], "views": [[{"part": "top", "score": NaN, "box": [0, 0, 1, 1]}]]}')
    e = _error(Detections.load_json, path)
    assert e.field == "views[0][0].score" and "nan" in e.problem.lower()


def test_a_nan_score_or_infinite_box_built_in_python_is_refused():
    assert _error(Detections(("a",), [[Detection(0, float("nan"), np.zeros(4))]]).validate).field == "views[0][0].score"
    inf_box = np.array([0, 0, np.inf, 1])
    assert _error(Detections(("a",), [[Detection(0, 0.5, inf_box)]]).validate).field == "views[0][0].box"
    assert _error(Detections(("a",), [[Detection(1, 0.5, np.zeros(4))]]).validate).field == "views[0][0].part"


def test_a_mask_png_that_is_not_an_image_is_refused(tmp_path):
    (tmp_path / "m.png").write_bytes(b"not a png")
    path = _write_json(tmp_path / "det.json", _doc({"part": "top", "mask": "m.png"}))
    e = _error(Detections.load_json, path)
    assert e.field == "views[0][0].mask" and "cannot read" in e.problem


@pytest.mark.parametrize("text", ["{not json", "", "\xff\xfe"])
def test_a_file_that_is_not_json_is_refused(tmp_path, text):
    path = tmp_path / "det.json"
    path.write_bytes(text.encode("latin-1"))
    e = _error(Detections.load_json, path)
    assert e.field == "detections" and "not valid JSON" in e.problem


def test_a_missing_detections_file_is_named(tmp_path):
    e = _error(Detections.load_json, tmp_path / "none.json")
    assert e.field == "detections" and "not found" in e.problem


@pytest.mark.parametrize(
    "doc, field",
    [
        ([], "detections"),
        ({"part_names": NAMES}, "views"),
        ({"part_names": NAMES, "views": [{}]}, "views[0]"),
        ({"part_names": [], "views": []}, "part_names"),
        ({"part_names": ["top", "top"], "views": []}, "part_names[1]"),
        ({"part_names": NAMES, "views": [], "image_size": [0, 8]}, "image_size"),
        ({"part_names": NAMES, "views": [], "image_size": [6]}, "image_size"),
    ],
)
def test_a_malformed_document_names_its_field(tmp_path, doc, field):
    assert _error(Detections.load_json, _write_json(tmp_path / "det.json", doc)).field == field


# ---- against a capture --------------------------------------------------------------------------


def test_the_number_of_views_must_match_the_capture():
    d = _dets()
    e = _error(d.validate, n_views=4)
    assert e.field == "views" and "3" in e.problem and "4" in e.problem
    d.validate(n_views=3)


def test_a_recorded_image_size_must_match_the_capture(tmp_path):
    boxes_only = Detections(("a",), [[Detection(0, 0.5, np.array([0, 0, 4, 4], np.float32))]], image_size=(6, 8))
    boxes_only.validate(1, (6, 8))
    e = _error(boxes_only.validate, 1, (8, 6))
    assert e.field == "image_size"
    path = _write_json(tmp_path / "det.json", _doc({"part": "top", "box": [0, 0, 4, 4]}, image_size=[64, 64]))
    assert _error(Detections.load_json(path).validate, 1, (96, 96)).field == "image_size"
    Detections(("a",), [[Detection(0, 0.5, np.array([0, 0, 4, 4], np.float32))]]).validate(1, (96, 96))  # none recorded


def test_a_mask_of_another_size_than_the_views_is_refused(tmp_path):
    Image.fromarray(np.full((6, 8), 255, np.uint8)).save(tmp_path / "m.png")
    path = _write_json(tmp_path / "det.json", _doc({"part": "top", "mask": "m.png"}))
    d = Detections.load_json(path)
    d.validate(1, (6, 8))
    e = _error(d.validate, 1, (8, 6))
    assert e.field == "views[0][0].mask" and "(6, 8)" in e.problem
