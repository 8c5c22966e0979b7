"""``partdistill bench fuzz``: hostile messages against a live backend on loopback.

Every message is a valid one broken in one way (or pure garbage): headers with wrong types, versions,
missing or unknown fields, deep nesting, huge strings; array specs with a dtype or shape of the wrong
kind (a list for a dtype, a dimension of 2**63); array frames truncated, of the wrong dtype or shape,
with out-of-range or non-finite values; frames that are random bytes; one mask shared by every one of
a thousand detections per view; hundreds of thousands of detections. The backend must answer each
with a reply of a known kind, never crash, never hang, and not grow. A message that happens to be
valid starts a job, which is cancelled at once (its "cancelled" counts as its reply).

The generators are also the source of the property-based test of the protocol and the server."""

from __future__ import annotations

import random
import resource
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import msgpack
import numpy as np
import zmq
from partdistill.shared import protocol
from partdistill.shared.capture import Capture, Mesh
from partdistill.shared.detections import Detection, Detections
from partdistill.shared.options import SegmentOptions
from partdistill.shared.request import SegmentRequest

HEADER_KEYS = (
    "v",
    "type",
    "job",
    "arrays",
    "session",
    "part_names",
    "options",
    "has_detections",
    "detections",
    "target",
    "client",
    "code",
    "field",
    "message",
    "done",
    "total",
    "stage",
)


def base_segment(views: int = 2, size: int = 16) -> protocol.Message:
    """A small valid segment request (a cube, ``views`` views, one box per view)."""
    v = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float32)
    f = np.array(
        [
            [0, 1, 3],
            [0, 3, 2],
            [4, 6, 7],
            [4, 7, 5],
            [0, 4, 5],
            [0, 5, 1],
            [2, 3, 7],
            [2, 7, 6],
            [0, 2, 6],
            [0, 6, 4],
            [1, 5, 7],
            [1, 7, 3],
        ],
        dtype=np.int32,
    )
    rng = np.random.default_rng(0)
    face_id = rng.integers(-1, 12, size=(views, size, size)).astype(np.int32)
    K = np.repeat(np.array([[[size, 0, size / 2], [0, size, size / 2], [0, 0, 1]]]), views, 0)
    w2c = np.repeat(np.eye(4)[None], views, 0)
    w2c[:, 2, 3] = 3.0
    cap = Capture(Mesh(v, f), rng.integers(0, 255, (views, size, size, 3), dtype=np.uint8), face_id, K, w2c)
    box = np.array([2, 2, size - 2, size - 2], dtype=np.float32)
    det = Detections(("body", "lid"), [[Detection(0, 0.9, box)] for _ in range(views)], (size, size))
    request = SegmentRequest(cap, ("body", "lid"), SegmentOptions(epochs=2, n_points=64), det)
    return protocol.segment_request("seed", request)


def _junk(r: random.Random, depth: int = 0):
    """A random msgpack-able value, sometimes deeply nested or huge."""
    k = r.randrange(11 if depth < 40 else 7)
    if k == 0:
        return None
    if k == 1:
        return r.choice([True, False])
    if k == 2:
        return r.choice([0, 1, -1, 2**63 - 1, -(2**63), r.randrange(-1000, 1000)])
    if k == 3:
        return r.choice([0.0, 1.0, -1.5, float("nan"), float("inf"), 1e308])
    if k == 4:
        return "".join(chr(r.randrange(32, 0x2FFF)) for _ in range(r.choice([0, 1, 8, 200])))
    if k == 5:
        return r.randbytes(r.choice([0, 3, 40]))
    if k == 6:
        return "x" * r.choice([129, 5000, 70000])
    if k in (7, 8):
        return [_junk(r, depth + 1) for _ in range(r.choice([0, 1, 3]))]
    return {r.choice([*HEADER_KEYS, "zz", "options"]): _junk(r, depth + 1) for _ in range(r.choice([1, 2, 3]))}


