"""Grounding DINO teacher: real pre/post-processing on a tiny random model loaded from a folder."""

from __future__ import annotations

import numpy as np
import pytest
from partdistill.backend.teachers import (
    Teacher,
    TeacherCancelled,
    TeacherUnavailableError,
    make_prompts,
    make_teacher,
    teacher_names,
)
from partdistill.backend.teachers.grounding_dino import (
    build_caption,
    chunk_phrases,
    clean_phrase,
    token_parts_from_ids,
    token_parts_from_offsets,
)
from partdistill.shared.detections import Detections
from partdistill.shared.errors import ValidationError

PARTS = ["seat", "back", "leg", "arm"]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # huggingface_hub reads HF_HUB_OFFLINE once at import: patch its constant as well as the env.
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def _images(n: int = 3, h: int = 140, w: int = 150, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def _teacher(path, **kw):
    kw.setdefault("device", "cpu")
    kw.setdefault("box_threshold", 0.0)
    kw.setdefault("text_threshold", 0.0)
    return make_teacher("grounding_dino", model=str(path), **kw)


# ---- (a) the real pipeline ----------------------------------------------------------------------


def test_detect_runs_real_processing(tiny_grounding_dino, offline) -> None:
    teacher = _teacher(tiny_grounding_dino, batch_size=2)
    assert isinstance(teacher, Teacher) and teacher.name == "grounding_dino"
    images = _images(3, 140, 150)
    calls = []
    dets = teacher.detect(images, PARTS, progress=lambda d, t, m: calls.append((d, t)))
    assert isinstance(dets, Detections)
    assert dets.part_names == tuple(PARTS)
    assert len(dets.views) == 3
    assert dets.n_detections > 0
    for view in dets.views:
        for d in view:
            assert 0 <= d.part < len(PARTS)
            assert 0.0 <= d.score <= 1.0
            assert d.mask is None and d.box.dtype == np.float32 and d.box.shape == (4,)
            x0, y0, x1, y1 = d.box
            assert 0 <= x0 < x1 <= 150 and 0 <= y0 < y1 <= 140
    dets.validate(n_views=3, image_size=(140, 150))
    assert calls == [(0, 3), (2, 3), (3, 3)]  # views done, 2 a batch


def test_thresholds_filter(tiny_grounding_dino, offline) -> None:
    images = _images(2)
    every = _teacher(tiny_grounding_dino).detect(images, PARTS)
    scores = sorted(d.score for v in every.views for d in v)
    cut = scores[len(scores) // 2]
    some = _teacher(tiny_grounding_dino, box_threshold=cut).detect(images, PARTS)
    kept = [d.score for v in some.views for d in v]
    assert kept and min(kept) >= cut and len(kept) < len(scores)


# ---- (b) batching -------------------------------------------------------------------------------


def test_batch_sizes_agree(tiny_grounding_dino, offline) -> None:
    images = _images(4, 128, 160, seed=1)
    one = _teacher(tiny_grounding_dino, batch_size=1).detect(images, PARTS)
    three = _teacher(tiny_grounding_dino, batch_size=3).detect(images, PARTS)
    for va, vb in zip(one.views, three.views, strict=True):
        assert len(va) == len(vb)
        for a, b in zip(va, vb, strict=True):
            assert a.part == b.part
            assert a.score == pytest.approx(b.score, abs=1e-4)
            np.testing.assert_allclose(a.box, b.box, atol=1e-2)


def test_long_prompts_are_chunked(tiny_grounding_dino, offline) -> None:
    # The tiny model reads 32 tokens; 8 templated parts need ~56, so the teacher splits the prompt.
    parts = ["seat", "back", "leg", "arm", "armrest", "top", "base", "handle"]
    teacher = _teacher(tiny_grounding_dino, prompt_template="the {part} of a {object}", object_name="chair")
    assert len(teacher._chunks(teacher.prompts(parts))) >= 2
    dets = teacher.detect(_images(2), parts)
    seen = {d.part for v in dets.views for d in v}
    assert max(seen) >= 4  # parts of the later chunks are detected too
    dets.validate(n_views=2)


def test_cancel_stops(tiny_grounding_dino, offline) -> None:
    teacher = _teacher(tiny_grounding_dino, batch_size=1)
    with pytest.raises(TeacherCancelled):
        teacher.detect(_images(2), PARTS, cancel=lambda: True)


def test_bad_inputs(tiny_grounding_dino, offline) -> None:
    teacher = _teacher(tiny_grounding_dino)
    with pytest.raises(ValidationError, match="images"):
        teacher.detect(_images(1).astype(np.float32), PARTS)
    with pytest.raises(ValidationError, match="images"):
        teacher.detect(_images(1)[..., :2], PARTS)
    with pytest.raises(ValidationError, match="part_names"):
        teacher.detect(_images(1), [])


# ---- (c) a model that cannot be had -------------------------------------------------------------


@pytest.mark.parametrize("model", ["/nonexistent/partdistill/model", "partdistill-test/no-such-model"])
def test_missing_model_is_a_clear_error(model, offline, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    with pytest.raises(TeacherUnavailableError) as e:
        make_teacher("grounding_dino", model=model, device="cpu")
    msg = str(e.value)
    assert model in msg and "hub id" in msg and "local folder" in msg and "2D detections" in msg
    assert "\n" not in msg and "--" not in msg  # one line; each front end says where 'options.teacher_model' is set
    assert e.value.field == "options.teacher_model"


def test_folder_without_model_is_a_clear_error(offline, tmp_path) -> None:
    with pytest.raises(TeacherUnavailableError, match="2D detections"):
        make_teacher("grounding_dino", model=str(tmp_path), device="cpu")


def test_registry() -> None:
    assert "grounding_dino" in teacher_names()
    with pytest.raises(ValueError, match="grounding_dino"):
        make_teacher("no_such_teacher")


# ---- (d) text: prompts, caption, token -> part map -----------------------------------------------


def test_prompts_and_caption() -> None:
    assert make_prompts(["Seat", " leg  rest"]) == ["Seat", "leg rest"]
    assert make_prompts(["seat"], "the {part} of a {object}", "chair") == ["the seat of a chair"]
    with pytest.raises(ValidationError, match="object"):
        make_prompts(["seat"], "the {part} of a {object}")
    with pytest.raises(ValidationError, match="part"):
        make_prompts(["seat"], "a {thing}")
    assert clean_phrase("Back Rest.") == "back rest"
    caption, spans = build_caption(["Seat", "back rest", "leg"])
    assert caption == "seat. back rest. leg."
    assert [caption[s:e] for s, e in spans] == ["seat", "back rest", "leg"]


def test_token_part_map_hand_made() -> None:
    # "seat. back rest. leg." as a BERT tokenizer splits it, "rest" in two word pieces.
    caption, spans = build_caption(["seat", "back rest", "leg"])
    #          [CLS]   seat    .        back     re        ##st      .         leg       .         [SEP]
    offsets = [(0, 0), (0, 4), (4, 5), (6, 10), (11, 13), (13, 15), (15, 16), (17, 20), (20, 21), (0, 0)]
    assert [caption[s:e] for s, e in offsets[1:-1]] == ["seat", ".", "back", "re", "st", ".", "leg", "."]
    expect = [-1, 0, -1, 1, 1, 1, -1, 2, -1, -1]
    assert token_parts_from_offsets(offsets, spans).tolist() == expect
    # The same from ids alone: a phrase is found after the previous one, so a repeated id
    # ("back" = 7 inside phrase 0 here) cannot steal phrase 1's tokens.
    ids = [101, 7, 1012, 7, 8, 9, 1012, 5, 1012, 102]
    phrase_ids = [[7], [7, 8, 9], [5]]
    assert token_parts_from_ids(ids, phrase_ids).tolist() == expect
    # A phrase cut off by truncation keeps no tokens.
    assert token_parts_from_ids(ids[:6], phrase_ids).tolist() == [-1, 0, -1, 1, 1, 1]


def test_token_part_map_with_real_tokenizer(tiny_grounding_dino) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_grounding_dino)
    caption, spans = build_caption(["seat", "back", "arm rest"])
    enc = tok(caption, return_offsets_mapping=True)
    by_offsets = token_parts_from_offsets(enc["offset_mapping"], spans)
    phrase_ids = [tok(p, add_special_tokens=False)["input_ids"] for p in ["seat", "back", "arm rest"]]
    assert by_offsets.tolist() == token_parts_from_ids(enc["input_ids"], phrase_ids).tolist()
    assert sorted(set(by_offsets.tolist())) == [-1, 0, 1, 2]


def test_part_scores_is_max_over_phrase_tokens() -> None:
    import torch
    from partdistill.backend.teachers.grounding_dino import part_scores

    probs = torch.tensor([[[0.1, 0.9, 0.2, 0.3, 0.4], [0.0, 0.1, 0.5, 0.7, 0.2]]])  # (1, 2, 5)
    token_part = torch.tensor([-1, 0, 1, 1, -1])
    out = part_scores(probs, token_part, 3)
    assert out.shape == (1, 2, 3)
    np.testing.assert_allclose(out[0].numpy(), [[0.9, 0.3, 0.0], [0.1, 0.7, 0.0]])


def test_chunk_phrases() -> None:
    assert chunk_phrases([1, 1, 1], 10) == [[0, 1, 2]]
    assert chunk_phrases([3, 3, 3], 8) == [[0, 1], [2]]
    assert chunk_phrases([20, 1], 8) == [[0], [1]]
