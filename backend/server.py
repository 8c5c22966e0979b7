"""The ZeroMQ backend: a ROUTER socket loop that validates every message and runs jobs in a worker
thread, so progress streams and ping/status/cancel answer while a job runs.

Only the loop thread touches the ROUTER socket (ZeroMQ sockets are not thread-safe): the worker
sends its progress and results through an inproc PUSH/PULL pair that the loop forwards.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlparse

import zmq
from partdistill.shared import protocol
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import SegmentOptions

from .cancel import Cancelled

log = logging.getLogger("partdistill.server")

DEFAULT_BIND = protocol.DEFAULT_ADDRESS


@dataclass
class Job:
    id: str
    identity: bytes
    payload: tuple
    cancel: threading.Event = field(default_factory=threading.Event)
    state: str = "queued"
    stage: str = "queued"
    done: int = 0
    total: int = 0


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
    """``Server(bind).serve_forever()``. A non-loopback bind needs CurveZMQ keys (z85 bytes):
    ``curve_secret_key`` / ``curve_public_key`` of the server (see ``partdistill keys``)."""

    def __init__(
        self,
        bind: str = DEFAULT_BIND,
        *,
        curve_secret_key: bytes | None = None,
        curve_public_key: bytes | None = None,
        heartbeat_s: float = 2.0,
        max_queue: int = 16,
        teacher_loader=None,
        context: zmq.Context | None = None,
    ):
        if not is_loopback(bind) and curve_secret_key is None:
            raise ValueError(
                f"refusing to listen on {bind} without encryption: a non-loopback bind needs CurveZMQ keys "
                "(`partdistill keys DIR`, then `partdistill serve --bind ... --curve-keys DIR`)"
            )
        self.bind = bind
        self.heartbeat_s = heartbeat_s
        self.max_queue = max_queue
        self._ctx = context or zmq.Context.instance()
        self._curve = (curve_secret_key, curve_public_key)
        self._teacher_loader = teacher_loader
        self._teachers: dict[tuple, object] = {}
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._stop = threading.Event()
        self._outbox = f"inproc://partdistill-outbox-{uuid.uuid4().hex}"
        self._ready = threading.Event()
        self.endpoint: str | None = None

    # ---- lifecycle ------------------------------------------------------------------------
    def serve_forever(self) -> None:
        router = self._ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        if self._curve[0] is not None:
            router.curve_server = True
            router.curve_secretkey = self._curve[0]
            router.curve_publickey = self._curve[1]
        router.bind(self.bind)
        self.endpoint = router.getsockopt(zmq.LAST_ENDPOINT).decode()
        pull = self._ctx.socket(zmq.PULL)
        pull.bind(self._outbox)
        worker = threading.Thread(target=self._work, name="partdistill-worker", daemon=True)
        worker.start()
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(pull, zmq.POLLIN)
        self._ready.set()
        log.info("partdistill backend listening on %s", self.endpoint)
        next_beat = time.monotonic() + self.heartbeat_s
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(100))
                if router in events:
                    for _ in range(64):  # drain, but don't starve the outbox
                        try:
                            frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._handle(router, frames)
                if pull in events:
                    while True:
                        try:
                            router.send_multipart(pull.recv_multipart(zmq.NOBLOCK, copy=False), copy=False)
                        except zmq.Again:
                            break
                if time.monotonic() >= next_beat:
                    self._heartbeat(router)
                    next_beat = time.monotonic() + self.heartbeat_s
        finally:
            self._queue.put(None)
            with self._lock:
                for job in self._jobs.values():
                    job.cancel.set()
            worker.join(timeout=10)
            router.close(0)
            pull.close(0)

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests, embedding); returns once the socket is bound."""
        t = threading.Thread(target=self.serve_forever, name="partdistill-server", daemon=True)
        t.start()
        if not self._ready.wait(10):
            raise RuntimeError("server did not start")
        return t

    def stop(self) -> None:
        self._stop.set()

    # ---- the loop's side ------------------------------------------------------------------
    def _handle(self, router: zmq.Socket, frames: list) -> None:
        identity = frames[0].bytes
        job_id = ""
        try:
            msg = protocol.decode(frames[1:])
            job_id = msg.job
            reply = self._dispatch(identity, msg)
        except ValidationError as e:
            code = "unknown_type" if e.field == "header.type" and "unknown" in e.problem else "invalid"
            reply = protocol.error_message(job_id, code, e.field, str(e))
        except Exception as e:  # the loop must survive anything a message can provoke
            log.exception("error handling a message")
            reply = protocol.error_message(job_id, "internal", "", f"{type(e).__name__}: {e}")
        if reply is not None:
            router.send_multipart([identity, *protocol.encode(reply)], copy=False)

    def _dispatch(self, identity: bytes, msg: protocol.Message) -> protocol.Message | None:
        if msg.type == "ping":
            return protocol.Message("pong", msg.job)
        if msg.type == "hello":
            return protocol.Message("hello", msg.job, self._hello())
        if msg.type == "status":
            return protocol.Message("status", msg.job, self._status())
        if msg.type == "cancel":
            target = msg.fields["target"]
            with self._lock:
                job = self._jobs.get(target)
            if job is None:
                raise ValidationError("header.target", f"no running or queued job {target!r}")
            job.cancel.set()
            return protocol.Message("status", msg.job, self._status())
        if msg.type == "segment":
            payload = protocol.parse_segment_request(msg)
            if not msg.job:
                raise ValidationError("header.job", "a segment request needs a job id")
            with self._lock:
                if msg.job in self._jobs:
                    raise ValidationError("header.job", f"job id {msg.job!r} is already in use")
                if len(self._jobs) >= self.max_queue:
                    return protocol.error_message(msg.job, "busy", "", f"{len(self._jobs)} jobs queued; try later")
                job = Job(msg.job, identity, payload)
                self._jobs[msg.job] = job
            self._queue.put(job)
            return protocol.progress_message(msg.job, 0, 0, "queued", f"position {self._queue.qsize()} in the queue")
        raise ValidationError("header.type", f"a {msg.type!r} message is not a request the backend accepts")

    def _hello(self) -> dict:
        import torch

        from . import __version__
        from .teachers import teacher_names

        return {
            "server": "partdistill",
            "version": __version__,
            "protocol": protocol.PROTOCOL_VERSION,
            "teachers": list(teacher_names()),
            "device": "cuda" if torch.cuda.is_available() else "cpu",
        }

    def _status(self) -> dict:
        with self._lock:
            jobs = [
                {"job": j.id, "state": j.state, "stage": j.stage, "done": j.done, "total": j.total}
                for j in self._jobs.values()
            ]
        return {"jobs": jobs, "busy": any(j["state"] == "running" for j in jobs)}

    def _heartbeat(self, router: zmq.Socket) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
        for j in jobs:
            msg = protocol.progress_message(j.id, j.done, j.total, j.stage, "heartbeat")
            router.send_multipart([j.identity, *protocol.encode(msg)])

    # ---- the worker's side ----------------------------------------------------------------
    def _work(self) -> None:
        push = self._ctx.socket(zmq.PUSH)
        push.connect(self._outbox)
        try:
            while True:
                job = self._queue.get()
                if job is None:
                    return
                reply = self._run(job, push)
                with self._lock:
                    self._jobs.pop(job.id, None)
                push.send_multipart([job.identity, *protocol.encode(reply)], copy=False)
        finally:
            push.close(0)

    def _run(self, job: Job, push: zmq.Socket) -> protocol.Message:
        from .teachers.loading import TeacherUnavailableError
        from .tta import segment

        capture, names, options, detections, labelled = job.payload
        job.payload = ()  # the arrays are no longer needed once the engine has them
        last = [0.0]

        def progress(done: int, total: int, stage: str) -> None:
            job.done, job.total, job.stage = done, total, stage
            now = time.monotonic()
            if now - last[0] >= 0.1 or done == total:
                last[0] = now
                push.send_multipart(
                    [job.identity, *protocol.encode(protocol.progress_message(job.id, done, total, stage))]
                )

        try:
            if job.cancel.is_set():
                raise Cancelled()
            job.state = "running"
            teacher = None
            if detections is None and options.teacher is not None:
                job.stage = "loading teacher"
                teacher = self._teacher(options)
            result = segment(
                capture, names, options=options, detections=detections, teacher=teacher, labelled_faces=labelled,
                progress=progress, cancel=job.cancel.is_set,
            )  # fmt: skip
            return protocol.result_message(job.id, result)
        except Cancelled:
            return protocol.error_message(job.id, "cancelled", "", "the job was cancelled")
        except ValidationError as e:
            return protocol.error_message(job.id, "invalid", e.field, str(e))
        except TeacherUnavailableError as e:
            return protocol.error_message(job.id, "teacher_unavailable", "options.teacher_model", str(e))
        except Exception as e:
            log.error("job %s failed:\n%s", job.id, traceback.format_exc())
            return protocol.error_message(job.id, "internal", "", f"{type(e).__name__}: {e}")

    def _teacher(self, options: SegmentOptions):
        key = (options.teacher, options.teacher_model, options.device, options.box_threshold, options.text_threshold,
               options.prompt_template, options.object_name, options.sam_model)  # fmt: skip
        if key not in self._teachers:
            if self._teacher_loader is None:
                from .teachers import teacher_from_options

                self._teachers[key] = teacher_from_options(options)
            else:
                self._teachers[key] = self._teacher_loader(options)
        return self._teachers[key]
