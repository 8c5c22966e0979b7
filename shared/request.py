"""A segmentation request, one form from the client through the wire to the engine.

What a client asks for, in the one form it keeps through the server's runner."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import limits
from .capture import Capture
from .detections import Detections
from .errors import ValidationError
from .options import VOTING_METHODS, CollectionOptions, SegmentOptions, collection_ruled_out
from .validation import check_array, check_index_range, check_part_names


@dataclass
class SegmentRequest:
    """capture: the mesh and its views. part_names: the parts to find, in the order the labels
    index. options: how (``SegmentOptions``). detections: 2D detections made outside (None: the
    teacher named in the options makes them). labelled_faces: ``(F,) int32`` few-shot labels, faces
    a user labelled (-1 = unknown)."""

    capture: Capture
    part_names: Sequence[str]
    options: SegmentOptions = field(default_factory=SegmentOptions)
    detections: Detections | None = None
    labelled_faces: np.ndarray | None = None

    def validate(self) -> SegmentRequest:
        """Every rule a request obeys, on either side of the wire: a valid capture, part names and
        options; detections made for these views; labelled faces for these faces and parts; and
        something to learn from (a teacher, detections, a category model, or labelled faces)."""
        cap = self.capture.validate()
        self.part_names = check_part_names("part_names", self.part_names, limits.MAX_PARTS, limits.MAX_PART_NAME_CHARS)
        self.options = self.options.validate()
        if self.detections is not None:
            # a file made for other views fails now, not as garbage labels
            self.detections.validate(cap.n_views, cap.image_size)
        if self.labelled_faces is not None:
            check_array("labelled_faces", self.labelled_faces, np.int32, (cap.mesh.n_faces,))
            check_index_range("labelled_faces", self.labelled_faces, -1, len(self.part_names))
        o = self.options
        learns = self.labelled_faces is not None and o.method not in VOTING_METHODS
        if self.detections is None and o.teacher is None and not o.category_model and not learns:
            raise ValidationError("options.teacher", "no teacher named and no detections given: provide one of them")
        return self


@dataclass
class Member:
    """One shape of a collection: its capture and its detections (None: the teacher's)."""

    capture: Capture
    detections: Detections | None = None


@dataclass
class CollectionRequest:
    """Several shapes of one category labelled together (``CollectionOptions``): their captures and
    detections (``members``), the parts, the options every shape shares and how the collection is
    labelled."""

    members: list[Member]
    part_names: Sequence[str]
    options: SegmentOptions = field(default_factory=SegmentOptions)
    collection: CollectionOptions = field(default_factory=CollectionOptions)

    def validate(self) -> CollectionRequest:
        """Every member obeys the rules of a ``SegmentRequest``; 1 to ``MAX_COLLECTION_SHAPES`` of them;
        the options allow collection mode."""
        n = len(self.members)
        if not 1 <= n <= limits.MAX_COLLECTION_SHAPES:
            raise ValidationError("members", f"a collection holds 1 to {limits.MAX_COLLECTION_SHAPES} shapes, got {n}")
        self.collection = self.collection.validate()
        for k, m in enumerate(self.members):
            try:
                r = SegmentRequest(m.capture, self.part_names, self.options, m.detections).validate()
            except ValidationError as e:
                raise ValidationError(f"members[{k}].{e.field}", e.problem) from None
            self.part_names, self.options = r.part_names, r.options
        why = collection_ruled_out(self.options) if self.collection.mode != "tta" else None
        if why is not None:
            raise ValidationError("collection.mode", f"{self.collection.mode} is not for {why}: use mode tta")
        return self


def collection_groups(n: int) -> list[range]:
    """``n`` shapes as the fewest collections a request allows (``MAX_COLLECTION_SHAPES`` each), of
    sizes that differ by at most one: 40 shapes are 3 collections of 13, 14 and 13, never 16, 16
    and 8."""
    if n < 1:
        raise ValidationError("members", f"a collection holds at least one shape, got {n}")
    k = -(-n // limits.MAX_COLLECTION_SHAPES)
    ends = [round(j * n / k) for j in range(k + 1)]
    return [range(ends[j], ends[j + 1]) for j in range(k)]
