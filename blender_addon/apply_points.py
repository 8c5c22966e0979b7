"""Put a segmentation onto a point object (a point cloud, or a mesh with vertices and no faces).

Points have no material slots, so a result is attributes on the POINT domain:

- ``partdistill_part`` (INT): the part index per point, -1 = unlabelled;
- ``partdistill_part_color`` (FLOAT_COLOR): the part's palette colour, for viewing the parts
  (viewport colour attribute, or a geometry-nodes point instance material);
- ``partdistill_confidence`` (FLOAT_COLOR): red = unsure .. green = sure, the value in alpha;
- custom property ``partdistill_parts`` on the data: the part names in index order.

Everything is validated first, then written; applying again replaces it."""

from __future__ import annotations

from collections.abc import Sequence

import bpy
import numpy as np
from partdistill.shared.errors import ValidationError

from .apply import CONFIDENCE_ATTRIBUTE, PART_ATTRIBUTE, PARTS_PROPERTY, part_colors
from .capture.points import is_point_object, point_count

COLOR_ATTRIBUTE = "partdistill_part_color"


def apply_point_result(
    obj: bpy.types.Object, part_names: Sequence[str], point_labels: np.ndarray, confidence: np.ndarray
) -> None:
    """Label the points of ``obj``: ``point_labels (N,) int`` in [-1, P), ``confidence (N,)`` in [0, 1]."""
    if not is_point_object(obj):
        raise ValidationError("object", f"{getattr(obj, 'name', obj)!r} is not a point cloud")
    n = point_count(obj)
    labels = np.asarray(point_labels)
    conf = np.asarray(confidence, np.float32)
    if labels.shape != (n,) or conf.shape != (n,):
        raise ValidationError("labels", f"{obj.name!r} has {n} points; got {labels.shape[0]} labels")
    if labels.size and (labels.min() < -1 or labels.max() >= len(part_names)):
        raise ValidationError("labels", f"labels must lie in [-1, {len(part_names)})")
    if not np.isfinite(conf).all():
        raise ValidationError("confidence", "must be finite")
    palette = part_colors(len(part_names))
    rgba = np.where(labels[:, None] >= 0, palette[np.maximum(labels, 0)], [[0.5, 0.5, 0.5, 1.0]]).astype(np.float32)
    c = np.clip(conf, 0.0, 1.0)
    conf_rgba = np.stack([1.0 - c, c, np.zeros_like(c), c], axis=1).astype(np.float32)
    remove_point_result(obj)
    data = obj.data
    data.attributes.new(PART_ATTRIBUTE, "INT", "POINT").data.foreach_set("value", labels.astype(np.int32))
    data.attributes.new(COLOR_ATTRIBUTE, "FLOAT_COLOR", "POINT").data.foreach_set("color", rgba.ravel())
    data.attributes.new(CONFIDENCE_ATTRIBUTE, "FLOAT_COLOR", "POINT").data.foreach_set("color", conf_rgba.ravel())
    data[PARTS_PROPERTY] = list(part_names)
    data.update_tag()


def remove_point_result(obj: bpy.types.Object) -> bool:
    """Take a result off a point object; False when there was none."""
    data = obj.data
    found = False
    for name in (PART_ATTRIBUTE, COLOR_ATTRIBUTE, CONFIDENCE_ATTRIBUTE):
        attr = data.attributes.get(name)
        if attr is not None:
            data.attributes.remove(attr)
            found = True
    if PARTS_PROPERTY in data:
        del data[PARTS_PROPERTY]
        found = True
    return found


def point_result_labels(obj: bpy.types.Object) -> tuple[tuple[str, ...], np.ndarray] | None:
    """The part names and ``(N,) int32`` point labels a result left on a point object, or None."""
    if not is_point_object(obj):
        return None
    data = obj.data
    attr = data.attributes.get(PART_ATTRIBUTE)
    if attr is None or attr.domain != "POINT" or PARTS_PROPERTY not in data:
        return None
    labels = np.empty(point_count(obj), np.int32)
    attr.data.foreach_get("value", labels)
    return tuple(str(n) for n in data[PARTS_PROPERTY]), labels
