"""A collection request and its reply on the wire (the ``collection`` and ``collections`` messages).

The request carries every member's capture and detections arrays under the member's prefix
(``m0.rgb``, ``m0.det_box``, ``m1.rgb`` ...) and one header entry per member::

    {"type": "collection", "part_names": [...], "options": {...}, "collection": {"mode": "pre", ...},
     "members": [{"has_detections": true, "detections": {...}, "capture_warnings": [...]}, ...]}

The reply (``collections``) carries, per member, either its result (``m0.face_labels``,
``m0.face_confidence``, ``m0.polygon_labels`` and a header entry with its stats, timings and
warnings) or the one-line reason it failed, and the collection's own warnings.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import limits
from .capture import ARRAY_KEYS, Capture
from .detections import DETECTION_ARRAYS
from .errors import ValidationError
from .options import CollectionOptions, SegmentOptions
from .protocol import Message, detections_header, parse_detections, plain
from .request import CollectionRequest, Member
from .result import SegmentationResult
from .validation import check_part_names, check_warnings

RESULT_ARRAYS = ("face_labels", "face_confidence", "polygon_labels")


def prefix(k: int) -> str:
    return f"m{k}."


def collection_request(job: str, request: CollectionRequest) -> Message:
    """The ``collection`` message of ``request`` (validated first)."""
    r = request.validate()
    arrays, members = {}, []
    for k, m in enumerate(r.members):
        p = prefix(k)
        arrays.update({p + n: a for n, a in m.capture.to_arrays().items()})
        entry: dict = {"has_detections": m.detections is not None, "capture_warnings": list(m.capture.warnings)}
        if m.detections is not None:
            arrays.update({p + n: a for n, a in m.detections.to_arrays().items()})
            entry["detections"] = detections_header(m.detections)
        members.append(entry)
    fields = {
        "part_names": list(r.part_names),
        "options": r.options.to_dict(),
        "collection": r.collection.to_dict(),
        "members": members,
    }
    return Message("collection", job, fields, arrays)


def parse_collection_request(msg: Message) -> CollectionRequest:
    """The request a ``collection`` message carries, validated down to every array value."""
    entries = msg.fields["members"]
    if not 1 <= len(entries) <= limits.MAX_COLLECTION_SHAPES:
        raise ValidationError("members", f"a collection holds 1 to {limits.MAX_COLLECTION_SHAPES} shapes")
    known = {prefix(k) + n for k in range(len(entries)) for n in (*ARRAY_KEYS, *DETECTION_ARRAYS)}
    unknown = sorted(set(msg.arrays) - known)
    if unknown:
        raise ValidationError("arrays", f"unknown array(s) {unknown[:5]} in a 'collection' message")
    names = check_part_names("part_names", msg.fields["part_names"], limits.MAX_PARTS, limits.MAX_PART_NAME_CHARS)
    members = []
    for k, entry in enumerate(entries):
        f = f"members[{k}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("has_detections"), bool):
            raise ValidationError(f, "must be a map with has_detections (true or false)")
        p = prefix(k)
        mine = {n.removeprefix(p): a for n, a in msg.arrays.items() if n.startswith(p)}
        try:
            warnings = check_warnings("capture_warnings", entry.get("capture_warnings", []))
            capture = Capture.from_arrays({n: a for n, a in mine.items() if n in ARRAY_KEYS}, warnings=warnings)
            det = parse_detections(entry.get("detections"), capture, mine) if entry["has_detections"] else None
        except ValidationError as e:
            raise ValidationError(f"{f}.{e.field}", e.problem) from None
        members.append(Member(capture, det))
    options = SegmentOptions.from_dict(msg.fields["options"])
    collection = CollectionOptions.from_dict(msg.fields["collection"])
    return CollectionRequest(members, names, options, collection).validate()


def collection_reply(
    job: str,
    part_names: Sequence[str],
    results: Sequence[SegmentationResult | None],
    errors: Sequence[str],
    warnings: Sequence[str],
) -> Message:
    """The ``collections`` message: each member's result (or the reason it has none) and the
    collection's warnings."""
    arrays, members = {}, []
    for k, (r, err) in enumerate(zip(results, errors, strict=True)):
        if r is None:
            members.append({"error": err or "no result"})
            continue
        arrays.update({prefix(k) + n: getattr(r, n) for n in RESULT_ARRAYS})
        members.append({"stats": plain(r.stats), "timings": plain(r.timings), "warnings": list(r.warnings)})
    fields = {"part_names": list(part_names), "warnings": list(warnings), "members": members}
    return Message("collections", job, fields, arrays)


def parse_collection_reply(msg: Message) -> tuple[list[SegmentationResult | None], list[str], list[str]]:
    """``(results, errors, warnings)`` of a ``collections`` message: per member its result or None and
    the reason (""), and the collection's warnings."""
    names = check_part_names("part_names", msg.fields["part_names"], limits.MAX_PARTS, limits.MAX_PART_NAME_CHARS)
    results, errors = [], []
    for k, entry in enumerate(msg.fields["members"]):
        if not isinstance(entry, dict):
            raise ValidationError(f"members[{k}]", "must be a map")
        if "error" in entry:
            results.append(None)
            errors.append(str(entry["error"]))
            continue
        a = {n: msg.arrays.get(prefix(k) + n) for n in RESULT_ARRAYS}
        missing = [n for n, v in a.items() if v is None]
        if missing:
            raise ValidationError(f"arrays.{prefix(k)}{missing[0]}", "required for a member with a result")
        results.append(
            SegmentationResult(
                names,
                a["face_labels"],
                a["face_confidence"],
                a["polygon_labels"],
                dict(entry.get("stats", {})),
                dict(entry.get("timings", {})),
                list(entry.get("warnings", [])),
            ).validate()
        )
        errors.append("")
    return results, errors, check_warnings("warnings", msg.fields["warnings"])
