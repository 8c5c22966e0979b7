"""``partdistill batch --ray`` against a local Ray instance of 2 worker processes (``ray start``):
the same outputs, failure report, index and resume as a local batch."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("bpy")
if importlib.util.find_spec("ray") is None:  # not imported here: Ray reads RAY_AUTH_MODE when first imported
    pytest.skip("Ray is not installed (the ray extra)", allow_module_level=True)

from cli_in_process import run_cli  # noqa: E402
from test_batch_bpy import FAST, collection  # noqa: E402, F401 (the fixture is used by name)

RAY = str(Path(sys.executable).with_name("ray"))


@pytest.fixture(scope="module")
def ray_cluster():
    """A Ray head of 2 CPUs made for these tests alone: ``(address, token file)``. Its token is a fresh
    secret in a file of its own (nothing in the user's ``~/.ray`` is read or written), its temp folder
    is its own, and it runs as ``ray start --block`` in a process group of its own, stopped by
    signalling that process (Ray then stops the node's processes) and the group, never by
    ``ray stop``, which ends every Ray cluster on the machine."""
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    token = Path(temp) / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_TOKEN"}  # it would take precedence
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = [
        RAY,
        "start",
        "--head",
        "--block",
        "--num-cpus",
        "2",
        "--port",
        str(port),
        "--node-ip-address",
        "127.0.0.1",
        "--include-dashboard",
        "false",
        "--disable-usage-stats",
        "--temp-dir",
        temp,
    ]
    log = Path(temp) / "ray-start.log"
    with open(log, "w") as fh:
        head = subprocess.Popen(start, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (Path(temp) / "ray_current_cluster").exists():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start failed:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}", token
    finally:
        head.terminate()  # `ray start --block` stops its node's processes on SIGTERM
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # whatever of the group outlived it
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def _cli(argv, env: dict[str, str]) -> subprocess.Popen:
    """``partdistill ARGV`` started as its own process (Ray caches the token a process read once)."""
    command = [sys.executable, "-m", "partdistill.backend.cli", *map(str, argv)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _user_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with an empty home and no Ray token of their own."""
    drop = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE", "RAY_ADDRESS")
    home.mkdir(exist_ok=True)
    return {**{k: v for k, v in os.environ.items() if k not in drop}, "HOME": str(home), **extra}


def test_batch_on_a_ray_cluster_labels_reports_and_resumes(collection, ray_cluster, tmp_path, monkeypatch):  # noqa: F811
    address, token = ray_cluster
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # this process is the driver: it offers the cluster's token
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    d, chair_dets = collection
    folder = tmp_path / "in"
    shutil.copytree(d, folder)
    (folder / "broken.obj").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    chair_dets.save_json(folder / "chair.detections.json")
    out = tmp_path / "out"
    argv = ["batch", folder, "--parts", "top,leg,seat,back", "--out", out, "--ray", address, *FAST]
    rc, stdout, err = run_cli(argv)
    assert rc == 1, err
    rows = {r["input"].rsplit("/", 1)[-1]: r for r in csv.DictReader(open(out / "index.csv"))}
    assert {k: r["status"] for k, r in rows.items()} == {
        "table0.npz": "done",
        "table1.npz": "done",
        "chair.obj": "done",
        "broken.obj": "failed",
    }
    assert "PNG image" in rows["broken.obj"]["reason"]
    for name in ("table0", "table1", "chair"):
        assert (out / name / "labels.npz").is_file()
    rc, stdout, err = run_cli(argv)
    assert rc == 1 and "done 0, failed 1, skipped 3" in stdout, stdout + err


def test_a_cluster_that_refuses_the_users_token_is_one_line_that_says_what_to_do(collection, ray_cluster, tmp_path):  # noqa: F811
    address, _ = ray_cluster
    table0 = collection[0] / "table0.npz"
    offers = {"no token": {}, "a wrong token": {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64}}
    runs = {}
    for k, (offer, extra) in enumerate(offers.items()):  # both at once: each waits out Ray's retries
        argv = ["batch", table0, "--parts", "top,leg", "--out", tmp_path / f"out{k}", "--ray", address, *FAST]
        runs[offer] = _cli(argv, _user_env(tmp_path / f"home{k}", **extra))
    for offer, run in runs.items():
        stdout, stderr = run.communicate(timeout=300)
        lines = [ln for ln in stderr.strip().splitlines() if not ln.startswith("1 inputs:")]
        assert run.returncode == 2 and len(lines) == 1, f"{offer}: {stderr[-3000:]}"
        assert lines[0].startswith(f"partdistill: error: --ray: the Ray cluster at {address} refused "), lines[0]
        said = "the token in RAY_AUTH_TOKEN" if offer == "a wrong token" else "to connect without a token"
        assert said in lines[0] and "`ray get-auth-token` on its head node" in lines[0], lines[0]
    assert not list(tmp_path.glob("out*/table0"))


def test_a_local_ray_instance_needs_nothing_from_the_users_home(collection, tmp_path):  # noqa: F811
    """``--ray local`` on a machine that never ran Ray, even with token mode asked for: the private
    instance gets a token of its own, and nothing is written to the user's home."""
    d, _ = collection
    home, ray_tmp = tmp_path / "home", Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short socket paths
    try:
        env = _user_env(home, RAY_AUTH_MODE="token", RAY_TMPDIR=str(ray_tmp))
        run = _cli(
            ["batch", d / "table0.npz", "--parts", "top,leg", "--out", tmp_path / "out", "--ray", "local", *FAST], env
        )
        _, stderr = run.communicate(timeout=300)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert run.returncode == 0, stderr[-3000:]
    assert (tmp_path / "out" / "table0" / "labels.npz").is_file()
    assert not (home / ".ray").exists()
