"""The multi-view voting baseline on a hand-made face-id map."""

from __future__ import annotations

import numpy as np
from partdistill.backend.pipeline.vote import vote
from partdistill.shared.capture import Capture
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
