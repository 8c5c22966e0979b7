"""What a stranger, or another client, cannot do to a shared backend, through real sockets: one
allow-list for every option that names a file, closed by default on a keyed server, masks shared not
copied, counts checked before anything is built, malformed headers named, jobs owned by the client's
key and private to it, quotas per client, SIGTERM as Ctrl+C, and a restarted server that says what it
lost."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc

import msgpack
import numpy as np
import pytest
import zmq
from partdistill.backend.service.jobs import Limits
from partdistill.backend.service.server import Server
from partdistill.bench.simulated import simulate_detections
from partdistill.shared import protocol
from partdistill.shared.client import BackendClient, BackendError, BackendGone
from partdistill.shared.detections import Detection, Detections
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import SegmentOptions
from partdistill.shared.request import SegmentRequest
from synthetic import capture_of, table

CLI = [sys.executable, "-m", "partdistill.backend.cli"]
LONG = SegmentOptions(n_points=1024, epochs=2000, refine="none")
QUICK = SegmentOptions(n_points=1024, epochs=20, refine="none")


@pytest.fixture(scope="module")
def scene():
    mesh, gt, names = table()
    cap = capture_of(mesh, gt, names, n_views=4, size=64)
    return cap, simulate_detections(cap)


@pytest.fixture
def keyed():
    """keyed(**server_kwargs) -> (server, its public key, client_for(name)) for a server with keys."""
    started = []

    def start(**kw):
        pub, sec = zmq.curve_keypair()
        clients = {name: zmq.curve_keypair() for name in ("alice", "bob", "mallory")}
        listed = kw.pop("listed", None)
        kw.setdefault("heartbeat_s", 0.2)
        s = Server(
            "tcp://127.0.0.1:0",
            curve_secret_key=sec,
            curve_public_key=pub,
            client_keys=None if listed is None else [clients[n][0] for n in listed],
            **kw,
        )
        started.append((s, s.start()))

        def client_for(name: str, **ckw) -> BackendClient:
            ckw.setdefault("timeout_s", 20)
            cp, cs = clients[name]
            return BackendClient(s.endpoint, server_public_key=pub, client_public_key=cp, client_secret_key=cs, **ckw)

        return s, pub, client_for

    yield start
    for s, t in started:
        s.stop()
        t.join(10)


class _Job:
    """``client.segment(...)`` in a thread; ``error`` is how it ended, ``result`` what it returned."""

    def __init__(self, client, scene, options=LONG, job=None, started=True):
        cap, det = scene
        self.error = self.result = None
        self._began = threading.Event()

        def run():
            try:
                self.result = client.segment(
                    cap, cap.part_names, options, det, job=job, on_progress=lambda *a: self._began.set()
                )
            except Exception as e:  # noqa: BLE001 - what the test looks at
                self.error = e
            self._began.set()

        self.thread = threading.Thread(target=run)
        self.thread.start()
        if started:
            assert self._began.wait(30)

    def join(self, timeout_s=60):
        self.thread.join(timeout_s)
        assert not self.thread.is_alive()


# ---- one allow-list, closed by default ------------------------------------------------------------


@pytest.mark.parametrize("option", ["teacher_model", "sam_model", "text_encoder", "backbone", "category_model"])
def test_every_option_naming_a_file_goes_through_the_allow_list_and_says_nothing_of_the_disk(
    keyed, scene, tmp_path, option
):
    cap, det = scene
    secret = tmp_path / "models" / "backbone.json"
    secret.parent.mkdir()
    secret.write_text(json.dumps({"a secret": "never echoed"}))
    _, _, client_for = keyed()
    client = client_for("alice")
    answers = set()
    for name in (str(secret.parent), "/etc", "/no/such/folder", "IDEA-Research/grounding-dino-base"):
        options = SegmentOptions(n_points=1024, epochs=5, **{option: name})
        with pytest.raises(BackendError) as e:
            client.segment(cap, cap.part_names, options, det)
        assert e.value.code == "invalid" and e.value.field == f"options.{option}"
        assert "secret" not in e.value.message and name not in e.value.message
        answers.add(e.value.message)
    assert len(answers) == 1  # an existing folder, a missing one, a hub id: the same answer
    assert "not an allowed model here" in answers.pop()


def test_a_keyed_server_without_a_model_list_allows_the_defaults_only(keyed):
    _, _, client_for = keyed()
    models = client_for("alice").hello()["models"]
    assert models != "any" and all(names == [] for names in models.values())


# ---- the request's size, counted before anything is built ----------------------------------------


def test_one_mask_shared_by_many_detections_is_referenced_not_copied(scene):
    cap, _ = scene
    mask = np.zeros(cap.image_size, bool)
    mask[10:40, 10:40] = True
    views = [[Detection(0, 0.5, mask=mask)] * 400 for _ in range(cap.n_views)]
    det = Detections(("top", "leg"), views)
    arrays = det.to_arrays()
    arrays["det_masks"] = arrays["det_masks"][:1]  # every detection points at the one mask
    arrays["det_mask_index"][:] = 0
    msg = protocol.segment_request("j", SegmentRequest(cap, ("top", "leg"), SegmentOptions(teacher="grounding_dino")))
    msg.arrays.update(arrays)
    msg.fields["has_detections"] = True
    msg.fields["detections"] = {
        "part_names": ["top", "leg"],
        "n_views": cap.n_views,
        "image_size": list(cap.image_size),
    }
    decoded = protocol.decode(protocol.encode(msg))
    tracemalloc.start()
    parsed = protocol.parse_segment_request(decoded).detections
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    first = parsed.views[0][0].mask
    assert all(np.shares_memory(d.mask, first) for v in parsed.views for d in v)
    copies = sum(len(v) for v in parsed.views) * mask.size  # what a mask per detection would take
    assert peak < 0.2 * copies  # one mask, and a few hundred bytes per detection
    assert protocol.request_bytes(decoded, 0) == mask.size  # what the book counts for it


def test_a_million_detections_are_refused_from_their_count_before_any_is_built(scene):
    cap, _ = scene
    d = 1_000_000
    arrays = {
        "det_view": np.zeros(d, np.int32),
        "det_part": np.zeros(d, np.int32),
        "det_score": np.ones(d, np.float32),
        "det_box": np.zeros((d, 4), np.float32),
        "det_mask_index": np.full(d, -1, np.int32),
    }
    t0 = time.perf_counter()
    with pytest.raises(ValidationError, match="1000000 detections for 4 views: more than 1000 per view"):
        Detections.from_arrays(("top", "leg"), cap.n_views, arrays)
    assert time.perf_counter() - t0 < 1.0
    arrays = {k: v[:2000] for k, v in arrays.items()}  # few enough in all, too many in view 0
    with pytest.raises(ValidationError, match=r"views\[0\]: more than 1000 detections"):
        Detections.from_arrays(("top", "leg"), cap.n_views, arrays)


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"name": "a", "dtype": ["uint8"], "shape": [2]}, "header.arrays[0].dtype"),
        ({"name": "a", "dtype": "uint8", "shape": [0, 2**63]}, "header.arrays[0].shape"),
    ],
)
def test_malformed_array_headers_are_invalid_with_the_field_named(keyed, spec, field):
    s, pub, client_for = keyed()
    client = client_for("alice")
    header = msgpack.packb({"v": 1, "type": "ping", "job": "j", "arrays": [spec]})
    with pytest.raises(ValidationError) as e:
        protocol.decode([header, b"\0\0"])
    assert e.value.field == field
    call = client._call()  # the same bytes to the server
    try:
        call.sock.send_multipart([header, b"\0\0"])
        reply = call.recv()
    finally:
        call.close()
    assert reply.type == "error" and reply.fields["code"] == "invalid" and reply.fields["field"] == field


# ---- whose job it is ----------------------------------------------------------------------------


def test_jobs_belong_to_the_clients_key_and_their_ids_are_private(keyed, scene):
    s, _, client_for = keyed()
    alice, bob = client_for("alice"), client_for("bob")
    mine = _Job(alice, scene, job="shared-id")
    bob_again = client_for("bob")  # a new client object with bob's key is still bob
    assert bob.status()["jobs"] == [] and bob_again.status()["jobs"] == []
    with pytest.raises(BackendError, match="no running or queued job 'shared-id' of yours"):
        bob.cancel("shared-id")
    theirs = _Job(bob, scene, options=QUICK, job="shared-id", started=False)  # no "already in use" leak
    deadline = time.monotonic() + 10
    while [j["job"] for j in bob_again.status()["jobs"]] != ["shared-id"]:
        assert time.monotonic() < deadline and theirs.error is None, theirs.error
        time.sleep(0.05)
    assert [j["state"] for j in client_for("alice").status()["jobs"]] == ["running"]  # hers, not bob's queued one
    client_for("alice").cancel("shared-id")  # alice, from another client object: her key owns it
    mine.join()
    theirs.join()
    assert isinstance(mine.error, BackendError) and mine.error.code == "cancelled"
    assert theirs.error is None and theirs.result.face_labels.shape == (scene[0].mesh.n_faces,)


def test_one_client_cannot_fill_every_slot(keyed, scene):
    s, _, client_for = keyed(limits=Limits(max_jobs_per_client=1))
    alice = client_for("alice")
    first = _Job(alice, scene, job="first")
    with pytest.raises(BackendError) as e:
        alice.segment(scene[0], scene[0].part_names, QUICK, scene[1])
    assert e.value.code == "busy" and "limit per client" in e.value.message
    second = _Job(client_for("bob"), scene, options=QUICK, started=False)  # another client still gets in
    alice.cancel("first")
    first.join()
    second.join()
    assert second.error is None and second.result is not None


def test_nobody_holding_the_servers_key_can_pose_as_a_worker_or_forge_a_result(keyed, scene):
    """There is no worker port: the only socket is the front door's, and a "result" sent to it is not
    a request. Workers are Ray's cluster members (its token), which no client key reaches."""
    s, pub, client_for = keyed()
    cap, det = scene
    victim = _Job(
        client_for("alice"), scene, options=SegmentOptions(n_points=1024, epochs=200, refine="none"), job="victim"
    )
    forged = protocol.result_message("victim", protocol.parse_result(protocol.result_message("x", _fake(cap))))
    call = client_for("mallory")._call()
    try:
        call.sock.send_multipart(protocol.encode(forged))
        reply = call.recv()
    finally:
        call.close()
    assert reply.type == "error" and reply.fields["code"] == "invalid" and "not a request" in reply.fields["message"]
    victim.join(120)
    assert victim.error is None and not (victim.result.face_labels == 0).all()


