"""The SIMULATED teacher's noise levels, for box (B-VLM-like) and mask (P-VLM-like) detections:

- ``perfect``: every visible connected region of every part boxed (or masked) exactly, score 0.9;
- ``mild``: independent per-view noise (``simulated.DEFAULT_BOX_NOISE`` / ``DEFAULT_MASK_NOISE``),
  which multi-view aggregation largely averages away;
- ``realistic`` / ``hard``: view-consistent failures as real detectors make them
  (``realistic.REALISTIC`` / ``realistic.HARD``).

These describe the teacher, not the method: they were set from how VLMs fail, before any method was
tuned, and they are not tuned on the benchmark's results.
"""

from __future__ import annotations

from partdistill.backend.pipeline.mesh_graph import FaceGraph
from partdistill.shared.capture import Capture
from partdistill.shared.detections import Detections

from .realistic import HARD, MODES, REALISTIC, realistic_detections
from .simulated import DEFAULT_BOX_NOISE, DEFAULT_MASK_NOISE, SimulatedNoise, simulate_detections

LEVELS = ("perfect", "mild", "realistic", "hard")
PERFECT = SimulatedNoise(min_pixels=1)


def level_params(level: str, mode: str) -> dict:
    """The documented parameters of a level for one mode (for reports)."""
    _check(level, mode)
    if level == "perfect":
        return PERFECT.as_dict()
    if level == "mild":
        return (DEFAULT_BOX_NOISE if mode == "box" else DEFAULT_MASK_NOISE).as_dict()
    return (REALISTIC if level == "realistic" else HARD).as_dict()


def simulate(
    capture: Capture, level: str, mode: str = "box", seed: int = 0, graph: FaceGraph | None = None
) -> Detections:
    """SIMULATED detections of ``capture`` (which needs ``gt_face_labels`` and ``part_names``) at a level.
    Deterministic for a seed. ``graph``: the mesh's face graph, if already built (realistic / hard)."""
    _check(level, mode)
    if level == "perfect":
        return simulate_detections(capture, PERFECT, seed=seed, mode=mode)
    if level == "mild":
        return simulate_detections(capture, DEFAULT_BOX_NOISE if mode == "box" else DEFAULT_MASK_NOISE, seed, mode)
    return realistic_detections(capture, REALISTIC if level == "realistic" else HARD, seed, mode, graph)


def _check(level: str, mode: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
