"""2D detections: what a teacher (or any outside tool) says it sees in each view.

File form (``detections.json``, documented in the README)::

    {"part_names": ["seat", "back"],
     "views": [[{"part": "seat", "score": 0.83, "box": [x0, y0, x1, y1]},
                {"part": "back", "score": 0.6, "mask": "masks/v0_back.png"}],
               []]}

One list per view, in the order of the capture's views. An optional ``"image_size": [H, W]`` records
the view size the boxes were made for; when present it is checked against the capture.
Boxes are in pixels, x right, y down, (x0, y0) inclusive top-left corner and (x1, y1) exclusive
bottom-right corner (a box [0, 0, W, H] covers the whole image). A mask is a PNG (non-zero = inside)
at a path relative to the JSON file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import limits
from .errors import ValidationError, shown
from .validation import check_part_names

#: The arrays of :meth:`Detections.to_arrays` (``det_masks`` only when some detection has a mask).
DETECTION_ARRAYS = ("det_view", "det_part", "det_score", "det_box", "det_mask_index", "det_masks")


@dataclass
class Detection:
    """One box and/or mask with a part label (index into the part names) and a confidence in [0, 1].

    box: (4,) float (x0, y0, x1, y1) pixels or None. mask: (H, W) bool or None.
    """

    part: int
    score: float
    box: np.ndarray | None = None
    mask: np.ndarray | None = None


@dataclass
class Detections:
    """Per view, the detections of that view. ``views[n]`` belongs to view n of the capture."""

    part_names: tuple[str, ...]
    views: list[list[Detection]] = field(default_factory=list)
    image_size: tuple[int, int] | None = None

    @property
    def n_detections(self) -> int:
        return sum(len(v) for v in self.views)

    def validate(self, n_views: int | None = None, image_size: tuple[int, int] | None = None) -> Detections:
        self.part_names = check_part_names("part_names", self.part_names, limits.MAX_PARTS, limits.MAX_PART_NAME_CHARS)
        if n_views is not None and len(self.views) != n_views:
            raise ValidationError("views", f"has {len(self.views)} view lists, the capture has {n_views} views")
        if image_size is not None and self.image_size is not None and tuple(self.image_size) != tuple(image_size):
            raise ValidationError(
                "image_size",
                f"the detections were made for {list(self.image_size)} (H, W), the views are {list(image_size)}",
            )
        for n, dets in enumerate(self.views):
            if len(dets) > limits.MAX_DETECTIONS_PER_VIEW:
                raise ValidationError(f"views[{n}]", f"more than {limits.MAX_DETECTIONS_PER_VIEW} detections")
            for i, d in enumerate(dets):
                _validate_detection(f"views[{n}][{i}]", d, len(self.part_names), image_size)
        return self

    # ---- arrays form, for the wire ---------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flatten to arrays: det_view (D,) int32, det_part (D,) int32, det_score (D,) float32,
        det_box (D, 4) float32 (NaN row = no box), det_mask_index (D,) int32 (-1 = no mask),
        det_masks (M, H, W) uint8 (0/1), present only when some detection has a mask."""
        rows = [(n, d) for n, dets in enumerate(self.views) for d in dets]
        out = {
            "det_view": np.array([n for n, _ in rows], dtype=np.int32),
            "det_part": np.array([d.part for _, d in rows], dtype=np.int32),
            "det_score": np.array([d.score for _, d in rows], dtype=np.float32),
            "det_box": np.full((len(rows), 4), np.nan, dtype=np.float32),
            "det_mask_index": np.full(len(rows), -1, dtype=np.int32),
        }
        masks = []
        for i, (_, d) in enumerate(rows):
            if d.box is not None:
                out["det_box"][i] = d.box
            if d.mask is not None:
                out["det_mask_index"][i] = len(masks)
                masks.append(d.mask.astype(np.uint8))
        if masks:
            out["det_masks"] = np.stack(masks)
        return out

    @classmethod
    def from_arrays(cls, part_names: tuple[str, ...], n_views: int, arrays: dict[str, np.ndarray]) -> Detections:
        from .validation import check_array, check_index_range

        view = check_array("det_view", arrays.get("det_view"), np.int32, (None,))
        d = view.shape[0]
        if d > n_views * limits.MAX_DETECTIONS_PER_VIEW:  # counted before anything is built
            raise ValidationError(
                "det_view", f"{d} detections for {n_views} views: more than {limits.MAX_DETECTIONS_PER_VIEW} per view"
            )
        part = check_array("det_part", arrays.get("det_part"), np.int32, (d,))
        score = check_array("det_score", arrays.get("det_score"), np.float32, (d,))
        box = check_array("det_box", arrays.get("det_box"), np.float32, (d, 4))
        mindex = check_array("det_mask_index", arrays.get("det_mask_index"), np.int32, (d,))
        check_index_range("det_view", view, 0, n_views)
        per_view = np.bincount(view, minlength=n_views)
        if per_view.max(initial=0) > limits.MAX_DETECTIONS_PER_VIEW:
            v = int(per_view.argmax())
            raise ValidationError(f"views[{v}]", f"more than {limits.MAX_DETECTIONS_PER_VIEW} detections")
        masks = arrays.get("det_masks")
        n_masks = 0
        if masks is not None:
            masks = check_array("det_masks", masks, np.uint8, (None, None, None)) != 0  # one copy, shared
            n_masks = masks.shape[0]
        check_index_range("det_mask_index", mindex, -1, n_masks)
        views: list[list[Detection]] = [[] for _ in range(n_views)]
        for i in range(d):
            b = box[i]
            views[int(view[i])].append(
                Detection(
                    part=int(part[i]),
                    score=float(score[i]),
                    box=None if np.isnan(b).all() else b.astype(np.float32),
                    mask=None if mindex[i] < 0 else masks[mindex[i]],  # a view: many detections, one mask
                )
            )
        return cls(tuple(part_names), views)

    # ---- JSON file form --------------------------------------------------------------------
    @classmethod
    def load_json(cls, path: str | Path) -> Detections:
        """Read a detections file; mask PNGs are read relative to it (needs Pillow)."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise ValidationError("detections", f"file not found: {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValidationError("detections", f"{path} is not valid JSON: {e}") from None
        return cls.from_json_dict(doc, base_dir=path.parent)

    @classmethod
    def from_json_dict(cls, doc: object, base_dir: Path | None = None) -> Detections:
        if not isinstance(doc, dict):
            raise ValidationError("detections", "must be a JSON object with 'part_names' and 'views'")
        names = check_part_names("part_names", doc.get("part_names", []), limits.MAX_PARTS, limits.MAX_PART_NAME_CHARS)
        index = {n: i for i, n in enumerate(names)}
        raw_views = doc.get("views")
        if not isinstance(raw_views, list):
            raise ValidationError("views", "must be a list with one list of detections per view")
        views: list[list[Detection]] = []
        for n, raw in enumerate(raw_views):
            if not isinstance(raw, list):
                raise ValidationError(f"views[{n}]", "must be a list of detections")
            dets = []
            for i, r in enumerate(raw):
                f = f"views[{n}][{i}]"
                if not isinstance(r, dict):
                    raise ValidationError(f, "must be an object")
                if r.get("part") not in index:
                    bad = shown(r.get("part"))
                    raise ValidationError(f"{f}.part", f"{bad} is not one of the part names {list(names)}")
                score = r.get("score", 1.0)
                if not isinstance(score, int | float) or isinstance(score, bool):
                    raise ValidationError(f"{f}.score", "must be a number")
                box = r.get("box")
                if box is not None:
                    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(x, int | float) for x in box)):
                        raise ValidationError(f"{f}.box", "must be [x0, y0, x1, y1] in pixels")
                    box = np.asarray(box, dtype=np.float32)
                mask = None
                if r.get("mask") is not None:
                    mask = _read_mask(f"{f}.mask", r["mask"], base_dir)
                if box is None and mask is None:
                    raise ValidationError(f, "needs a 'box' or a 'mask'")
                dets.append(Detection(part=index[r["part"]], score=float(score), box=box, mask=mask))
            views.append(dets)
        size = doc.get("image_size")
        if size is not None:
            if not (isinstance(size, list) and len(size) == 2 and all(isinstance(x, int) and x > 0 for x in size)):
                raise ValidationError("image_size", "must be [height, width] in pixels")
            size = (size[0], size[1])
        return cls(names, views, size).validate()

    def save_json(self, path: str | Path) -> None:
        """Write the JSON form; masks go to PNG files in ``<stem>_masks/`` beside it."""
        path = Path(path)
        doc_views = []
        for n, dets in enumerate(self.views):
            rows = []
            for i, d in enumerate(dets):
                r: dict = {"part": self.part_names[d.part], "score": round(float(d.score), 6)}
                if d.box is not None:
                    r["box"] = [round(float(x), 3) for x in d.box]
                if d.mask is not None:
                    from PIL import Image

                    rel = Path(f"{path.stem}_masks") / f"view{n:03d}_{i:03d}.png"
                    (path.parent / rel).parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(d.mask.astype(np.uint8) * 255).save(path.parent / rel)
                    r["mask"] = rel.as_posix()
                rows.append(r)
            doc_views.append(rows)
        doc: dict = {"part_names": list(self.part_names)}
        if self.image_size is not None:
            doc["image_size"] = list(self.image_size)
        doc["views"] = doc_views
        path.write_text(json.dumps(doc, indent=1))


def box_pixel_span(box: np.ndarray, h: int, w: int) -> tuple[int, int, int, int]:
    """Rows ``r0:r1`` and columns ``c0:c1`` of the pixels whose centre lies inside ``box`` (xyxy px),
    the rule of this format: pixel (i, j) spans [i, i+1) x [j, j+1) and is inside a box when its centre is."""
    x0, y0, x1, y1 = (float(x) for x in box)
    c0, c1 = int(np.clip(np.ceil(x0 - 0.5), 0, w)), int(np.clip(np.ceil(x1 - 0.5), 0, w))
    r0, r1 = int(np.clip(np.ceil(y0 - 0.5), 0, h)), int(np.clip(np.ceil(y1 - 0.5), 0, h))
    return r0, r1, c0, c1


def box_mask(box: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` bool: the pixels whose centre is inside ``box`` (``box_pixel_span``)."""
    h, w = size
    r0, r1, c0, c1 = box_pixel_span(np.asarray(box), h, w)
    out = np.zeros((h, w), dtype=bool)
    out[r0:r1, c0:c1] = True
    return out


