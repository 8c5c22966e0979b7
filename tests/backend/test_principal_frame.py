"""Category students along each shape's principal axes: the axes of a hand-made shape, the same
student inputs for a shape however it lies in its file, and a category student fitted that way
labelling a turned shape as it labels the shape itself."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from partdistill.backend.collection import segment_collection
from partdistill.backend.pipeline.shape import in_frame, prepare_points, principal_frame
from partdistill.backend.pre import predict, trained_frame
from partdistill.bench.simulated import simulate_detections
from partdistill.shared.options import CollectionOptions, SegmentOptions
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
