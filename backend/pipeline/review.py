"""Review: what a result says about itself. Per-part coverage of the surface, and a warning for each
sign that the result is probably wrong, so that no failure is silent:

- one part on (nearly) every face although several parts were asked for;
- a part the teacher detected (in one view or more) that got no face at all;
- much of the surface left unlabelled.
"""

from __future__ import annotations

import numpy as np
from partdistill.shared.capture import Mesh
from partdistill.shared.detections import Detections
from partdistill.shared.result import SegmentationResult

#: One part on at least this fraction of the surface (with two parts or more asked for) is a warning.
DOMINANT_AREA = 0.95
#: A part detected in at least this many views that gets no face is a warning. Chosen on the
#: real-mesh validation split (realistic box teacher, 40 shapes): at 1 instead of 2 it caught one of
#: the two unwarned results below 20 mIoU (a fish whose body, 76 % of its surface, the teacher named
#: "body" in a single view and "fin" elsewhere) for one more warning on a good result (a vase whose
#: absent spout and rim got a stray box each).
MISSING_AFTER_VIEWS = 1
#: More than this fraction of the surface unlabelled is a warning.
UNLABELLED_AREA = 0.25


def coverage(mesh: Mesh, face_labels: np.ndarray, part_names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Per part (and ``"(unlabelled)"`` when any face is), its face count and its share of the surface
    area: ``{"seat": {"faces": 213, "area": 0.18}, ...}``."""
    area = mesh.face_areas().astype(np.float64)
    total = float(area.sum()) or 1.0
    out = {}
    for i, name in enumerate(part_names):
        m = face_labels == i
        out[name] = {"faces": int(m.sum()), "area": round(float(area[m].sum()) / total, 4)}
    m = face_labels < 0
    if m.any():
        out["(unlabelled)"] = {"faces": int(m.sum()), "area": round(float(area[m].sum()) / total, 4)}
    return out


def detected_views(detections: Detections | None, n_parts: int) -> np.ndarray:
    """(P,) int64: in how many views each part was detected (after the whole-object filter)."""
    views = np.zeros(n_parts, np.int64)
    for dets in detections.views if detections is not None else ():
        for p in {d.part for d in dets}:
            views[p] += 1
    return views


def review(result: SegmentationResult, mesh: Mesh, detections: Detections | None = None) -> SegmentationResult:
    """Add ``stats["coverage"]`` and the warnings this result deserves; returns ``result``."""
    names = result.part_names
    cov = coverage(mesh, result.face_labels, names)
    result.stats["coverage"] = cov
    warnings = result.warnings
    if len(names) >= 2:
        top = max(names, key=lambda n: cov[n]["area"])
        if cov[top]["area"] >= DOMINANT_AREA:
            warnings.append(
                f"'{top}' covers {100 * cov[top]['area']:.0f}% of the surface: the result is probably wrong "
                "(check the part names and the detections)"
            )
    seen = detected_views(detections, len(names))
    for i, name in enumerate(names):
        if seen[i] >= MISSING_AFTER_VIEWS and cov[name]["faces"] == 0:
            views = "1 view" if seen[i] == 1 else f"{seen[i]} views"
            warnings.append(
                f"'{name}' was detected in {views} but no face was labelled with it (if the shape has a {name}, "
                "the teacher probably took it for another part)"
            )
    unlabelled = cov.get("(unlabelled)", {}).get("area", 0.0)
    if unlabelled > UNLABELLED_AREA:
        warnings.append(
            f"{100 * unlabelled:.0f}% of the surface is left unlabelled (seen in no view or claimed by no part)"
        )
    return result
