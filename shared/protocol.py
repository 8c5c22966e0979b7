"""The wire protocol between the add-on / CLI (DEALER) and the backend (ROUTER).

A message is a ZeroMQ multipart: frame 0 is a msgpack header, then one raw frame per array,
in the order the header lists them (after Jupyter's messaging protocol: versioned header + raw buffers)::

    {"v": 1, "type": "segment", "job": "8c1f...", "arrays": [{"name": "rgb", "dtype": "uint8",
     "shape": [10, 512, 512, 3]}, ...], ...type-specific fields...}

Never pickle. Every header field and every array is validated on receipt; anything wrong raises
ValidationError naming the field, which the server turns into an ``error`` reply.

Types and their fields (client -> server):
  hello    {client: str}                              -> hello {server: str, version, teachers, device}
  ping     {}                                         -> pong {}
  status   {}                                         -> status {jobs: [{job, state, stage}], busy}
  segment  {part_names, options, has_detections, [detections: {part_names, n_views, image_size}], [capture_warnings]}
           + capture arrays (+ det_* arrays; a detection's part indexes detections.part_names, and the
           backend matches them to the job's part_names by name)
                                                      -> progress* then result | error
  collection {part_names, options, collection, members: [{has_detections, [detections], [capture_warnings]}]}
           + each member's capture and det_* arrays, named "m<k>.<array>" (``collection_wire``)
                                                      -> progress* then collections | error
  cancel   {target: job id}                           -> status ... ; the target job ends with error code "cancelled"
Server -> client:
  progress {done, total, stage, message}   (also sent as a heartbeat while a job runs)
  result   {part_names, stats, timings, warnings} + face_labels, face_confidence, polygon_labels arrays
  collections {part_names, warnings, members: [{stats, timings, warnings} | {error}]} + "m<k>." result arrays
  error    {code, field, message}  codes: invalid, unknown_type, cancelled, teacher_unavailable, busy,
                                   internal, lost, refused
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgpack
import numpy as np

from . import limits
from .capture import ARRAY_KEYS, Capture
from .detections import DETECTION_ARRAYS, Detections
from .errors import ValidationError, shown
from .options import SegmentOptions
from .request import SegmentRequest
from .result import SegmentationResult
from .validation import check_part_names, check_warnings

PROTOCOL_VERSION = 1
#: Where a client looks for the backend and where ``partdistill serve`` binds unless told otherwise.
DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"


def check_address(address: object, field: str = "address") -> str:
    """A ZeroMQ endpoint a client can connect to: ``tcp://host:port``, ``ipc://path`` or ``inproc://name``."""
    pattern = r"tcp://(\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):\d{1,5}|(ipc|inproc)://\S+"
    if not isinstance(address, str) or not re.fullmatch(pattern, address):
        raise ValidationError(field, f"{shown(address)} is not a backend address like tcp://127.0.0.1:5555")
    if address.startswith("tcp://") and not 0 < int(address.rsplit(":", 1)[1]) < 65536:
        raise ValidationError(field, f"{shown(address)}: the port must lie in 1..65535")
    return address


def check_curve_key(key: object, field: str = "key") -> bytes:
    """A CurveZMQ key as ``partdistill keys`` writes it: 40 characters of Z85 text."""
    import zmq.utils.z85

    raw = key.strip() if isinstance(key, bytes | bytearray) else None
    try:
        if raw is None or len(raw) != 40 or len(zmq.utils.z85.decode(raw)) != 32:
            raise ValueError
    except ValueError:
        raise ValidationError(field, "not a CurveZMQ key (40 Z85 characters, as `partdistill keys` writes)") from None
    return bytes(raw)


ALLOWED_DTYPES = frozenset({"uint8", "int32", "int64", "float32", "float64", "bool"})

ERROR_CODES = ("invalid", "unknown_type", "cancelled", "teacher_unavailable", "busy", "internal", "lost", "refused")

