"""Calibration: a face's confidence made to mean how often such faces are right.

The student's raw confidence (its probability of the chosen part, pooled over the superpoint) is
mapped through a monotone piecewise-linear table fitted on the validation split of the real-mesh
benchmark (``partdistill bench real --fit-calibration``): among faces reported at confidence c, about
a fraction c is right on the shapes it was fitted on. The table lives in ``calibration.json`` beside
this module, with where it came from.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

TABLE = Path(__file__).with_name("calibration.json")


@lru_cache(maxsize=1)
def table() -> tuple[np.ndarray, np.ndarray, dict]:
    """(knots (K,) raw confidences, values (K,) calibrated ones, provenance)."""
    data = json.loads(TABLE.read_text())
    return np.asarray(data["raw"], np.float64), np.asarray(data["calibrated"], np.float64), data.get("fitted_on", {})


def calibrate(raw: np.ndarray) -> np.ndarray:
    """(F,) float32 calibrated confidences of ``raw`` (F,) ones in [0, 1]."""
    knots, values, _ = table()
    return np.interp(np.clip(raw, 0.0, 1.0), knots, values).astype(np.float32)
