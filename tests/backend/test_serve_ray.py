"""``partdistill serve --ray local`` as deployed: a keyed front door in its own process, its jobs on a
private local Ray instance with two worker actors. The same answers as in process; the allow-list,
ownership and quotas hold in front of the cluster; a silent client's job stops on its worker; a job
whose worker is killed is sent again and answered."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.auth
from partdistill.backend.tta import segment
from partdistill.bench.simulated import simulate_detections
from partdistill.shared.bundle import save_bundle
from partdistill.shared.client import BackendClient, BackendError
from partdistill.shared.keys import read_key
from partdistill.shared.options import SegmentOptions
from synthetic import capture_of, table

if __import__("importlib").util.find_spec("ray") is None:
    pytest.skip("Ray is not installed (the ray extra)", allow_module_level=True)

CLI = [sys.executable, "-m", "partdistill.backend.cli"]
QUICK = SegmentOptions(n_points=1024, epochs=30, refine="none")


@pytest.fixture(scope="module")
def scene():
    mesh, gt, names = table()
    cap = capture_of(mesh, gt, names, n_views=4, size=64)
    return cap, simulate_detections(cap)


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    """The served front door: (address, log path, client_for(name) with that client's own keys)."""
    folder = tmp_path_factory.mktemp("front")
    keys = folder / "keys"
    keys.mkdir()
    zmq.auth.create_certificates(str(keys), "server")
    server_pub = read_key(keys / "server.key")
    clients = {n: zmq.curve_keypair() for n in ("alice", "bob")}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_TMPDIR": ray_tmp}
    env.pop("RAY_AUTH_TOKEN", None)
    log = folder / "server.log"
    command = [
        *CLI,
        "serve",
        "--bind",
        address,
        "--curve-keys",
        str(keys),
        "--ray",
        "local",
        "--ray-workers",
        "2",
        "--client-timeout",
        "3",
        "--max-jobs-per-client",
        "2",
    ]
    with open(log, "w") as fh:
        proc = subprocess.Popen(command, stderr=fh, env=env, start_new_session=True)

    def client_for(name: str, **kw) -> BackendClient:
        kw.setdefault("timeout_s", 60)
        pub, sec = clients[name]
        return BackendClient(address, server_public_key=server_pub, client_public_key=pub, client_secret_key=sec, **kw)

    try:
        client_for("alice", timeout_s=180).ping()
        yield address, log, client_for
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _workers() -> dict[int, str]:
    """The worker actors' processes: pid -> what each is doing (Ray names its processes)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("ray::SegmentWorker"):
                out[int(entry.name)] = title.strip()
    return out


def _wait_log(log: Path, pattern: str, timeout_s: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if re.search(pattern, log.read_text()):
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def test_jobs_on_the_cluster_give_the_in_process_answer(front, scene):
    cap, det = scene
    _, _, client_for = front
    over_the_cluster = client_for("alice").segment(cap, ("leg", "top"), QUICK, det)
    in_process = segment(cap, ("leg", "top"), options=QUICK, detections=det)
    np.testing.assert_array_equal(over_the_cluster.face_labels, in_process.face_labels)
    assert len(_workers()) == 2


def test_in_front_of_the_cluster_models_are_closed_and_jobs_are_their_owners(front, scene, tmp_path):
    cap, det = scene
    _, _, client_for = front
    alice, bob = client_for("alice"), client_for("bob")
    with pytest.raises(BackendError) as e:
        alice.segment(cap, cap.part_names, SegmentOptions(backbone=str(tmp_path)), det)
    assert e.value.field == "options.backbone" and "not an allowed model here" in e.value.message
    started = threading.Event()
    ended: list = []

    def long_job():
        try:
            alice.segment(
                cap,
                cap.part_names,
                SegmentOptions(n_points=1024, epochs=2000),
                det,
                job="hers",
                on_progress=lambda done, total, stage, m: stage == "distill" and started.set(),
            )
        except BackendError as err:
            ended.append(err)

    t = threading.Thread(target=long_job)
    t.start()
    assert started.wait(60), ended
    with pytest.raises(BackendError, match="no running or queued job 'hers' of yours"):
        bob.cancel("hers")
    assert bob.status()["jobs"] == []
    alice.cancel("hers")
    t.join(60)
    assert ended and ended[0].code == "cancelled"


_SILENT = """
import sys
from partdistill.shared.bundle import load_bundle
from partdistill.shared.client import BackendClient
from partdistill.shared.detections import Detections
from partdistill.shared.options import SegmentOptions
server, pub, sec, bundle = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode(), sys.argv[4]
cap = load_bundle(bundle)
det = Detections.load_json(sys.argv[5])
def progress(done, total, stage, message):
    if stage == "distill":
        print("distilling", flush=True)
from partdistill.shared.keys import read_key
BackendClient(server, timeout_s=60, server_public_key=read_key(sys.argv[6]),
              client_public_key=pub, client_secret_key=sec).segment(
    cap, cap.part_names, SegmentOptions(n_points=1024, epochs=2000), det, job="silent-client", on_progress=progress)
"""


def test_a_killed_clients_job_stops_on_its_worker_within_the_heartbeat_period(front, scene, tmp_path):
    cap, det = scene
    address, log, client_for = front
    save_bundle(tmp_path / "c.npz", cap)
    det.save_json(tmp_path / "d.json")
    c = client_for("bob")
    pub, sec = c.client_keys
    server_key = log.parent / "keys" / "server.key"
    p = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SILENT,
            address,
            pub.decode(),
            sec.decode(),
            str(tmp_path / "c.npz"),
            str(tmp_path / "d.json"),
            str(server_key),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout.readline().strip() == "distilling"
    p.kill()
    p.wait()
    seconds = _wait_log(log, r"job silent-client: cancelled", 30)
    assert seconds is not None and seconds < 3 + 2 * 2.0 + 2.0  # its timeout, two heartbeats, an epoch


def test_a_job_whose_worker_is_killed_is_sent_again_and_answered(front, scene):
    cap, det = scene
    _, log, client_for = front
    heard: list[str] = []
    box: dict = {}
    running = threading.Event()

    def job():
        def progress(done, total, stage, message):
            heard.append(message)
            if stage == "distill":
                running.set()

        box["result"] = client_for("alice").segment(
            cap, cap.part_names, SegmentOptions(n_points=1024, epochs=200, refine="none"), det, on_progress=progress
        )

    t = threading.Thread(target=job)
    t.start()
    assert running.wait(60)
    busy = [pid for pid, title in _workers().items() if ".run" in title]
    assert len(busy) == 1, _workers()
    os.kill(busy[0], signal.SIGKILL)
    t.join(180)
    assert "result" in box and box["result"].face_labels.shape == (cap.mesh.n_faces,)
    assert any("its worker died; sent again" in m for m in heard), heard