# Per type: the header fields it must carry, with their Python types.
_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "hello": {},
    "ping": {},
    "pong": {},
    "status": {},
    "segment": {"part_names": list, "options": dict, "has_detections": bool},
    "collection": {"part_names": list, "options": dict, "collection": dict, "members": list},
    "cancel": {"target": str},
    "progress": {"done": int, "total": int, "stage": str, "message": str},
    "result": {"part_names": list, "stats": dict, "timings": dict, "warnings": list},
    "collections": {"part_names": list, "warnings": list, "members": list},
    "error": {"code": str, "field": str, "message": str},
}
MESSAGE_TYPES = tuple(_FIELDS)


@dataclass
class Message:
    """A decoded message: its type, job id, type-specific header fields and named arrays."""

    type: str
    job: str = ""
    fields: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


# ---- framing ---------------------------------------------------------------------------------


def encode(msg: Message) -> list:
    """Message -> frames. Array frames are the arrays' own memory (no copy when C-contiguous)."""
    if msg.type not in _FIELDS:
        raise ValidationError("header.type", f"unknown message type {msg.type!r}")
    names = list(msg.arrays)
    arrays = [np.require(msg.arrays[n], requirements="C") for n in names]  # keeps 0-d arrays 0-d
    header = {
        "v": PROTOCOL_VERSION,
        "type": msg.type,
        "job": msg.job,
        "arrays": [
            {"name": n, "dtype": a.dtype.name, "shape": list(a.shape)} for n, a in zip(names, arrays, strict=True)
        ],
        **msg.fields,
    }
    frames: list = [msgpack.packb(header, use_bin_type=True)]
    frames.extend(memoryview(a).cast("B") if a.size else b"" for a in arrays)
    return frames


def decode(frames: Sequence) -> Message:
    """Frames (bytes, memoryview or zmq.Frame) -> validated Message. Arrays are zero-copy views
    (read-only) into the received buffers."""
    if not frames:
        raise ValidationError("message", "no frames")
    head = _buffer(frames[0])
    if len(head) > limits.MAX_HEADER_BYTES:
        raise ValidationError("header", f"{len(head)} bytes exceeds the limit of {limits.MAX_HEADER_BYTES}")
    try:
        header = msgpack.unpackb(head, raw=False, strict_map_key=True, max_bin_len=0, max_ext_len=0)
    except Exception as e:  # msgpack raises several unrelated types for garbage
        raise ValidationError("header", f"not a msgpack map: {type(e).__name__}: {e}") from None
    if not isinstance(header, dict):
        raise ValidationError("header", f"must be a msgpack map, got {type(header).__name__}")
    v = header.get("v")
    if type(v) is not int or v != PROTOCOL_VERSION:  # True and 1.0 equal 1, but are not a version
        raise ValidationError(
            "header.v", f"protocol version {shown(v)} is not supported (this side speaks {PROTOCOL_VERSION})"
        )
    mtype = header.get("type")
    if not isinstance(mtype, str):
        raise ValidationError("header.type", "missing or not a string")
    if mtype not in _FIELDS:
        raise ValidationError("header.type", f"unknown message type {mtype!r}; known: {list(MESSAGE_TYPES)}")
    job = header.get("job", "")
    if not isinstance(job, str) or len(job) > 128:
        raise ValidationError("header.job", "must be a string of at most 128 characters")
    specs = header.get("arrays", [])
    if not isinstance(specs, list):
        raise ValidationError("header.arrays", "must be a list")
    if len(specs) > limits.MAX_ARRAYS_PER_MESSAGE:
        raise ValidationError("header.arrays", f"more than {limits.MAX_ARRAYS_PER_MESSAGE} arrays")
    if len(frames) - 1 != len(specs):
        raise ValidationError(
            "frames",
            f"header lists {len(specs)} arrays but {len(frames) - 1} array frames arrived (truncated?)",
        )
    arrays: dict[str, np.ndarray] = {}
    total = len(head)
    for i, spec in enumerate(specs):
        name, dtype, shape = _check_spec(i, spec)
        if name in arrays:
            raise ValidationError(f"header.arrays[{i}].name", f"duplicate array name {name!r}")
        buf = _buffer(frames[i + 1])
        expected = math.prod(shape) * np.dtype(dtype).itemsize
        if len(buf) != expected:
            raise ValidationError(
                f"arrays.{name}",
                f"frame has {len(buf)} bytes, shape {shape} of {dtype} needs {expected} (truncated?)",
            )
        total += expected
        if total > limits.MAX_MESSAGE_BYTES:
            raise ValidationError("message", f"larger than the limit of {limits.MAX_MESSAGE_BYTES} bytes")
        arrays[name] = np.frombuffer(buf, dtype=dtype).reshape(shape) if expected else np.zeros(shape, dtype)
    fields = {k: val for k, val in header.items() if k not in ("v", "type", "job", "arrays")}
    for fname, ftype in _FIELDS[mtype].items():
        if fname not in fields:
            raise ValidationError(f"header.{fname}", f"required for a {mtype!r} message")
        if not isinstance(fields[fname], ftype) or (ftype is int and isinstance(fields[fname], bool)):
            raise ValidationError(f"header.{fname}", f"must be of type {ftype.__name__}")
    return Message(mtype, job, fields, arrays)