def mutate(r: random.Random, seed: protocol.Message) -> list[bytes]:
    """One hostile message (frames) derived from ``seed`` (a valid segment request)."""
    frames = [bytes(f) for f in protocol.encode(seed)]
    header = msgpack.unpackb(frames[0], raw=False)
    kind = r.randrange(13)
    if kind >= 10:
        return _amplifying(r, seed, kind)
    if kind == 0:  # pure garbage
        return [r.randbytes(r.choice([0, 1, 7, 100, 5000])) for _ in range(r.choice([1, 1, 2, 5]))]
    if kind == 1:  # a small request of another type, with junk fields
        h = {
            "v": r.choice([1, 1, 1, True, 1.0, 2, "1"]),
            "type": r.choice([*protocol.MESSAGE_TYPES, "explode", 7]),
            "job": r.choice(["", "j", "x" * 200, 5]),
        }
        for _ in range(r.randrange(3)):
            h[r.choice(HEADER_KEYS)] = _junk(r)
        return [msgpack.packb(h, use_bin_type=True)]
    if kind in (2, 3):  # a header field replaced by junk
        header[r.choice(HEADER_KEYS)] = _junk(r)
    elif kind == 4:  # a header field dropped
        header.pop(r.choice(list(header)), None)
    elif kind == 5:  # an option replaced by junk
        opts = dict(header.get("options") or {})
        opts[r.choice([*opts, "zz"])] = _junk(r)
        header["options"] = opts
    elif kind == 6:  # an array frame truncated, extended or dropped
        i = r.randrange(1, len(frames))
        frames[i] = frames[i][: r.randrange(len(frames[i]) + 1)] if r.random() < 0.7 else frames[i] + b"\0" * 4
        if r.random() < 0.2:
            del frames[i]
    elif kind == 7:  # an array spec with another dtype or shape
        spec = r.choice(header["arrays"])
        if r.random() < 0.5:
            spec["dtype"] = r.choice(["float64", "int64", "uint8", "object", "V8", "<U4", "bool", "zz"])
        else:
            spec["shape"] = r.choice([[], [0], [-1], [2**40], [1, 1, 1, 1, 1, 1, 1, 1, 1], ["a"]])
    elif kind == 8:  # values out of range or not finite
        i = r.randrange(len(header["arrays"]))
        dtype = np.dtype(header["arrays"][i]["dtype"])
        a = np.frombuffer(frames[i + 1], dtype=dtype).copy()
        if a.size:
            if dtype.kind == "f":
                bad = [np.nan, np.inf, -1e30]
            else:
                info = np.iinfo(dtype)
                bad = [info.min, info.max, min(10**6, info.max), max(-5, info.min)]
            a.flat[r.randrange(a.size)] = r.choice(bad)
        frames[i + 1] = a.tobytes()
    else:  # a valid message (it will be cancelled)
        header["job"] = f"valid-{r.randrange(10**9)}"
    return [msgpack.packb(header, use_bin_type=True), *frames[1:]]


def _amplifying(r: random.Random, seed: protocol.Message, kind: int) -> list[bytes]:
    """The families that try to make a small message cost much: one mask behind a thousand detections
    per view (valid: it must be referenced, not copied), hundreds of thousands of detections (refused
    from their count), array specs whose dtype or shape is of the wrong kind."""
    msg = protocol.Message(seed.type, seed.job, dict(seed.fields), dict(seed.arrays))
    views, h, w = msg.arrays["face_id"].shape
    if kind == 10:
        d = 1000 * views
        msg.arrays.update(
            det_view=np.repeat(np.arange(views, dtype=np.int32), 1000),
            det_part=np.zeros(d, np.int32),
            det_score=np.full(d, 0.5, np.float32),
            det_box=np.full((d, 4), np.nan, np.float32),
            det_mask_index=np.zeros(d, np.int32),
            det_masks=np.ones((1, h, w), np.uint8),
        )
        msg.job = f"shared-mask-{r.randrange(10**9)}"
        return [bytes(f) for f in protocol.encode(msg)]
    if kind == 11:
        d = r.choice([100_000, 200_000])
        msg.arrays.update(
            det_view=np.zeros(d, np.int32),
            det_part=np.zeros(d, np.int32),
            det_score=np.ones(d, np.float32),
            det_box=np.zeros((d, 4), np.float32),
            det_mask_index=np.full(d, -1, np.int32),
        )
        msg.arrays.pop("det_masks", None)
        return [bytes(f) for f in protocol.encode(msg)]
    frames = [bytes(f) for f in protocol.encode(seed)]
    header = msgpack.unpackb(frames[0], raw=False)
    spec = r.choice(header["arrays"])
    bad = r.choice(
        [
            ("dtype", ["uint8"]),
            ("dtype", {"kind": "u"}),
            ("dtype", 8),
            ("shape", [0, 2**63]),
            ("shape", [2**62, 0]),
            ("shape", [2**63 - 1]),
            ("shape", {"0": 1}),
            ("name", ["x"]),
        ]
    )
    spec[bad[0]] = bad[1]
    return [msgpack.packb(header, use_bin_type=True), *frames[1:]]


