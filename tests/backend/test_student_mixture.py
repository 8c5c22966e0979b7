"""Several students as one: the mixture's probabilities are the weighted mean of its members' (checked
by hand on two students), a collection fits several category students from several seeds, and such a
category student is saved, loaded and labels exactly as before."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from partdistill.backend.checkpoint import load_checkpoint, save_checkpoint
from partdistill.backend.collection import segment_collection
from partdistill.backend.pre import predict
from partdistill.backend.students.edge_point_net import EdgePointNet
from partdistill.backend.students.mixture import StudentMixture
from partdistill.bench.simulated import simulate_detections
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import CollectionOptions, SegmentOptions
from partdistill.shared.request import Member
from synthetic import capture_of, table

FAST = SegmentOptions(epochs=20, n_points=512)


class Fixed(torch.nn.Module):
    """A 'student' whose logits are given: (1, 2, 2)."""

    k = 4
    embed_dim = 8

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor([logits], dtype=torch.float32)

    def forward(self, xyz, normals, emb, nbr=None):
        return self.logits


def test_a_mixtures_probabilities_are_the_weighted_mean_of_its_members():
    a = Fixed([[np.log(3.0), 0.0], [0.0, 0.0]])  # softmax: [0.75, 0.25], [0.5, 0.5]
    b = Fixed([[0.0, np.log(3.0)], [0.0, np.log(9.0)]])  # softmax: [0.25, 0.75], [0.1, 0.9]
    mix = StudentMixture([a, b], [3.0, 1.0])  # weights 0.75, 0.25
    p = torch.softmax(mix(None, None, None), dim=-1)[0].numpy()
    expected = [
        [0.75 * 0.75 + 0.25 * 0.25, 0.75 * 0.25 + 0.25 * 0.75],
        [0.75 * 0.5 + 0.25 * 0.1, 0.75 * 0.5 + 0.25 * 0.9],
    ]
    np.testing.assert_allclose(p, expected, atol=1e-6)
    assert mix.k == 4
    with pytest.raises(ValueError, match="weights"):
        StudentMixture([a, b], [1.0])


@pytest.fixture(scope="module")
def collection():
    mesh, gt, names = table()
    caps = [capture_of(mesh, gt, names, n_views=4, size=48) for _ in range(3)]
    members = [Member(c, simulate_detections(c, seed=k)) for k, c in enumerate(caps)]
    return members, names


def test_a_collection_fits_one_category_student_per_seed_and_averages_them(collection, torch_single_thread):
    members, names = collection
    out = segment_collection(members, names, FAST, CollectionOptions(mode="pre", students=2))
    student = out.checkpoint.student
    assert isinstance(student, StudentMixture) and len(student.members) == 2
    a, b = (dict(m.named_parameters())["stem.0.weight"] for m in student.members)
    assert not torch.equal(a, b)  # two seeds, two students
    assert out.checkpoint.meta["training"]["students"] == 2
    assert all(r is not None and (r.face_labels >= 0).all() for r in out.results)
    tuned = segment_collection(
        members,
        names,
        FAST,
        CollectionOptions(mode="pre-tta", finetune_epochs=3, students=2),
        checkpoint=out.checkpoint,
    )
    assert [r.stats["epochs_run"] for r in tuned.results] == [3] * 3  # the first member fine-tuned


def test_a_category_student_of_several_seeds_is_saved_and_loaded_whole(collection, tmp_path, torch_single_thread):
    members, names = collection
    ckpt = segment_collection(members, names, FAST, CollectionOptions(mode="pre", students=2)).checkpoint
    save_checkpoint(tmp_path / "model", ckpt)
    meta = json.loads((tmp_path / "model" / "partdistill.json").read_text())
    assert meta["student"]["members"] == 2
    again = load_checkpoint(tmp_path / "model")
    assert isinstance(again.student, StudentMixture) and len(again.student.members) == 2
    cap = members[0].capture
    before, after = predict(cap, ckpt, device="cpu"), predict(cap, again, device="cpu")
    np.testing.assert_array_equal(before.face_labels, after.face_labels)
    meta["student"]["members"] = 0
    (tmp_path / "model" / "partdistill.json").write_text(json.dumps(meta))
    with pytest.raises(ValidationError, match="'members' must be an integer"):
        load_checkpoint(tmp_path / "model")


def test_one_seed_is_one_plain_student(collection, torch_single_thread):
    members, names = collection
    ckpt = segment_collection(members, names, FAST, CollectionOptions(mode="pre", students=1)).checkpoint
    assert type(ckpt.student) is EdgePointNet
    with pytest.raises(ValidationError, match="collection.students"):
        CollectionOptions(students=0).validate()
