"""The multi-view voting baseline on a hand-made face-id map."""

from __future__ import annotations

import numpy as np
from partdistill.backend.pipeline.vote import face_votes, superpoint_vote, vote, vote_fill
from partdistill.shared.capture import Capture, Mesh
from partdistill.shared.detections import Detection, Detections
from synthetic import assemble


def test_vote_takes_the_fraction_of_visible_pixels_and_smaller_parts_win_ties():
    mesh, _ = assemble([(0, ((0, 0, 0), (1, 1, 1)))])  # 12 faces; only ids 0-2 appear in the map
    fid = np.full((1, 4, 6), -1, np.int32)
    fid[0, :, 0:2] = 0  # face 0: 8 px in columns 0-1
    fid[0, :, 2:4] = 1  # face 1: 8 px in columns 2-3
    fid[0, 0, 4] = 2  # face 2: 1 px
    big = Detection(0, 0.9, np.array([0, 0, 6, 4], np.float32))  # part 0 claims everything
    small = Detection(1, 0.9, np.array([0, 0, 3, 4], np.float32))  # part 1 claims columns 0-2
    cap = Capture(mesh, np.zeros((1, 4, 6, 3), np.uint8), fid, np.eye(3)[None], np.eye(4)[None]).validate()
    labels, scores = vote(cap, Detections(("body", "handle"), [[big, small]]))
    np.testing.assert_allclose(scores[0], [1.0, 1.0])
    np.testing.assert_allclose(scores[1], [1.0, 0.5])
    # face 0: both parts qualify, the smaller (handle: 12 px < body: 17 px) wins; face 1: handle has
    # exactly the threshold 0.5 and is smaller
    assert labels[0] == 1 and labels[1] == 1 and labels[2] == 0
    assert (labels[3:] == -1).all()  # never seen


def _strip_capture():
    """Four unit quads in a row (8 triangles, faces 2q and 2q+1 make quad q), seen by one 4 x 8 view in
    which quad q fills columns 2q..2q+1 (face 2q the top two rows, face 2q+1 the bottom two)."""
    verts = np.array([[x, y, 0] for x in range(5) for y in (0, 1)], np.float32)
    faces = []
    for q in range(4):
        a, b, c, d = 2 * q, 2 * q + 2, 2 * q + 3, 2 * q + 1
        faces += [[a, b, c], [a, c, d]]
    mesh = Mesh(verts, np.array(faces, np.int32))
    fid = np.zeros((1, 4, 8), np.int32)
    for q in range(4):
        fid[0, :2, 2 * q : 2 * q + 2] = 2 * q
        fid[0, 2:, 2 * q : 2 * q + 2] = 2 * q + 1
    return Capture(mesh, np.zeros((1, 4, 8, 3), np.uint8), fid, np.eye(3)[None], np.eye(4)[None]).validate()


def test_face_votes_weigh_each_detections_pixels_by_its_score():
    cap = _strip_capture()
    det = Detections(
        ("a", "b"),
        [
            [
                Detection(0, 0.5, np.array([0, 0, 4, 4], np.float32)),
                Detection(1, 0.25, np.array([2, 0, 6, 2], np.float32)),
            ]
        ],
    )
    v = face_votes(cap, det)
    # part a: columns 0-3, all rows: faces 0-3 get 4 px each x 0.5; part b: columns 2-5, rows 0-1:
    # faces 2 and 4 get 4 px each x 0.25
    want = np.zeros((8, 2))
    want[0:4, 0] = 2.0
    want[[2, 4], 1] = 1.0
    np.testing.assert_allclose(v, want)
    # weights in view order replace the scores (backward distillation's unit weights)
    np.testing.assert_allclose(face_votes(cap, det, weights=np.array([0.0, 1.0]))[:, 1], want[:, 1] * 4)


def test_vote_fill_takes_the_argmax_and_fills_unvoted_faces_from_the_nearest_along_the_surface():
    cap = _strip_capture()
    det = Detections(
        ("a", "b"),
        [
            [
                Detection(0, 0.9, np.array([0, 0, 2, 4], np.float32)),
                Detection(1, 0.9, np.array([6, 0, 8, 4], np.float32)),
            ]
        ],
    )
    labels, scores = vote_fill(cap, det)
    # quad 0 voted a, quad 3 voted b; quad 1 is nearer quad 0 along the strip, quad 2 nearer quad 3
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    np.testing.assert_allclose(scores.sum(axis=1), 1.0)


def test_superpoint_vote_gives_every_face_of_a_patch_its_summed_vote():
    cap = _strip_capture()
    # a weak vote for b on face 1 only, a strong one for a on faces 0 and 2, 3: per face, face 1 says b
    det = Detections(
        ("a", "b"),
        [
            [
                Detection(0, 0.9, np.array([0, 0, 4, 2], np.float32)),
                Detection(1, 0.2, np.array([0, 2, 2, 4], np.float32)),
            ]
        ],
    )
    assert vote_fill(cap, det)[0][1] == 1
    patches = np.array([0, 0, 1, 1, 2, 2, 3, 3])  # the quads
    labels, _ = superpoint_vote(cap, det, patches=patches)
    assert labels[:4].tolist() == [0, 0, 0, 0]