def _fake(cap):
    from partdistill.shared.result import SegmentationResult

    n = cap.mesh.n_faces
    return SegmentationResult(
        ("top", "leg"), np.zeros(n, np.int32), np.ones(n, np.float32), np.zeros(cap.mesh.n_polygons, np.int32)
    )


def test_a_listed_server_refuses_a_key_that_is_not_listed_in_the_handshake(keyed):
    s, pub, client_for = keyed(listed=["alice"])
    assert client_for("alice").hello()["server"] == "partdistill"
    with pytest.raises(BackendError) as e:
        client_for("mallory", timeout_s=5).ping()
    assert e.value.code == "refused"


# ---- shutting down, restarting ------------------------------------------------------------------


def _free_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def _serve(address: str, log) -> subprocess.Popen:
    proc = subprocess.Popen([*CLI, "serve", "--bind", address], stderr=log, env={**os.environ, "OMP_NUM_THREADS": "1"})
    BackendClient(address, timeout_s=120).ping()
    return proc


def test_sigterm_stops_a_server_as_ctrl_c_does(scene, tmp_path):
    address = _free_address()
    with open(tmp_path / "server.log", "w") as log:
        proc = _serve(address, log)
    job = _Job(BackendClient(address, timeout_s=30), scene)
    proc.send_signal(signal.SIGTERM)
    job.join()
    assert proc.wait(30) == 0
    assert isinstance(job.error, BackendError) and job.error.code == "cancelled"
    assert "shutting down" in job.error.message


