"""Fitting the confidence calibration on validation runs, on hand-made reliability counts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from partdistill.bench.calibrate import fit, isotonic, write
from partdistill.bench.real import CONFIDENCE_BINS


def test_isotonic_pools_adjacent_violators_by_weight():
    np.testing.assert_allclose(
        isotonic(np.array([0.1, 0.5, 0.3, 0.9]), np.array([1.0, 1.0, 3.0, 1.0])), [0.1, 0.35, 0.35, 0.9]
    )
    np.testing.assert_allclose(isotonic(np.array([0.2, 0.4]), np.array([1.0, 1.0])), [0.2, 0.4])


def _run(split, faces_at, right_at, method="distill"):
    faces, right = [0] * CONFIDENCE_BINS, [0] * CONFIDENCE_BINS
    for b, n in faces_at.items():
        faces[b] = n
    for b, n in right_at.items():
        right[b] = n
    return {
        "split": split,
        "method": method,
        "teacher": "box",
        "level": "realistic",
        "shape": f"s{len(faces_at)}",
        "confidence_faces": faces,
        "confidence_right": right,
    }


def test_fit_maps_each_confidence_to_how_often_its_faces_were_right():
    # faces reported at ~0.525 (bin 10) were right 30% of the time, at ~0.925 (bin 18) 90%
    rows = [_run("val", {10: 100, 18: 100}, {10: 30, 18: 90}), _run("test", {10: 100}, {10: 100})]
    knots = np.linspace(0, 1, 21)
    new = fit(rows, knots, knots.copy())
    assert new[15] == pytest.approx(0.3 + (0.75 - 0.525) * (0.9 - 0.3) / 0.4)  # between the two: interpolated
    assert new[0] == pytest.approx(0.3) and new[-1] == pytest.approx(0.9)  # held flat beyond the data
    assert (np.diff(new) >= 0).all()
    # composed with the table in use: a table that already doubled confidences is undone where needed
    doubled = np.minimum(2 * knots, 1.0)
    np.testing.assert_allclose(fit(rows, knots, doubled), np.interp(doubled, [0.525, 0.925], [0.3, 0.9]))


def test_write_keeps_the_provenance_and_refuses_without_validation_runs(tmp_path):
    path = tmp_path / "calibration.json"
    knots = np.linspace(0, 1, 21).round(4).tolist()
    path.write_text(json.dumps({"raw": knots, "calibrated": knots}))
    data = write(path, [_run("val", {10: 10, 18: 10}, {10: 5, 18: 9})])
    assert data["fitted_on"]["split"] == "val" and data["fitted_on"]["faces"] == 20
    assert json.loads(path.read_text())["calibrated"] == data["calibrated"]
    with pytest.raises(ValueError, match="no validation runs"):
        write(path, [_run("test", {10: 10}, {10: 5})])
