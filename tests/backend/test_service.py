"""The backend service through real sockets on loopback: the same answer as in process, strict
messages, limits, job ownership, the model allow-list, client authentication (ZAP), shutdown and
silent clients, the teacher cache."""

from __future__ import annotations

import json
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq
from partdistill.backend.service.jobs import Limits
from partdistill.backend.service.models import ModelPolicy, TeacherCache
from partdistill.backend.service.server import Server
from partdistill.backend.tta import segment
from partdistill.bench.simulated import simulate_detections
from partdistill.shared import protocol
from partdistill.shared.client import BackendClient, BackendError, BackendRefused, BackendTimeout
from partdistill.shared.detections import Detections
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import SegmentOptions
from partdistill.shared.request import SegmentRequest
from synthetic import capture_of, table

OPTS = SegmentOptions(n_points=1024, epochs=30, refine="none")


@pytest.fixture(scope="module")
def scene():
    mesh, gt, names = table()
    cap = capture_of(mesh, gt, names, n_views=4, size=64)
    return cap, simulate_detections(cap)


@pytest.fixture
def serve():
    """serve(**server_kwargs) -> a started Server on a free loopback port; stopped after the test."""
    started = []

    def start(**kw):
        kw.setdefault("heartbeat_s", 0.2)
        s = Server(kw.pop("bind", "tcp://127.0.0.1:0"), **kw)
        started.append((s, s.start()))
        return s

    yield start
    for s, t in started:
        s.stop()
        t.join(10)


def _named(result) -> np.ndarray:
    """Face labels as part names (so that runs with different part orders compare)."""
    return np.asarray(result.part_names)[result.face_labels]


def _raw(endpoint: str, frames: list, session: str = "raw-session-1") -> protocol.Message:
    """Send frames as they are; the first reply that is not the job's "queued" progress."""
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(endpoint)
    s.send_multipart(frames)
    try:
        while True:
            assert s.poll(10000), "no reply"
            reply = protocol.decode(s.recv_multipart())
            if reply.type != "progress":
                return reply
    finally:
        s.close()


def _header(**fields) -> bytes:
    return msgpack.packb({"v": 1, "type": "ping", "job": "j", **fields})


class _LongJob:
    """A 2000-epoch job run by ``client`` in a thread, started once its first progress arrives;
    ``error`` is how it ended (BackendError / BackendTimeout), ``ended_at`` when."""

    def __init__(self, client: BackendClient, scene, job: str | None = None):
        cap, det = scene
        self.error, self.ended_at = None, None
        started = threading.Event()

        def run():
            try:
                client.segment(
                    cap,
                    cap.part_names,
                    SegmentOptions(n_points=1024, epochs=2000),
                    det,
                    on_progress=lambda *a: started.set(),
                    job=job,
                )
            except (BackendError, BackendTimeout) as e:
                self.error, self.ended_at = e, time.monotonic()

        self.thread = threading.Thread(target=run)
        self.thread.start()
        assert started.wait(20)

    def join(self, timeout_s: float = 20) -> None:
        self.thread.join(timeout_s)


# ---- the same answer everywhere -----------------------------------------------------------------


@pytest.mark.parametrize("order", [("top", "leg"), ("leg", "top")])
def test_the_server_gives_the_in_process_labels_whatever_the_part_order(serve, scene, order):
    cap, det = scene  # detections name their parts ("top", "leg") in their own order
    in_process = segment(cap, order, options=OPTS, detections=det)
    over_wire = BackendClient(serve().endpoint, timeout_s=20).segment(cap, order, OPTS, det)
    assert over_wire.part_names == order
    np.testing.assert_array_equal(_named(over_wire), _named(in_process))
    np.testing.assert_array_equal(_named(over_wire), _named(segment(cap, ("top", "leg"), options=OPTS, detections=det)))


def test_detections_naming_parts_outside_the_request_are_refused(serve, scene):
    cap, det = scene
    with pytest.raises(BackendError) as e:
        BackendClient(serve().endpoint, timeout_s=20).segment(cap, ("wheel", "handle"), OPTS, det)
    assert e.value.code == "invalid" and e.value.field == "detections.part_names"
    assert "not among the requested parts" in e.value.message


