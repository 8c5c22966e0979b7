"""What the CLI shows while it works and when it is done: progress bars per stage and a summary."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from partdistill.shared.capture import Capture
from partdistill.shared.result import SegmentationResult

#: What a stage counts, for its bar's rate.
STAGE_UNITS = {
    "capture": "shape",
    "teacher": "view",
    "distill": "epoch",
    "detect": "shape",
    "tune": "shape",
    "segment": "shape",
}


class ProgressBars:
    """tqdm bars, one per stage (teacher, distill, ...) with its elapsed and remaining time; silent
    with ``quiet``."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None
        self.stage = None

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, done: int, total: int, stage: str) -> None:
        if self.quiet or total <= 0:
            return
        from tqdm import tqdm

        if stage != self.stage or self.bar is None or done < self.bar.n:
            if self.bar is not None:
                self.bar.close()
            unit = STAGE_UNITS.get(stage, "step")
            self.bar = tqdm(total=total, desc=stage, unit=unit, leave=False, file=sys.stderr, smoothing=0.3)
            self.stage = stage
        self.bar.total = total
        self.bar.update(done - self.bar.n)  # through update(): tqdm's rate and remaining time follow it

    def client_update(self, done: int, total: int, stage: str, message: str) -> None:
        self.update(done, total, stage)


def print_summary(result: SegmentationResult, written: dict[str, Path], capture: Capture) -> None:
    """Faces per part, mIoU when the bundle carries ground truth, timings and the files written."""
    counts = np.bincount(result.face_labels + 1, minlength=len(result.part_names) + 1)
    print(f"segmented {capture.mesh.n_faces} faces into {len(result.part_names)} parts:")
    for i, name in enumerate(result.part_names):
        print(f"  {name:>16}: {counts[i + 1]} faces")
    if counts[0]:
        print(f"  {'(unlabelled)':>16}: {counts[0]} faces")
    if capture.gt_face_labels is not None and tuple(capture.part_names) == tuple(result.part_names):
        from ..metrics import shape_miou

        miou = shape_miou(result.face_labels, capture.gt_face_labels, len(result.part_names), capture.mesh.face_areas())
        print(f"mIoU against the bundle's ground truth: {100 * miou:.1f}")
    print("timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items()))
    for w in result.warnings:
        print(f"partdistill: warning: {w}", file=sys.stderr)
    for kind, path in written.items():
        print(f"wrote {kind}: {path}")
