"""A teacher's memory: a model that cannot fit is refused in one line before it loads (never killed),
the server's cache evicts to make room, views per forward follow the memory, and the levers that
change how a teacher computes (views per forward, precision, input size) are checked."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from partdistill.backend import cli
from partdistill.backend.service.models import TeacherCache
from partdistill.backend.teachers import make_teacher, memory
from partdistill.backend.teachers.base import PretrainedModel, check_precision
from partdistill.backend.teachers.memory import TeacherTooLargeError, views_that_fit
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import SegmentOptions


def _only(monkeypatch, free: int) -> None:
    """This machine has ``free`` bytes free (on every device)."""
    monkeypatch.setattr(memory, "free_bytes", lambda device: free)


def test_a_model_larger_than_the_memory_free_is_one_line_naming_it_and_what_it_needs(tiny_grounding_dino, monkeypatch):
    size = memory.weights_bytes(str(tiny_grounding_dino))
    assert size and size == sum(f.stat().st_size for f in tiny_grounding_dino.glob("*.safetensors"))
    _only(monkeypatch, size // 2)
    with pytest.raises(TeacherTooLargeError) as e:
        make_teacher("grounding_dino", str(tiny_grounding_dino), device="cpu")
    msg = str(e.value)
    assert "\n" not in msg and str(tiny_grounding_dino) in msg and "GiB of memory" in msg
    assert e.value.need == int(size * memory.LOAD_FACTOR) and e.value.field == "options.teacher_model"


def test_the_cli_refuses_a_model_too_large_with_exit_2_and_where_to_set_it(tiny_grounding_dino, monkeypatch, tmp_path):
    from partdistill.shared.bundle import save_bundle
    from synthetic import capture_of, table

    mesh, gt, names = table()
    save_bundle(tmp_path / "t.npz", capture_of(mesh, gt, names, n_views=2, size=32))
    _only(monkeypatch, 1000)
    err = io.StringIO()
    argv = ["segment", str(tmp_path / "t.npz"), "--parts", "top,leg", "--out", str(tmp_path / "o")]
    argv += ["--teacher", "grounding_dino", "--teacher-model", str(tiny_grounding_dino), "--device", "cpu"]
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(argv) == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and "needs about" in lines[0] and "--teacher-model" in lines[0], lines
    assert not (tmp_path / "o" / "labels.npz").exists()


def test_the_servers_cache_evicts_teachers_to_make_room_rather_than_crash(tiny_grounding_dino, tiny_owlv2, monkeypatch):
    loaded = []
    cache = TeacherCache(
        size=4,
        loader=lambda o: loaded.append(o.teacher_model) or make_teacher(o.teacher, o.teacher_model, device="cpu"),
    )
    a = SegmentOptions(teacher="grounding_dino", teacher_model=str(tiny_grounding_dino), device="cpu")
    b = SegmentOptions(teacher="owlv2", teacher_model=str(tiny_owlv2), device="cpu")
    need_b = memory.weights_bytes(str(tiny_owlv2)) * memory.LOAD_FACTOR
    cache.get(a, lambda: False, private=False)
    # room for one of them: each teacher loaded takes its share, so loading b evicts a
    monkeypatch.setattr(memory, "free_bytes", lambda device: int(need_b * 1.1) - len(cache) * int(need_b))
    cache.get(b, lambda: False, private=False)
    assert len(cache) == 1 and loaded == [a.teacher_model, b.teacher_model]
    _only(monkeypatch, 10 * 2**30)  # plenty: both stay
    cache.get(a, lambda: False, private=False)
    assert len(cache) == 2


def test_views_per_forward_follow_the_memory_a_view_took():
    assert views_that_fit(per_view=100, free=1000) == 6  # 60 % of the free memory
    assert views_that_fit(per_view=10_000, free=1000) == 1
    assert views_that_fit(per_view=1, free=10**9) == memory.MAX_VIEWS_PER_FORWARD


def _bare(batch_size: int, device: str = "cpu") -> PretrainedModel:
    m = object.__new__(PretrainedModel)
    m.batch_size, m.device, m._fitted, m._cap, m.memory_bytes = batch_size, device, 0, 0, 10
    m.model_name = "m"
    return m


def test_a_pass_out_of_memory_is_halved_and_a_single_view_out_of_memory_is_refused(monkeypatch):
    m, passes = _bare(batch_size=8), []

    def forward(s, e):
        if e - s > 2:
            raise torch.OutOfMemoryError("out of memory")
        passes.append((s, e))

    m.forward_views(8, forward)  # 8 views: out of memory, then 4: out of memory, then 2 at a time
    assert passes == [(0, 2), (2, 4), (4, 6), (6, 8)]

    def never(s, e):
        raise torch.OutOfMemoryError("out of memory")

    _only(monkeypatch, 5)
    with pytest.raises(TeacherTooLargeError, match="needs about"):
        _bare(batch_size=0).forward_views(3, never)
    assert _bare(batch_size=0).views_per_forward() == 1  # a CPU takes one view at a time


def test_the_teacher_levers_are_checked_and_views_per_forward_give_the_same_detections(tiny_grounding_dino):
    images = np.random.default_rng(0).integers(0, 255, (3, 40, 48, 3), dtype=np.uint8)
    one = make_teacher("grounding_dino", str(tiny_grounding_dino), device="cpu", box_threshold=0.0)
    three = one.with_settings(batch_size=3)
    a, b = one.detect(images, ["seat", "leg"]), three.detect(images, ["seat", "leg"])
    assert [len(v) for v in a.views] == [len(v) for v in b.views]
    for va, vb in zip(a.views, b.views, strict=True):
        for x, y in zip(va, vb, strict=True):
            assert x.part == y.part and np.allclose(x.box, y.box, atol=1e-3)
    with pytest.raises(ValidationError, match="int8 runs on the CPU only"):
        check_precision("int8", "cuda")
    with pytest.raises(ValidationError, match="fp16 runs on a GPU only"):
        make_teacher("grounding_dino", str(tiny_grounding_dino), device="cpu", precision="fp16")
    with pytest.raises(ValidationError, match="only 'processor' applies"):
        make_teacher("owlv2", "/nowhere", device="cpu", keep_render_size=True)
    int8 = make_teacher("grounding_dino", str(tiny_grounding_dino), device="cpu", precision="int8", box_threshold=0.0)
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in int8.model.modules())
    assert len(int8.detect(images, ["seat", "leg"]).views) == 3
    native = make_teacher("grounding_dino", str(tiny_grounding_dino), device="cpu", keep_render_size=True)
    big = np.random.default_rng(1).integers(0, 255, (2, 96, 128, 3), dtype=np.uint8)
    assert len(native.detect(big, ["seat", "leg"]).views) == 2
