"""A collection labelled on a backend through real sockets: one request for several shapes, one reply
with each shape's result (or the reason it has none) and the collection's flags; what the server
would refuse is refused before anything is sent."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from loopback import running_server
from partdistill.backend.metrics import shape_miou
from partdistill.backend.service.jobs import Limits
from partdistill.bench.simulated import simulate_detections
from partdistill.shared import protocol
from partdistill.shared.client import BackendClient, BackendError
from partdistill.shared.collection_wire import collection_request, parse_collection_request
from partdistill.shared.detections import Detection, Detections
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import CollectionOptions, SegmentOptions
from partdistill.shared.request import CollectionRequest, Member
from synthetic import capture_of, table

# 1024 points, not fewer: with 512 the category students' labels of these 60-face tables depend on
# the points drawn to label each one
FAST = SegmentOptions(epochs=30, n_points=1024)


@pytest.fixture(scope="module")
def members():
    mesh, gt, names = table()
    out = []
    for k in range(4):
        cap = capture_of(mesh, gt, names, n_views=4, size=48)
        det = simulate_detections(cap, seed=k)
        if k == 3:  # its detections call every top a leg and every leg a top
            det = Detections(det.part_names, [[replace(x, part=1 - x.part) for x in v] for v in det.views])
        out.append(Member(cap, det))
    return out, names


def test_a_collection_request_crosses_the_wire_unchanged(members):
    ms, names = members
    request = CollectionRequest(ms, names, FAST, CollectionOptions(finetune_epochs=7))
    back = parse_collection_request(protocol.decode(protocol.encode(collection_request("j", request))))
    assert back.collection.finetune_epochs == 7 and back.part_names == names and len(back.members) == 4
    for a, b in zip(ms, back.members, strict=True):
        assert np.array_equal(a.capture.face_id, b.capture.face_id)
        assert b.detections.n_detections == a.detections.n_detections


@pytest.mark.parametrize(
    ("sent", "fitted"),
    [
        ({}, ("both", 4, 512)),
        ({"mode": "pre-tta"}, ("given", 3, 1024)),
        ({"frame": "given"}, ("given", 3, 1024)),
        ({"frame": "both", "students": 2}, ("both", 2, 512)),
        ({"points": 768}, ("both", 4, 768)),
    ],
)
def test_a_request_that_leaves_out_the_frame_students_or_points_gets_what_the_mode_fits(members, sent, fitted):
    ms, names = members
    msg = collection_request("j", CollectionRequest(ms, names, FAST, CollectionOptions()))
    left = {k: v for k, v in msg.fields["collection"].items() if k not in ("mode", "frame", "students", "points")}
    msg.fields["collection"] = {**left, **sent}  # as a client of its own would write it
    back = parse_collection_request(protocol.decode(protocol.encode(msg)))
    c = back.collection
    assert (c.frame, c.students, c.fit_points(back.options)) == fitted


def test_category_points_above_the_servers_limit_are_refused_naming_the_field(members):
    ms, names = members
    with running_server(heartbeat_s=0.3, limits=Limits(max_points=2048)) as (server, _):
        client = BackendClient(server.endpoint, timeout_s=30)
        with pytest.raises(BackendError) as e:
            client.segment_collection(CollectionRequest(ms, names, FAST, CollectionOptions(points=4096)))
    assert e.value.code == "invalid" and e.value.field == "collection.points" and "limit of 2048" in e.value.message


def test_a_backend_labels_a_collection_and_flags_the_shape_unlike_the_rest(members, torch_single_thread):
    ms, names = members
    seen = []
    with running_server(heartbeat_s=0.3) as (server, _):
        client = BackendClient(server.endpoint, timeout_s=30)
        results, errors, warnings = client.segment_collection(
            CollectionRequest(ms, names, FAST, CollectionOptions(mode="pre-tta", finetune_epochs=10, students=1)),
            on_progress=lambda d, t, stage, m: seen.append(stage),
        )
    assert errors == ["", "", "", ""] and {"detect", "distill", "tune"} <= set(seen)
    for m, r in zip(ms[:3], results[:3], strict=True):
        assert shape_miou(r.face_labels, m.capture.gt_face_labels, 2, m.capture.mesh.face_areas()) > 0.5
    assert any(w.startswith("collection: ") for w in results[3].warnings)
    assert results[3].stats["method"] == "collection-pre-tta" and results[3].stats["disagreement"] > 0.3
    assert all(w.startswith("collection: ") for w in warnings)


def test_a_collection_the_backend_would_refuse_is_refused_before_sending(members):
    ms, names = members
    with pytest.raises(ValidationError, match="is not for method vote-fill"):
        collection_request("j", CollectionRequest(ms, names, SegmentOptions(method="vote-fill")))
    wrong = Member(ms[0].capture, Detections(ms[0].detections.part_names, ms[0].detections.views[:2]))
    with pytest.raises(ValidationError, match=r"members\[1\]\.views: has 2 view lists"):
        collection_request("j", CollectionRequest([ms[0], wrong], names, FAST))
    with pytest.raises(ValidationError, match="1 to 16 shapes"):
        collection_request("j", CollectionRequest([ms[0]] * 17, names, FAST))


@pytest.mark.parametrize("mode", ["pre", "tta"])
def test_a_part_no_table_has_is_worded_once_together_and_once_per_shape_one_by_one(mode, torch_single_thread):
    """Three tables asked for a 'drawer', which stray boxes name in one view of two of them."""
    mesh, gt, names = table()
    ms = []
    for k in range(3):
        cap = capture_of(mesh, gt, names, n_views=4, size=48)
        views = [list(v) for v in simulate_detections(cap, seed=k).views]
        if k < 2:
            views[0].append(Detection(2, 0.2, np.array([20, 20, 23, 23], np.float32)))
        ms.append(Member(cap, Detections((*names, "drawer"), views)))
    with running_server(heartbeat_s=0.3) as (server, _):
        client = BackendClient(server.endpoint, timeout_s=30)
        request = CollectionRequest(ms, (*names, "drawer"), FAST, CollectionOptions(mode=mode, students=1))
        results, errors, warnings = client.segment_collection(request)
    assert errors == ["", "", ""]
    per_shape = [[w for w in r.warnings if "'drawer'" in w] for r in results]
    together = [w for w in warnings if "'drawer' was detected on 2 of 3 shapes" in w]
    if mode == "pre":
        assert per_shape == [[], [], []] and len(together) == 1
    else:
        assert [len(w) for w in per_shape] == [1, 1, 0] and not together
        assert per_shape[0][0].startswith("'drawer' was detected in 1 view but no face was labelled with it")
