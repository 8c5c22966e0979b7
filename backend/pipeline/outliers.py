"""Review over a collection: shapes unlike the rest, and parts the collection disagrees on.

One shape cannot tell that its ``handle`` covering 80 % of a cup is wrong; a collection of cups
can: the same part covers wildly different shares of similar objects. Per shape and part this module
describes the part (its share of the surface, its number of pieces, its place in the object's
bounding box), compares each shape with the collection (median and spread of each figure) and with
the category student (the share of the surface where the shape's own evidence, its fine-tuned
labels or its detections' vote, differs from the student's labels),
and words what stands out as warnings naming the part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from partdistill.shared.capture import Mesh
from partdistill.shared.result import SegmentationResult
from scipy.sparse import csgraph, csr_matrix

from .mesh_graph import face_graph
from .review import MISSING_AFTER_VIEWS, in_views, stored_detected_views
from .shape import principal_axes

#: Every warning of a collection's review starts so (a re-run replaces them, and users can tell them).
FLAG_PREFIX = "collection: "
#: A piece of a part counts when it holds at least this share of the part's surface (specks do not).
MIN_PIECE = 0.05
#: The spread of a figure over the collection is its median absolute deviation times this (the
#: standard deviation of a normal distribution).
MAD_TO_SIGMA = 1.4826


@dataclass
class FlagRules:
    """When a figure stands out. A shape's part is flagged when its share of the surface lies more than
    ``share_z`` spreads and more than ``share_abs`` (absolute) from the collection's median share of that
    part; when its number of pieces differs from the median by more than a factor ``pieces_ratio``
    (counted as ``(n + 1)``); when its place (``PartFigures.place``) lies more than ``place_dist`` (in
    units of the object's half-extents) from the median place. A shape is flagged when its own evidence and the category
    student differ on more than ``disagreement`` of its surface. A part is flagged for the whole
    collection when its share's spread exceeds ``collection_spread`` times its median share (and the
    collection has at least ``min_shapes`` shapes; below that nothing is compared). The defaults were
    chosen on the real-mesh validation split (``bench real --collection``, seed 0, for the default
    collection mode, four category students over both frames): every shape below 25 mIoU flagged,
    then the best precision (58 %, against 54 % with the rules chosen for six students: ``share_z``
    3, ``share_abs`` 0.1, ``place_dist`` 0.5)."""

    share_z: float = 2.0
    share_abs: float = 0.2
    pieces_ratio: float = 3.0
    place_dist: float = 0.7
    disagreement: float = 0.35
    collection_spread: float = 0.75
    min_shapes: int = 3


@dataclass
class PartFigures:
    """What a labelled shape's parts look like. share: (P,) float64, each part's share of the surface
    (of the points, for a point cloud). pieces: (P,) int64, its connected pieces holding at least
    ``MIN_PIECE`` of it. place: (P, 3) float64, where its surface lies in the object's bounding box
    along the object's principal axes (longest first): the area-weighted mean distance of its faces
    from the box's centre, in units of the box's half-extent, in [0, 1] per axis (NaN for a part with
    no face). The same for a shape turned or mirrored, as collections often are, and for a pair of
    mirrored pieces (two arms, two lenses) as for one of them: a centroid would put the pair at the
    centre and the single piece at the side. detected: (P,) int64, in how many views the teacher
    detected each part, where the shape's own review left its lost parts to the collection's
    (``review.stored_detected_views``; 0 elsewhere)."""

    share: np.ndarray
    pieces: np.ndarray
    place: np.ndarray
    detected: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.detected is None:
            self.detected = np.zeros(len(self.share), np.int64)

    @classmethod
    def from_dict(cls, d: dict, names: Sequence[str]) -> PartFigures:
        """The figures ``to_dict`` wrote (a part missing from ``d`` has none)."""
        empty = {"share": 0.0, "pieces": 0, "place": [None, None, None]}
        rows = [d.get(n, empty) for n in names]
        return cls(
            np.array([float(r["share"]) for r in rows]),
            np.array([int(r["pieces"]) for r in rows], np.int64),
            np.array([[np.nan if x is None else float(x) for x in r["place"]] for r in rows]).reshape(len(names), 3),
            np.array([int(r.get("detected", 0)) for r in rows], np.int64),
        )

    def to_dict(self, names: Sequence[str]) -> dict[str, dict]:
        return {
            n: {
                "share": round(float(self.share[i]), 4),
                "pieces": int(self.pieces[i]),
                "place": [None if np.isnan(x) else round(float(x), 3) for x in self.place[i]],
                "detected": int(self.detected[i]),
            }
            for i, n in enumerate(names)
        }


def part_figures(mesh: Mesh, face_labels: np.ndarray, n_parts: int, detected: np.ndarray | None = None) -> PartFigures:
    """The figures of ``face_labels`` (F,) int32 on ``mesh`` (for a point cloud's surfel mesh, shares
    of its points); ``detected`` (P,) int64 the views each part was detected in
    (``review.stored_detected_views``)."""
    graph = face_graph(mesh)
    area = np.ones(graph.n_faces) if mesh.surfels else graph.areas
    total = float(area.sum()) or 1.0
    centred, frame = principal_axes(graph.centroids, area)
    axes = centred @ frame
    lo, hi = axes.min(axis=0), axes.max(axis=0)
    centre, half = (lo + hi) / 2, np.where(hi - lo > 0, (hi - lo) / 2, 1.0)
    same = face_labels[graph.edges[:, 0]] == face_labels[graph.edges[:, 1]]
    e = graph.edges[same]
    f = graph.n_faces
    _, comp = csgraph.connected_components(
        csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(f, f)), directed=False
    )
    share = np.zeros(n_parts)
    pieces = np.zeros(n_parts, np.int64)
    place = np.full((n_parts, 3), np.nan)
    for p in range(n_parts):
        m = face_labels == p
        a = float(area[m].sum())
        if a <= 0:
            continue
        share[p] = a / total
        place[p] = (np.abs(axes[m] - centre) * area[m, None]).sum(axis=0) / a / half
        piece_area = np.bincount(comp[m], weights=area[m])
        pieces[p] = int((piece_area >= MIN_PIECE * a).sum())
    return PartFigures(share, pieces, place, None if detected is None else np.asarray(detected, np.int64))


def result_figures(mesh: Mesh, result: SegmentationResult) -> PartFigures:
    """The figures of ``result`` on ``mesh``, with the views its review recorded per part
    (``review.stored_detected_views``)."""
    names = result.part_names
    return part_figures(mesh, result.face_labels, len(names), stored_detected_views(result))


@dataclass
class CollectionFlags:
    """The review of a collection. shape_warnings: one list per shape. collection_warnings: about
    the whole collection. suspicion: (S,) float64 per shape, how far it stands out (0 = not at all;
    above 1 = flagged), for the list of shapes to check first. figures: the shapes' ``PartFigures``
    (None for a shape without a result). disagreement: (S,) float64, NaN where there is no
    category student."""

    shape_warnings: list[list[str]]
    collection_warnings: list[str]
    suspicion: np.ndarray
    figures: list[PartFigures | None]
    disagreement: np.ndarray
    rules: FlagRules = field(default_factory=FlagRules)

    def review_order(self) -> list[int]:
        """The flagged shapes, the one standing out most first."""
        flagged = [i for i, w in enumerate(self.shape_warnings) if w]
        return sorted(flagged, key=lambda i: -self.suspicion[i])


def flag_collection(
    figures: Sequence[PartFigures | None],
    disagreement: np.ndarray,
    names: Sequence[str],
    rules: FlagRules | None = None,
) -> CollectionFlags:
    """Compare every shape with the collection and with the category student. ``figures``: one per
    shape (None: no result). ``disagreement``: (S,) float64, the share of each shape's surface where
    its labels differ from the category student's (NaN: no student). A part detected on a shape
    (``PartFigures.detected``, recorded where the shape's own review left it to this one) that got
    no face is that shape's warning when the collection's typical shape has the part; when the
    typical shape lacks it too, one warning for the collection says so instead of one per shape
    (the teacher's stray boxes for a part these objects do not have)."""
    rules = rules or FlagRules()
    n = len(figures)
    warnings: list[list[str]] = [[] for _ in range(n)]
    suspicion = np.zeros(n)
    have = [i for i, f in enumerate(figures) if f is not None]
    out: list[str] = []
    for i in have:
        d = disagreement[i]
        if np.isfinite(d) and d > rules.disagreement:
            warnings[i].append(
                f"what its own detections show and the category student differ on {100 * d:.0f}% of the surface: "
                "this shape is unlike the rest of the collection, or its detections are (check it first)"
            )
            suspicion[i] = max(suspicion[i], d / rules.disagreement)
    if len(have) < rules.min_shapes:
        for i in have:
            for p in (p for p in range(len(names)) if _lost(figures[i], p)):
                warnings[i].append(
                    f"'{names[p]}' was detected in {in_views(figures[i].detected[p])} but nothing was labelled "
                    "with it (if the shape has this part, the teacher probably took it for another part)"
                )
        return CollectionFlags(warnings, out, suspicion, list(figures), disagreement, rules)
    share = np.stack([figures[i].share for i in have])
    pieces = np.stack([figures[i].pieces for i in have])
    place = np.stack([figures[i].place for i in have])
    for p, name in enumerate(names):
        med = float(np.median(share[:, p]))
        spread = MAD_TO_SIGMA * float(np.median(np.abs(share[:, p] - med)))
        if med > 0 and spread > rules.collection_spread * med:
            lo, hi = share[:, p].min(), share[:, p].max()
            out.append(
                f"'{name}' covers between {100 * lo:.0f}% and {100 * hi:.0f}% of the surface across the collection "
                f"(median {100 * med:.0f}%): the teacher probably confuses it with another part (check the part "
                "names and the prompt)"
            )
        lacking = [k for k, i in enumerate(have) if _lost(figures[i], p)]
        if lacking and med == 0:
            out.append(
                f"'{name}' was detected on {len(lacking)} of {len(have)} shapes but labelled on none of them, nor on "
                f"the collection's typical shape: these objects may have no {name} (the teacher's stray detections), "
                "or the teacher takes it for another part (check the part names and the prompt)"
            )
        for k in lacking if med > 0 else ():
            i = have[k]
            warnings[i].append(
                f"'{name}' was detected in {in_views(figures[i].detected[p])} but nothing was labelled with it, "
                f"while it covers {100 * med:.2g}% of the collection's typical shape (the teacher probably took it "
                "for another part here)"
            )
            suspicion[i] = max(suspicion[i], 1.0 + med)
        limit = max(rules.share_z * spread, rules.share_abs)
        piece_med = float(np.median(pieces[:, p]))
        present = ~np.isnan(place[:, p, 0])
        centre = np.nanmedian(place[:, p], axis=0) if present.sum() >= rules.min_shapes else None
        for k, i in enumerate(have):
            off = abs(share[k, p] - med)
            if off > limit:
                warnings[i].append(
                    f"'{name}' covers {100 * share[k, p]:.0f}% of the surface, against {100 * med:.0f}% on the "
                    "collection's typical shape"
                )
                suspicion[i] = max(suspicion[i], off / limit)
            ratio = (pieces[k, p] + 1) / (piece_med + 1)
            if max(ratio, 1 / ratio) > rules.pieces_ratio:
                warnings[i].append(
                    f"'{name}' is in {pieces[k, p]} pieces, against {piece_med:g} on the collection's typical shape"
                )
                suspicion[i] = max(suspicion[i], max(ratio, 1 / ratio) / rules.pieces_ratio)
            if centre is not None and present[k]:
                dist = float(np.linalg.norm(place[k, p] - centre))
                if dist > rules.place_dist:
                    warnings[i].append(f"'{name}' lies elsewhere in the object than on the collection's typical shape")
                    suspicion[i] = max(suspicion[i], dist / rules.place_dist)
    return CollectionFlags(warnings, out, suspicion, list(figures), disagreement, rules)


def _lost(fig: PartFigures, p: int) -> bool:
    """Whether part ``p`` was detected in enough views (``review.MISSING_AFTER_VIEWS``) and got no
    face (no place: exact, where a share is rounded and a part in many specks counts no piece)."""
    return bool(fig.detected[p] >= MISSING_AFTER_VIEWS and np.isnan(fig.place[p, 0]))


def disagreement(differs: np.ndarray, areas: np.ndarray, compared: np.ndarray | None = None) -> float:
    """The share of the ``compared`` surface (F,) bool (all of it by default; ``areas`` (F,)) where a
    shape's own evidence and the category student differ (``differs`` (F,) bool)."""
    total = float(areas.sum() if compared is None else areas[compared].sum()) or 1.0
    return float(areas[differs].sum()) / total
