"""``partdistill batch --ray`` against a local Ray instance of 2 worker processes (``ray start``):
the same outputs, failure report, index and resume as a local batch."""

from __future__ import annotations

import csv
import importlib.util
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("bpy")
if importlib.util.find_spec("ray") is None:  # not imported here: Ray reads RAY_AUTH_MODE when first imported
    pytest.skip("Ray is not installed (the ray extra)", allow_module_level=True)

from test_batch_bpy import FAST, _run, collection  # noqa: E402, F401 (the fixture is used by name)

RAY = str(Path(sys.executable).with_name("ray"))


@pytest.fixture
def ray_cluster(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # `ray start` makes a cluster that wants its token
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = [RAY, "start", "--head", "--num-cpus", "2", "--port", str(port), "--node-ip-address", "127.0.0.1",
             "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", temp]  # fmt: skip
    subprocess.run(start, check=True, capture_output=True)
    yield f"127.0.0.1:{port}"
    subprocess.run([RAY, "stop", "--force"], capture_output=True)
    shutil.rmtree(temp, ignore_errors=True)


def test_batch_on_a_ray_cluster_labels_reports_and_resumes(collection, ray_cluster, tmp_path):  # noqa: F811
    d, chair_dets = collection
    folder = tmp_path / "in"
    shutil.copytree(d, folder)
    (folder / "broken.obj").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    chair_dets.save_json(folder / "chair.detections.json")
    out = tmp_path / "out"
    argv = ["batch", folder, "--parts", "top,leg,seat,back", "--out", out, "--ray", ray_cluster, *FAST]
    rc, stdout, err = _run(argv)
    assert rc == 1, err
    rows = {r["input"].rsplit("/", 1)[-1]: r for r in csv.DictReader(open(out / "index.csv"))}
    assert {k: r["status"] for k, r in rows.items()} == {
        "table0.npz": "done", "table1.npz": "done", "chair.obj": "done", "broken.obj": "failed"}  # fmt: skip
    assert "PNG image" in rows["broken.obj"]["reason"]
    for name in ("table0", "table1", "chair"):
        assert (out / name / "labels.npz").is_file()
    rc, stdout, err = _run(argv)
    assert rc == 1 and "done 0, failed 1, skipped 3" in stdout, stdout + err