def test_detections_for_other_views_are_refused_before_sending(scene):
    cap, det = scene
    fewer = Detections(det.part_names, det.views[:3], det.image_size)
    with pytest.raises(ValidationError, match="view"):
        protocol.segment_request("j", SegmentRequest(cap, cap.part_names, OPTS, fewer))
    bigger = Detections(det.part_names, det.views, (2 * cap.image_size[0], 2 * cap.image_size[1]))
    with pytest.raises(ValidationError):
        protocol.segment_request("j", SegmentRequest(cap, cap.part_names, OPTS, bigger))


def test_detections_meta_disagreeing_with_the_capture_is_invalid_on_the_server(serve, scene):
    cap, det = scene
    msg = protocol.segment_request("meta", SegmentRequest(cap, cap.part_names, OPTS, det))
    msg.fields["detections"]["n_views"] = cap.n_views + 2
    reply = _raw(serve().endpoint, [bytes(f) for f in protocol.encode(msg)])
    assert reply.type == "error" and reply.fields["field"] == "detections.n_views"


def test_duplicate_part_names_are_refused_in_process_and_over_the_wire(serve, scene):
    cap, det = scene
    with pytest.raises(ValidationError, match="duplicate"):
        segment(cap, ("top", "top", "leg"), options=OPTS, detections=det)
    msg = protocol.segment_request("dup", SegmentRequest(cap, ("top", "leg"), OPTS, det))
    msg.fields["part_names"] = ["top", "top", "leg"]
    reply = _raw(serve().endpoint, [bytes(f) for f in protocol.encode(msg)])
    assert (
        reply.type == "error"
        and reply.fields["field"].startswith("part_names")
        and "duplicate" in reply.fields["message"]
    )


# ---- strict messages ----------------------------------------------------------------------------


@pytest.mark.parametrize("v", [True, 1.0, "1", None])
def test_a_version_that_only_equals_1_is_not_version_1(serve, v):
    reply = _raw(serve().endpoint, [msgpack.packb({"v": v, "type": "ping", "job": "j"})])
    assert reply.type == "error" and reply.fields["code"] == "invalid" and reply.fields["field"] == "header.v"


def test_unknown_teachers_and_nested_options_are_invalid_not_internal(serve, scene):
    cap, _ = scene
    s = serve()
    for options in ({"teacher": "no_such_teacher"}, {"epochs": {"a": {"b": [1, {"c": 2}]}}}, {1: 2}):
        msg = protocol.segment_request(
            "o", SegmentRequest(cap, cap.part_names, SegmentOptions(teacher="grounding_dino"))
        )
        msg.fields["options"] = {**msg.fields["options"], **options} if 1 not in options else options
        reply = _raw(s.endpoint, [bytes(f) for f in protocol.encode(msg)] if 1 not in options else _frames_with(msg))
        assert reply.type == "error" and reply.fields["code"] == "invalid", reply.fields


def _frames_with(msg: protocol.Message) -> list:
    """Frames of ``msg`` with its options packed as they are (non-string keys included)."""
    frames = [
        bytes(f)
        for f in protocol.encode(protocol.Message(msg.type, msg.job, {**msg.fields, "options": {}}, msg.arrays))
    ]
    header = msgpack.unpackb(frames[0], strict_map_key=False)
    header["options"] = msg.fields["options"]
    return [msgpack.packb(header), *frames[1:]]


def test_epochs_and_points_above_the_servers_limits_are_refused(serve, scene):
    cap, det = scene
    client = BackendClient(serve(limits=Limits(max_epochs=50, max_points=2048)).endpoint, timeout_s=20)
    for opts, field in (
        (SegmentOptions(epochs=51), "options.epochs"),
        (SegmentOptions(n_points=4096, epochs=20), "options.n_points"),
    ):
        with pytest.raises(BackendError) as e:
            client.segment(cap, cap.part_names, opts, det)
        assert e.value.code == "invalid" and e.value.field == field and "limit" in e.value.message


