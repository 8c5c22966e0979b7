"""2D region geometry the simulated teachers share.

The ground truth's per-view label maps and the regions of each part in them, masks grown or shrunk,
bounding boxes, ellipses, overlaps and truncations, on (H, W) bool masks and xyxy pixel boxes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from partdistill.shared.capture import Capture
from scipy import ndimage


def gt_label_maps(capture: Capture) -> np.ndarray:
    """(N, H, W) int32 ground-truth part of each pixel: ``gt_face_labels[face_id]``, -1 for background."""
    if capture.gt_face_labels is None:
        raise ValueError("the capture has no gt_face_labels")
    fid = capture.face_id
    gt = np.asarray(capture.gt_face_labels, dtype=np.int32)
    return np.where(fid >= 0, gt[np.maximum(fid, 0)], -1).astype(np.int32)


def found_regions(
    label_map: np.ndarray, part: int, min_pixels: int, miss: float, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """The connected regions of ``part`` in an (H, W) label map (scipy's 4-connectivity, in scan order)
    that a simulated detector finds, each an (H, W) bool mask: those of at least ``min_pixels`` pixels,
    then each missed with probability ``miss``. ``rng`` draws once per region large enough, when the
    iteration reaches it, so the caller's own draws for a region come between."""
    comps, n = ndimage.label(label_map == part)
    for sl, idx in zip(ndimage.find_objects(comps), range(1, n + 1), strict=True):
        if sl is None:
            continue
        region = np.zeros(label_map.shape, dtype=bool)
        region[sl] = comps[sl] == idx
        if region[sl].sum() < min_pixels or rng.random() < miss:
            continue
        yield region


def morph_mask(mask: np.ndarray, k: int) -> np.ndarray:
    """``mask`` (H, W) bool dilated (k > 0) or eroded (k < 0) by a disk of radius |k| pixels.

    Erosion treats pixels beyond the image edge as inside, so a region cut by the frame is not
    eroded from the frame. Works on the mask's bounding box plus a margin, so it costs little for
    small regions of large views."""
    mask = np.asarray(mask, dtype=bool)
    if k == 0 or not mask.any():
        return mask.copy()
    r = abs(int(k))
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    r0, r1 = max(rows[0] - r - 1, 0), min(rows[-1] + r + 2, h)
    c0, c1 = max(cols[0] - r - 1, 0), min(cols[-1] + r + 2, w)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = xx * xx + yy * yy <= r * r
    crop = mask[r0:r1, c0:c1]
    if k > 0:
        crop = ndimage.binary_dilation(crop, structure=disk)
    else:
        # Outside the crop counts as inside (border_value=1). Where the crop ends inside the image it
        # has a background margin wider than the disk, so this only affects the image's own edges.
        crop = ndimage.binary_erosion(crop, structure=disk, border_value=1)
    out = np.zeros_like(mask)
    out[r0:r1, c0:c1] = crop
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two xyxy boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / ua) if ua > 0 else 0.0


def bbox(mask: np.ndarray) -> np.ndarray:
    """(4,) float64 xyxy pixel box of a non-empty mask (pixel edges: the exclusive corner is +1)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float64)


def ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float, a: float) -> np.ndarray:
    """(H, W) bool filled ellipse centred at (cx, cy) px with radii (rx, ry), rotated by ``a`` radians."""
    r = int(np.ceil(max(ry, rx))) + 1
    r0, r1 = max(int(cy) - r, 0), min(int(cy) + r + 1, h)
    c0, c1 = max(int(cx) - r, 0), min(int(cx) + r + 1, w)
    out = np.zeros((h, w), dtype=bool)
    if r0 >= r1 or c0 >= c1:
        return out
    yy, xx = np.mgrid[r0:r1, c0:c1] + 0.5
    dx, dy = xx - cx, yy - cy
    u, v = np.cos(a) * dx + np.sin(a) * dy, -np.sin(a) * dx + np.cos(a) * dy
    out[r0:r1, c0:c1] = (u / max(rx, 0.5)) ** 2 + (v / max(ry, 0.5)) ** 2 <= 1.0
    return out


def truncate_mask(rng: np.random.Generator, mask: np.ndarray, keep: float) -> np.ndarray:
    """Keep the pixels of ``mask`` on one side of a random line, about ``keep`` of them."""
    rows, cols = np.nonzero(mask)
    a = rng.uniform(0, 2 * np.pi)
    proj = np.cos(a) * cols + np.sin(a) * rows
    thr = np.quantile(proj, keep)
    out = np.zeros_like(mask)
    sel = proj <= thr
    out[rows[sel], cols[sel]] = True
    return out


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two (H, W) bool masks (0 when both are empty)."""
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 0.0
