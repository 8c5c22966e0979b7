"""SAM box -> mask refinement: real pre/post-processing on a tiny random SAM loaded from a folder,
alone and wrapped around a box teacher (``make_teacher(..., sam_model=...)``)."""

from __future__ import annotations

import numpy as np
import pytest
from partdistill.backend.teachers import Teacher, TeacherCancelled, TeacherUnavailableError, make_teacher
from partdistill.backend.teachers.sam import SamRefinedTeacher, SamRefiner
from partdistill.shared.detections import Detection, Detections, box_mask
from partdistill.shared.errors import ValidationError

PARTS = ["seat", "back", "leg"]
# Tiny models: one torch thread is much faster than two (see the fixture).
pytestmark = pytest.mark.usefixtures("torch_single_thread")
H, W = 140, 150


def _images(n: int = 3, h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def _box(*xyxy: float) -> np.ndarray:
    return np.array(xyxy, dtype=np.float32)


def _detections() -> Detections:
    mask = np.zeros((H, W), dtype=bool)
    mask[5:9, 5:9] = True
    return Detections(
        tuple(PARTS),
        [
            [Detection(0, 0.9, _box(10, 10, 60, 80)), Detection(1, 0.4, _box(50, 20, 150, 140))],
            [],  # a view without detections: nothing to run
            [
                Detection(2, 0.7, _box(0, 0, 30, 30), mask),  # a mask and its box: SAM's mask replaces it
                Detection(0, 0.5, None, mask),  # no box: left as it is
                Detection(1, 0.6, _box(-5, 100, 40, 200)),  # outside the view: clipped for SAM
            ],
        ],
    )


def test_refine_gives_every_box_a_mask(tiny_sam, hf_offline) -> None:
    refiner = SamRefiner(str(tiny_sam), device="cpu", batch_size=2, boxes_per_prompt=1)
    dets = _detections()
    calls = []
    out = refiner.refine(_images(3), dets, progress=lambda d, t, m: calls.append((d, t)))
    assert [len(v) for v in out.views] == [2, 0, 3]
    for before_view, after_view in zip(dets.views, out.views, strict=True):
        for before, after in zip(before_view, after_view, strict=True):
            assert after.part == before.part and after.score == before.score
            if before.box is None:
                assert after is before
                continue
            np.testing.assert_array_equal(after.box, before.box)
            assert after.mask.dtype == bool and after.mask.shape == (H, W) and after.mask.any()
            assert before.mask is None or not np.array_equal(after.mask, before.mask)
    out.validate(n_views=3, image_size=(H, W))
    assert dets.views[0][0].mask is None  # the input is not changed
    assert calls == [(0, 2), (2, 2)]  # views 0 and 2 (the ones with boxes) in one batch of 2


def test_mask_is_the_best_of_the_multimask_outputs(tiny_sam, hf_offline) -> None:
    import torch

    refiner = SamRefiner(str(tiny_sam), device="cpu")
    image = _images(1, 120, 160, seed=4)
    box = [20.0, 10.0, 90.0, 100.0]
    out = refiner.refine(image, Detections(tuple(PARTS), [[Detection(0, 0.8, _box(*box))]]))
    enc = refiner.processor(images=[image[0]], input_boxes=[[box]], return_tensors="pt")
    with torch.inference_mode():
        emb = refiner.model.get_image_embeddings(enc["pixel_values"])
        pred = refiner.model(image_embeddings=emb, input_boxes=enc["input_boxes"].float(), multimask_output=True)
    masks = refiner.processor.post_process_masks(pred.pred_masks, enc["original_sizes"], enc["reshaped_input_sizes"])
    best = int(pred.iou_scores[0, 0].argmax())
    want = masks[0][0, best].numpy()
    assert want.any()
    np.testing.assert_array_equal(out.views[0][0].mask, want)


def test_refiner_batch_sizes_agree(tiny_sam, hf_offline) -> None:
    images, dets = _images(3), _detections()
    one = SamRefiner(str(tiny_sam), device="cpu", batch_size=1, boxes_per_prompt=1).refine(images, dets)
    three = SamRefiner(str(tiny_sam), device="cpu", batch_size=3, boxes_per_prompt=8).refine(images, dets)
    for va, vb in zip(one.views, three.views, strict=True):
        for a, b in zip(va, vb, strict=True):
            assert (a.mask != b.mask).mean() < 1e-3  # pixels on the 0-logit edge may flip


def test_empty_sam_mask_falls_back_to_the_box() -> None:
    d = Detection(1, 0.5, _box(2.4, 1.0, 5.4, 3.0))
    out = SamRefiner._with_mask(d, np.zeros((6, 8), dtype=bool), (6, 8))
    want = np.zeros((6, 8), dtype=bool)
    want[1:3, 2:5] = True  # column centres 2.5, 3.5, 4.5 inside [2.4, 5.4); row centres 1.5, 2.5 inside [1, 3)
    np.testing.assert_array_equal(out.mask, want)
    np.testing.assert_array_equal(box_mask(d.box, (6, 8)), want)


def test_refine_checks_its_inputs(tiny_sam, hf_offline) -> None:
    refiner = SamRefiner(str(tiny_sam), device="cpu")
    with pytest.raises(ValidationError, match="detections"):
        refiner.refine(_images(2), _detections())
    with pytest.raises(TeacherCancelled):
        refiner.refine(_images(3), _detections(), cancel=lambda: True)


def test_refined_teacher_from_the_registry(tiny_owlv2, tiny_sam, hf_offline) -> None:
    teacher = make_teacher("owlv2", model=str(tiny_owlv2), device="cpu", box_threshold=0.0, sam_model=str(tiny_sam))
    assert isinstance(teacher, SamRefinedTeacher) and isinstance(teacher, Teacher)
    assert teacher.name == "owlv2+sam" and teacher.refiner.device == "cpu"
    calls = []
    images = _images(2)
    dets = teacher.detect(images, PARTS, progress=lambda d, t, m: calls.append((d, t)))
    plain = teacher.base.detect(images, PARTS)
    assert [len(v) for v in dets.views] == [len(v) for v in plain.views] and dets.n_detections > 0
    for view in dets.views:
        for d in view:
            assert d.box is not None and d.mask.shape == (H, W) and d.mask.any()
    dets.validate(n_views=2, image_size=(H, W))
    done = [d for d, _ in calls]
    assert done == sorted(done) and calls[-1][0] == calls[-1][1] and len({t for _, t in calls}) == 1
    with pytest.raises(TeacherCancelled):
        teacher.detect(images, PARTS, cancel=lambda: True)


def test_clipseg_boxes_refined(tiny_clipseg, tiny_sam, hf_offline) -> None:
    teacher = make_teacher("clipseg", model=str(tiny_clipseg), device="cpu", sam_model=str(tiny_sam))
    dets = teacher.detect(_images(1), PARTS)
    assert dets.n_detections > 0 and all(d.mask.any() for d in dets.views[0])


@pytest.mark.parametrize("model", ["/nonexistent/partdistill/sam", "partdistill-test/no-such-sam"])
def test_missing_sam_is_a_clear_error(model, tiny_owlv2, hf_offline, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    with pytest.raises(TeacherUnavailableError) as e:
        make_teacher("owlv2", model=str(tiny_owlv2), device="cpu", sam_model=model)
    msg = str(e.value)
    assert model in msg and "hub id" in msg and "local folder" in msg and "without SAM" in msg
    assert "\n" not in msg and "--" not in msg  # one line; each front end says where 'options.sam_model' is set
    assert e.value.field == "options.sam_model"


def test_default_sam_model_offline(tiny_owlv2, hf_offline, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for sam_model in ("", "default"):
        with pytest.raises(TeacherUnavailableError, match="facebook/sam-vit-base"):
            make_teacher("owlv2", model=str(tiny_owlv2), device="cpu", sam_model=sam_model)