@dataclass
class FuzzReport:
    sent: int = 0
    replies: Counter = field(default_factory=Counter)
    internal: list[str] = field(default_factory=list)
    hangs: int = 0
    crashed: bool = False
    rss_before_mb: float = 0.0
    rss_tenth_mb: float = 0.0  # after a tenth of the messages: growth after that would be a leak
    rss_after_mb: float = 0.0
    seconds: float = 0.0


def rss_mb() -> float:
    """This process's resident memory now (MiB), from /proc; the peak where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def exchange(sock: zmq.Socket, frames: list[bytes], timeout_s: float = 5.0) -> str:
    """Send one message; the kind of its final reply ("error:<code>", "pong", ...) or "hang". A job
    that was accepted is cancelled at once; the late messages of earlier jobs are told apart by
    their job id."""
    sock.send_multipart(frames)
    job = _job_of(frames)
    end = time.monotonic() + timeout_s
    cancels: set[str] = set()
    while sock.poll(max(1, int((end - time.monotonic()) * 1000))):
        reply = protocol.decode(sock.recv_multipart())
        if reply.job in cancels:
            continue  # a cancel's own answer; the job's end follows
        if reply.type == "progress":
            if reply.fields["stage"] == "queued" and f"cancel-{reply.job}" not in cancels:
                cancel = protocol.Message("cancel", f"cancel-{reply.job}", fields={"target": reply.job})
                cancels.add(cancel.job)  # no session: the job's owner is this socket
                sock.send_multipart(protocol.encode(cancel))
            continue
        if job is not None and reply.job != job and reply.job:
            continue  # the end of an earlier message's job
        return f"error:{reply.fields['code']}" if reply.type == "error" else reply.type
    return "hang"


def _job_of(frames: list[bytes]) -> str | None:
    """The job id a message's header names, None when it names none that can be read."""
    try:
        header = msgpack.unpackb(frames[0], raw=False)
    except Exception:  # noqa: BLE001 - garbage names no job
        return None
    job = header.get("job") if isinstance(header, dict) else None
    return job if isinstance(job, str) and job else None


def fuzz(
    endpoint: str,
    n: int,
    seed: int = 0,
    alive: Callable[[], bool] = lambda: True,
    progress: Callable[[int], None] | None = None,
) -> FuzzReport:
    """Send ``n`` hostile messages to the backend at ``endpoint``, one at a time."""
    r, base = random.Random(seed), base_segment()
    rep = FuzzReport(rss_before_mb=rss_mb())
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    t0 = time.perf_counter()
    try:
        for i in range(n):
            frames = mutate(r, base)
            kind = exchange(sock, frames)
            rep.sent += 1
            rep.replies[kind] += 1
            if kind == "hang":
                rep.hangs += 1
                sock.close()  # a fresh socket: a late reply must not be taken for the next one's
                sock = ctx.socket(zmq.DEALER)
                sock.setsockopt(zmq.LINGER, 0)
                sock.connect(endpoint)
            if kind == "error:internal" and len(rep.internal) < 20:
                rep.internal.append(repr(frames[0][:200]))
            if not alive():
                rep.crashed = True
                break
            if i + 1 == max(1, n // 10):
                rep.rss_tenth_mb = rss_mb()
            if progress is not None:
                progress(i + 1)
    finally:
        sock.close()
    rep.seconds = time.perf_counter() - t0
    rep.rss_after_mb = rss_mb()
    return rep


def run_fuzz(n: int, seed: int = 0) -> FuzzReport:
    """``fuzz`` against a fresh in-process server (its own threads; the RSS is this process's)."""
    import logging

    from partdistill.backend.service.server import Server
    from tqdm import tqdm

    logging.getLogger("partdistill.server").setLevel(logging.WARNING)  # one line per job is noise here

    server = Server("tcp://127.0.0.1:0", heartbeat_s=0.5)
    thread = server.start()
    try:
        with tqdm(total=n, desc="fuzz", unit="msg") as bar:
            return fuzz(server.endpoint, n, seed, alive=thread.is_alive, progress=lambda i: bar.update(1))
    finally:
        server.stop()
        thread.join(10)


def print_report(rep: FuzzReport) -> None:
    print(f"messages sent: {rep.sent} in {rep.seconds:.1f} s")
    for kind, count in sorted(rep.replies.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:28s} {count}")
    print(
        f"crashes: {int(rep.crashed)}   hangs (no reply within 5 s): {rep.hangs}   "
        f"internal errors: {rep.replies.get('error:internal', 0)}"
    )
    print(
        f"RSS: {rep.rss_before_mb:.0f} MiB before, {rep.rss_tenth_mb:.0f} MiB after a tenth of the messages, "
        f"{rep.rss_after_mb:.0f} MiB after all"
    )
    for h in rep.internal:
        print("  internal error on header", h)
