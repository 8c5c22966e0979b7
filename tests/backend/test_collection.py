"""Collection mode: part figures computed by hand on a table, the flags of a shape unlike the rest and
of a part the collection disagrees on, and the engine's modes on a small collection of tables."""

from __future__ import annotations

import numpy as np
import pytest
from partdistill.backend.collection import own_evidence_differs, segment_collection
from partdistill.backend.metrics import shape_miou
from partdistill.backend.pipeline.outliers import FlagRules, PartFigures, flag_collection, part_figures
from partdistill.bench.simulated import simulate_detections
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import CollectionOptions, SegmentOptions
from partdistill.shared.request import Member
from synthetic import capture_of, table

FAST = SegmentOptions(epochs=30, n_points=512)


def test_a_tables_figures_are_its_parts_shares_pieces_and_places():
    mesh, gt, names = table()
    fig = part_figures(mesh, gt, 2)
    top, leg = 2 * (2.0 * 1.2 + 2 * 0.1 + 1.2 * 0.1), 4 * 2 * (0.12 * 0.12 + 2 * 0.12 * 0.9)  # box surface areas
    assert fig.share == pytest.approx([top / (top + leg), leg / (top + leg)], rel=1e-6)
    assert fig.pieces.tolist() == [1, 4]  # one top, four separate legs
    assert ((fig.place >= 0) & (fig.place <= 1)).all()
    # the legs stand 0.85 from the centre along the longest axis (half-extent 1.0, the top's; about, as
    # the frame comes from the triangles' centroids): far out, though the four legs' centroid is central
    assert 0.75 < fig.place[1, 0] < 0.9
    assert PartFigures.from_dict(fig.to_dict(names), names).pieces.tolist() == [1, 4]


def test_a_pair_of_mirrored_pieces_lies_where_one_of_them_lies():
    mesh, gt, _ = table()
    centroids = mesh.vertices[mesh.faces].mean(axis=1)
    one_side = np.where((gt == 1) & (centroids[:, 0] < 0), 0, gt)  # the legs at -x become top
    both, one = part_figures(mesh, gt, 2), part_figures(mesh, one_side, 2)
    assert one.pieces[1] == 2 and both.pieces[1] == 4
    assert one.place[1, 0] == pytest.approx(both.place[1, 0], abs=1e-3)


def _figures(shares: list[float]) -> list[PartFigures]:
    return [PartFigures(np.array([s, 1 - s]), np.array([1, 4]), np.full((2, 3), 0.5)) for s in shares]


def test_a_shape_whose_part_covers_far_more_than_on_the_others_is_flagged_by_name():
    flags = flag_collection(_figures([0.75, 0.72, 0.78, 0.74, 0.15]), np.full(5, np.nan), ("top", "leg"))
    assert [bool(w) for w in flags.shape_warnings] == [False, False, False, False, True]
    assert "'top' covers 15%" in flags.shape_warnings[4][0]
    assert flags.review_order() == [4] and flags.suspicion[4] > 1


def test_a_part_the_collection_disagrees_on_is_a_collection_warning():
    flags = flag_collection(_figures([0.9, 0.1, 0.5, 0.05, 0.8]), np.full(5, np.nan), ("handle", "body"))
    assert any(w.startswith("'handle' covers between 5% and 90%") for w in flags.collection_warnings)


def test_a_shape_far_from_the_category_student_is_flagged_and_too_few_shapes_compare_nothing():
    dis = np.array([0.05, 0.1, 0.6])
    flags = flag_collection(_figures([0.7, 0.7, 0.7]), dis, ("top", "leg"), FlagRules(disagreement=0.3))
    assert [bool(w) for w in flags.shape_warnings] == [False, False, True]
    assert "60% of the surface" in flags.shape_warnings[2][0]
    two = flag_collection(_figures([0.9, 0.1]), np.full(2, np.nan), ("top", "leg"))
    assert not any(two.shape_warnings) and not two.collection_warnings


def _lost(shares: list[float], detected: list[int]) -> list[PartFigures]:
    """Shapes of a 'top' and a 'leg' part whose top covers ``shares``; a top of share 0 has no face."""
    figs = _figures(shares)
    for f, views in zip(figs, detected, strict=True):
        f.detected[0] = views
        if f.share[0] == 0:
            f.pieces[0], f.place[0] = 0, np.nan
    return figs


def test_a_part_lost_on_one_shape_that_the_typical_shape_has_is_that_shapes_warning():
    flags = flag_collection(_lost([0.1, 0.12, 0.0, 0.1], [4, 5, 3, 6]), np.full(4, np.nan), ("top", "leg"))
    assert [bool(w) for w in flags.shape_warnings] == [False, False, True, False]
    assert flags.shape_warnings[2][0].startswith("'top' was detected in 3 views but nothing was labelled with it")
    assert "covers 10% of the collection's typical shape" in flags.shape_warnings[2][0]
    assert flags.review_order() == [2]
    # no views recorded (never detected there, or its own review judged it): nothing to say
    quiet = flag_collection(_lost([0.1, 0.12, 0.0, 0.1], [4, 5, 0, 6]), np.full(4, np.nan), ("top", "leg"))
    assert not any(quiet.shape_warnings)


def test_a_part_the_typical_shape_lacks_too_is_one_collection_warning_instead_of_one_per_shape():
    flags = flag_collection(_lost([0.0, 0.0, 0.0, 0.05], [2, 1, 0, 4]), np.full(4, np.nan), ("top", "leg"))
    assert not any(flags.shape_warnings)
    assert [w for w in flags.collection_warnings if w.startswith("'top' was detected on 2 of 4 shapes")]


