"""The synthetic inputs the CLI tests segment (a table's capture bundle and its detections) and the
``segment`` command line over them."""

from __future__ import annotations

from pathlib import Path

from cli_in_process import run_cli
from partdistill.bench.simulated import simulate_detections
from partdistill.shared.bundle import save_bundle
from synthetic import capture_of, table


def make_inputs(folder: Path) -> dict:
    """A 4-view capture of the synthetic table saved as a bundle in ``folder``, with simulated
    detections beside it: ``folder``, ``capture``, ``bundle``, ``det`` (the JSON file), ``detections``."""
    mesh, gt, names = table()
    capture = capture_of(mesh, gt, names, n_views=4, size=64)
    bundle = save_bundle(folder / "table.npz", capture)
    detections = simulate_detections(capture)
    det = folder / "det.json"
    detections.save_json(det)
    return {"folder": folder, "capture": capture, "bundle": bundle, "det": det, "detections": detections}


def segment_argv(bundle, *args) -> list:
    """``partdistill segment BUNDLE --parts top,leg ARGS``: the table's part names."""
    return ["segment", bundle, "--parts", "top,leg", *args]


def run_segment(inputs: dict, out: Path, *extra) -> tuple[int, str, str]:
    """``partdistill segment`` of the inputs' bundle with their detections into ``out``, quietly."""
    return run_cli(segment_argv(inputs["bundle"], "--detections", inputs["det"], "--out", out, "--quiet", *extra))
