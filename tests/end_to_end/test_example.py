"""The bundled example (the README's main command) still matches the capture path: its SIMULATED
detections file was made for the CLI's default capture (10 ring views, 512 px) of chair.obj."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bpy")

from partdistill.backend import cli  # noqa: E402
from partdistill.backend.metrics import shape_miou  # noqa: E402
from partdistill.bench.shapes import chair  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chair"


def test_example_chair_segments_with_its_shipped_detections(tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "segment",
        str(EXAMPLE / "chair.obj"),
        "--parts",
        "seat,back,leg,arm",
        "--detections",
        str(EXAMPLE / "chair.detections-SIMULATED.json"),
        "--out",
        str(out),
        "--points",
        "4096",
        "--epochs",
        "80",
        "--quiet",
    ]
    assert cli.main(argv) == 0, capsys.readouterr().err
    z = np.load(out / "labels.npz")
    shape = chair()
    # polygons keep their order through the OBJ round trip (the example's generator relies on it too)
    area = np.array([0.0] * len(shape.polygons))
    faces, owner = shape.triangles()
    tri = shape.vertices[faces]
    np.add.at(area, owner, 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1))
    assert shape_miou(z["polygon_labels"], shape.labels, 4, area) >= 0.8
