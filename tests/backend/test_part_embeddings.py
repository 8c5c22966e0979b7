"""Part-name embeddings: hashed vectors by default, a CLIP text encoder loaded offline from a folder."""

from __future__ import annotations

import pytest
import torch
from partdistill.backend.students.part_embeddings import HASHED_DIM, PartEmbedder, hashed_embeddings
from partdistill.backend.teachers.loading import TeacherUnavailableError
from partdistill.backend.tta import segment
from partdistill.bench.random_teachers import build_tiny_clip_text
from partdistill.bench.simulated import simulate_detections
from partdistill.shared.options import SegmentOptions
from synthetic import capture_of, table


def test_hashed_embeddings_are_stable_per_name_and_unit_length():
    a = hashed_embeddings(["leg", "Seat "])
    b = hashed_embeddings(["seat", "leg"])
    assert a.shape == (2, HASHED_DIM) and torch.allclose(a.norm(dim=-1), torch.ones(2))
    assert torch.equal(a[0], b[1]) and torch.equal(a[1], b[0])  # case and spaces don't matter


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return build_tiny_clip_text(tmp_path_factory.mktemp("clip_text"), words=["top", "leg", "a"])


def test_clip_text_encoder_loads_offline_and_embeds_each_name(tiny_clip, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    emb = PartEmbedder(str(tiny_clip))
    e = emb(["top", "leg"])
    assert emb.dim == 24 and e.shape == (2, 24)
    assert torch.allclose(e.norm(dim=-1), torch.ones(2), atol=1e-5) and not torch.allclose(e[0], e[1])
    assert torch.allclose(emb(["leg"])[0], e[1], atol=1e-5)


def test_engine_conditions_the_student_on_clip_embeddings(tiny_clip):
    mesh, gt, names = table()
    cap = capture_of(mesh, gt, names, n_views=4, size=64)
    res = segment(
        cap,
        names,
        options=SegmentOptions(n_points=1024, epochs=20, text_encoder=str(tiny_clip)),
        detections=simulate_detections(cap),
    )
    assert res.face_labels.shape == (mesh.n_faces,)


def test_missing_text_encoder_is_one_line_naming_the_folder_and_the_field(tmp_path):
    with pytest.raises(TeacherUnavailableError, match="clip text encoder .* no such folder: ") as e:
        PartEmbedder(str(tmp_path / "nothing-here"))
    assert e.value.field == "options.text_encoder" and "\n" not in str(e.value)
    assert "openai/clip-vit-base-patch32" in str(e.value) and "'hashed'" in str(e.value)


def test_the_default_text_encoder_is_clip_when_its_weights_are_here_else_hashed_names(tiny_clip, monkeypatch):
    from partdistill.backend.students import part_embeddings
    from partdistill.backend.students.build import new_student

    monkeypatch.setattr(part_embeddings, "DEFAULT_CLIP", str(tiny_clip))  # "its weights are on this machine"
    here = new_student(("top", "leg"), "", "cpu", 0)
    assert here.text_encoder == str(tiny_clip) and here.embeddings.shape == (2, 24)
    assert new_student(("top", "leg"), "hashed", "cpu", 0).text_encoder == ""
    monkeypatch.setattr(part_embeddings, "DEFAULT_CLIP", str(tiny_clip / "absent"))  # offline, nothing cached
    gone = new_student(("top", "leg"), "", "cpu", 0)
    assert gone.text_encoder == "" and gone.embeddings.shape == (2, part_embeddings.HASHED_DIM)
