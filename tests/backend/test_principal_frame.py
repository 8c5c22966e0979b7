"""Category students along each shape's principal axes: the axes of a hand-made shape, the same
student inputs for a shape however it lies in its file, a category student fitted that way
labelling a turned shape as it labels the shape itself, and students of both frames taking turns,
each labelling along its own."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from partdistill.backend import collection as collection_module
from partdistill.backend.checkpoint import load_checkpoint, save_checkpoint
from partdistill.backend.collection import segment_collection
from partdistill.backend.pipeline.label import label_faces, points_to_faces
from partdistill.backend.pipeline.shape import along, in_frame, prepare_points, prepare_shape, principal_frame
from partdistill.backend.pre import predict, train, trained_frame
from partdistill.backend.students.mixture import StudentMixture
from partdistill.bench.simulated import simulate_detections
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import CollectionOptions, SegmentOptions, member_frames
from partdistill.shared.request import Member
from synthetic import assemble, capture_of, table

# a rotation that moves every axis: z -> x -> y -> z, then 30 degrees about the new z
_CYCLE = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], np.float64)
_C, _S = np.cos(np.pi / 6), np.sin(np.pi / 6)
TURN = _CYCLE @ np.array([[_C, -_S, 0], [_S, _C, 0], [0, 0, 1]])


def _turned(mesh, rotation=TURN):
    return replace(mesh, vertices=(mesh.vertices.astype(np.float64) @ rotation.T).astype(np.float32))


def test_the_axes_go_widest_spread_first_and_point_away_from_the_heavier_end():
    # a post 4 long along y with a block at its -y end: y is the widest spread; the block holds the
    # surface's mass near -y and the post's thin end is its long tail, so the third moment along y is
    # positive and the first axis points to +y
    mesh, _ = assemble([(0, ((-0.1, -2, -0.1), (0.1, 2, 0.1))), (1, ((-0.6, -2.0, -0.4), (0.6, -1.4, 0.4)))])
    axes = principal_frame(mesh)
    np.testing.assert_allclose(axes.T @ axes, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(axes[:, 0], [0, 1, 0], atol=0.02)  # face centroids, not the exact surface
    assert abs(axes[0, 1]) > 0.99  # then x (the block is wider along x than along z)


def test_a_shape_turned_in_its_file_gives_the_student_the_same_points_along_its_axes():
    mesh, _, _ = table()
    dev = torch.device("cpu")
    as_is = in_frame(prepare_points(mesh, 512, 3, dev, 8), principal_frame(mesh))
    turned = _turned(mesh)
    seen = in_frame(prepare_points(turned, 512, 3, dev, 8), principal_frame(turned))
    assert not np.allclose(turned.vertices, mesh.vertices, atol=0.1)
    torch.testing.assert_close(seen.xyz, as_is.xyz, atol=1e-4, rtol=0)
    torch.testing.assert_close(seen.normals, as_is.normals, atol=1e-4, rtol=0)
    assert torch.equal(seen.nbr, as_is.nbr)


def test_a_category_student_fitted_along_principal_axes_labels_a_turned_shape_as_the_shape_itself():
    mesh, gt, names = table()
    members = []
    for k in range(3):
        cap = capture_of(mesh, gt, names, n_views=4, size=48)
        members.append(Member(cap, simulate_detections(cap, seed=k)))
    options = SegmentOptions(n_points=1024, epochs=20, seed=0)
    out = segment_collection(members, names, options, CollectionOptions(students=1, frame="principal"))
    assert trained_frame(out.checkpoint) == "principal"
    here, turned = predict(mesh, out.checkpoint, seed=5), predict(_turned(mesh), out.checkpoint, seed=5)
    assert np.array_equal(turned.face_labels, here.face_labels)
    assert np.array_equal(out.results[0].face_labels, out.student_labels[0])


def test_both_frames_give_the_students_the_files_frame_and_the_principal_axes_in_turn():
    assert member_frames("both", 5) == ("given", "principal", "given", "principal", "given")
    assert member_frames("principal", 2) == ("principal", "principal")
    assert member_frames("given", 1) == ("given",)
    with pytest.raises(ValidationError, match="^collection.frame: both is for mode pre, not pre-tta$"):
        CollectionOptions(mode="pre-tta", frame="both").validate()


def test_a_shape_along_its_principal_axes_is_a_copy_and_the_shape_itself_is_left_as_it_was():
    mesh, _, _ = table()
    shape = prepare_points(_turned(mesh), 512, 3, torch.device("cpu"), 8)
    xyz = shape.xyz.clone()
    assert along(shape, "given") is shape
    seen = along(shape, "principal")
    expected = in_frame(prepare_points(_turned(mesh), 512, 3, torch.device("cpu"), 8), principal_frame(_turned(mesh)))
    torch.testing.assert_close(seen.xyz, expected.xyz)
    assert torch.equal(shape.xyz, xyz) and seen.nbr is shape.nbr and seen.points is shape.points
    with pytest.raises(ValueError, match="one frame"):
        along(shape, "both")


class _Echo(torch.nn.Module):
    """A 'student' whose logits are its first two coordinates: what it saw shows in what it says."""

    k = 8
    embed_dim = 8

    def forward(self, xyz, normals, emb, nbr=None):
        return xyz[..., :2] * 4


def test_each_member_of_a_mixture_labels_the_shape_along_its_own_frame():
    mesh, _, _ = table()
    shape = prepare_points(_turned(mesh), 512, 3, torch.device("cpu"), 8)
    mix = StudentMixture([_Echo(), _Echo()])
    names = ("a", "b")
    both = label_faces(mix, shape, None, names, {}, {}, frames=("given", "principal"))
    # by hand: the mean of the two members' probabilities, one on each view of the same points
    views = [along(shape, "given"), along(shape, "principal")]
    probs = sum(torch.softmax(v.xyz[0, :, :2] * 4, dim=-1) for v in views).numpy() / 2
    expected = points_to_faces(shape.mesh, shape.points, probs).argmax(axis=1)
    np.testing.assert_array_equal(both.face_labels, expected)
    given = label_faces(mix, shape, None, names, {}, {}, frames=("given", "given"))
    assert not np.array_equal(both.face_labels, given.face_labels)


def test_in_both_frames_each_student_is_fitted_along_its_own_on_half_the_points_and_predict_agrees(
    tmp_path, monkeypatch
):
    mesh, gt, names = table()
    members = []
    for k in range(3):
        cap = capture_of(_turned(mesh) if k else mesh, gt, names, n_views=4, size=48)
        members.append(Member(cap, simulate_detections(cap, seed=k)))
    seen = []  # what each category fit was shown: the first shape's coordinates

    def spy(student, prepared, *args, **kwargs):
        seen.append(prepared[0].xyz.clone())
        return train(student, prepared, *args, **kwargs)

    monkeypatch.setattr(collection_module, "train", spy)
    options = SegmentOptions(n_points=1024, epochs=20, seed=0)
    out = segment_collection(members, names, options, CollectionOptions(students=2, frame="both"))
    assert trained_frame(out.checkpoint) == "both" and out.checkpoint.n_points == 512  # half the shapes' points
    first = prepare_shape(members[0].capture, members[0].detections, 512, 0, torch.device("cpu"), 16)
    torch.testing.assert_close(seen[0], first.xyz)
    torch.testing.assert_close(seen[1], along(first, "principal").xyz)
    save_checkpoint(tmp_path / "model", out.checkpoint)
    again = load_checkpoint(tmp_path / "model")
    for i, m in enumerate(members):  # the collection labels shape i on points of seed + n + i
        labelled = predict(m.capture, again, seed=options.seed + len(members) + i, device="cpu")
        assert len(np.unique(labelled.face_labels)) > 1
        np.testing.assert_array_equal(labelled.face_labels, out.student_labels[i])