def _check_spec(i: int, spec: object) -> tuple[str, str, tuple[int, ...]]:
    f = f"header.arrays[{i}]"
    if not isinstance(spec, dict):
        raise ValidationError(f, "must be a map with name, dtype, shape")
    name, dtype, shape = spec.get("name"), spec.get("dtype"), spec.get("shape")
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ValidationError(f"{f}.name", "must be a non-empty string")
    if not isinstance(dtype, str) or dtype not in ALLOWED_DTYPES:
        raise ValidationError(f"{f}.dtype", f"{shown(dtype)} is not one of {sorted(ALLOWED_DTYPES)}")
    if (
        not isinstance(shape, list)
        or len(shape) > 6
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape)
    ):
        raise ValidationError(f"{f}.shape", "must be a list of at most 6 integers")
    if any(s < 0 or s > limits.MAX_MESSAGE_BYTES for s in shape):
        raise ValidationError(f"{f}.shape", f"a dimension of {shown(shape)} is negative or beyond the message limit")
    if math.prod(shape) * np.dtype(dtype).itemsize > limits.MAX_MESSAGE_BYTES:
        raise ValidationError(f"{f}.shape", f"{shape} is larger than the message limit")
    return name, dtype, tuple(shape)


def _buffer(frame: object) -> memoryview:
    if hasattr(frame, "buffer"):  # zmq.Frame received with copy=False
        frame = frame.buffer
    if isinstance(frame, bytes | bytearray | memoryview):
        return memoryview(frame).cast("B") if isinstance(frame, memoryview) else memoryview(frame)
    raise ValidationError("frames", f"frame of type {type(frame).__name__} is not bytes")


# ---- typed messages --------------------------------------------------------------------------


def segment_request(job: str, request: SegmentRequest) -> Message:
    """The ``segment`` message of ``request`` (validated first: what the backend would refuse is
    refused before anything is sent)."""
    r = request.validate()
    arrays = r.capture.to_arrays()
    if r.detections is not None:
        arrays.update(r.detections.to_arrays())
    if r.labelled_faces is not None:
        arrays["labelled_faces"] = r.labelled_faces
    fields = {
        "part_names": list(r.part_names),
        "options": r.options.to_dict(),
        "has_detections": r.detections is not None,
        "capture_warnings": list(r.capture.warnings),
    }
    if r.detections is not None:
        fields["detections"] = detections_header(r.detections)
    return Message("segment", job, fields, arrays)


def detections_header(detections: Detections) -> dict:
    """The header entry that goes with a request's ``det_*`` arrays."""
    size = detections.image_size
    return {
        "part_names": list(detections.part_names),
        "n_views": len(detections.views),
        "image_size": None if size is None else list(size),
    }


def request_bytes(msg: Message, nbytes: int) -> int:
    """What a segment or collection request of ``nbytes`` holds in memory once parsed: its frames,
    plus the one boolean copy of its masks (detections share them, never copy them)."""
    masks = [a for n, a in msg.arrays.items() if n == "det_masks" or n.endswith(".det_masks")]
    return nbytes + sum(int(m.size) for m in masks)


_REQUEST_ARRAYS = (*ARRAY_KEYS, "labelled_faces", *DETECTION_ARRAYS)