def test_too_few_shapes_to_compare_still_word_a_detected_part_without_a_face():
    flags = flag_collection(_lost([0.0, 0.7], [2, 3]), np.full(2, np.nan), ("top", "leg"))
    assert flags.shape_warnings[0] == [
        "'top' was detected in 2 views but nothing was labelled with it (if the shape has this part, the "
        "teacher probably took it for another part)"
    ]
    assert not flags.shape_warnings[1]


def test_the_detected_views_survive_the_figures_round_trip_and_old_figures_count_none():
    names = ("top", "leg")
    fig = _lost([0.0], [3])[0]
    back = PartFigures.from_dict(fig.to_dict(names), names)
    assert back.detected.tolist() == [3, 0] and np.isnan(back.place[0]).all()
    old = {n: {k: v for k, v in d.items() if k != "detected"} for n, d in fig.to_dict(names).items()}
    assert PartFigures.from_dict(old, names).detected.tolist() == [0, 0]


@pytest.fixture(scope="module")
def tables():
    mesh, gt, names = table()
    caps = [capture_of(mesh, gt, names, n_views=4, size=48) for _ in range(3)]
    return [Member(c, simulate_detections(c, seed=k)) for k, c in enumerate(caps)], names


@pytest.mark.parametrize("mode", ["pre-tta", "ensemble", "pre", "tta"])
def test_every_mode_labels_every_table(tables, mode, torch_single_thread):
    members, names = tables
    out = segment_collection(members, names, FAST, CollectionOptions(mode=mode, finetune_epochs=5))
    for m, r in zip(members, out.results, strict=True):
        c = m.capture
        assert shape_miou(r.face_labels, c.gt_face_labels, 2, c.mesh.face_areas()) > 0.5
        assert r.stats["method"] == ("distill" if mode == "tta" else f"collection-{mode}")
    if mode == "tta":
        assert out.checkpoint is None and np.isnan(out.disagreements()).all() and out.differs == [None] * 3
    else:
        assert out.checkpoint.part_names == names and (out.disagreements() >= 0).all()


def test_the_ensembles_own_students_learn_from_scratch_for_the_jobs_epochs(tables, torch_single_thread):
    members, names = tables
    first = segment_collection(members, names, FAST, CollectionOptions(mode="pre"))
    tuned, own = (
        segment_collection(
            members, names, FAST, CollectionOptions(mode=m, finetune_epochs=5), checkpoint=first.checkpoint
        )
        for m in ("pre-tta", "ensemble")
    )
    assert [r.stats["epochs_run"] for r in tuned.results] == [5] * 3
    assert [r.stats["epochs_run"] for r in own.results] == [FAST.epochs] * 3


def test_a_shape_that_cannot_be_labelled_is_reported_and_the_others_go_on(tables, torch_single_thread):
    members, names = tables
    blank = capture_of(*table(), n_views=4, size=48)
    blank.face_id[:] = -1  # views that show nothing of the object
    out = segment_collection([*members[:2], Member(blank, members[0].detections)], names, FAST)
    assert out.results[2] is None and "views" in out.errors[2] and all(r is not None for r in out.results[:2])


def test_a_fitted_category_student_is_reused_and_must_know_the_parts(tables, torch_single_thread):
    members, names = tables
    first = segment_collection(members, names, FAST, CollectionOptions(mode="pre"))
    again = segment_collection(members, names, FAST, CollectionOptions(mode="pre"), checkpoint=first.checkpoint)
    assert all((a.face_labels == b.face_labels).all() for a, b in zip(first.results, again.results, strict=True))
    with pytest.raises(ValidationError, match="knows the parts"):
        segment_collection(members, ("leg", "top"), FAST, checkpoint=first.checkpoint)


def test_own_evidence_differs_where_the_vote_names_another_part_or_the_labels_leave_the_students():
    labels = np.array([0, 0, 1, 1, 2], np.int32)
    students = np.array([0, 1, 1, 1, 2], np.int32)
    vote = np.array([0, -1, 0, 1, 1], np.int32)  # -1: no detection reached the face
    assert own_evidence_differs(labels, students, vote).tolist() == [False, False, True, False, True]
    assert own_evidence_differs(labels, students, None).tolist() == [False, True, False, False, False]


def test_in_mode_pre_faces_whose_own_vote_differs_lose_confidence_and_keep_their_labels(tables, torch_single_thread):
    members, names = tables
    # three students in the files' frame on all 512 points: with them some of the tables' own votes
    # differ from the labels, so the drop has faces to act on
    full = segment_collection(members, names, FAST, CollectionOptions(frame="given", disagree_confidence=1.0))
    half = segment_collection(
        members, names, FAST, CollectionOptions(frame="given", disagree_confidence=0.5), checkpoint=full.checkpoint
    )
    assert any(d.any() for d in half.differs) and not all(d.all() for d in half.differs)
    for a, b, d in zip(full.results, half.results, half.differs, strict=True):
        assert np.array_equal(a.face_labels, b.face_labels)
        np.testing.assert_allclose(b.face_confidence[d], 0.5 * a.face_confidence[d], rtol=1e-6)
        np.testing.assert_array_equal(b.face_confidence[~d], a.face_confidence[~d])
        assert b.stats["disagreement"] == a.stats["disagreement"] > 0 or not d.any()
