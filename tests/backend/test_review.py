"""Review of a result: per-part coverage and the warnings of a result that is probably wrong."""

from __future__ import annotations

import numpy as np
from partdistill.backend.pipeline.review import coverage, review, stored_detected_views, swap_suspects
from partdistill.shared.capture import Mesh
from partdistill.shared.detections import Detection, Detections
from partdistill.shared.result import SegmentationResult

BOX = np.array([0, 0, 4, 4], np.float32)


def _strip(n_faces: int) -> Mesh:
    """``n_faces`` unit right triangles side by side (each of area 0.5)."""
    v = np.array([[x, y, 0] for x in range(n_faces + 1) for y in (0, 1)], np.float32)
    f = np.array([[2 * i, 2 * i + 2, 2 * i + 1] for i in range(n_faces)], np.int32)
    return Mesh(v, f)


def _result(labels, names=("a", "b")) -> SegmentationResult:
    labels = np.asarray(labels, np.int32)
    return SegmentationResult(names, labels, np.ones(len(labels), np.float32), labels.copy())


def test_coverage_counts_faces_and_surface_shares_of_each_part_and_the_unlabelled():
    cov = coverage(_strip(4), np.array([0, 0, 1, -1], np.int32), ("a", "b", "c"))
    assert cov == {
        "a": {"faces": 2, "area": 0.5},
        "b": {"faces": 1, "area": 0.25},
        "c": {"faces": 0, "area": 0.0},
        "(unlabelled)": {"faces": 1, "area": 0.25},
    }


def test_a_balanced_result_gets_no_warning_and_carries_its_coverage():
    res = review(_result([0, 0, 1, 1]), _strip(4))
    assert res.warnings == []
    assert res.stats["coverage"]["a"] == {"faces": 2, "area": 0.5}


def test_a_shapes_confidence_is_its_faces_confidence_weighted_by_area():
    strip = _strip(3)
    strip.vertices[-2:, 0] = 4  # the last triangle twice as wide: area 1, the others 0.5
    res = _result([0, 1, 1])
    res.face_confidence = np.array([0.2, 0.6, 0.9], np.float32)
    assert review(res, strip).stats["confidence"] == round((0.5 * 0.2 + 0.5 * 0.6 + 1.0 * 0.9) / 2.0, 4)


def test_one_part_on_nearly_every_face_is_a_warning():
    res = review(_result([1] * 20), _strip(20))
    assert len(res.warnings) == 1 and "'b' covers 100% of the surface" in res.warnings[0]
    # with a single part asked for, one part everywhere is the answer, not a failure
    assert review(_result([0] * 20, ("a",)), _strip(20)).warnings == []


def test_a_detected_part_without_any_face_is_a_warning_even_from_one_view():
    det = Detections(("a", "b"), [[Detection(1, 0.9, BOX)], [Detection(1, 0.8, BOX)], [Detection(0, 0.9, BOX)]])
    res = review(_result([0, 0, 0, -1] * 5), _strip(20), det)
    assert any("'b' was detected in 2 views but no face" in w for w in res.warnings)
    # one view is enough: a big part the teacher names right once and takes for another part elsewhere
    det1 = Detections(("a", "b"), [[Detection(1, 0.9, BOX)], [], [Detection(0, 0.9, BOX)]])
    one = review(_result([0, 0, 0, -1] * 5), _strip(20), det1).warnings
    assert any("'b' was detected in 1 view but no face" in w for w in one)
    # a part never detected and never labelled is not a warning (nothing says it is there)
    det0 = Detections(("a", "b"), [[], [], [Detection(0, 0.9, BOX)]])
    assert not any("'b' was detected" in w for w in review(_result([0, 0, 0, -1] * 5), _strip(20), det0).warnings)


