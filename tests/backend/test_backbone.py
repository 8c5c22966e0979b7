"""The pretrained backbone: the masked-patch pretext learns, the saved encoder loads into a student
frozen or trainable, and a folder that is not a backbone is refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from partdistill.backend.backbone import ENCODER, load_backbone, pretrain, save_backbone
from partdistill.backend.students.edge_point_net import EdgePointNet
from partdistill.backend.tta import segment
from partdistill.bench.simulated import simulate_detections
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import SegmentOptions
from synthetic import capture_of, table


def sphere_and_box(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(1500, 3))
    s = v / np.linalg.norm(v, axis=1, keepdims=True)
    b = rng.uniform(-1, 1, (1500, 3))
    axis = rng.integers(0, 3, 1500)
    b[np.arange(1500), axis] = np.sign(b[np.arange(1500), axis])
    nb = np.zeros_like(b)
    nb[np.arange(1500), axis] = b[np.arange(1500), axis]
    return [(s.astype(np.float32), s.astype(np.float32)), (b.astype(np.float32), nb.astype(np.float32))]


def test_the_masked_patch_pretext_learns(torch_single_thread):
    _, losses = pretrain(sphere_and_box(0), steps=120, n_points=1500, seed=0)
    assert np.mean(losses[-20:]) < 0.7 * np.mean(losses[:20])


def test_a_saved_backbone_loads_frozen_or_trainable_and_a_bad_folder_is_refused(tmp_path, torch_single_thread):
    net, losses = pretrain(sphere_and_box(1), steps=5, n_points=1500, seed=0)
    folder = save_backbone(tmp_path / "bb", net, {"corpus": "two test shapes", "steps": 5, "loss": losses})
    meta = json.loads((folder / "backbone.json").read_text())
    assert meta["modules"] == list(ENCODER) and "two test shapes" in (folder / "README.md").read_text()
    student = EdgePointNet(text_dim=32)
    load_backbone(student, folder, frozen=True)
    assert torch.equal(student.edge1.centre.weight, net.edge1.centre.weight)
    assert not any(p.requires_grad for n in ENCODER for p in getattr(student, n).parameters())
    assert all(p.requires_grad for p in student.fuse.parameters())
    load_backbone(student, folder, frozen=False)
    assert all(p.requires_grad for p in student.edge2.parameters())
    with pytest.raises(ValidationError, match="not a partdistill backbone"):
        load_backbone(student, tmp_path, frozen=True)
    with pytest.raises(ValidationError, match="made for"):
        load_backbone(EdgePointNet(width=32), folder, frozen=True)


def test_segmenting_with_a_frozen_backbone_trains_only_the_head(tmp_path, torch_single_thread):
    net, losses = pretrain(sphere_and_box(2), steps=5, n_points=1500, seed=0)
    folder = save_backbone(tmp_path / "bb", net, {"loss": losses})
    mesh, gt, names = table()
    cap = capture_of(mesh, gt, names, n_views=4, size=64)
    det = simulate_detections(cap)
    opts = SegmentOptions(epochs=15, n_points=512, backbone=str(folder))
    res = segment(cap, names, options=opts, detections=det)
    assert res.face_labels.shape == (cap.mesh.n_faces,) and res.stats["epochs_run"] == 15
    with pytest.raises(ValidationError, match="backbone"):
        segment(cap, names, options=SegmentOptions(epochs=2, backbone=str(tmp_path / "nope")), detections=det)