def test_jobs_over_the_queued_bytes_limit_get_busy(serve, scene):
    cap, det = scene
    size = sum(
        len(bytes(f))
        for f in protocol.encode(protocol.segment_request("x", SegmentRequest(cap, cap.part_names, OPTS, det)))
    )
    s = serve(limits=Limits(max_queued_bytes=int(size * 1.5)))
    c1, c2 = BackendClient(s.endpoint, timeout_s=20), BackendClient(s.endpoint, timeout_s=20)
    big = _LongJob(c1, scene, job="big")
    with pytest.raises(BackendError) as e:
        c2.segment(cap, cap.part_names, OPTS, det)
    assert e.value.code == "busy" and "MiB" in e.value.message
    c1.cancel("big")
    big.join()
    assert big.error.code == "cancelled"


# ---- who may do what ----------------------------------------------------------------------------


def test_clients_see_and_cancel_only_their_own_jobs(serve, scene):
    cap, det = scene
    s = serve()
    owner, other = BackendClient(s.endpoint, timeout_s=20), BackendClient(s.endpoint, timeout_s=20)
    mine = _LongJob(owner, scene, job="mine")
    assert other.status()["jobs"] == [] and [j["job"] for j in owner.status()["jobs"]] == ["mine"]
    with pytest.raises(BackendError) as e:
        other.cancel("mine")
    assert e.value.code == "invalid" and "of yours" in e.value.message
    owner.cancel("mine")
    mine.join()
    assert mine.error.code == "cancelled"


def test_only_allowed_models_load_and_the_error_says_nothing_about_files(serve, scene, tmp_path):
    cap, _ = scene
    allow = tmp_path / "models.json"
    allow.write_text(json.dumps({"teacher_models": {"dino-tiny": str(tmp_path / "dino")}}))
    loaded = []
    s = serve(models=ModelPolicy.from_file(allow), teacher_loader=lambda o: loaded.append(o.teacher_model))
    client = BackendClient(s.endpoint, timeout_s=20)
    for name in ("/etc", "IDEA-Research/grounding-dino-base", str(tmp_path)):
        with pytest.raises(BackendError) as e:
            client.segment(cap, cap.part_names, SegmentOptions(teacher="grounding_dino", teacher_model=name))
        assert e.value.code == "invalid" and e.value.field == "options.teacher_model"
        assert "not an allowed model" in e.value.message and "dino-tiny" in e.value.message
        assert "exist" not in e.value.message and "No such" not in e.value.message
    assert loaded == []
    assert client.hello()["models"]["teacher_model"] == ["dino-tiny"]


def test_zap_lets_in_listed_clients_and_refuses_the_others_at_once(serve):
    server_pub, server_sec = zmq.curve_keypair()
    listed_pub, listed_sec = zmq.curve_keypair()
    s = serve(curve_secret_key=server_sec, curve_public_key=server_pub, client_keys=[listed_pub])
    listed = BackendClient(
        s.endpoint,
        timeout_s=5,
        server_public_key=server_pub,
        client_public_key=listed_pub,
        client_secret_key=listed_sec,
    )
    assert listed.hello()["server"] == "partdistill"
    t = time.monotonic()
    with pytest.raises(BackendRefused, match="does not let this client in"):
        BackendClient(s.endpoint, timeout_s=5, server_public_key=server_pub).ping()  # a throwaway key
    assert time.monotonic() - t < 2.0


def test_a_wrong_server_key_says_so_instead_of_a_bare_timeout(serve):
    pub, sec = zmq.curve_keypair()
    s = serve(curve_secret_key=sec, curve_public_key=pub)
    with pytest.raises(BackendTimeout, match="is the server key right"):
        BackendClient(s.endpoint, timeout_s=0.5, server_public_key=zmq.curve_keypair()[0]).ping()


# ---- faults -------------------------------------------------------------------------------------


def test_a_silent_clients_job_is_cancelled_within_the_heartbeat_period(serve, scene):
    cap, det = scene
    s = serve(limits=Limits(client_timeout_s=1.0))
    msg = protocol.segment_request(
        "orphan", SegmentRequest(cap, cap.part_names, SegmentOptions(n_points=1024, epochs=2000), det)
    )
    msg.fields["session"] = "silent-client-1"
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(s.endpoint)
    sock.send_multipart(protocol.encode(msg))  # and then never a ping
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        assert sock.poll(10000)
        reply = protocol.decode(sock.recv_multipart())
        if reply.type == "error":
            break
    sock.close()
    assert reply.fields["code"] == "cancelled" and "sent nothing" in reply.fields["message"]
    assert time.monotonic() - t0 < 1.0 + 3 * 0.2 + 2.0  # the timeout, a few heartbeats, an epoch
    assert s.book.all() == []


