"""CLIPSeg teacher: real pre/post-processing on a tiny random model loaded from a folder, and the
probability map -> mask detections step on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest
from partdistill.backend.teachers import Teacher, TeacherCancelled, TeacherUnavailableError, make_teacher
from partdistill.backend.teachers.clipseg import mask_box, mask_detections
from partdistill.shared.detections import Detections

PARTS = ["seat", "back", "leg"]
# Tiny models: one torch thread is much faster than two (see the fixture).
pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _images(n: int = 3, h: int = 140, w: int = 150, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def _teacher(path, **kw):
    kw.setdefault("device", "cpu")
    return make_teacher("clipseg", model=str(path), **kw)


def _check(dets: Detections, n: int, h: int, w: int, mask_threshold: float) -> None:
    assert isinstance(dets, Detections) and dets.part_names == tuple(PARTS) and len(dets.views) == n
    for view in dets.views:
        for d in view:
            assert 0 <= d.part < len(PARTS)
            assert mask_threshold <= d.score <= 1.0
            assert d.mask.dtype == bool and d.mask.shape == (h, w) and d.mask.any()
            np.testing.assert_array_equal(d.box, mask_box(d.mask))
            x0, y0, x1, y1 = d.box
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    dets.validate(n_views=n, image_size=(h, w))


def test_detect_runs_real_processing(tiny_clipseg, hf_offline) -> None:
    teacher = _teacher(tiny_clipseg, batch_size=2)
    assert isinstance(teacher, Teacher) and teacher.name == "clipseg"
    calls = []
    dets = teacher.detect(_images(3), PARTS, progress=lambda d, t, m: calls.append((d, t)))
    _check(dets, 3, 140, 150, 0.4)
    assert dets.n_detections > 0
    for view in dets.views:  # one detection per (view, part) at most
        assert len({d.part for d in view}) == len(view)
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)  # views done of 3


def test_split_components(tiny_clipseg, hf_offline) -> None:
    images = _images(2)
    whole = _teacher(tiny_clipseg, min_pixels=4).detect(images, PARTS)
    split = _teacher(tiny_clipseg, min_pixels=4, split_components=True).detect(images, PARTS)
    _check(split, 2, 140, 150, 0.4)
    assert split.n_detections >= whole.n_detections
    for vw, vs in zip(whole.views, split.views, strict=True):
        for d in vw:  # the components of a part make up its mask
            parts = [s.mask for s in vs if s.part == d.part]
            np.testing.assert_array_equal(np.logical_or.reduce(parts), d.mask)


def test_probabilities_pair_each_view_with_each_part(tiny_clipseg, hf_offline) -> None:
    # The batched (views x parts) forward equals one forward per (view, part) pair.
    import torch
    import torch.nn.functional as F

    teacher = _teacher(tiny_clipseg)
    images = _images(2, 128, 144, seed=2)
    probs = teacher.probabilities(images, PARTS)
    assert probs.shape == (2, 3, 128, 144) and probs.dtype == np.float32
    assert 0.0 <= probs.min() and probs.max() <= 1.0
    side = teacher.model.config.vision_config.image_size
    for i, k in [(0, 2), (1, 0), (1, 1)]:
        inputs = teacher.processor(text=[PARTS[k]], images=[images[i]], return_tensors="pt")
        with torch.inference_mode():
            logits = teacher.model(**inputs).logits.reshape(1, 1, side, side)
        want = torch.sigmoid(F.interpolate(logits, size=(128, 144), mode="bilinear", align_corners=False))[0, 0]
        np.testing.assert_allclose(probs[i, k], want.numpy(), atol=1e-4)


def test_threshold_zero_masks_everything(tiny_clipseg, hf_offline) -> None:
    dets = _teacher(tiny_clipseg, mask_threshold=0.0).detect(_images(2), PARTS)
    assert [len(v) for v in dets.views] == [3, 3]
    assert all(d.mask.all() for v in dets.views for d in v)


def test_batch_sizes_agree(tiny_clipseg, hf_offline) -> None:
    images = _images(3, 128, 160, seed=1)
    one = _teacher(tiny_clipseg, batch_size=1).detect(images, PARTS)
    three = _teacher(tiny_clipseg, batch_size=3).detect(images, PARTS)
    for va, vb in zip(one.views, three.views, strict=True):
        assert len(va) == len(vb)
        for a, b in zip(va, vb, strict=True):
            assert a.part == b.part and a.score == pytest.approx(b.score, abs=1e-4)
            # a pixel whose probability sits on the threshold may flip between batch layouts
            assert (a.mask != b.mask).mean() < 1e-3


def test_cancel(tiny_clipseg, hf_offline) -> None:
    with pytest.raises(TeacherCancelled):
        _teacher(tiny_clipseg).detect(_images(1), PARTS, cancel=lambda: True)


def test_mask_detections_hand_made() -> None:
    prob = np.zeros((10, 12), dtype=np.float32)
    prob[1:4, 1:5] = 0.8  # 12 px
    prob[6:9, 7:11] = 0.5  # 12 px
    prob[6, 1] = 0.9  # 1 px: too small
    prob[5, 5] = 0.3  # below the threshold
    dets = mask_detections(prob, 2, mask_threshold=0.4, min_pixels=4)
    assert len(dets) == 1
    d = dets[0]
    assert d.part == 2 and d.mask.sum() == 24 and not d.mask[6, 1] and not d.mask[5, 5]
    assert d.score == pytest.approx(0.65)
    np.testing.assert_array_equal(d.box, [1, 1, 11, 9])  # exclusive right/bottom
    parts = mask_detections(prob, 0, mask_threshold=0.4, min_pixels=4, split_components=True)
    assert [round(p.score, 6) for p in parts] == [0.8, 0.5]
    np.testing.assert_array_equal(parts[0].box, [1, 1, 5, 4])
    np.testing.assert_array_equal(parts[1].box, [7, 6, 11, 9])
    # 8-connected: a diagonal step joins two squares into one region.
    diag = np.zeros((6, 6), dtype=np.float32)
    diag[0:2, 0:2] = diag[2:4, 2:4] = 1.0
    assert len(mask_detections(diag, 0, min_pixels=1, split_components=True)) == 1
    assert mask_detections(prob, 0, mask_threshold=0.95) == []
    assert mask_detections(prob, 0, min_pixels=100) == []


@pytest.mark.parametrize("model", ["/nonexistent/partdistill/clipseg", "partdistill-test/no-such-clipseg"])
def test_missing_model_is_a_clear_error(model, hf_offline, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    with pytest.raises(TeacherUnavailableError) as e:
        make_teacher("clipseg", model=model, device="cpu")
    msg = str(e.value)
    assert model in msg and "hub id" in msg and "local folder" in msg and "2D detections" in msg
    assert "\n" not in msg and "--" not in msg  # one line; each front end says where 'options.teacher_model' is set
    assert e.value.field == "options.teacher_model"


def test_empty_folder_is_a_clear_error(hf_offline, tmp_path) -> None:
    with pytest.raises(TeacherUnavailableError, match="2D detections"):
        make_teacher("clipseg", model=str(tmp_path), device="cpu")
