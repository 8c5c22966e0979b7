"""The ``partdistill`` CLI, in-process on synthetic capture bundles (no Blender): the outputs of
``segment``, the keys, the warnings of a probably wrong result; its user errors are in
``test_cli_errors.py``."""

from __future__ import annotations

import json
import re
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from cli_in_process import run_cli
from cli_inputs import make_inputs, run_segment, segment_argv
from partdistill.backend import cli
from partdistill.backend.cli.keys import load_server_keys
from partdistill.backend.io.glb import read_glb_json
from partdistill.backend.metrics import shape_miou
from partdistill.shared.bundle import save_bundle
from partdistill.shared.detections import Detections
from PIL import Image


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_inputs(tmp_path_factory.mktemp("cli_inputs"))


@pytest.fixture(scope="module")
def distilled(inputs, tmp_path_factory) -> dict:
    import torch

    out = tmp_path_factory.mktemp("cli_distill")
    # one intra-op thread: on a busy 2-core machine two spinning OpenMP threads made this run 10x slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc, stdout, stderr = run_segment(inputs, out, "--points", "2048", "--epochs", "60")
    finally:
        torch.set_num_threads(threads)
    return {"rc": rc, "stdout": stdout, "stderr": stderr, "out": out}


def _check_labels(out: Path, n_faces: int, n_polygons: int) -> dict:
    with np.load(out / "labels.npz", allow_pickle=False) as z:
        labels = {k: z[k] for k in z.files}
    assert set(labels) == {"face_labels", "face_confidence", "polygon_labels", "part_names"}
    assert labels["face_labels"].shape == (n_faces,) and labels["face_labels"].dtype == np.int32
    assert labels["face_confidence"].shape == (n_faces,) and labels["face_confidence"].dtype == np.float32
    assert 0 <= labels["face_confidence"].min() and labels["face_confidence"].max() <= 1
    assert labels["polygon_labels"].shape == (n_polygons,) and labels["polygon_labels"].dtype == np.int32
    assert labels["part_names"].tolist() == ["top", "leg"]
    assert -1 <= labels["face_labels"].min() and labels["face_labels"].max() <= 1
    doc = json.loads((out / "labels.json").read_text())
    assert doc["part_names"] == ["top", "leg"]
    assert (doc["n_faces"], doc["n_polygons"]) == (n_faces, n_polygons) and "face_labels" not in doc
    assert "total" in doc["timings"]
    assert isinstance(doc["warnings"], list)
    assert set(doc["coverage"]) >= {"top", "leg"}
    assert sum(c["faces"] for c in doc["coverage"].values()) == n_faces
    assert abs(sum(c["area"] for c in doc["coverage"].values()) - 1) < 1e-3
    glb = read_glb_json(out / "segmented.glb")
    assert glb["meshes"][0]["extras"]["part_names"] == ["top", "leg"]
    with Image.open(out / "preview.png") as im:
        im.verify()
    return labels


def _printed_miou(stdout: str) -> float:
    m = re.search(r"mIoU against the bundle's ground truth: (\d+\.\d)", stdout)
    assert m, stdout
    return float(m.group(1))


# ---- segment ------------------------------------------------------------------------------------


def test_segment_with_detections_writes_labels_mesh_preview_and_loss_curve(inputs, distilled):
    assert distilled["rc"] == 0, distilled["stderr"]
    out = distilled["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "labels.json",
        "labels.npz",
        "loss.png",
        "preview.png",
        "segmented.glb",
    ]
    labels = _check_labels(out, 60, 30)
    assert (labels["face_labels"] >= 0).any()
    with Image.open(out / "loss.png") as im:
        assert im.format == "PNG" and im.size[0] > 100


def test_segment_prints_the_miou_against_the_bundles_ground_truth(inputs, distilled):
    cap = inputs["capture"]
    with np.load(distilled["out"] / "labels.npz") as z:
        pred = z["face_labels"]
    want = 100 * shape_miou(pred, cap.gt_face_labels, 2, cap.mesh.face_areas())
    assert _printed_miou(distilled["stdout"]) == pytest.approx(want, abs=0.051)
    assert _printed_miou(distilled["stdout"]) > 80  # noise-free boxes on a table
    assert "segmented 60 faces into 2 parts" in distilled["stdout"]


@pytest.mark.parametrize("method", ["vote", "vote-fill", "superpoint"])
def test_segment_by_a_voting_baseline_writes_no_loss_curve(inputs, tmp_path, method):
    rc, stdout, stderr = run_segment(inputs, tmp_path, "--method", method)
    assert rc == 0, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.json", "labels.npz", "preview.png", "segmented.glb"]
    labels = _check_labels(tmp_path, 60, 30)
    assert _printed_miou(stdout) > 50
    if method != "vote":  # the filling baselines label every face
        assert (labels["face_labels"] >= 0).all()


# ---- keys, a probably wrong result ------------------------------------------------------------


def test_keys_writes_a_curve_key_pair_with_a_private_secret(tmp_path):
    import zmq
    import zmq.auth

    rc, stdout, _ = run_cli(["keys", tmp_path / "keys"])
    assert rc == 0 and "server.key" in stdout
    secret_file = tmp_path / "keys" / "server.key_secret"
    public, secret = zmq.auth.load_certificate(str(secret_file))  # ZeroMQ certificate files
    assert len(public) == len(secret) == 40  # Z85 of 32 bytes
    assert zmq.curve_public(secret) == public
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert load_server_keys(tmp_path / "keys") == (secret, public)


def test_a_probably_wrong_result_prints_a_warning_and_keeps_it_in_labels_json(inputs, tmp_path):
    d = inputs["detections"]
    # every detection relabelled "leg": the vote gives every seen face to the legs
    legs = Detections(d.part_names, [[replace(x, part=1) for x in v] for v in d.views], d.image_size)
    legs.save_json(tmp_path / "legs.json")
    out = tmp_path / "out"
    rc, _, err = run_cli(
        segment_argv(
            inputs["bundle"], "--detections", tmp_path / "legs.json", "--method", "vote", "--out", out, "--quiet"
        )
    )
    assert rc == 0
    assert "partdistill: warning: 'leg' covers" in err
    doc = json.loads((out / "labels.json").read_text())
    assert any("'leg' covers" in w for w in doc["warnings"])
    assert doc["coverage"]["top"]["faces"] == 0


# ---- outputs and help ------------------------------------------------------------------------


def test_a_reused_out_folder_keeps_no_stale_outputs(inputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "loss.png").write_bytes(b"from an earlier run")
    rc, _, err = run_segment(inputs, out, "--method", "vote")  # voting draws no loss curve
    assert rc == 0, err
    assert not (out / "loss.png").exists() and (out / "labels.npz").exists()


def test_the_help_says_semicolons_separate_part_names_too(capsys):
    with pytest.raises(SystemExit):
        cli.main(["segment", "--help"])
    assert "commas or semicolons" in " ".join(capsys.readouterr().out.split())


def test_a_capture_keeps_its_warnings_through_the_bundle_into_the_result(inputs, tmp_path):
    cap = replace(inputs["capture"], warnings=["table.obj: the import kept 58 of the file's 60 faces"])
    save_bundle(tmp_path / "warned.npz", cap)
    rc, _, err = run_cli(
        segment_argv(
            tmp_path / "warned.npz", "--detections", inputs["det"], "--method", "vote", "--out", tmp_path / "out"
        )
    )
    assert rc == 0 and "kept 58 of the file's 60 faces" in err
    doc = json.loads((tmp_path / "out" / "labels.json").read_text())
    assert doc["warnings"][0] == "table.obj: the import kept 58 of the file's 60 faces"
