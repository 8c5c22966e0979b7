"""Wire protocol: every message type round-trips; every malformed input class gets a named error."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from partdistill.bench.simulated import simulate_detections
from partdistill.shared import protocol
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import SegmentOptions
from partdistill.shared.request import SegmentRequest
from partdistill.shared.result import SegmentationResult
from synthetic import capture_of, table


@pytest.fixture(scope="module")
def capture():
    mesh, gt, names = table()
    return capture_of(mesh, gt, names, n_views=3, size=48)


def roundtrip(msg: protocol.Message) -> protocol.Message:
    frames = [bytes(f) for f in protocol.encode(msg)]
    return protocol.decode(frames)


def test_segment_request_round_trips_capture_options_and_detections(capture):
    det = simulate_detections(capture)
    opts = SegmentOptions(method="vote", n_points=1000, seed=3)
    back = roundtrip(protocol.segment_request("job1", SegmentRequest(capture, capture.part_names, opts, det)))
    req = protocol.parse_segment_request(back)
    cap2, names, opts2, det2, labelled = req.capture, req.part_names, req.options, req.detections, req.labelled_faces
    assert labelled is None
    assert back.type == "segment" and back.job == "job1"
    assert names == capture.part_names and opts2 == opts
    m, m2 = capture.mesh, cap2.mesh
    pairs = [
        (cap2.rgb, capture.rgb),
        (cap2.face_id, capture.face_id),
        (cap2.K, capture.K),
        (m2.faces, m.faces),
        (m2.face_to_polygon, m.face_to_polygon),
    ]
    for a, b in pairs:
        np.testing.assert_array_equal(a, b)
    assert det2.n_detections == det.n_detections
    capture.mesh.polygon_count = int(capture.mesh.face_to_polygon.max()) + 5  # a modifier deleted some
    back = roundtrip(protocol.segment_request("job2", SegmentRequest(capture, capture.part_names, opts, det)))
    assert protocol.parse_segment_request(back).capture.mesh.n_polygons == capture.mesh.polygon_count
    capture.mesh.polygon_count = None
    np.testing.assert_allclose(det2.views[0][0].box, det.views[0][0].box)


def test_result_round_trips():
    res = SegmentationResult(
        ("a", "b"),
        np.array([0, 1, -1], np.int32),
        np.array([0.5, 1, 0], np.float32),
        np.array([0, 1], np.int32),
        {"n_units": np.int64(4), "loss": [0.5, 0.25]},
        {"distill": 1.5},
        ["'a' covers 99% of the surface"],
    )
    back = protocol.parse_result(roundtrip(protocol.result_message("j", res)))
    np.testing.assert_array_equal(back.face_labels, res.face_labels)
    assert back.stats == {"n_units": 4, "loss": [0.5, 0.25]} and back.timings == {"distill": 1.5}
    assert back.warnings == ["'a' covers 99% of the surface"]


@pytest.mark.parametrize(
    "msg",
    [
        protocol.Message("hello", "j", {"client": "x"}),
        protocol.Message("ping", "j"),
        protocol.Message("pong", "j"),
        protocol.Message("status", "j", {"jobs": [], "busy": False}),
        protocol.Message("cancel", "j", {"target": "other"}),
        protocol.progress_message("j", 3, 10, "distill", "hi"),
        protocol.error_message("j", "invalid", "faces", "bad"),
    ],
    ids=lambda m: m.type,
)
def test_every_other_message_type_round_trips(msg):
    back = roundtrip(msg)
    assert (back.type, back.job, back.fields) == (msg.type, msg.job, msg.fields)


def _segment_frames(capture, **replace):
    msg = protocol.segment_request(
        "j", SegmentRequest(capture, capture.part_names, SegmentOptions(teacher="grounding_dino"))
    )
    msg.arrays.update(replace)
    return [bytes(f) for f in protocol.encode(msg)]


def _field_error(frames) -> str:
    with pytest.raises(ValidationError) as e:
        protocol.parse_segment_request(protocol.decode(frames))
    return e.value.field


def test_wrong_dtype_is_named(capture):
    assert _field_error(_segment_frames(capture, faces=capture.mesh.faces.astype(np.int64))) == "faces"


def test_wrong_shape_is_named(capture):
    assert _field_error(_segment_frames(capture, K=capture.K[:, :2])) == "K"


def test_index_out_of_range_is_named(capture):
    bad = capture.face_id.copy()
    bad[0, 0, 0] = capture.mesh.n_faces
    assert _field_error(_segment_frames(capture, face_id=bad)) == "face_id"
    faces = capture.mesh.faces.copy()
    faces[0, 0] = -1
    assert _field_error(_segment_frames(capture, faces=faces)) == "faces"


def test_nan_is_named(capture):
    v = capture.mesh.vertices.copy()
    v[3, 1] = np.nan
    assert _field_error(_segment_frames(capture, vertices=v)) == "vertices"


def test_oversize_is_named(capture, monkeypatch):
    from partdistill.shared import limits

    frames = _segment_frames(capture)  # made within the limits, received past them
    monkeypatch.setattr(limits, "MAX_VIEWS", 2)
    assert _field_error(frames) == "rgb (views)"
    monkeypatch.setattr(limits, "MAX_HEADER_BYTES", 10)
    with pytest.raises(ValidationError, match="header"):
        protocol.decode(frames)


def test_unknown_type_is_named():
    frames = [msgpack.packb({"v": 1, "type": "launch_missiles", "job": "", "arrays": []})]
    with pytest.raises(ValidationError, match="unknown message type") as e:
        protocol.decode(frames)
    assert e.value.field == "header.type"


def test_truncated_frames_are_named(capture):
    frames = _segment_frames(capture)
    with pytest.raises(ValidationError, match="truncated") as e:
        protocol.decode(frames[:-1])
    assert e.value.field == "frames"
    frames[2] = frames[2][:-4]
    with pytest.raises(ValidationError, match="truncated"):
        protocol.decode(frames)


@pytest.mark.parametrize("garbage", [b"", b"\xff\xfe\x00garbage", b"\x93\x01\x02\x03", msgpack.packb([1, 2])])
def test_garbage_bytes_are_named(garbage):
    with pytest.raises(ValidationError) as e:
        protocol.decode([garbage])
    assert e.value.field.startswith("header")


def test_wrong_version_missing_field_and_bad_field_type_are_named():
    with pytest.raises(ValidationError, match="version"):
        protocol.decode([msgpack.packb({"v": 99, "type": "ping"})])
    with pytest.raises(ValidationError) as e:
        protocol.decode([msgpack.packb({"v": 1, "type": "cancel", "job": "x"})])
    assert e.value.field == "header.target"
    with pytest.raises(ValidationError) as e:
        protocol.decode(
            [msgpack.packb({"v": 1, "type": "progress", "done": "3", "total": 1, "stage": "", "message": ""})]
        )
    assert e.value.field == "header.done"


def test_unknown_array_and_dtype_are_named(capture):
    frames = _segment_frames(capture, evil=np.zeros(3, np.float32))
    assert _field_error(frames) == "arrays"
    head = msgpack.unpackb(frames[0])
    head["arrays"][0]["dtype"] = "object"
    with pytest.raises(ValidationError) as e:
        protocol.decode([msgpack.packb(head), *frames[1:]])
    assert e.value.field == "header.arrays[0].dtype"


def test_bad_options_and_part_names_are_named(capture):
    msg = protocol.segment_request(
        "j", SegmentRequest(capture, capture.part_names, SegmentOptions(teacher="grounding_dino"))
    )
    msg.fields["options"]["n_points"] = -5
    with pytest.raises(ValidationError) as e:
        protocol.parse_segment_request(roundtrip(msg))
    assert e.value.field == "options.n_points"
    with pytest.raises(ValidationError, match="duplicate"):  # refused before it is sent...
        protocol.segment_request(
            "j", SegmentRequest(capture, ["seat", "seat"], SegmentOptions(teacher="grounding_dino"))
        )
    msg = protocol.segment_request(
        "j", SegmentRequest(capture, capture.part_names, SegmentOptions(teacher="grounding_dino"))
    )
    msg.fields["part_names"] = ["seat", "seat"]
    with pytest.raises(ValidationError) as e:  # ...and where it is received
        protocol.parse_segment_request(roundtrip(msg))
    assert e.value.field == "part_names[1]"


def test_segment_without_teacher_or_detections_is_rejected(capture):
    with pytest.raises(ValidationError, match="no teacher named"):  # before it is sent...
        protocol.segment_request("j", SegmentRequest(capture, capture.part_names, SegmentOptions()))
    msg = protocol.segment_request("j", SegmentRequest(capture, capture.part_names, SegmentOptions(teacher="owlv2")))
    msg.fields["options"]["teacher"] = None
    with pytest.raises(ValidationError) as e:  # ...and where it is received
        protocol.parse_segment_request(roundtrip(msg))
    assert e.value.field == "options.teacher"


def test_arrays_are_zero_copy_views_of_the_frames(capture):
    frames = _segment_frames(capture)
    msg = protocol.decode(frames)
    assert not msg.arrays["rgb"].flags.owndata