def test_a_pinging_client_keeps_its_job(serve, scene):
    cap, det = scene
    s = serve(limits=Limits(client_timeout_s=0.6))
    res = BackendClient(s.endpoint, timeout_s=20, heartbeat_s=0.2).segment(
        cap, cap.part_names, SegmentOptions(n_points=1024, epochs=150, refine="none"), det
    )
    assert res.face_labels.shape == (cap.mesh.n_faces,)


def test_waiting_clients_hear_cancelled_when_the_server_shuts_down(serve, scene):
    s = serve()
    job = _LongJob(BackendClient(s.endpoint, timeout_s=20), scene)
    s.stop()
    job.join()
    assert isinstance(job.error, BackendError) and job.error.code == "cancelled"
    assert "shutting down" in job.error.message


# ---- the teacher cache --------------------------------------------------------------------------


class _Teacher:
    def __init__(self):
        self.settings = {}

    def with_settings(self, **settings):
        t = _Teacher()
        t.settings = settings
        return t


def test_thresholds_and_prompts_never_load_a_teacher_again():
    loads = []
    cache = TeacherCache(2, loader=lambda o: loads.append(o.teacher_model) or _Teacher())
    base = SegmentOptions(teacher="grounding_dino", teacher_model="m1")
    a = cache.get(base, lambda: False, True)
    b = cache.get(
        SegmentOptions(teacher="grounding_dino", teacher_model="m1", box_threshold=0.1, prompt_template="a {part}"),
        lambda: False,
        True,
    )
    assert loads == ["m1"] and a.settings["box_threshold"] != b.settings["box_threshold"]
    assert b.settings["prompt_template"] == "a {part}"


def test_the_teacher_cache_evicts_the_least_recently_used():
    loads = []
    cache = TeacherCache(2, loader=lambda o: loads.append(o.teacher_model) or _Teacher())
    for m in ("m1", "m2", "m1", "m3", "m1", "m2"):
        cache.get(SegmentOptions(teacher="grounding_dino", teacher_model=m), lambda: False, True)
    assert loads == ["m1", "m2", "m3", "m2"] and len(cache) == 2


def test_a_job_cancelled_before_its_teacher_loads_loads_nothing():
    from partdistill.backend.cancel import Cancelled

    loads = []
    cache = TeacherCache(2, loader=lambda o: loads.append(1) or _Teacher())
    with pytest.raises(Cancelled):
        cache.get(SegmentOptions(teacher="grounding_dino"), lambda: True, True)
    assert loads == []


def test_ctrl_c_stops_a_served_backend_after_it_ran_a_job(scene, tmp_path):
    """Every socket the server's threads opened is closed on the way out: an open one makes the
    interpreter's exit wait forever."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    cap, det = scene
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    # the server's stderr is kept, with faulthandler on: if it does not exit, SIGABRT makes it print
    # every thread's stack there, and the failure shows where it waits (it usually exits in 1-2 s;
    # the limit is generous because a loaded CI machine is slow, not because exiting may be)
    err = tmp_path / "server.err"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}

    # Ctrl+C reaches a server started in a terminal's foreground, where SIGINT has its default action.
    # A suite launched in the background (``cmd &`` in a script) has SIGINT ignored, children inherit
    # that, and Python then installs no KeyboardInterrupt handler: the server would rightly go on.
    def foreground_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    with err.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "partdistill.backend.cli", "serve", "--bind", address],
            stderr=fh,
            env=env,
            preexec_fn=foreground_sigint,
        )
    try:
        BackendClient(address, timeout_s=120).segment(cap, cap.part_names, OPTS, det)
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            proc.wait(10)
            raise AssertionError(
                "the served backend did not exit within 60 s of Ctrl+C:\n" + err.read_text()[-4000:]
            ) from None
        assert rc == 0, err.read_text()[-4000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
