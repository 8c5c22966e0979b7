"""The ZeroMQ backend's front door: one socket loop that answers every message.

The socket loop validates every message header and answers at once; a checker thread validates
job requests in full; the jobs run either on a worker thread in this process or, with a
:class:`~partdistill.backend.service.ray_pool.RayPool`, by workers on a Ray cluster. Keys, the
client list, the model allow-list, the job book, quotas, heartbeats and cancel all stay here, in the
process that knows who owns what.

Only the loop thread touches the network socket (ZeroMQ sockets are not thread-safe): the other
threads hand their replies to it through an inproc PUSH/PULL pair.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import threading
import time
import uuid
from urllib.parse import urlparse

import zmq
from partdistill.shared import limits as wire_limits
from partdistill.shared import protocol
from partdistill.shared.errors import ValidationError

from .auth import client_key_of, start_authenticator
from .jobs import Busy, Job, JobBook, Limits
from .models import ModelPolicy, TeacherCache
from .runner import check_jobs, run_jobs

log = logging.getLogger("partdistill.server")

DEFAULT_BIND = protocol.DEFAULT_ADDRESS
ZMTP_HEARTBEAT_MS = 2000  # libzmq's own peer heartbeats: a dead peer's connection is dropped


def is_loopback(address: str) -> bool:
    """Whether a zmq endpoint only listens on this machine (tcp to a loopback address, ipc, inproc)."""
    u = urlparse(address)
    if u.scheme in ("ipc", "inproc"):
        return True
    host = (u.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Server:
    """``Server(bind).serve_forever()``.

    curve_secret_key / curve_public_key: the server's CurveZMQ keys (z85), required off loopback.
    With keys every client proves a key of its own in the handshake (ZAP), and that key owns its
    jobs; client_keys: the z85 public keys of the clients allowed in (None lets in any client that
    knows the server's key). models: which models clients may name (default: any on loopback
    without keys, else only the defaults). limits: jobs, bytes, epochs, points and seconds this
    server accepts, in all and per client. heartbeat_s: how often clients hear from their jobs.
    ray_pool: run the jobs on a Ray cluster instead of in this process. teacher_loader: loads a
    teacher from options (tests)."""

    def __init__(
        self,
        bind: str = DEFAULT_BIND,
        *,
        curve_secret_key: bytes | None = None,
        curve_public_key: bytes | None = None,
        client_keys: list[bytes] | None = None,
        models: ModelPolicy | None = None,
        limits: Limits | None = None,
        heartbeat_s: float = 2.0,
        teacher_cache: int = 2,
        teacher_loader=None,
        ray_pool=None,
        context: zmq.Context | None = None,
    ):
        if not bind:
            raise ValueError("give an address to bind")
        if not is_loopback(bind) and curve_secret_key is None:
            raise ValueError(
                f"refusing to use {bind} without encryption: off loopback a server needs CurveZMQ keys "
                "(`partdistill keys DIR`, then `partdistill serve ... --curve-keys DIR`)"
            )
        if client_keys and curve_secret_key is None:
            raise ValueError("authenticating clients needs the server's CurveZMQ keys (--curve-keys)")
        self.address = bind
        self.heartbeat_s = heartbeat_s
        self.limits = limits or Limits()
        self.models = models or ModelPolicy(open=is_loopback(bind) and curve_secret_key is None)
        self._ctx = context or zmq.Context.instance()
        self._curve = (curve_secret_key, curve_public_key)
        self._client_keys = client_keys
        self._teachers = TeacherCache(teacher_cache, teacher_loader)
        self._ray_pool = ray_pool
        self.book = JobBook(self.limits)
        self._checks: queue.Queue[Job | None] = queue.Queue()
        self._runs: queue.Queue[Job | None] = queue.Queue()
        self._stop = threading.Event()
        self._outbox = f"inproc://partdistill-outbox-{uuid.uuid4().hex}"
        self._local = threading.local()
        self._pushes: list[zmq.Socket] = []  # the threads' outbox sockets, closed at the end (else exit hangs)
        self._pushes_lock = threading.Lock()
        self._ready = threading.Event()
        self.endpoint: str | None = None
        # torch and the engine load now, not on the first job (that took the loop ~1 s)
        from .. import tta  # noqa: F401

    # ---- lifecycle ------------------------------------------------------------------------
    def serve_forever(self) -> None:
        curve = self._curve[0] is not None
        # with keys, ZAP runs for every client: on the list, or any, each proves its own key
        auth = start_authenticator(self._ctx, {"*": self._client_keys}) if curve else None
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, wire_limits.MAX_MESSAGE_BYTES + wire_limits.MAX_HEADER_BYTES)
        sock.setsockopt(zmq.HEARTBEAT_IVL, ZMTP_HEARTBEAT_MS)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * ZMTP_HEARTBEAT_MS)
        if curve:
            sock.curve_server = True
            sock.curve_secretkey, sock.curve_publickey = self._curve
        pull = self._ctx.socket(zmq.PULL)
        pull.bind(self._outbox)
        try:
            sock.bind(self.address)
            self.endpoint = sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        except zmq.ZMQError:
            sock.close(0)
            pull.close(0)
            if auth is not None:
                auth.stop()
            raise
        if self._ray_pool is not None:
            from .ray_pool import run_on_ray

            work = (run_on_ray, (self._runs, self.book, self._ray_pool, not self.models.open, self._send))
        else:
            work = (run_jobs, (self._runs, self.book, self._teachers, not self.models.open, self._send))
        runner = threading.Thread(target=work[0], args=work[1], name="partdistill-worker", daemon=True)
        threads = [
            threading.Thread(
                target=check_jobs,
                name="partdistill-checker",
                daemon=True,
                args=(self._checks, self._runs, self.book, self.models, self.limits, self._send),
            ),
            runner,
        ]
        for t in threads:
            t.start()
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(pull, zmq.POLLIN)
        self._ready.set()
        log.info("partdistill backend listening on %s", self.endpoint)
        next_beat = time.monotonic() + self.heartbeat_s
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(100))
                if sock in events:
                    for _ in range(64):  # drain, but don't starve the outbox
                        try:
                            frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._handle(sock, frames)
                if pull in events:
                    while True:
                        try:
                            sock.send_multipart(pull.recv_multipart(zmq.NOBLOCK, copy=False), copy=False)
                        except zmq.Again:
                            break
                if time.monotonic() >= next_beat:
                    self._heartbeat(sock)
                    next_beat = time.monotonic() + self.heartbeat_s
        finally:
            self._shut_down(sock)
            self._checks.put(None)
            for t in threads:
                t.join(timeout=10)
            with self._pushes_lock:
                for push in self._pushes:
                    push.close(linger=0)
                self._pushes.clear()
            sock.close(0)
            pull.close(0)
            if auth is not None:
                auth.stop()

    def use_ray(self, pool) -> None:
        """Run the jobs on ``pool`` (a :class:`~partdistill.backend.service.ray_pool.RayPool`; None: in
        this process); before :meth:`serve_forever`."""
        self._ray_pool = pool

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests, embedding); returns once the socket is ready."""
        t = threading.Thread(target=self.serve_forever, name="partdistill-server", daemon=True)
        t.start()
        if not self._ready.wait(10):
            raise RuntimeError("server did not start")
        return t

    def stop(self) -> None:
        self._stop.set()

    def _shut_down(self, sock: zmq.Socket) -> None:
        """Tell every waiting client that its job ends here, then let the threads go."""
        for job in self.book.all():
            job.stop("the backend is shutting down")
            msg = protocol.error_message(job.id, "cancelled", "", "the backend is shutting down")
            try:
                sock.send_multipart([*job.envelope, *protocol.encode(msg)], zmq.NOBLOCK)
            except zmq.ZMQError:
                pass

    # ---- the loop's side ------------------------------------------------------------------
    def _handle(self, sock: zmq.Socket, frames: list) -> None:
        envelope = [frames[0].bytes]
        job_id = ""
        try:
            if len(frames) < 2:
                raise ValidationError("message", "no frames after the routing frame")
            msg = protocol.decode(frames[1:])
            job_id = msg.job
            owner = self._owner(frames[1], msg, envelope[0])
            self.book.seen(owner)
            reply = self._dispatch(envelope, owner, msg, sum(len(f) for f in frames))
        except ValidationError as e:
            code = "unknown_type" if e.field == "header.type" and "unknown" in e.problem else "invalid"
            reply = protocol.error_message(job_id, code, e.field, str(e))
        except Busy as e:
            reply = protocol.error_message(job_id, "busy", "", str(e))
        except Exception as e:  # the loop must survive anything a message can provoke
            log.exception("error handling a message")
            reply = protocol.error_message(job_id, "internal", "", f"{type(e).__name__}: {e}")
        if reply is not None:
            sock.send_multipart([*envelope, *protocol.encode(reply)], copy=False)

    def _owner(self, header_frame: zmq.Frame, msg: protocol.Message, identity: bytes) -> str:
        """Who the message is from: the client key it proved in the handshake, on a server with keys;
        on a loopback server without keys (its users are this machine's), the client's session token."""
        key = client_key_of(header_frame)
        if key:
            return "key:" + key
        if self._curve[0] is not None:  # ZAP hands every client's key over: never here
            raise ValidationError("header", "the connection carries no authenticated key")
        session = msg.fields.get("session")
        if session is not None and (not isinstance(session, str) or not 8 <= len(session) <= 64):
            raise ValidationError("header.session", "must be a string of 8 to 64 characters")
        return "session:" + (session or identity.hex())

    def _dispatch(self, envelope: list[bytes], owner: str, msg: protocol.Message, nbytes: int):
        if msg.type == "ping":
            return self._watch(envelope, owner, msg) if msg.fields.get("watch") else protocol.Message("pong", msg.job)
        if msg.type == "hello":
            return protocol.Message("hello", msg.job, self._hello())
        if msg.type == "status":
            return protocol.Message("status", msg.job, self._status(owner))
        if msg.type == "cancel":
            target = msg.fields["target"]
            job = self.book.get(target, owner)
            if job is None:
                raise ValidationError("header.target", f"no running or queued job {target!r} of yours")
            job.stop("the job was cancelled")
            return protocol.Message("status", msg.job, self._status(owner))
        if msg.type in ("segment", "collection"):
            if not msg.job:
                raise ValidationError("header.job", f"a {msg.type} request needs a job id")
            job = Job(msg.job, envelope, owner, protocol.request_bytes(msg, nbytes), message=msg)
            self.book.add(job)
            self._checks.put(job)
            return protocol.progress_message(msg.job, 0, 0, "queued", f"{len(self.book.all())} jobs held")
        raise ValidationError("header.type", f"a {msg.type!r} message is not a request the backend accepts")

    def _watch(self, envelope: list[bytes], owner: str, msg: protocol.Message) -> protocol.Message:
        """A client waiting for its job ``msg.job`` checks in: its job's messages now go to this
        connection (a client whose connection dropped comes back on a new one); a finished job's
        reply is sent again; a job this server does not hold is "lost" (it restarted)."""
        job = self.book.get(msg.job, owner)
        if job is not None:
            job.envelope = envelope
            return protocol.Message("pong", msg.job)
        held = self.book.finished(msg.job, owner)
        if held is not None:
            return held
        return protocol.error_message(msg.job, "lost", "", f"this backend holds no job {msg.job!r} (it restarted?)")

    def _hello(self) -> dict:
        from .. import __version__
        from ..device import resolve_device
        from ..teachers import teacher_names

        lim = self.limits
        return {
            "server": "partdistill",
            "version": __version__,
            "protocol": protocol.PROTOCOL_VERSION,
            "teachers": list(teacher_names()),
            "models": "any" if self.models.open else self.models.names(),
            "limits": {"max_epochs": lim.max_epochs, "max_points": lim.max_points, "max_job_s": lim.max_job_s},
            "device": resolve_device("auto"),
        }

    def _status(self, owner: str) -> dict:
        jobs = [j.status() for j in self.book.owned_by(owner)]
        return {"jobs": jobs, "busy": any(j.state == "running" for j in self.book.all())}

    def _heartbeat(self, sock: zmq.Socket) -> None:
        for j in self.book.expire():
            log.info("job %s: %s", j.id, j.why_cancelled)
        for j in self.book.all():
            msg = protocol.progress_message(j.id, j.done, j.total, j.stage, "heartbeat")
            sock.send_multipart([*j.envelope, *protocol.encode(msg)])

    # ---- the other threads' side ------------------------------------------------------------
    def _send(self, envelope: list[bytes], msg: protocol.Message) -> None:
        push = getattr(self._local, "push", None)
        if push is None:
            push = self._local.push = self._ctx.socket(zmq.PUSH)
            push.setsockopt(zmq.LINGER, 1000)
            push.connect(self._outbox)
            with self._pushes_lock:
                self._pushes.append(push)
        try:
            push.send_multipart([*envelope, *protocol.encode(msg)], copy=False)
        except zmq.ZMQError:
            if not self._stop.is_set():
                raise
            # the server has stopped and closed the threads' sockets: nobody is left to answer
