"""The client side of the wire protocol (DEALER), used by the Blender add-on and the CLI alike.
Needs only pyzmq, msgpack and numpy, so Blender's bundled Python can run it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence

import zmq

from . import protocol
from .capture import Capture
from .detections import Detections
from .errors import ValidationError
from .options import SegmentOptions
from .result import SegmentationResult

DEFAULT_ADDRESS = protocol.DEFAULT_ADDRESS


class BackendError(RuntimeError):
    """The backend answered with an error. ``code`` is one of protocol.ERROR_CODES, ``field`` names
    the offending input where there is one."""

    def __init__(self, code: str, field: str, message: str):
        self.code, self.field, self.message = code, field, message
        super().__init__(f"backend error ({code}){' in ' + field if field else ''}: {message}")


class BackendTimeout(TimeoutError):
    """No message from the backend within the timeout (it is not running, not reachable, or stuck)."""


class BackendClient:
    """Talks to ``partdistill serve``.

    Every call opens its own DEALER socket (cheap), so a client object can be used from any thread
    and a timed-out call leaves nothing behind. ``timeout_s`` bounds the silence between two
    messages: a running job streams progress (and heartbeats), so long jobs don't time out.
    CurveZMQ: pass ``server_public_key`` (z85 bytes) to encrypt and authenticate the server.
    """

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        timeout_s: float = 10.0,
        server_public_key: bytes | None = None,
        context: zmq.Context | None = None,
    ):
        self.address = address
        self.timeout_s = timeout_s
        self.server_public_key = server_public_key
        self._ctx = context or zmq.Context.instance()

    # ---- simple requests ------------------------------------------------------------------
    def hello(self) -> dict:
        return self._request(protocol.Message("hello", fields={"client": "partdistill"})).fields

    def ping(self) -> float:
        """Round-trip time in seconds."""
        t = time.perf_counter()
        self._request(protocol.Message("ping"))
        return time.perf_counter() - t

    def status(self) -> dict:
        return self._request(protocol.Message("status")).fields

    def cancel(self, job: str) -> dict:
        return self._request(protocol.Message("cancel", fields={"target": job})).fields

    # ---- jobs -----------------------------------------------------------------------------
    def segment(
        self,
        capture: Capture,
        part_names: Sequence[str],
        options: SegmentOptions | None = None,
        detections: Detections | None = None,
        *,
        on_progress: Callable[[int, int, str, str], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        job: str | None = None,
        labelled_faces=None,
    ) -> SegmentationResult:
        """Send a capture, stream progress to ``on_progress(done, total, stage, message)``, return the
        result. When ``should_cancel()`` turns true a cancel is sent and BackendError('cancelled')
        ends the call once the backend confirms. ``labelled_faces`` (F,) int32: few-shot labels, -1 = unknown."""
        job = job or uuid.uuid4().hex
        msg = protocol.segment_request(job, capture, part_names, options, detections, labelled_faces)
        sock = self._socket()
        try:
            sock.send_multipart(protocol.encode(msg), copy=False)
            cancel_sent = False
            while True:
                if should_cancel is not None and should_cancel() and not cancel_sent:
                    sock.send_multipart(protocol.encode(protocol.Message("cancel", fields={"target": job})))
                    cancel_sent = True
                reply = self._recv(sock, poll_s=0.1 if should_cancel else None)
                if reply is None:
                    continue
                if reply.job != job:
                    continue  # the cancel's own status reply, or a stale message
                if reply.type == "progress":
                    if on_progress is not None:
                        f = reply.fields
                        on_progress(f["done"], f["total"], f["stage"], f["message"])
                elif reply.type == "result":
                    return protocol.parse_result(reply)
                elif reply.type == "error":
                    raise BackendError(reply.fields["code"], reply.fields["field"], reply.fields["message"])
        finally:
            sock.close(linger=0)

    # ---- plumbing -------------------------------------------------------------------------
    def _socket(self) -> zmq.Socket:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if self.server_public_key is not None:
            pub, sec = zmq.curve_keypair()
            sock.curve_publickey, sock.curve_secretkey = pub, sec
            sock.curve_serverkey = self.server_public_key
        sock.connect(self.address)
        self._deadline = time.monotonic() + self.timeout_s
        return sock

    def _request(self, msg: protocol.Message) -> protocol.Message:
        msg.job = msg.job or uuid.uuid4().hex
        sock = self._socket()
        try:
            sock.send_multipart(protocol.encode(msg))
            while True:
                reply = self._recv(sock)
                if reply is None or reply.job != msg.job:
                    continue
                if reply.type == "error":
                    raise BackendError(reply.fields["code"], reply.fields["field"], reply.fields["message"])
                return reply
        finally:
            sock.close(linger=0)

    def _recv(self, sock: zmq.Socket, poll_s: float | None = None) -> protocol.Message | None:
        """The next message, None after ``poll_s`` without one; BackendTimeout after ``timeout_s`` of
        silence."""
        wait = self._deadline - time.monotonic()
        if poll_s is not None:
            wait = min(wait, poll_s)
        if wait <= 0 or not sock.poll(int(wait * 1000)):
            if time.monotonic() >= self._deadline:
                raise BackendTimeout(
                    f"no answer from the backend at {self.address} within {self.timeout_s:g} s "
                    "(is `partdistill serve` running there?)"
                )
            return None
        frames = sock.recv_multipart(copy=False)
        self._deadline = time.monotonic() + self.timeout_s
        try:
            return protocol.decode(frames)
        except ValidationError as e:
            raise BackendError("invalid", e.field, f"the backend sent a malformed message: {e}") from None
