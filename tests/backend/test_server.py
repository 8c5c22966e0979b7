"""The ZeroMQ server through real sockets on loopback: jobs, progress, cancel, status, bad input."""

from __future__ import annotations

import threading
import time

import msgpack
import numpy as np
import pytest
import zmq
from loopback import running_server
from partdistill.backend.metrics import shape_miou
from partdistill.backend.service.server import Server, is_loopback
from partdistill.bench.simulated import simulate_detections
from partdistill.shared import protocol
from partdistill.shared.client import BackendClient, BackendError, BackendTimeout
from partdistill.shared.options import SegmentOptions
from partdistill.shared.request import SegmentRequest
from synthetic import capture_of, table


@pytest.fixture(scope="module")
def server():
    with running_server(heartbeat_s=0.3) as (s, _):
        yield s


@pytest.fixture(scope="module")
def scene():
    mesh, gt, names = table()
    cap = capture_of(mesh, gt, names, n_views=6, size=80)
    return cap, simulate_detections(cap)


def test_segment_streams_progress_and_returns_labels(server, scene):
    cap, det = scene
    seen = []
    client = BackendClient(server.endpoint, timeout_s=10)
    res = client.segment(
        cap, cap.part_names, SegmentOptions(n_points=2048, epochs=80), det, on_progress=lambda *a: seen.append(a)
    )
    assert res.face_labels.shape == (cap.mesh.n_faces,)
    assert shape_miou(res.face_labels, cap.gt_face_labels, 2, cap.mesh.face_areas()) > 0.9
    stages = {s for _, _, s, _ in seen}
    assert "queued" in stages and "distill" in stages
    assert res.stats["n_units"] == det.n_detections
    lines = [m for _, _, s, m in seen if s == "distill" and m != "heartbeat"]
    assert lines and lines[-1].startswith("distill 80/80")
    assert any(m.endswith(" s left") for m in lines)  # the time left travels with the progress


def test_ping_and_status_answer_while_a_job_runs_and_cancel_stops_it(server, scene):
    cap, det = scene
    client = BackendClient(server.endpoint, timeout_s=10)
    box: dict = {}
    started = threading.Event()

    def run():
        try:
            client.segment(
                cap,
                cap.part_names,
                SegmentOptions(n_points=2048, epochs=2000),
                det,
                on_progress=lambda *a: started.set(),
                job="long-job",
            )
        except BackendError as e:
            box["error"] = e

    t = threading.Thread(target=run)
    t.start()
    assert started.wait(10)
    time.sleep(0.5)
    assert client.ping() < 1.0
    status = client.status()
    assert status["busy"] and status["jobs"][0]["job"] == "long-job"
    client.cancel("long-job")
    t.join(20)
    assert not t.is_alive()
    assert box["error"].code == "cancelled"
    assert client.status()["jobs"] == []


def test_cancel_from_the_segmenting_client(server, scene):
    cap, det = scene
    calls = []
    with pytest.raises(BackendError) as e:
        BackendClient(server.endpoint, timeout_s=10).segment(
            cap,
            cap.part_names,
            SegmentOptions(n_points=2048, epochs=2000),
            det,
            on_progress=lambda *a: calls.append(a),
            should_cancel=lambda: len(calls) > 3,
        )
    assert e.value.code == "cancelled"


def _raw(server, frames):
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(server.endpoint)
    s.send_multipart(frames)
    while True:  # the first answer to a job is its "queued" progress; its error may follow
        assert s.poll(10000), "no reply"
        reply = protocol.decode(s.recv_multipart())
        if reply.type != "progress":
            break
    s.close()
    return reply


@pytest.mark.parametrize(
    "frames, field",
    [
        ([b"\x00\xffnot msgpack"], "header"),
        ([msgpack.packb({"v": 1, "type": "explode", "job": "x"})], "header.type"),
        ([msgpack.packb({"v": 7, "type": "ping"})], "header.v"),
        (
            [msgpack.packb({"v": 1, "type": "ping", "arrays": [{"name": "a", "dtype": "float32", "shape": [4]}]})],
            "frames",
        ),
    ],
)
def test_invalid_messages_get_a_named_error_and_the_server_keeps_serving(server, frames, field):
    reply = _raw(server, frames)
    assert reply.type == "error" and reply.fields["field"] == field
    assert BackendClient(server.endpoint, timeout_s=5).ping() < 1.0


def test_invalid_segment_arrays_get_a_named_error(server, scene):
    cap, det = scene
    msg = protocol.segment_request("bad", SegmentRequest(cap, cap.part_names, SegmentOptions(), det))
    msg.arrays["face_id"] = np.full_like(cap.face_id, 10**6)
    reply = _raw(server, [bytes(f) for f in protocol.encode(msg)])
    assert reply.type == "error" and reply.fields["code"] == "invalid" and reply.fields["field"] == "face_id"


def test_missing_teacher_model_is_a_clear_error(server, scene, monkeypatch, tmp_path):
    cap, _ = scene
    opts = SegmentOptions(teacher="grounding_dino", teacher_model=str(tmp_path / "no-such-model"))
    with pytest.raises(BackendError) as e:
        BackendClient(server.endpoint, timeout_s=20).segment(cap, cap.part_names, opts)
    assert e.value.code == "teacher_unavailable" and e.value.field == "options.teacher_model"
    assert "2D detections" in e.value.message


def test_dead_backend_times_out_with_a_clear_message():
    with pytest.raises(BackendTimeout, match="partdistill serve"):
        BackendClient("tcp://127.0.0.1:1", timeout_s=0.3).ping()


def test_non_loopback_bind_requires_curve_keys():
    assert is_loopback("tcp://127.0.0.1:5555") and is_loopback("tcp://[::1]:5") and is_loopback("ipc:///tmp/x")
    assert not is_loopback("tcp://0.0.0.0:5555") and not is_loopback("tcp://*:5555")
    with pytest.raises(ValueError, match="CurveZMQ"):
        Server("tcp://0.0.0.0:5599")


def test_curve_encrypted_server_talks_only_to_clients_with_its_key():
    pub, sec = zmq.curve_keypair()
    s = Server("tcp://127.0.0.1:0", curve_secret_key=sec, curve_public_key=pub)
    t = s.start()
    try:
        hello = BackendClient(s.endpoint, timeout_s=5, server_public_key=pub).hello()
        assert hello["server"] == "partdistill" and hello["protocol"] == protocol.PROTOCOL_VERSION
        with pytest.raises(BackendTimeout):
            BackendClient(s.endpoint, timeout_s=0.5).ping()  # plain-text client: no handshake, no answer
    finally:
        s.stop()
        t.join(5)