def parse_segment_request(msg: Message) -> SegmentRequest:
    """The request a ``segment`` message carries, validated down to every array value."""
    a = msg.arrays
    unknown = sorted(set(a) - set(_REQUEST_ARRAYS))
    if unknown:
        raise ValidationError("arrays", f"unknown array(s) {unknown} in a 'segment' message")
    warnings = check_warnings("capture_warnings", msg.fields.get("capture_warnings", []))
    capture = Capture.from_arrays({k: v for k, v in a.items() if k in ARRAY_KEYS}, warnings=warnings)
    names = check_part_names("part_names", msg.fields["part_names"], limits.MAX_PARTS, limits.MAX_PART_NAME_CHARS)
    detections = parse_detections(msg.fields.get("detections"), capture, a) if msg.fields["has_detections"] else None
    options = SegmentOptions.from_dict(msg.fields["options"])
    return SegmentRequest(capture, names, options, detections, a.get("labelled_faces")).validate()


def parse_detections(meta: object, capture: Capture, arrays: dict[str, np.ndarray]) -> Detections:
    """The detections of a request (``meta``: their header entry), by their own part names (the
    backend matches those to the job's parts by name), checked against the capture's views."""
    if not isinstance(meta, dict) or set(meta) != {"part_names", "n_views", "image_size"}:
        raise ValidationError("header.detections", "must be a map with part_names, n_views and image_size")
    names = check_part_names("detections.part_names", meta["part_names"], limits.MAX_PARTS, limits.MAX_PART_NAME_CHARS)
    n_views, size = meta["n_views"], meta["image_size"]
    if not isinstance(n_views, int) or isinstance(n_views, bool):
        raise ValidationError("detections.n_views", "must be an integer")
    if n_views != capture.n_views:
        raise ValidationError(
            "detections.n_views", f"the detections are for {n_views} views, the capture has {capture.n_views}"
        )
    if size is not None and not (
        isinstance(size, list) and len(size) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in size)
    ):
        raise ValidationError("detections.image_size", "must be [height, width] or null")
    det = Detections.from_arrays(names, capture.n_views, arrays)
    det.image_size = None if size is None else (size[0], size[1])
    return det.validate(capture.n_views, capture.image_size)


def result_message(job: str, result: SegmentationResult) -> Message:
    return Message(
        "result",
        job,
        {
            "part_names": list(result.part_names),
            "stats": plain(result.stats),
            "timings": plain(result.timings),
            "warnings": list(result.warnings),
        },
        {
            "face_labels": result.face_labels,
            "face_confidence": result.face_confidence,
            "polygon_labels": result.polygon_labels,
        },
    )


def parse_result(msg: Message) -> SegmentationResult:
    for name in ("face_labels", "face_confidence", "polygon_labels"):
        if name not in msg.arrays:
            raise ValidationError(f"arrays.{name}", "required for a 'result' message")
    names = check_part_names("part_names", msg.fields["part_names"], limits.MAX_PARTS, limits.MAX_PART_NAME_CHARS)
    return SegmentationResult(
        names,
        msg.arrays["face_labels"],
        msg.arrays["face_confidence"],
        msg.arrays["polygon_labels"],
        dict(msg.fields["stats"]),
        dict(msg.fields["timings"]),
        list(msg.fields["warnings"]),
    ).validate()


def progress_message(job: str, done: int, total: int, stage: str, message: str = "") -> Message:
    return Message("progress", job, {"done": int(done), "total": int(total), "stage": stage, "message": message})


def error_message(job: str, code: str, field_name: str, message: str) -> Message:
    assert code in ERROR_CODES, code
    return Message("error", job, {"code": code, "field": field_name, "message": message})


def plain(d: dict) -> dict:
    """Make stats msgpack-safe: numpy scalars/arrays to Python numbers/lists."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out[str(k)] = plain(v)
        elif isinstance(v, np.ndarray):
            out[str(k)] = v.tolist()
        elif isinstance(v, np.generic):
            out[str(k)] = v.item()
        elif isinstance(v, list | tuple):
            out[str(k)] = [x.item() if isinstance(x, np.generic) else x for x in v]
        else:
            out[str(k)] = v
    return out
