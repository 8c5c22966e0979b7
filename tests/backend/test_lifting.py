"""Lifting 2D detections to knowledge units over surface points, on small hand-checked scenes."""

from __future__ import annotations

import numpy as np
from partdistill.backend.pipeline.detect import detection_region
from partdistill.backend.pipeline.lift import lift
from partdistill.backend.pipeline.sample import sample_surface
from partdistill.backend.pipeline.visibility import compute_visibility
from partdistill.shared.capture import Capture
from partdistill.shared.detections import Detection, Detections
from synthetic import assemble, look_at, raycast


def test_box_region_counts_pixel_centres_and_only_foreground():
    fid = np.full((1, 4, 5), -1, np.int32)
    fid[0, 1:4, 1:4] = 0
    cap = _bare_capture(fid)
    region = detection_region(cap, 0, np.array([0.6, 0.4, 3.4, 2.6]), None)
    # columns whose centre lies in [0.6, 3.4): 1, 2 (centres 1.5, 2.5; 3.5 is outside); rows in
    # [0.4, 2.6): 0, 1, 2 -> of those only rows 1-2 are foreground
    expected = np.zeros((4, 5), bool)
    expected[1:3, 1:3] = True
    np.testing.assert_array_equal(region, expected)


def test_whole_image_box_is_the_foreground_and_mask_intersects():
    fid = np.full((1, 3, 3), -1, np.int32)
    fid[0, 0, :] = 0
    cap = _bare_capture(fid)
    np.testing.assert_array_equal(detection_region(cap, 0, np.array([0, 0, 3, 3]), None), fid[0] >= 0)
    mask = np.zeros((3, 3), bool)
    mask[:, 0] = True
    np.testing.assert_array_equal(detection_region(cap, 0, None, mask), (fid[0] >= 0) & mask)


def _plane_capture(size=64):
    """A 2x2 square (2 triangles) at z=0 facing a camera above it; the square fills the middle."""
    mesh, gt = assemble([(0, ((-1, -1, -0.01), (1, 1, 0.0)))])
    f = size * 0.9
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1.0]])
    w2c = look_at((0, 0.0001, 3.0), target=(0, 0, 0), up=(0, 1, 0))
    fid = raycast(mesh, K, w2c, size, size)[None]
    rgb = np.zeros((1, size, size, 3), np.uint8)
    return Capture(mesh, rgb, fid, K[None], w2c[None], part_names=("a",), gt_face_labels=gt).validate()


def test_a_big_face_partly_inside_a_box_is_only_partly_covered():
    cap = _plane_capture()
    pts = sample_surface(cap.mesh, 4000, seed=1)
    h, w = cap.image_size
    det = Detections(("a",), [[Detection(0, 0.8, np.array([0, 0, w / 2, h], np.float32))]])
    units = lift(cap, det, pts)
    covered = units.idx[units.ptr[0] : units.ptr[1]]
    top = pts.xyz[:, 2] > -0.005
    # project: the camera looks down -z with up = +y, so image left (u < w/2) is world x < 0 or > 0;
    # whichever it is, the covered points must be one half of the top face, not all of it
    frac = len(covered) / top.sum()
    assert 0.4 < frac < 0.6
    xs = pts.xyz[covered, 0]
    assert (np.sign(xs) == np.sign(np.median(xs))).mean() > 0.97
    assert units.confidence[0] == np.float32(0.8) and units.weight[0] == units.confidence[0]


def test_occluded_points_are_not_visible():
    # a small box in front of a big one (camera on +x looks towards -x)
    mesh, _ = assemble([(0, ((-1, -1, -1), (-0.8, 1, 1))), (1, ((0.5, -0.2, -0.2), (0.7, 0.2, 0.2)))])
    size = 64
    K = np.array([[60.0, 0, 32], [0, 60.0, 32], [0, 0, 1]])
    w2c = look_at((4, 0, 0), target=(0, 0, 0))
    fid = raycast(mesh, K, w2c, size, size)[None]
    cap = Capture(mesh, np.zeros((1, size, size, 3), np.uint8), fid, K[None], w2c[None]).validate()
    pts = sample_surface(mesh, 6000, seed=0)
    vis = compute_visibility(cap, pts)
    seen = pts.xyz[vis.points[0]]
    # the big box's front face (x = -0.8) behind the small box's shadow |y|,|z| < 0.15 is hidden
    behind = (np.abs(pts.xyz[:, 0] + 0.8) < 1e-4) & (np.abs(pts.xyz[:, 1]) < 0.12) & (np.abs(pts.xyz[:, 2]) < 0.12)
    assert behind.sum() > 5
    assert not np.isin(np.nonzero(behind)[0], vis.points[0]).any()
    # and the parts facing the camera elsewhere are seen (away from the silhouette, where a point's
    # pixel centre may fall just outside the face)
    inner = (np.abs(pts.xyz[:, 1]) > 0.5) & (np.abs(pts.xyz[:, 1]) < 0.9) & (np.abs(pts.xyz[:, 2]) < 0.9)
    front = (np.abs(pts.xyz[:, 0] + 0.8) < 1e-4) & inner
    assert np.isin(np.nonzero(front)[0], vis.points[0]).mean() > 0.95
    assert (seen[:, 0] > -0.81).all()  # nothing from the far side of the big box


def _bare_capture(fid):
    n, h, w = fid.shape
    mesh, _ = assemble([(0, ((0, 0, 0), (1, 1, 1)))])
    return Capture(
        mesh,
        np.zeros((n, h, w, 3), np.uint8),
        fid,
        np.tile(np.eye(3), (n, 1, 1)),
        np.tile(np.eye(4), (n, 1, 1)),
    )


def test_a_box_claims_the_foreground_pixels_whose_centres_it_contains():
    fid = np.full((1, 4, 6), -1, np.int32)
    fid[0, :, 0:2] = 0
    fid[0, :, 2:4] = 1
    cap = _bare_capture(fid)
    region = detection_region(cap, 0, np.array([1, 0, 3, 2], np.float32), None)
    # columns 1-2, rows 0-1: face 0 gets column 1 (2 px), face 1 column 2 (2 px)
    faces, pixels = np.unique(fid[0][region], return_counts=True)
    np.testing.assert_array_equal(faces, [0, 1])
    np.testing.assert_array_equal(pixels, [2, 2])
