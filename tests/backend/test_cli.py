"""The ``partdistill`` CLI, in-process on synthetic capture bundles (no Blender): the outputs of
``segment`` and one clear line on stderr with exit status 2 for every user error."""

from __future__ import annotations

import contextlib
import io
import json
import re
import stat
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from partdistill.backend import cli
from partdistill.backend.cli.keys import load_server_keys
from partdistill.backend.io.glb import read_glb_json
from partdistill.backend.metrics import shape_miou
from partdistill.bench.simulated import simulate_detections
from partdistill.shared.bundle import save_bundle
from partdistill.shared.detections import Detections
from PIL import Image
from synthetic import capture_of, table


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("cli_inputs")
    mesh, gt, names = table()
    capture = capture_of(mesh, gt, names, n_views=4, size=64)
    bundle = save_bundle(folder / "table.npz", capture)
    detections = simulate_detections(capture)
    det = folder / "det.json"
    detections.save_json(det)
    return {"folder": folder, "capture": capture, "bundle": bundle, "det": det, "detections": detections}


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def _segment(inputs: dict, out: Path, *extra) -> tuple[int, str, str]:
    return _run(
        [
            "segment",
            inputs["bundle"],
            "--parts",
            "top,leg",
            "--detections",
            inputs["det"],
            "--out",
            out,
            "--quiet",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def distilled(inputs, tmp_path_factory) -> dict:
    import torch

    out = tmp_path_factory.mktemp("cli_distill")
    # one intra-op thread: on a busy 2-core machine two spinning OpenMP threads made this run 10x slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc, stdout, stderr = _segment(inputs, out, "--points", "2048", "--epochs", "60")
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
    rc, stdout, stderr = _segment(inputs, tmp_path, "--method", method)
    assert rc == 0, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.json", "labels.npz", "preview.png", "segmented.glb"]
    labels = _check_labels(tmp_path, 60, 30)
    assert _printed_miou(stdout) > 50
    if method != "vote":  # the filling baselines label every face
        assert (labels["face_labels"] >= 0).all()


# ---- user errors: exit status 2, one line on stderr, no traceback --------------------------------


def _assert_one_line_error(rc: int, stderr: str, *needles: str) -> None:
    assert rc == 2
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("partdistill: error: "), stderr
    for n in needles:
        assert n in lines[0], stderr


def test_an_unknown_input_suffix_is_a_user_error(tmp_path):
    path = tmp_path / "shape.abc"
    path.write_text("0 0 0\n")
    rc, _, err = _run(["segment", path, "--parts", "a", "--out", tmp_path / "out"])
    _assert_one_line_error(rc, err, "'.abc'")
    assert not (tmp_path / "out").exists()


def test_a_point_cloud_too_small_to_capture_is_a_user_error(tmp_path):
    path = tmp_path / "points.xyz"
    path.write_text("0 0 0\n")
    rc, _, err = _run(["segment", path, "--parts", "a", "--out", tmp_path / "out"])
    _assert_one_line_error(rc, err, "points.xyz", "at least 4 points")
    assert not (tmp_path / "out").exists()


def test_a_missing_input_file_is_a_user_error(tmp_path):
    rc, _, err = _run(["segment", tmp_path / "none.npz", "--parts", "a", "--out", tmp_path / "out"])
    _assert_one_line_error(rc, err, "input: not found", "none.npz")


def test_a_broken_bundle_is_a_user_error(tmp_path):
    (tmp_path / "broken.npz").write_bytes(b"garbage")
    rc, _, err = _run(["segment", tmp_path / "broken.npz", "--parts", "a", "--out", tmp_path / "out"])
    _assert_one_line_error(rc, err, "input: ")


@pytest.mark.parametrize("parts", ["", " , ,"])
def test_empty_parts_is_a_user_error(inputs, tmp_path, parts):
    rc, _, err = _run(["segment", inputs["bundle"], "--parts", parts, "--out", tmp_path])
    _assert_one_line_error(rc, err, "--parts")


def test_detections_and_teacher_together_is_a_user_error(inputs, tmp_path):
    rc, _, err = _run(
        [
            "segment",
            inputs["bundle"],
            "--parts",
            "top,leg",
            "--detections",
            inputs["det"],
            "--teacher",
            "grounding_dino",
            "--out",
            tmp_path,
        ]
    )
    _assert_one_line_error(rc, err, "--detections", "--teacher")


def test_detections_with_the_wrong_number_of_views_is_a_user_error(inputs, tmp_path):
    d = inputs["detections"]
    Detections(d.part_names, d.views[:-1], d.image_size).save_json(tmp_path / "three.json")
    rc, _, err = _run(
        [
            "segment",
            inputs["bundle"],
            "--parts",
            "top,leg",
            "--detections",
            tmp_path / "three.json",
            "--out",
            tmp_path / "out",
        ]
    )
    _assert_one_line_error(rc, err, "views: ", "3", "4")
    assert not (tmp_path / "out").exists()


def test_detections_made_for_another_view_size_is_a_user_error(inputs, tmp_path):
    d = inputs["detections"]
    Detections(d.part_names, d.views, (128, 128)).save_json(tmp_path / "big.json")
    rc, _, err = _run(
        [
            "segment",
            inputs["bundle"],
            "--parts",
            "top,leg",
            "--detections",
            tmp_path / "big.json",
            "--out",
            tmp_path / "out",
        ]
    )
    _assert_one_line_error(rc, err, "image_size: ")


def test_a_missing_teacher_model_says_how_to_provide_one(inputs, tmp_path):
    rc, _, err = _run(
        [
            "segment",
            inputs["bundle"],
            "--parts",
            "top,leg",
            "--teacher-model",
            "/nonexistent/folder",
            "--out",
            tmp_path / "out",
        ]
    )
    _assert_one_line_error(
        rc, err, "/nonexistent/folder", "(set it with --teacher-model NAME_OR_FOLDER, or --detections FILE.json)"
    )
    assert not (tmp_path / "out").exists()


def test_a_dead_backend_times_out_with_a_user_error(inputs, tmp_path):
    t0 = time.monotonic()
    rc, _, err = _run(
        [
            "segment",
            inputs["bundle"],
            "--parts",
            "top,leg",
            "--detections",
            inputs["det"],
            "--backend",
            "tcp://127.0.0.1:1",
            "--timeout",
            "0.5",
            "--quiet",
            "--out",
            tmp_path / "out",
        ]
    )
    assert time.monotonic() - t0 < 10
    _assert_one_line_error(rc, err, "tcp://127.0.0.1:1")
    assert not (tmp_path / "out").exists()


# ---- keys ---------------------------------------------------------------------------------------


def test_keys_writes_a_curve_key_pair_with_a_private_secret(tmp_path):
    import zmq
    import zmq.auth

    rc, stdout, _ = _run(["keys", tmp_path / "keys"])
    assert rc == 0 and "server.key" in stdout
    secret_file = tmp_path / "keys" / "server.key_secret"
    public, secret = zmq.auth.load_certificate(str(secret_file))  # ZeroMQ certificate files
    assert len(public) == len(secret) == 40  # Z85 of 32 bytes
    assert zmq.curve_public(secret) == public
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert load_server_keys(tmp_path / "keys") == (secret, public)


def test_serve_with_missing_keys_is_a_user_error(tmp_path):
    rc, _, err = _run(["serve", "--bind", "tcp://127.0.0.1:0", "--curve-keys", tmp_path / "nokeys"])
    _assert_one_line_error(rc, err, "partdistill keys")


def test_a_probably_wrong_result_prints_a_warning_and_keeps_it_in_labels_json(inputs, tmp_path):
    d = inputs["detections"]
    # every detection relabelled "leg": the vote gives every seen face to the legs
    legs = Detections(d.part_names, [[replace(x, part=1) for x in v] for v in d.views], d.image_size)
    legs.save_json(tmp_path / "legs.json")
    out = tmp_path / "out"
    rc, _, err = _run(
        [
            "segment",
            inputs["bundle"],
            "--parts",
            "top,leg",
            "--detections",
            tmp_path / "legs.json",
            "--method",
            "vote",
            "--out",
            out,
            "--quiet",
        ]
    )
    assert rc == 0
    assert "partdistill: warning: 'leg' covers" in err
    doc = json.loads((out / "labels.json").read_text())
    assert any("'leg' covers" in w for w in doc["warnings"])
    assert doc["coverage"]["top"]["faces"] == 0


# ---- one-line errors for bad input, before the work -----------------------------------------------


def test_png_bytes_named_obj_are_refused_by_name(tmp_path):
    fake = tmp_path / "mesh.obj"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    rc, _, err = _run(
        ["segment", fake, "--parts", "a", "--detections", tmp_path / "none.json", "--out", tmp_path / "o"]
    )
    _assert_one_line_error(rc, err, "PNG image")


def test_an_obj_with_a_nan_vertex_is_refused(tmp_path):
    obj = tmp_path / "nan.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 0 nan 0\nf 1 2 3\n")
    rc, _, err = _run(["capture", obj, "--out", tmp_path / "c.npz"])
    _assert_one_line_error(rc, err, "NaN or infinite")


def test_a_malformed_backend_address_is_a_one_line_error(inputs, tmp_path):
    rc, _, err = _segment(inputs, tmp_path / "out", "--backend", "nonsense")
    _assert_one_line_error(rc, err, "nonsense")


def test_out_that_is_a_file_is_refused_before_any_work(inputs, tmp_path):
    (tmp_path / "out").write_text("not a folder")
    rc, _, err = _segment(inputs, tmp_path / "out")
    _assert_one_line_error(rc, err, "is a file")


def test_a_reused_out_folder_keeps_no_stale_outputs(inputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "loss.png").write_bytes(b"from an earlier run")
    rc, _, err = _segment(inputs, out, "--method", "vote")  # voting draws no loss curve
    assert rc == 0, err
    assert not (out / "loss.png").exists() and (out / "labels.npz").exists()


def test_a_garbage_key_file_is_a_one_line_error(inputs, tmp_path):
    key = tmp_path / "server.key"
    key.write_text("this is not a key")
    rc, _, err = _segment(inputs, tmp_path / "out", "--backend", "tcp://127.0.0.1:5999", "--server-key", key)
    _assert_one_line_error(rc, err, "server.key")


def test_serving_on_a_port_in_use_is_a_one_line_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        rc, _, err = _run(["serve", "--bind", f"tcp://127.0.0.1:{s.getsockname()[1]}"])
    assert rc == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("partdistill: error: ") and "in use" in err


def test_more_part_names_than_allowed_says_so(inputs, tmp_path):
    parts = ",".join(f"part{i}" for i in range(65))
    rc, _, err = _run(["segment", inputs["bundle"], "--parts", parts, "--out", tmp_path / "out"])
    _assert_one_line_error(rc, err, "--parts: 65 part names, more than the 64 allowed")


def test_the_help_says_semicolons_separate_part_names_too(capsys):
    with pytest.raises(SystemExit):
        cli.main(["segment", "--help"])
    assert "commas or semicolons" in " ".join(capsys.readouterr().out.split())


def test_views_that_show_nothing_of_the_object_are_refused_before_the_teacher(inputs, tmp_path):
    cap = inputs["capture"]
    blank = replace(cap, face_id=np.full_like(cap.face_id, -1), warnings=[])
    blank.face_id[0, 0, 0] = 0  # one pixel of the object in four views
    save_bundle(tmp_path / "blank.npz", blank)
    rc, _, err = _run(
        [
            "segment",
            tmp_path / "blank.npz",
            "--parts",
            "top,leg",
            "--out",
            tmp_path / "out",
            "--teacher",
            "grounding_dino",
            "--teacher-model",
            tmp_path / "no-such-model",
        ]
    )
    _assert_one_line_error(rc, err, "capture: the views show almost nothing of the object (1 object pixels in 4 views")
    assert not (tmp_path / "out").exists()


def test_a_capture_keeps_its_warnings_through_the_bundle_into_the_result(inputs, tmp_path):
    cap = replace(inputs["capture"], warnings=["table.obj: the import kept 58 of the file's 60 faces"])
    save_bundle(tmp_path / "warned.npz", cap)
    rc, _, err = _run(
        [
            "segment",
            tmp_path / "warned.npz",
            "--parts",
            "top,leg",
            "--detections",
            inputs["det"],
            "--method",
            "vote",
            "--out",
            tmp_path / "out",
        ]
    )
    assert rc == 0 and "kept 58 of the file's 60 faces" in err
    doc = json.loads((tmp_path / "out" / "labels.json").read_text())
    assert doc["warnings"][0] == "table.obj: the import kept 58 of the file's 60 faces"
