"""Odd mesh files through the CLI and headless Blender: labelled as well as an ordinary one, or refused
by name. A micrometre or 1e20 scale, a stray speck far away, OBJ faces before their vertices, a
folder where a file should be, an unwritable destination."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bpy")

from cli_in_process import assert_one_line_error, run_cli  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chair"
DETECTIONS = EXAMPLE / "chair.detections-SIMULATED.json"
PARTS = "seat,back,leg,arm"


def _obj_lines(transform=None, extra: str = "") -> str:
    out = []
    for line in (EXAMPLE / "chair.obj").read_text().splitlines():
        if line.startswith("v ") and transform is not None:
            xyz = transform(np.array([float(x) for x in line.split()[1:4]]))
            line = "v " + " ".join(repr(float(c)) for c in xyz)
        out.append(line)
    return "\n".join(out) + "\n" + extra


def _segment(obj: Path, out: Path, *extra) -> tuple[int, str, str]:
    return run_cli(
        [
            "segment",
            obj,
            "--parts",
            PARTS,
            "--detections",
            DETECTIONS,
            "--method",
            "vote-fill",
            "--out",
            out,
            "--quiet",
            *extra,
        ]
    )


def _labels(out: Path) -> np.ndarray:
    with np.load(out / "labels.npz") as z:
        return z["polygon_labels"]


@pytest.fixture(scope="module")
def unit_labels(tmp_path_factory) -> np.ndarray:
    out = tmp_path_factory.mktemp("unit") / "out"
    rc, _, err = _segment(EXAMPLE / "chair.obj", out)
    assert rc == 0, err
    return _labels(out)


DISTILL = ("--method", "distill", "--epochs", "30", "--points", "2048")


@pytest.fixture(scope="module")
def unit_distilled(tmp_path_factory) -> np.ndarray:
    out = tmp_path_factory.mktemp("unit_distilled") / "out"
    rc, _, err = _segment(EXAMPLE / "chair.obj", out, *DISTILL)
    assert rc == 0, err
    return _labels(out)


@pytest.mark.parametrize("scale", [1e-6, 1e20])
def test_a_mesh_at_micrometre_or_1e20_scale_is_labelled_as_at_unit_scale(tmp_path, unit_labels, unit_distilled, scale):
    obj = tmp_path / "chair.obj"
    obj.write_text(_obj_lines(lambda v: v * scale + scale * np.array([3.0, -2.0, 1.0])))
    rc, _, err = _segment(obj, tmp_path / "voted")
    assert rc == 0, err
    assert (_labels(tmp_path / "voted") == unit_labels).mean() >= 0.99  # the views are the same
    assert json.loads((tmp_path / "voted" / "labels.json").read_text())["warnings"] == []
    rc, _, err = _segment(obj, tmp_path / "distilled", *DISTILL)
    assert rc == 0, err
    assert (_labels(tmp_path / "distilled") == unit_distilled).mean() >= 0.95  # and so is the student's work


def test_a_stray_speck_far_away_is_left_out_of_the_views_and_reported(tmp_path, unit_labels):
    obj = tmp_path / "chair.obj"
    obj.write_text(_obj_lines(extra="v 1000 1000 1000\nv 1000.01 1000 1000\nv 1000 1000.01 1000\nf -3 -2 -1\n"))
    rc, _, err = _segment(obj, tmp_path / "out")
    assert rc == 0, err
    labels = _labels(tmp_path / "out")
    assert len(labels) == len(unit_labels) + 1 and (labels[:-1] == unit_labels).mean() >= 0.99
    warnings = json.loads((tmp_path / "out" / "labels.json").read_text())["warnings"]
    assert any("1 faces" in w and "lie far from the object" in w for w in warnings), warnings


def test_obj_faces_that_come_before_their_vertices_are_all_kept(tmp_path, unit_labels):
    lines = _obj_lines().splitlines()
    verts = [ln for ln in lines if ln.startswith("v ")]
    others = [ln for ln in lines if not ln.startswith("v ")]
    half = len(others) // 2
    obj = tmp_path / "late.obj"  # half the faces first, then the vertices, then the rest
    obj.write_text("\n".join([*others[:half], *verts, *others[half:]]) + "\n")
    rc, _, err = _segment(obj, tmp_path / "out")
    assert rc == 0, err
    assert (_labels(tmp_path / "out") == unit_labels).mean() >= 0.99
    assert json.loads((tmp_path / "out" / "labels.json").read_text())["warnings"] == []


def test_an_import_that_drops_faces_says_how_many(tmp_path):
    obj = tmp_path / "degenerate.obj"
    obj.write_text(_obj_lines(extra="f 1 1 2\nf 3 3 3\n"))  # two faces no importer can keep
    rc, _, err = _segment(obj, tmp_path / "out")
    assert rc == 0, err
    warnings = json.loads((tmp_path / "out" / "labels.json").read_text())["warnings"]
    assert any("degenerate.obj: the import kept 556 of the file's 558 faces" in w for w in warnings), warnings


@pytest.mark.parametrize("command", ["segment", "capture"])
@pytest.mark.parametrize("name", ["x.obj", "meshes"])
def test_a_folder_given_as_the_input_is_called_a_folder(tmp_path, command, name):
    (tmp_path / name).mkdir()
    args = ["--parts", "a", "--out", tmp_path / "out"] if command == "segment" else ["--out", tmp_path / "c.npz"]
    rc, _, err = run_cli([command, tmp_path / name, *args])
    assert_one_line_error(rc, err, f"{tmp_path / name} is a folder", "partdistill batch")


def test_capture_into_an_unwritable_place_is_refused_before_rendering(tmp_path):
    t0 = time.perf_counter()
    rc, _, err = run_cli(["capture", EXAMPLE / "chair.obj", "--out", "/proc/partdistill/c.npz"])
    assert_one_line_error(rc, err, "--out: cannot write /proc/partdistill/c.npz")
    assert time.perf_counter() - t0 < 3  # Blender was never started
