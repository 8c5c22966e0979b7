"""The PartSLIP-style whole-object box filter, on hand-made foreground masks."""

from __future__ import annotations

import numpy as np
import pytest
from partdistill.backend.pipeline.detect import drop_whole_object_boxes, whole_object_box
from partdistill.shared.detections import Detection, Detections
from partdistill.shared.errors import ValidationError


def _box(*xyxy: float) -> np.ndarray:
    return np.array(xyxy, dtype=np.float32)


def _l_shape() -> np.ndarray:
    """A 20 x 20 view with an L-shaped object in the box x in [4, 14), y in [2, 18):
    a vertical bar (columns 4-6, rows 2-17: 48 px) and a foot (columns 7-13, rows 15-17: 21 px)."""
    fg = np.zeros((20, 20), dtype=bool)
    fg[2:18, 4:7] = True
    fg[15:18, 7:14] = True
    return fg


def test_whole_object_box_hand_made() -> None:
    fg = _l_shape()
    assert fg.sum() == 69
    assert whole_object_box(_box(4, 2, 14, 18), fg)  # exactly the object's bounding box
    assert whole_object_box(_box(0, 0, 20, 20), fg)  # the whole image
    assert not whole_object_box(_box(4, 2, 7, 18), fg)  # the bar: 48/69 = 70% of the pixels, 30% of the area
    assert not whole_object_box(_box(4, 15, 14, 18), fg)  # the foot rows: 30/69 px, 19% of the area
    # 9 of 10 columns (90% of the area) and 66 of 69 pixels (96%): whole object at 0.85, not at 0.95.
    assert whole_object_box(_box(4, 2, 13, 18), fg)
    assert not whole_object_box(_box(4, 2, 13, 18), fg, max_cover=0.95)
    # Pixel membership by centre: a left edge at x = 4.6 leaves column 4 (centre 4.5, 16 px) out:
    # 53 of 69 pixels inside, 94% of the area.
    assert whole_object_box(_box(4.6, 2, 14, 18), fg, max_cover=52.5 / 69)
    assert not whole_object_box(_box(4.6, 2, 14, 18), fg, max_cover=53.5 / 69)
    assert not whole_object_box(_box(0, 0, 20, 20), np.zeros((20, 20), dtype=bool))  # no object


def test_both_conditions_are_needed() -> None:
    # Area without pixels: 9 of the 10 columns (90% of the area) but most of the bar cut off:
    # 53 of 69 pixels (77%).
    fg = _l_shape()
    assert not whole_object_box(_box(5, 2, 14, 18), fg)
    assert whole_object_box(_box(5, 2, 14, 18), fg, max_cover=0.75)
    # Pixels without area: a blob and one far pixel that stretches the bounding box to [2, 20)^2.
    fg2 = np.zeros((20, 20), dtype=bool)
    fg2[2:12, 2:12] = True
    fg2[19, 19] = True
    assert not whole_object_box(_box(2, 2, 12, 12), fg2)  # 100 of 101 px, 100/324 of the area
    assert whole_object_box(_box(2, 2, 12, 12), fg2, max_cover=0.3)


def test_drop_whole_object_boxes() -> None:
    fg = np.stack([_l_shape(), _l_shape(), np.zeros((20, 20), dtype=bool)])
    whole = Detection(0, 0.9, _box(3, 1, 15, 19))  # around the object
    almost = Detection(0, 0.6, _box(4, 2, 14, 17))  # 94% of the area, 59/69 = 86% of the pixels
    bar = Detection(1, 0.8, _box(4, 2, 7, 18))
    mask_only = Detection(0, 0.7, None, np.ones((20, 20), dtype=bool))  # no box: kept
    image_box = Detection(1, 0.5, _box(0, 0, 20, 20))
    empty_view_box = Detection(0, 0.4, _box(0, 0, 20, 20))
    dets = Detections(
        ("leg", "back"), [[whole, almost, bar], [mask_only, image_box], [empty_view_box]], image_size=(20, 20)
    )
    out = drop_whole_object_boxes(dets, fg)
    assert [[id(d) for d in v] for v in out.views] == [[id(bar)], [id(mask_only)], [id(empty_view_box)]]
    assert out.part_names == dets.part_names and out.image_size == (20, 20)
    assert len(dets.views[0]) == 3  # the input is unchanged
    # max_cover = 1 drops only boxes holding every foreground pixel and the whole bounding box.
    strict = drop_whole_object_boxes(dets, fg, max_cover=1.0)
    assert [id(d) for d in strict.views[0]] == [id(almost), id(bar)]


def test_drop_whole_object_boxes_checks_inputs() -> None:
    dets = Detections(("leg",), [[Detection(0, 0.9, _box(0, 0, 4, 4))]])
    with pytest.raises(ValidationError, match="foreground_masks"):
        drop_whole_object_boxes(dets, np.zeros((2, 4, 4), dtype=bool))
    with pytest.raises(ValidationError, match="foreground_masks"):
        drop_whole_object_boxes(dets, np.zeros((4, 4), dtype=bool))
    with pytest.raises(ValidationError, match="max_cover"):
        drop_whole_object_boxes(dets, np.zeros((1, 4, 4), dtype=bool), max_cover=0.0)


def _mug() -> np.ndarray:
    """A 20 x 20 view of a mug: a body (columns 4-13, rows 2-17: 160 px) and a handle on its right
    (column 14, rows 6-11: 6 px)."""
    fg = np.zeros((20, 20), dtype=bool)
    fg[2:18, 4:14] = True
    fg[6:12, 14] = True
    return fg


def test_a_part_that_fills_most_of_the_object_keeps_its_only_boxes() -> None:
    # seen from the handle's side, the handle lies in front of the body: the body's box is the whole
    # object's box and it holds the handle's box, in every view; yet it is all the evidence there is
    # for the body, so it stays
    front = np.zeros((20, 20), dtype=bool)
    front[2:18, 4:14] = True
    fg = np.stack([front, _mug()])
    body = [Detection(0, 0.9, _box(4, 2, 14, 18)) for _ in range(2)]
    handle = [Detection(1, 0.8, _box(8, 6, 10, 12)), Detection(1, 0.8, _box(14, 6, 15, 12))]
    dets = Detections(("body", "handle"), [[body[0], handle[0]], [body[1], handle[1]]], image_size=(20, 20))
    assert whole_object_box(body[0].box, fg[0]) and whole_object_box(body[1].box, fg[1])
    out = drop_whole_object_boxes(dets, fg)
    assert [len(v) for v in out.views] == [2, 2]


def test_a_whole_object_box_of_a_part_seen_elsewhere_is_dropped_only_where_it_spans_other_parts() -> None:
    fg = np.stack([_mug(), _mug(), _mug()])
    handle_proper = Detection(1, 0.8, _box(14, 6, 15, 12))
    handle_whole = Detection(1, 0.7, _box(3, 1, 16, 19))  # "handle" around the whole mug
    body = Detection(0, 0.9, _box(4, 2, 14, 18))
    lonely_whole = Detection(1, 0.6, _box(3, 1, 16, 19))  # a view where nothing else was detected
    dets = Detections(("body", "handle"), [[handle_proper], [handle_whole, body], [lonely_whole]], image_size=(20, 20))
    out = drop_whole_object_boxes(dets, fg)
    # view 1: the handle has evidence in view 0 and its box holds the body's: dropped (the body's own
    # box holds no other part's detection there, so it stays); view 2: it holds no other part: kept
    assert [[id(d) for d in v] for v in out.views] == [[id(handle_proper)], [id(body)], [id(lonely_whole)]]
