"""What a segmentation returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ValidationError
from .validation import check_array, check_index_range, check_warnings


@dataclass
class SegmentationResult:
    """Per-triangle and per-polygon part labels.

    face_labels: (F,) int32 index into part_names, -1 = unlabelled.
    face_confidence: (F,) float32 in [0, 1].
    polygon_labels: (P,) int32 — one label per source polygon (area-weighted vote of its triangles).
    stats: plain numbers (knowledge units, trigger epoch, losses, per-part coverage); timings: seconds
    per stage. warnings: one line each for a result that is probably wrong (one part on nearly every
    face, a part the teacher saw often that got no face, ...): show them to the user.
    """

    part_names: tuple[str, ...]
    face_labels: np.ndarray
    face_confidence: np.ndarray
    polygon_labels: np.ndarray
    stats: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def validate(self) -> SegmentationResult:
        f = check_array("face_labels", self.face_labels, np.int32, (None,))
        check_index_range("face_labels", f, -1, len(self.part_names))
        c = check_array("face_confidence", self.face_confidence, np.float32, (f.shape[0],), finite=True)
        if c.size and (c.min() < 0 or c.max() > 1):
            raise ValidationError("face_confidence", "values must lie in [0, 1]")
        p = check_array("polygon_labels", self.polygon_labels, np.int32, (None,))
        check_index_range("polygon_labels", p, -1, len(self.part_names))
        self.warnings = check_warnings("warnings", self.warnings)
        return self
