"""The ``partdistill`` CLI's user errors, in-process on synthetic capture bundles (no Blender): exit
status 2 and one clear line on stderr, before any long work where it can be known."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
from cli_in_process import assert_one_line_error, run_cli
from cli_inputs import make_inputs, run_segment, segment_argv
from partdistill.shared.bundle import save_bundle
from partdistill.shared.detections import Detections


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_inputs(tmp_path_factory.mktemp("cli_inputs"))


# ---- inputs, parts, detections, teachers, backends --------------------------------------------


def test_an_unknown_input_suffix_is_a_user_error(tmp_path):
    path = tmp_path / "shape.abc"
    path.write_text("0 0 0\n")
    rc, _, err = run_cli(["segment", path, "--parts", "a", "--out", tmp_path / "out"])
    assert_one_line_error(rc, err, "'.abc'")
    assert not (tmp_path / "out").exists()


def test_a_point_cloud_too_small_to_capture_is_a_user_error(tmp_path):
    path = tmp_path / "points.xyz"
    path.write_text("0 0 0\n")
    rc, _, err = run_cli(["segment", path, "--parts", "a", "--out", tmp_path / "out"])
    assert_one_line_error(rc, err, "points.xyz", "at least 4 points")
    assert not (tmp_path / "out").exists()


def test_a_missing_input_file_is_a_user_error(tmp_path):
    rc, _, err = run_cli(["segment", tmp_path / "none.npz", "--parts", "a", "--out", tmp_path / "out"])
    assert_one_line_error(rc, err, "input: not found", "none.npz")


def test_a_broken_bundle_is_a_user_error(tmp_path):
    (tmp_path / "broken.npz").write_bytes(b"garbage")
    rc, _, err = run_cli(["segment", tmp_path / "broken.npz", "--parts", "a", "--out", tmp_path / "out"])
    assert_one_line_error(rc, err, "input: ")


@pytest.mark.parametrize("parts", ["", " , ,"])
def test_empty_parts_is_a_user_error(inputs, tmp_path, parts):
    rc, _, err = run_cli(["segment", inputs["bundle"], "--parts", parts, "--out", tmp_path])
    assert_one_line_error(rc, err, "--parts")


def test_detections_and_teacher_together_is_a_user_error(inputs, tmp_path):
    rc, _, err = run_cli(
        segment_argv(inputs["bundle"], "--detections", inputs["det"], "--teacher", "grounding_dino", "--out", tmp_path)
    )
    assert_one_line_error(rc, err, "--detections", "--teacher")


def test_detections_with_the_wrong_number_of_views_is_a_user_error(inputs, tmp_path):
    d = inputs["detections"]
    Detections(d.part_names, d.views[:-1], d.image_size).save_json(tmp_path / "three.json")
    rc, _, err = run_cli(
        segment_argv(inputs["bundle"], "--detections", tmp_path / "three.json", "--out", tmp_path / "out")
    )
    assert_one_line_error(rc, err, "views: ", "3", "4")
    assert not (tmp_path / "out").exists()


def test_detections_made_for_another_view_size_is_a_user_error(inputs, tmp_path):
    d = inputs["detections"]
    Detections(d.part_names, d.views, (128, 128)).save_json(tmp_path / "big.json")
    rc, _, err = run_cli(
        segment_argv(inputs["bundle"], "--detections", tmp_path / "big.json", "--out", tmp_path / "out")
    )
    assert_one_line_error(rc, err, "image_size: ")


def test_a_missing_teacher_model_says_how_to_provide_one(inputs, tmp_path):
    rc, _, err = run_cli(
        segment_argv(inputs["bundle"], "--teacher-model", "/nonexistent/folder", "--out", tmp_path / "out")
    )
    assert_one_line_error(
        rc, err, "/nonexistent/folder", "(set it with --teacher-model NAME_OR_FOLDER, or --detections FILE.json)"
    )
    assert not (tmp_path / "out").exists()


def test_a_dead_backend_times_out_with_a_user_error(inputs, tmp_path):
    t0 = time.monotonic()
    rc, _, err = run_cli(
        segment_argv(
            inputs["bundle"],
            "--detections",
            inputs["det"],
            "--backend",
            "tcp://127.0.0.1:1",
            "--timeout",
            "0.5",
            "--quiet",
            "--out",
            tmp_path / "out",
        )
    )
    assert time.monotonic() - t0 < 10
    assert_one_line_error(rc, err, "tcp://127.0.0.1:1")
    assert not (tmp_path / "out").exists()


def test_serve_with_missing_keys_is_a_user_error(tmp_path):
    rc, _, err = run_cli(["serve", "--bind", "tcp://127.0.0.1:0", "--curve-keys", tmp_path / "nokeys"])
    assert_one_line_error(rc, err, "partdistill keys")


# ---- one-line errors for bad input, before the work ------------------------------------------


def test_png_bytes_named_obj_are_refused_by_name(tmp_path):
    fake = tmp_path / "mesh.obj"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    rc, _, err = run_cli(
        ["segment", fake, "--parts", "a", "--detections", tmp_path / "none.json", "--out", tmp_path / "o"]
    )
    assert_one_line_error(rc, err, "PNG image")


def test_an_obj_with_a_nan_vertex_is_refused(tmp_path):
    obj = tmp_path / "nan.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 0 nan 0\nf 1 2 3\n")
    rc, _, err = run_cli(["capture", obj, "--out", tmp_path / "c.npz"])
    assert_one_line_error(rc, err, "NaN or infinite")


def test_a_malformed_backend_address_is_a_one_line_error(inputs, tmp_path):
    rc, _, err = run_segment(inputs, tmp_path / "out", "--backend", "nonsense")
    assert_one_line_error(rc, err, "nonsense")


def test_out_that_is_a_file_is_refused_before_any_work(inputs, tmp_path):
    (tmp_path / "out").write_text("not a folder")
    rc, _, err = run_segment(inputs, tmp_path / "out")
    assert_one_line_error(rc, err, "is a file")


def test_a_garbage_key_file_is_a_one_line_error(inputs, tmp_path):
    key = tmp_path / "server.key"
    key.write_text("this is not a key")
    rc, _, err = run_segment(inputs, tmp_path / "out", "--backend", "tcp://127.0.0.1:5999", "--server-key", key)
    assert_one_line_error(rc, err, "server.key")


def test_serving_on_a_port_in_use_is_a_one_line_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        rc, _, err = run_cli(["serve", "--bind", f"tcp://127.0.0.1:{s.getsockname()[1]}"])
    assert rc == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("partdistill: error: ") and "in use" in err


def test_more_part_names_than_allowed_says_so(inputs, tmp_path):
    parts = ",".join(f"part{i}" for i in range(65))
    rc, _, err = run_cli(["segment", inputs["bundle"], "--parts", parts, "--out", tmp_path / "out"])
    assert_one_line_error(rc, err, "--parts: 65 part names, more than the 64 allowed")


def test_views_that_show_nothing_of_the_object_are_refused_before_the_teacher(inputs, tmp_path):
    cap = inputs["capture"]
    blank = replace(cap, face_id=np.full_like(cap.face_id, -1), warnings=[])
    blank.face_id[0, 0, 0] = 0  # one pixel of the object in four views
    save_bundle(tmp_path / "blank.npz", blank)
    rc, _, err = run_cli(
        segment_argv(
            tmp_path / "blank.npz",
            "--out",
            tmp_path / "out",
            "--teacher",
            "grounding_dino",
            "--teacher-model",
            tmp_path / "no-such-model",
        )
    )
    assert_one_line_error(rc, err, "capture: the views show almost nothing of the object (1 object pixels in 4 views")
    assert not (tmp_path / "out").exists()
