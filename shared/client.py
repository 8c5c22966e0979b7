"""The client side of the wire protocol, for the add-on and the CLI alike.

A DEALER socket per call. Needs only pyzmq, msgpack and numpy, so Blender's bundled Python can run it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence

import zmq
from zmq.utils.monitor import recv_monitor_message

from . import protocol
from .capture import Capture
from .collection_wire import collection_request, parse_collection_reply
from .detections import Detections
from .errors import ValidationError
from .options import SegmentOptions
from .progress import ServerProgress
from .request import CollectionRequest, SegmentRequest
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


class BackendRefused(BackendError):
    """The backend turned this client away in the handshake (its key is not on the server's list)."""


class BackendGone(BackendTimeout):
    """The connection to the backend dropped and did not come back (the server stopped or crashed)."""


class _NoAnswer(Exception):
    """The job went silent, or its backend lost it (it restarted): worth sending it once more.
    ``lost``: the backend's own error when it said so."""

    def __init__(self, why: str = "", lost: BackendError | None = None):
        super().__init__(why)
        self.why, self.lost = why, lost


class BackendClient:
    """Talks to ``partdistill serve``.

    Every call opens its own DEALER socket (cheap), so a client object can be used from any thread
    and a timed-out call leaves nothing behind. ``timeout_s`` bounds the silence between two
    messages: a running job streams progress (and heartbeats), so long jobs don't time out. While it
    waits for a job the client checks in every ``heartbeat_s`` (a backend that stops hearing from it
    cancels the job). When the connection drops mid-job the client connects again and asks for the
    job: a backend that still holds it carries on (or sends the finished reply again); one that
    restarted says the job is lost, and the job is sent once more (``retries``), as is a job that
    hears nothing within ``timeout_s``.

    CurveZMQ: ``server_public_key`` (z85 bytes) encrypts and authenticates the server;
    ``client_public_key`` / ``client_secret_key`` are this client's own key pair, which a server that
    lets in only listed clients checks (without them a pair is made for this client object). The
    server knows a client by that key: its jobs, status and cancel are its own across calls. Without
    encryption (a loopback server without keys) every message carries this client's session token
    instead.
    """

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        timeout_s: float = 10.0,
        server_public_key: bytes | None = None,
        client_public_key: bytes | None = None,
        client_secret_key: bytes | None = None,
        heartbeat_s: float = 1.0,
        retries: int = 1,
        context: zmq.Context | None = None,
    ):
        self.address = protocol.check_address(address, "backend address")
        self.timeout_s = timeout_s
        self.heartbeat_s = heartbeat_s
        self.retries = retries
        self.server_public_key = (
            None if server_public_key is None else protocol.check_curve_key(server_public_key, "server key")
        )
        self._client_keys = None
        if client_public_key is not None or client_secret_key is not None:
            self._client_keys = (
                protocol.check_curve_key(client_public_key, "client public key"),
                protocol.check_curve_key(client_secret_key, "client secret key"),
            )
        self._own_keys = self._client_keys or (zmq.curve_keypair() if self.server_public_key is not None else None)
        self.session = uuid.uuid4().hex
        self._ctx = context or zmq.Context.instance()

    @property
    def client_keys(self) -> tuple[bytes, bytes] | None:
        """(public, secret) keys given to this client, None when it made a pair of its own."""
        return self._client_keys

    # ---- simple requests (``timeout_s`` overrides the client's for this call) ----------------
    def hello(self, timeout_s: float | None = None) -> dict:
        return self._request(protocol.Message("hello", fields={"client": "partdistill"}), timeout_s).fields

    def ping(self, timeout_s: float | None = None) -> float:
        """Round-trip time in seconds."""
        t = time.perf_counter()
        self._request(protocol.Message("ping"), timeout_s)
        return time.perf_counter() - t

    def status(self, timeout_s: float | None = None) -> dict:
        return self._request(protocol.Message("status"), timeout_s).fields

    def cancel(self, job: str, timeout_s: float | None = None) -> dict:
        return self._request(protocol.Message("cancel", fields={"target": job}), timeout_s).fields

    # ---- jobs -----------------------------------------------------------------------------
    def segment(
        self,
        capture: Capture,
        part_names: Sequence[str],
        options: SegmentOptions | None = None,
        detections: Detections | None = None,
        *,
        on_progress: ServerProgress | None = None,
        should_cancel: Callable[[], bool] | None = None,
        job: str | None = None,
        labelled_faces=None,
    ) -> SegmentationResult:
        """Send a capture, stream progress to ``on_progress(done, total, stage, message)``, return the
        result. When ``should_cancel()`` turns true a cancel is sent and BackendError('cancelled')
        ends the call once the backend confirms. ``labelled_faces`` (F,) int32: few-shot labels, -1 = unknown."""
        job = job or uuid.uuid4().hex
        request = SegmentRequest(capture, part_names, options or SegmentOptions(), detections, labelled_faces)
        reply = self._send_job(job, protocol.segment_request(job, request), on_progress, should_cancel)
        return protocol.parse_result(reply)

    def segment_collection(
        self,
        request: CollectionRequest,
        *,
        on_progress: ServerProgress | None = None,
        should_cancel: Callable[[], bool] | None = None,
        job: str | None = None,
    ) -> tuple[list[SegmentationResult | None], list[str], list[str]]:
        """Send a collection (several shapes labelled together); progress and cancel as ``segment``.
        Returns ``(results, errors, warnings)``: per member its result (None where it failed, with the
        one-line reason in ``errors``), and the collection's own warnings."""
        job = job or uuid.uuid4().hex
        reply = self._send_job(job, collection_request(job, request), on_progress, should_cancel)
        return parse_collection_reply(reply)

    def _send_job(self, job, msg, on_progress, should_cancel) -> protocol.Message:
        """Send a job's request and follow it to its reply (sent again, up to ``retries`` times, when
        it goes unanswered or the backend says it lost it)."""
        frames = protocol.encode(self._stamp(msg))
        for attempt in range(self.retries + 1):
            try:
                return self._run_job(job, frames, on_progress, should_cancel)
            except _NoAnswer as e:
                if attempt == self.retries:
                    if e.lost is not None:
                        raise e.lost from None
                    raise BackendTimeout(self._silence()) from None
                if on_progress is not None:
                    on_progress(0, 0, "queued", "sending the job again: " + (e.why or "no answer"))

    def _run_job(self, job, frames, on_progress, should_cancel) -> protocol.Message:
        call = self._call()
        try:
            call.sock.send_multipart(frames, copy=False)
            cancel_sent = gone = False
            next_ping = time.monotonic() + self.heartbeat_s
            while True:
                if should_cancel is not None and should_cancel() and not cancel_sent:
                    cancel = protocol.Message("cancel", fields={"target": job})
                    call.sock.send_multipart(protocol.encode(self._stamp(cancel)))
                    cancel_sent = True
                if time.monotonic() >= next_ping:  # the backend cancels the jobs of clients it stops hearing
                    call.sock.send_multipart(protocol.encode(self._watch(job)))
                    next_ping = time.monotonic() + self.heartbeat_s
                try:
                    reply = call.recv(poll_s=min(0.1, self.heartbeat_s))
                except BackendGone:
                    call.close()
                    call, gone = self._reconnect(job), True  # the job's messages come here, if it still exists
                    continue
                except BackendTimeout:
                    if gone:
                        raise BackendGone(self._gone()) from None
                    raise _NoAnswer() from None
                if reply is None or reply.job != job:
                    continue  # the cancel's own status reply, or a stale message
                call.deadline, gone = time.monotonic() + self.timeout_s, False  # the job is alive
                if reply.type == "pong":
                    continue
                if reply.type == "progress":
                    if on_progress is not None:
                        f = reply.fields
                        on_progress(f["done"], f["total"], f["stage"], f["message"])
                elif reply.type in ("result", "collections"):
                    return reply
                elif reply.type == "error":
                    error = BackendError(reply.fields["code"], reply.fields["field"], reply.fields["message"])
                    if error.code == "lost":  # the backend restarted: the job may be sent again
                        raise _NoAnswer(error.message, error)
                    raise error
        finally:
            call.close()

    def _watch(self, job: str) -> protocol.Message:
        """A check-in while waiting for ``job``: it keeps the job alive and brings its messages to
        the connection it comes from."""
        return self._stamp(protocol.Message("ping", job, {"watch": True}))

    def _reconnect(self, job: str) -> _Call:
        """A new connection after the old one dropped, checked in for ``job`` (the check-in waits in
        the socket until the backend is back)."""
        call = self._call()
        call.sock.send_multipart(protocol.encode(self._watch(job)))
        return call

    # ---- plumbing -------------------------------------------------------------------------
    def _stamp(self, msg: protocol.Message) -> protocol.Message:
        msg.fields["session"] = self.session
        return msg

    def _gone(self) -> str:
        return (
            f"lost the connection to the backend at {self.address}, and it did not come back within "
            f"{self.timeout_s:g} s: it stopped or crashed"
        )

    def _silence(self, timeout_s: float | None = None) -> str:
        text = f"no answer from the backend at {self.address} within {timeout_s or self.timeout_s:g} s"
        if self.server_public_key is not None:
            return text + " — is the server key right (and, where only listed clients get in, is this client's?)"
        return text + " (is `partdistill serve` running there?)"

    def _call(self, timeout_s: float | None = None) -> _Call:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.HEARTBEAT_IVL, 2000)  # libzmq drops the connection of a dead peer
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 6000)
        if self.server_public_key is not None:
            sock.curve_publickey, sock.curve_secretkey = self._own_keys
            sock.curve_serverkey = self.server_public_key
        return _Call(sock, self.address, timeout_s or self.timeout_s, self._silence(timeout_s))

    def _request(self, msg: protocol.Message, timeout_s: float | None = None) -> protocol.Message:
        msg.job = msg.job or uuid.uuid4().hex
        self._stamp(msg)
        call = self._call(timeout_s)
        try:
            call.sock.send_multipart(protocol.encode(msg))
            while True:
                reply = call.recv()
                if reply is None or reply.job != msg.job:
                    continue
                if reply.type == "error":
                    raise BackendError(reply.fields["code"], reply.fields["field"], reply.fields["message"])
                return reply
        finally:
            call.close()


