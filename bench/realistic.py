"""The realistic SIMULATED teacher: view-consistent failures, an evaluation tool, not a VLM.

Real detectors fail *consistently across views*: noise drawn independently per view is averaged away
by any multi-view method and flatters it. So besides per-view noise the generator draws, once per
shape, state that repeats in every view:

- **confusions**: each part is, with probability ``confusion``, systematically taken for one
  similar/neighbouring part (chosen with probability proportional to the length of the 3D boundary
  the two parts share on the mesh, plus ``name_bonus`` when their names share a word or both are
  limbs); the confusion then happens in each view with probability ``confusion_apply``;
- **persistent misses**: a latent ``u_p ~ N(0, 1)`` per part; a part is missed in a view with
  probability ``sigmoid(miss_bias + miss_slope * log(share) + miss_persist * u_p)``, where ``share``
  is the part's fraction of the object's pixels in that view (small parts are missed more, and a part
  with a large ``u_p`` is missed in most views); on top, each single region (instance) is missed
  with probability ``region_miss``; regions under ``min_pixels`` are never found;

and per view:

- **grouping**: a part seen as >= 2 regions gets one box (mask) over all of them with probability
  ``group`` (all legs in one box);
- **whole-object boxes**: with probability ``whole_object`` per view a box (masks: the silhouette
  inside such a box) covering a fraction U(``whole_cover``) of the object's pixels: the object's
  bounding box shrunk by random amounts on random sides (bisection on an integral image); the sides
  left unshrunk are pushed out by up to ``whole_slack`` of the size into the background (so it is not
  the tight foreground box either); the label is a random part;
- **box errors**: sides pushed out by U(0, ``spill``) of the size; with probability ``truncate`` the
  box keeps only a fraction U(``truncate_keep``) of its extent along one random side; with
  probability ``shift`` it moves by up to ``shift_amount`` of its size;
- **label swaps** (independent per detection, ``label_swap``) to a similar part, drawn as above;
- **false positives**: Poisson(``false_positive``) per view, a box of U(0.1, 0.4) of the object's
  bounding box (masks: an ellipse) centred on a random object pixel, random label;
- **scores** loosely tied to quality: ``clip(score_base + score_gain * (q - 0.5) + N(0,
  score_noise), 0.05, 1)`` with q the IoU of the detection with its true region (x 0.5 when the label
  is wrong; 0.4 for whole-object boxes, 0.2 for false positives);
- **masks**: eroded/dilated by up to ``mask_morph`` px; with probability ``bleed`` a blob (ellipse,
  radius U(``bleed_size``) x sqrt(mask area)) centred on a pixel of a neighbouring part next to the
  mask is added; with probability ``holes`` 1-3 elliptic holes (radius U(``hole_size``) x sqrt(area))
  are cut; ``truncate`` keeps a random half-plane holding U(``truncate_keep``) of the mask's pixels.

Deterministic for a seed. The levels that use it ("realistic", "hard") are in ``levels.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from partdistill.backend.pipeline.mesh_graph import FaceGraph, face_graph
from partdistill.shared.capture import Capture
from partdistill.shared.detections import Detection, Detections

from .regions import bbox, box_iou, ellipse, found_regions, gt_label_maps, mask_iou, morph_mask, truncate_mask

MODES = ("box", "mask")
LIMB_WORDS = {"arm", "leg", "hand", "foot", "tentacle", "fin", "wing", "tail", "ear", "antenna", "handle", "jaw"}


@dataclass(frozen=True)
class ShapeNoise:
    """The state drawn once per shape and repeated in every view: confusions and persistent misses."""

    confusion: float = 0.2
    confusion_apply: float = 0.8
    name_bonus: float = 0.5
    miss_bias: float = -4.2
    miss_slope: float = -1.1
    miss_persist: float = 1.0
    region_miss: float = 0.1
    min_pixels: int = 16


@dataclass(frozen=True)
class ViewNoise:
    """The noise drawn per view: grouping, whole-object boxes, box errors, label swaps, false
    positives, scores and masks."""

    group: float = 0.35
    whole_object: float = 0.3
    whole_cover: tuple[float, float] = (0.70, 0.95)
    whole_slack: float = 0.05
    spill: float = 0.12
    truncate: float = 0.15
    truncate_keep: tuple[float, float] = (0.4, 0.8)
    shift: float = 0.15
    shift_amount: float = 0.25
    label_swap: float = 0.05
    false_positive: float = 0.3
    score_base: float = 0.55
    score_gain: float = 0.4
    score_noise: float = 0.15
    mask_morph: int = 3
    bleed: float = 0.25
    bleed_size: tuple[float, float] = (0.2, 0.5)
    holes: float = 0.2
    hole_size: tuple[float, float] = (0.1, 0.3)


# A dataclass takes the fields of its last base first: the per-shape fields lead, as in the module
# docstring (and in the keyword defaults, the positional arguments and ``as_dict``).
@dataclass(frozen=True)
class RealisticNoise(ViewNoise, ShapeNoise):
    """Parameters of :func:`realistic_detections`: the per-shape and the per-view ones, flat (see the
    module docstring for each)."""

    def as_dict(self) -> dict:
        return asdict(self)


REALISTIC = RealisticNoise()
HARD = RealisticNoise(
    confusion=0.35,
    confusion_apply=0.9,
    miss_bias=-3.5,
    miss_persist=1.5,
    region_miss=0.2,
    min_pixels=24,
    group=0.5,
    whole_object=0.5,
    spill=0.2,
    truncate=0.3,
    shift=0.3,
    shift_amount=0.3,
    label_swap=0.1,
    false_positive=0.6,
    score_base=0.5,
    score_gain=0.2,
    score_noise=0.2,
    mask_morph=5,
    bleed=0.4,
    bleed_size=(0.3, 0.7),
    holes=0.35,
)


def part_similarity(graph: FaceGraph, gt: np.ndarray, names: tuple[str, ...], name_bonus: float) -> np.ndarray:
    """(P, P) float64, zero diagonal: shared 3D boundary length between parts (normalised per row to
    sum 1 over the other parts) + ``name_bonus`` for parts whose names share a word or that are both
    limb-like words."""
    p = len(names)
    la, lb = gt[graph.edges[:, 0]], gt[graph.edges[:, 1]]
    cut = (la != lb) & (la >= 0) & (lb >= 0)
    b = np.zeros((p, p))
    np.add.at(b, (la[cut], lb[cut]), graph.edge_len[cut])
    b = b + b.T
    b /= np.maximum(b.sum(axis=1, keepdims=True), 1e-20)
    words = [set(n.split()) for n in names]
    for i in range(p):
        for j in range(p):
            if i != j and ((words[i] & words[j]) or (words[i] & LIMB_WORDS and words[j] & LIMB_WORDS)):
                b[i, j] += name_bonus
    np.fill_diagonal(b, 0.0)
    return b


def _draw_other(rng: np.random.Generator, sim_row: np.ndarray, exclude: int) -> int:
    w = sim_row.copy()
    w[exclude] = 0.0
    if w.sum() <= 0:
        w = np.ones_like(w)
        w[exclude] = 0.0
    return int(rng.choice(len(w), p=w / w.sum()))


def _whole_object_box(rng: np.random.Generator, fg: np.ndarray, cover: float, slack: float) -> np.ndarray:
    """A box over the object holding about ``cover`` of its pixels: the foreground's bounding box with
    random sides shrunk (amounts found by bisection on an integral image), then each unshrunk side
    pushed out by up to ``slack`` of the size (into the background, which changes nothing in the cover)."""
    h, w = fg.shape
    box = bbox(fg)
    ii = np.zeros((h + 1, w + 1))
    ii[1:, 1:] = np.cumsum(np.cumsum(fg, axis=0), axis=1)
    total = ii[-1, -1]
    size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
    weights = rng.random(4) * (rng.random(4) < 0.7)
    if weights.sum() == 0:
        weights[rng.integers(4)] = 1.0
    weights /= weights.max()

    def shrunk(t: float) -> np.ndarray:
        return box + np.array([1, 1, -1, -1]) * t * weights * size

    def covered(b: np.ndarray) -> float:
        x0, y0, x1, y1 = np.round(b).astype(int)
        x0, x1, y0, y1 = np.clip(x0, 0, w), np.clip(x1, 0, w), np.clip(y0, 0, h), np.clip(y1, 0, h)
        if x1 <= x0 or y1 <= y0:
            return 0.0
        return (ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]) / total

    lo, hi = 0.0, 0.49
    for _ in range(20):
        mid = (lo + hi) / 2
        if covered(shrunk(mid)) > cover:
            lo = mid
        else:
            hi = mid
    out = shrunk(lo)
    # slack only on the sides left at the foreground's bounding box: pushing them out adds background
    # only, so the pixel cover stays as found (pushing a shrunk side out would re-include object pixels)
    out += np.array([-1, -1, 1, 1]) * rng.uniform(0, slack, 4) * size * (weights == 0)
    return np.clip(out, 0, [w, h, w, h])


def _perturb_box(rng: np.random.Generator, box: np.ndarray, nz: RealisticNoise, w: int, h: int) -> np.ndarray:
    b = box.astype(np.float64).copy()
    size = np.array([b[2] - b[0], b[3] - b[1]] * 2)
    if nz.spill > 0:
        b += np.array([-1, -1, 1, 1]) * rng.uniform(0, nz.spill, 4) * size
    if rng.random() < nz.truncate:
        side = int(rng.integers(4))
        keep = rng.uniform(*nz.truncate_keep)
        axis = side % 2  # 0: x, 1: y
        ext = b[2 + axis] - b[axis]
        if side < 2:
            b[side] = b[2 + axis] - keep * ext
        else:
            b[side] = b[axis] + keep * ext
    if rng.random() < nz.shift:
        d = rng.uniform(-nz.shift_amount, nz.shift_amount, 2) * size[:2]
        b += np.array([d[0], d[1], d[0], d[1]])
    b = np.clip(b, 0, [w, h, w, h])
    if b[2] - b[0] < 1 or b[3] - b[1] < 1:
        return np.clip(box, 0, [w, h, w, h]).astype(np.float64)
    return b


def realistic_detections(
    capture: Capture,
    noise: RealisticNoise = REALISTIC,
    seed: int = 0,
    mode: str = "box",
    graph: FaceGraph | None = None,
    kinds: list[list[str]] | None = None,
) -> Detections:
    """Detections with view-consistent failures (module docstring). Deterministic for ``seed``.

    kinds: if a list is given, one list per view is appended to it naming each detection's origin:
    "part" (right label), "confused" (the shape's persistent confusion), "swap" (a per-view label
    swap), "whole" (a whole-object box/mask) or "fp" (a false positive)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if capture.gt_face_labels is None or not capture.part_names:
        raise ValueError("the simulated teacher needs ground-truth face labels and part names")
    nz = noise
    names = tuple(capture.part_names)
    n_parts = len(names)
    gt = capture.gt_face_labels
    h, w = capture.image_size
    graph = graph or face_graph(capture.mesh)
    sim = part_similarity(graph, gt, names, nz.name_bonus)
    rng = np.random.default_rng(seed)

    # ---- per-shape persistent state (drawn first, in a fixed order) ----
    confused = np.full(n_parts, -1)
    for p in range(n_parts):
        if n_parts > 1 and rng.random() < nz.confusion:
            confused[p] = _draw_other(rng, sim[p], p)
    latent = rng.normal(0.0, 1.0, n_parts)

    def score(q: float) -> float:
        s = nz.score_base + nz.score_gain * (q - 0.5) + rng.normal(0.0, nz.score_noise)
        return float(np.clip(s, 0.05, 1.0))

    views: list[list[Detection]] = []
    for fid, label_map in zip(capture.face_id, gt_label_maps(capture), strict=True):
        fg = fid >= 0
        n_fg = int(fg.sum())
        dets: list[Detection] = []
        kind: list[str] = []
        if kinds is not None:
            kinds.append(kind)
        if n_fg == 0:
            views.append(dets)
            continue
        for part in range(n_parts):
            pm = label_map == part
            npx = int(pm.sum())
            if npx == 0:
                continue
            share = npx / n_fg
            logit = nz.miss_bias + nz.miss_slope * np.log(share) + nz.miss_persist * latent[part]
            part_missed = rng.random() < 1.0 / (1.0 + np.exp(-logit))
            label = part
            if confused[part] >= 0 and rng.random() < nz.confusion_apply:
                label = int(confused[part])
            grouped = rng.random() < nz.group
            if part_missed:
                continue
            regions = list(found_regions(label_map, part, nz.min_pixels, nz.region_miss, rng))
            if not regions:
                continue
            if grouped and len(regions) >= 2:
                regions = [np.logical_or.reduce(regions)]
            for reg in regions:
                lab = label
                why = "part" if label == part else "confused"
                if n_parts > 1 and rng.random() < nz.label_swap:
                    lab = _draw_other(rng, sim[part], part)
                    why = "swap"
                right = 1.0 if lab == part else 0.5
                n_before = len(dets)
                true_box = bbox(reg)
                if mode == "box":
                    box = _perturb_box(rng, true_box, nz, w, h)
                    dets.append(Detection(lab, score(right * box_iou(box, true_box)), box.astype(np.float32)))
                else:
                    mask = _noisy_mask(rng, reg, label_map, part, nz)
                    if mask.any():
                        dets.append(
                            Detection(lab, score(right * mask_iou(mask, reg)), bbox(mask).astype(np.float32), mask)
                        )
                kind += [why] * (len(dets) - n_before)
        n_before = len(dets)
        if rng.random() < nz.whole_object:
            cover = rng.uniform(*nz.whole_cover)
            box = _whole_object_box(rng, fg, cover, nz.whole_slack)
            lab = int(rng.integers(n_parts))
            if mode == "box":
                dets.append(Detection(lab, score(0.4), box.astype(np.float32)))
            else:
                inside = np.zeros_like(fg)
                x0, y0, x1, y1 = np.round(box).astype(int)
                inside[y0:y1, x0:x1] = True
                mask = morph_mask(fg & inside, int(rng.integers(-nz.mask_morph, nz.mask_morph + 1)))
                if mask.any():
                    dets.append(Detection(lab, score(0.4), bbox(mask).astype(np.float32), mask))
        kind += ["whole"] * (len(dets) - n_before)
        n_before = len(dets)
        for _ in range(int(rng.poisson(nz.false_positive))):
            rows, cols = np.nonzero(fg)
            i = int(rng.integers(rows.size))
            cy, cx = rows[i] + 0.5, cols[i] + 0.5
            ob = bbox(fg)
            bw, bh = (ob[2] - ob[0]) * rng.uniform(0.1, 0.4), (ob[3] - ob[1]) * rng.uniform(0.1, 0.4)
            lab = int(rng.integers(n_parts))
            if mode == "box":
                box = np.clip([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 0, [w, h, w, h])
                if box[2] - box[0] >= 1 and box[3] - box[1] >= 1:
                    dets.append(Detection(lab, score(0.2), np.asarray(box, np.float32)))
            else:
                mask = ellipse(h, w, cy, cx, bh / 2, bw / 2, rng.uniform(0, np.pi)) & fg
                if mask.any():
                    dets.append(Detection(lab, score(0.2), bbox(mask).astype(np.float32), mask))
        kind += ["fp"] * (len(dets) - n_before)
        views.append(dets)
    return Detections(names, views, capture.image_size).validate(capture.n_views, capture.image_size)


def _noisy_mask(
    rng: np.random.Generator, region: np.ndarray, label_map: np.ndarray, part: int, nz: RealisticNoise
) -> np.ndarray:
    h, w = region.shape
    fg = label_map >= 0
    mask = morph_mask(region, int(rng.integers(-nz.mask_morph, nz.mask_morph + 1))) if nz.mask_morph else region
    mask = mask & fg if mask.any() else region.copy()
    if not mask.any():
        mask = region.copy()
    scale = float(np.sqrt(region.sum()))
    if rng.random() < nz.bleed:
        near = morph_mask(region, max(3, int(0.15 * scale))) & fg & (label_map != part)
        rows, cols = np.nonzero(near)
        if rows.size:
            i = int(rng.integers(rows.size))
            r = rng.uniform(*nz.bleed_size) * scale
            blob = ellipse(h, w, rows[i] + 0.5, cols[i] + 0.5, r * rng.uniform(0.6, 1.0), r, rng.uniform(0, np.pi))
            mask = mask | (blob & fg)
    if rng.random() < nz.holes:
        for _ in range(int(rng.integers(1, 4))):
            rows, cols = np.nonzero(mask)
            if rows.size == 0:
                break
            i = int(rng.integers(rows.size))
            r = rng.uniform(*nz.hole_size) * scale
            mask = mask & ~ellipse(
                h, w, rows[i] + 0.5, cols[i] + 0.5, r * rng.uniform(0.6, 1.0), r, rng.uniform(0, np.pi)
            )
    if rng.random() < nz.truncate and mask.sum() > 4:
        mask = truncate_mask(rng, mask, rng.uniform(*nz.truncate_keep))
    return mask
