"""OWLv2 teacher: real pre/post-processing on a tiny random model loaded from a folder."""

from __future__ import annotations

import numpy as np
import pytest
from partdistill.backend.teachers import Teacher, TeacherCancelled, TeacherUnavailableError, make_teacher, teacher_names
from partdistill.shared.detections import Detections
from partdistill.shared.errors import ValidationError

PARTS = ["seat", "back", "leg"]
# Tiny models: one torch thread is much faster than two (see the fixture).
pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _images(n: int = 3, h: int = 140, w: int = 150, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def _teacher(path, **kw):
    kw.setdefault("device", "cpu")
    kw.setdefault("box_threshold", 0.0)
    return make_teacher("owlv2", model=str(path), **kw)


def test_detect_runs_real_processing(tiny_owlv2, hf_offline) -> None:
    teacher = _teacher(tiny_owlv2, batch_size=2)
    assert isinstance(teacher, Teacher) and teacher.name == "owlv2"
    calls = []
    dets = teacher.detect(_images(3), PARTS, progress=lambda d, t, m: calls.append((d, t)))
    assert isinstance(dets, Detections) and dets.part_names == tuple(PARTS)
    assert len(dets.views) == 3 and all(len(v) > 0 for v in dets.views)
    for view in dets.views:
        for d in view:
            assert 0 <= d.part < len(PARTS) and 0.0 <= d.score <= 1.0
            assert d.mask is None and d.box.dtype == np.float32 and d.box.shape == (4,)
            x0, y0, x1, y1 = d.box
            assert 0 <= x0 < x1 <= 150 and 0 <= y0 < y1 <= 140
    dets.validate(n_views=3, image_size=(140, 150))
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)


def test_boxes_are_scaled_to_the_padded_square(tiny_owlv2, hf_offline) -> None:
    # A 120 x 160 view is padded at the bottom to 160 x 160: boxes are relative to that square.
    import torch

    teacher = _teacher(tiny_owlv2, nms_threshold=1.0)
    image = _images(1, 120, 160, seed=3)
    dets = teacher.detect(image, PARTS)
    inputs = teacher.processor(text=[teacher.prompts(PARTS)], images=list(image), return_tensors="pt")
    with torch.inference_mode():
        out = teacher.model(**inputs)
    cx, cy, bw, bh = out.pred_boxes[0].unbind(-1)
    boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], -1) * 160
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, 160)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, 120)
    logits, labels = out.logits[0].max(-1)  # the best query by logit (sigmoids can tie at 1.0)
    scores = torch.sigmoid(logits)
    ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    assert len(dets.views[0]) == int(ok.sum()) > 0
    for d, q in zip(dets.views[0], torch.nonzero(ok).flatten().tolist(), strict=True):
        np.testing.assert_allclose(d.box, boxes[q].numpy(), atol=1e-3)
        assert d.part == int(labels[q]) and d.score == pytest.approx(float(scores[q]), abs=1e-5)
    assert max(d.box[3] for d in dets.views[0]) <= 120


def test_thresholds_and_nms(tiny_owlv2, hf_offline) -> None:
    images = _images(2)
    every = _teacher(tiny_owlv2, nms_threshold=1.0).detect(images, PARTS)
    scores = sorted(d.score for v in every.views for d in v)
    cut = scores[len(scores) // 2]
    some = _teacher(tiny_owlv2, box_threshold=cut, nms_threshold=1.0).detect(images, PARTS)
    kept = [d.score for v in some.views for d in v]
    assert kept and min(kept) >= cut and len(kept) < len(scores)
    thinned = _teacher(tiny_owlv2, nms_threshold=0.0).detect(images, PARTS)
    assert 0 < thinned.n_detections <= every.n_detections
    with pytest.raises(ValidationError, match="nms_threshold"):
        _teacher(tiny_owlv2, nms_threshold=2.0)


def test_nms_per_label_hand_made() -> None:
    import torch
    from partdistill.backend.teachers.owlv2 import box_iou, nms_per_label

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    scores = torch.tensor([0.5, 0.9, 0.8, 0.1])
    labels = torch.tensor([0, 0, 1, 0])
    assert box_iou(boxes[:1], boxes[1:2]).item() == pytest.approx(81 / 100)
    # Box 0 is suppressed by box 1 (same label, IoU 0.81); box 2 has another label; box 3 is apart.
    assert nms_per_label(boxes, scores, labels, 0.5).tolist() == [1, 2, 3]
    assert sorted(nms_per_label(boxes, scores, labels, 1.0).tolist()) == [0, 1, 2, 3]


def test_batch_sizes_agree(tiny_owlv2, hf_offline) -> None:
    images = _images(3, 128, 160, seed=1)
    one = _teacher(tiny_owlv2, batch_size=1).detect(images, PARTS)
    three = _teacher(tiny_owlv2, batch_size=3).detect(images, PARTS)
    for va, vb in zip(one.views, three.views, strict=True):
        assert len(va) == len(vb)
        for a, b in zip(va, vb, strict=True):
            assert a.part == b.part
            assert a.score == pytest.approx(b.score, abs=1e-4)
            np.testing.assert_allclose(a.box, b.box, atol=1e-2)


def test_prompt_template_and_cancel(tiny_owlv2, hf_offline) -> None:
    teacher = _teacher(tiny_owlv2, prompt_template="the {part} of a {object}", object_name="chair")
    assert teacher.prompts(["seat"]) == ["the seat of a chair"]
    teacher.detect(_images(1), PARTS).validate(n_views=1)
    with pytest.raises(TeacherCancelled):
        teacher.detect(_images(2), PARTS, cancel=lambda: True)


def test_long_prompts_are_cut_with_a_warning(tiny_owlv2, hf_offline, caplog) -> None:
    # OWLv2 reads 16 tokens (the tiny tokenizer, like the real one); a longer prompt is truncated.
    teacher = _teacher(tiny_owlv2, prompt_template="the {part} of a {object} standing in a room", object_name="chair")
    with caplog.at_level("WARNING", logger="partdistill.backend.teachers.owlv2"):
        dets = teacher.detect(_images(1), PARTS)
    assert dets.n_detections > 0 and "will be cut" in caplog.text


@pytest.mark.parametrize("model", ["/nonexistent/partdistill/owlv2", "partdistill-test/no-such-owlv2"])
def test_missing_model_is_a_clear_error(model, hf_offline, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    with pytest.raises(TeacherUnavailableError) as e:
        make_teacher("owlv2", model=model, device="cpu")
    msg = str(e.value)
    assert model in msg and "hub id" in msg and "local folder" in msg and "2D detections" in msg
    assert "\n" not in msg and "--" not in msg  # one line; each front end says where 'options.teacher_model' is set
    assert e.value.field == "options.teacher_model"


def test_wrong_model_type_is_a_clear_error(tiny_clipseg, hf_offline) -> None:
    with pytest.raises(TeacherUnavailableError, match="2D detections"):
        make_teacher("owlv2", model=str(tiny_clipseg), device="cpu")


def test_registry() -> None:
    assert {"grounding_dino", "owlv2", "clipseg"} <= set(teacher_names())


def test_each_teacher_has_its_own_default_thresholds_and_a_given_one_wins(tiny_owlv2, hf_offline) -> None:
    teacher = make_teacher("owlv2", model=str(tiny_owlv2), device="cpu")
    assert (teacher.box_threshold, teacher.text_threshold) == (0.1, 0.0)  # OWLv2's scores are low
    assert make_teacher("owlv2", model=str(tiny_owlv2), device="cpu", box_threshold=0.0).box_threshold == 0.0