def test_a_restarted_server_says_the_job_was_lost_and_the_client_sends_it_again(scene, tmp_path):
    address = _free_address()
    with open(tmp_path / "server.log", "w") as log:
        proc = _serve(address, log)
        heard = []
        client = BackendClient(address, timeout_s=60)
        cap, det = scene
        job = threading.Thread(
            target=lambda: heard.append(
                client.segment(
                    cap,
                    cap.part_names,
                    SegmentOptions(n_points=1024, epochs=300, refine="none"),
                    det,
                    on_progress=lambda d, t, stage, m: (stages.append(stage), heard.append(m)),
                )
            )
        )
        stages = []
        job.start()
        deadline = time.monotonic() + 60
        while "distill" not in stages:  # distillation under way
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.kill()  # no goodbye
        proc.wait()
        proc = _serve(address, log)
        job.join(120)
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert any("sending the job again" in m and "holds no job" in m for m in heard if isinstance(m, str)), heard
    assert heard[-1].face_labels.shape == (cap.mesh.n_faces,)


def test_a_server_that_dies_for_good_is_reported_after_the_clients_timeout(scene, tmp_path):
    address = _free_address()
    with open(tmp_path / "server.log", "w") as log:
        proc = _serve(address, log)
    job = _Job(BackendClient(address, timeout_s=3), scene)
    proc.kill()  # no goodbye, and nobody starts it again
    t0 = time.monotonic()
    proc.wait()
    job.join(30)
    assert isinstance(job.error, BackendGone) and "did not come back within 3 s" in str(job.error)
    assert 3 <= time.monotonic() - t0 < 10