def test_a_collections_member_counts_the_views_of_a_missing_part_and_leaves_the_warning_to_the_collection():
    det = Detections(("a", "b"), [[Detection(1, 0.9, BOX)], [Detection(1, 0.8, BOX)], [Detection(0, 0.9, BOX)]])
    res = review(_result([0, 0, 0, -1] * 5), _strip(20), det, missing_parts=False)
    assert not any("'b' was detected" in w for w in res.warnings)
    assert res.stats["detected_views"] == {"a": 1, "b": 2}
    assert stored_detected_views(res).tolist() == [1, 2]
    assert stored_detected_views(_result([0, 1])).tolist() == [0, 0]  # never reviewed: nothing counted


def test_much_unlabelled_surface_is_a_warning():
    res = review(_result([0, 1, -1, -1]), _strip(4))
    assert res.warnings == ["50% of the surface is left unlabelled (seen in no view or claimed by no part)"]


def test_labelled_faces_keep_the_users_labels_and_full_confidence():
    import numpy as np
    from partdistill.backend.pipeline.label import keep_labelled
    from partdistill.shared.capture import Mesh
    from partdistill.shared.result import SegmentationResult

    mesh = Mesh(np.eye(3, dtype=np.float32), np.array([[0, 1, 2]] * 4, np.int32), np.array([0, 0, 1, 2], np.int32))
    res = SegmentationResult(
        ("a", "b"), np.array([0, 0, 0, 1], np.int32), np.full(4, 0.6, np.float32), np.array([0, 0, 1], np.int32), {}, {}
    )
    out = keep_labelled(res, mesh, np.array([-1, -1, 1, -1], np.int32))
    assert out.face_labels.tolist() == [0, 0, 1, 1] and np.allclose(out.face_confidence, [0.6, 0.6, 1.0, 0.6])
    assert out.polygon_labels.tolist() == [0, 1, 1]


LEFT = np.array([0, 0, 2, 2], np.float32)  # faces 0 and 1 of ``FACE_ID``
RIGHT = np.array([2, 0, 4, 2], np.float32)  # faces 2 and 3
FACE_ID = np.tile(np.array([[0, 1, 2, 3], [0, 1, 2, 3]], np.int32), (3, 1, 1))  # 3 views of 2 x 4 pixels


def _swapped(b_scores, b_views=(0, 1)) -> Detections:
    """'a' named on faces 0-1 in every view at 0.5; 'b' named on the same faces in ``b_views``."""
    views = [[Detection(0, 0.5, LEFT)] for _ in range(3)]
    for v, sc in zip(b_views, b_scores, strict=True):
        views[v].append(Detection(1, sc, LEFT))
    views[2].append(Detection(1, 0.5, RIGHT))  # 'b' on its own faces: not evidence of a swap
    return Detections(("a", "b"), views, (2, 4))


def test_higher_scored_detections_the_result_overrules_are_a_suspected_swap():
    labels = np.array([0, 0, 1, 1], np.int32)
    # on a's faces: 'a' at 0.5, 0.5, 0.5 (followed) and 'b' at 0.9, 0.8 in two views (overruled): 0.85 / 0.5
    ((p, q, ratio, views),) = swap_suspects(labels, _swapped([0.9, 0.8]), FACE_ID)
    assert (p, q, views) == (0, 1, 2) and abs(ratio - 1.7) < 1e-6
    res = review(_result([0, 0, 1, 1]), _strip(4), _swapped([0.9, 0.8]), FACE_ID)
    assert any("'a' and 'b' may be swapped" in w and "1.70x" in w for w in res.warnings)
    # without the face ids there is nothing to check the detections against
    assert not any("swapped" in w for w in review(_result([0, 0, 1, 1]), _strip(4), _swapped([0.9, 0.8])).warnings)


def test_overruled_detections_scored_like_the_followed_ones_or_in_one_view_are_no_suspected_swap():
    labels = np.array([0, 0, 1, 1], np.int32)
    assert swap_suspects(labels, _swapped([0.6, 0.55]), FACE_ID) == []  # 0.575 / 0.5 = 1.15 < 1.25
    assert swap_suspects(labels, _swapped([0.9], b_views=(0,)), FACE_ID) == []  # one view only