def _validate_detection(f: str, d: Detection, n_parts: int, image_size: tuple[int, int] | None) -> None:
    if not 0 <= d.part < n_parts:
        raise ValidationError(f"{f}.part", f"index {d.part} out of range for {n_parts} parts")
    if not (math.isfinite(d.score) and 0.0 <= d.score <= 1.0):
        raise ValidationError(f"{f}.score", f"must be a confidence in [0, 1], got {d.score}")
    if d.box is None and d.mask is None:
        raise ValidationError(f, "needs a box or a mask")
    if d.box is not None:
        b = np.asarray(d.box, dtype=np.float64)
        if b.shape != (4,) or not np.isfinite(b).all():
            raise ValidationError(f"{f}.box", "must be 4 finite numbers [x0, y0, x1, y1]")
        if b[2] < b[0] or b[3] < b[1]:
            raise ValidationError(f"{f}.box", f"x1 < x0 or y1 < y0 in {b.tolist()}")
    if d.mask is not None:
        if d.mask.ndim != 2:
            raise ValidationError(f"{f}.mask", f"must be a 2D mask, got shape {d.mask.shape}")
        if image_size is not None and tuple(d.mask.shape) != tuple(image_size):
            raise ValidationError(f"{f}.mask", f"size {d.mask.shape} differs from the view size {image_size}")


def _read_mask(field_name: str, rel: object, base_dir: Path | None) -> np.ndarray:
    if not isinstance(rel, str):
        raise ValidationError(field_name, "must be a relative path to a PNG file")
    p = (base_dir or Path(".")) / rel
    try:
        from PIL import Image

        with Image.open(p) as im:
            a = np.asarray(im.convert("L"))
    except FileNotFoundError:
        raise ValidationError(field_name, f"mask file not found: {p}") from None
    except OSError as e:
        raise ValidationError(field_name, f"cannot read mask {p}: {e}") from None
    return a > 0
