"""Many workers behind one address, as deployed: ``partdistill broker`` and three ``partdistill serve
--connect`` workers as separate processes on loopback. A worker killed mid-job: the client's retry
lands on another worker and the answer is the in-process one; a dead broker is reported at once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from partdistill.backend.tta import segment
from partdistill.bench.simulated import simulate_detections
from partdistill.shared.client import BackendClient, BackendGone, BackendTimeout
from partdistill.shared.options import SegmentOptions
from synthetic import capture_of, table

CLI = [sys.executable, "-m", "partdistill.backend.cli"]
OPTS = SegmentOptions(n_points=1024, epochs=40, refine="none")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    front, back = f"tcp://127.0.0.1:{_free_port()}", f"tcp://127.0.0.1:{_free_port()}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = {"broker": subprocess.Popen([*CLI, "broker", "--frontend", front, "--backend", back], env=env,
                                        stderr=open(tmp_path / "broker.log", "w"))}  # fmt: skip
    for i in range(3):
        log = open(tmp_path / f"worker{i}.log", "w")
        procs[f"worker{i}"] = subprocess.Popen([*CLI, "serve", "--connect", back], env=env, stderr=log)
    deadline = time.monotonic() + 120
    while not all("connected to" in (tmp_path / f"worker{i}.log").read_text() for i in range(3)):
        assert time.monotonic() < deadline, "workers did not start"
        assert all(p.poll() is None for p in procs.values()), "a process of the cluster died"
        time.sleep(0.2)
    yield front, procs, tmp_path
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs.values():
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture(scope="module")
def scene():
    mesh, gt, names = table()
    cap = capture_of(mesh, gt, names, n_views=4, size=64)
    return cap, simulate_detections(cap)


def _named(result) -> np.ndarray:
    return np.asarray(result.part_names)[result.face_labels]


def _worker_running(tmp_path: Path, job: str, deadline_s: float = 60) -> str:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        for i in range(3):
            if f"job {job}: running" in (tmp_path / f"worker{i}.log").read_text():
                return f"worker{i}"
        time.sleep(0.05)
    raise AssertionError(f"no worker took job {job}")


def test_a_worker_killed_mid_job_costs_one_retry_and_the_answer_is_the_in_process_one(
    cluster, scene, torch_single_thread
):
    front, procs, logs = cluster
    cap, det = scene
    expected = {
        order: _named(segment(cap, order, options=OPTS, detections=det)) for order in (("top", "leg"), ("leg", "top"))
    }
    long = SegmentOptions(n_points=1024, epochs=600, refine="none")
    box = {}

    def run():
        try:
            box["result"] = BackendClient(front, timeout_s=4).segment(cap, ("leg", "top"), long, det, job="victim")
        except Exception as e:  # noqa: BLE001 - the assertion below shows it
            box["error"] = e

    t = threading.Thread(target=run)
    t.start()
    victim = _worker_running(logs, "victim")
    time.sleep(0.5)
    procs[victim].kill()  # mid-job, without a goodbye
    t.join(240)
    assert "error" not in box, box.get("error")
    assert box["result"].face_labels.shape == (cap.mesh.n_faces,)
    others = [f"worker{i}" for i in range(3) if f"worker{i}" != victim]
    assert any("job victim: result" in (logs / f"{w}.log").read_text() for w in others)

    # the survivors answer concurrent clients with the in-process labels, whatever the part order
    results: dict = {}

    def one(k: int, order):
        results[k] = (order, BackendClient(front, timeout_s=30).segment(cap, order, OPTS, det))

    threads = [
        threading.Thread(target=one, args=(k, order)) for k, order in enumerate([("top", "leg"), ("leg", "top")] * 2)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(240)
    assert len(results) == 4
    for order, res in results.values():
        assert res.part_names == order
        np.testing.assert_array_equal(_named(res), expected[order])


def test_a_dead_broker_is_reported_within_the_clients_timeout(cluster, scene):
    front, procs, logs = cluster
    cap, det = scene
    box = {}

    def run():
        try:
            BackendClient(front, timeout_s=30).segment(
                cap, cap.part_names, SegmentOptions(n_points=1024, epochs=2000), det, job="orphaned"
            )
        except BackendTimeout as e:
            box["error"], box["at"] = e, time.monotonic()

    t = threading.Thread(target=run)
    t.start()
    _worker_running(logs, "orphaned")
    procs["broker"].kill()
    killed = time.monotonic()
    t.join(60)
    assert isinstance(box["error"], BackendGone)
    assert box["at"] - killed < 30


def test_a_broker_with_keys_lets_in_listed_clients_and_its_workers_only(scene, tmp_path):
    """`partdistill broker` with CURVE on both sides and ZAP at the front: a listed client is served by
    a worker that proves itself with the broker's key pair; a stranger is refused at once."""
    from partdistill.shared.client import BackendRefused
    from partdistill.shared.keys import read_key

    cap, det = scene
    keys, clients = tmp_path / "keys", tmp_path / "clients"
    for argv in (["keys", keys], ["keys", clients, "--client", "alice"]):
        subprocess.run([*CLI, *map(str, argv)], check=True, capture_output=True)
    pub = read_key(keys / "server.key")
    alice = clients / "alice.key_secret"
    front, back = f"tcp://127.0.0.1:{_free_port()}", f"tcp://127.0.0.1:{_free_port()}"
    broker = subprocess.Popen([*CLI, "broker", "--frontend", front, "--backend", back, "--curve-keys", str(keys),
                               "--clients", str(clients)], stderr=open(tmp_path / "broker.log", "w"))  # fmt: skip
    worker = subprocess.Popen([*CLI, "serve", "--connect", back, "--curve-keys", str(keys)],
                              stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    try:
        client = BackendClient(front, timeout_s=60, server_public_key=pub, client_public_key=read_key(alice),
                               client_secret_key=read_key(alice, secret=True))  # fmt: skip
        res = client.segment(cap, cap.part_names, OPTS, det)
        assert res.face_labels.shape == (cap.mesh.n_faces,)
        with pytest.raises(BackendRefused):
            BackendClient(front, timeout_s=5, server_public_key=pub).ping()
        assert broker.poll() is None, (tmp_path / "broker.log").read_text()  # it survived the handshakes
    finally:
        for p in (worker, broker):
            p.kill()
            p.wait()