class _Call:
    """One call's socket and what its connection went through. The connection's own events (a
    monitor socket) tell a dropped peer or a refused key at once, not after the timeout."""

    def __init__(self, sock: zmq.Socket, address: str, timeout_s: float, silence: str):
        self.sock, self.address, self.timeout_s, self.silence = sock, address, timeout_s, silence
        events = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
        self.monitor = sock.get_monitor_socket(events)
        self.connected = False
        sock.connect(address)
        self.deadline = time.monotonic() + timeout_s

    def close(self) -> None:
        self.sock.disable_monitor()
        self.monitor.close(linger=0)
        self.sock.close(linger=0)

    def events(self) -> None:
        """BackendRefused when the server turned this client's key away; BackendGone when an
        established connection dropped (the server stopped or crashed)."""
        while self.monitor.poll(0):
            event = recv_monitor_message(self.monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.connected = True
            elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                raise BackendRefused(
                    "refused", "", f"the backend at {self.address} does not let this client in (its key is not listed)"
                )
            elif event == zmq.EVENT_DISCONNECTED and self.connected:
                raise BackendGone(f"lost the connection to the backend at {self.address}: it stopped or crashed")

    def recv(self, poll_s: float | None = None) -> protocol.Message | None:
        """The next message, None after ``poll_s`` without one; BackendTimeout once the deadline
        (``timeout_s`` after the last message that concerned the call) has passed."""
        end = self.deadline if poll_s is None else min(self.deadline, time.monotonic() + poll_s)
        while True:  # in slices, so that a dropped connection is noticed within 0.1 s
            self.events()
            left = end - time.monotonic()
            if left > 0 and self.sock.poll(max(1, int(min(left, 0.1) * 1000))):
                break
            if time.monotonic() >= end:
                if time.monotonic() >= self.deadline:
                    raise BackendTimeout(self.silence)
                return None
        frames = self.sock.recv_multipart(copy=False)
        try:
            return protocol.decode(frames)
        except ValidationError as e:
            raise BackendError("invalid", e.field, f"the backend sent a malformed message: {e}") from None
