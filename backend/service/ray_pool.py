"""The server's jobs run by worker actors on a Ray cluster.

With ``partdistill serve --ray ADDRESS`` the front door (``Server``) keeps every
decision about who owns what (keys, allow-list, job book, quotas, heartbeats, cancel) and hands each
checked job to a worker actor; Ray places the actors (one per GPU where the cluster has GPUs, else one
per CPU slot asked for), notices dead ones and restarts them. Each worker holds its own teacher cache
and runs a job through the same :func:`~partdistill.backend.service.runner.run_job` as a server
without Ray.

- progress streams back from the worker as a Ray generator and goes on to the job's client;
- a cancel (the client's, or the heartbeat's when the client went silent) goes to the worker that
  runs the job, which stops at its next progress step;
- a job whose worker died is sent once more, to the next free worker; a second death fails it with a
  clear error.

The cluster's members authenticate each other by Ray's own means (its token, or TLS): see the
README's deployment section.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from partdistill.shared import protocol
from partdistill.shared.request import CollectionRequest, SegmentRequest

from .jobs import Job, JobBook
from .models import TeacherCache
from .runner import Send, finish, run_job

log = logging.getLogger("partdistill.server")

#: Seconds between looks at a job's cancel flag while its worker computes.
POLL_S = 0.1


class SegmentWorker:
    """A worker actor's state: its teacher cache and the cancel flags of the job it runs. Ray runs
    two of its methods at once (``max_concurrency=2``): a job's stream, and a cancel."""

    def __init__(self, teacher_cache: int):
        self.teachers = TeacherCache(teacher_cache)
        self.cancels: dict[str, threading.Event] = {}

    def pid(self) -> int:
        import os

        return os.getpid()

    def run(self, key: str, job_id: str, request: SegmentRequest | CollectionRequest, private: bool):
        """Run one job (a generator: its progress messages, then its reply); ``private``: its errors
        say nothing of the server's files."""
        job = Job(job_id, [], "", 0, request=request, cancel=self.cancels.setdefault(key, threading.Event()))
        messages: queue.Queue = queue.Queue()

        def work() -> None:
            try:
                messages.put(("reply", run_job(job, self.teachers, private, messages.put)))
            except BaseException as e:  # noqa: BLE001 - the stream must end, with what happened
                messages.put(("reply", protocol.error_message(job_id, "internal", "", f"{type(e).__name__}: {e}")))

        worker = threading.Thread(target=work, name=f"partdistill-job-{key}", daemon=True)
        worker.start()
        try:
            while True:
                item = messages.get()
                if isinstance(item, tuple):
                    yield item[1]
                    return
                yield item
        finally:
            worker.join()
            self.cancels.pop(key, None)

    def cancel(self, key: str) -> None:
        self.cancels.setdefault(key, threading.Event()).set()


class RayPool:
    """``workers`` worker actors on the connected Ray cluster (0: one per GPU, or one if it has none)."""

    def __init__(self, ray, workers: int = 0, *, teacher_cache: int = 2):
        self.ray = ray
        gpus = int(ray.cluster_resources().get("GPU", 0))
        n = workers or max(gpus, 1)
        actor = ray.remote(max_concurrency=2, max_restarts=-1, max_task_retries=0)(SegmentWorker)
        per = {"num_gpus": 1, "num_cpus": 0} if gpus else {"num_cpus": 1}
        self.workers = [actor.options(**per).remote(teacher_cache) for _ in range(n)]
        ray.get([w.pid.remote() for w in self.workers])  # up before the first job
        self.idle: queue.Queue = queue.Queue()
        for w in self.workers:
            self.idle.put(w)
        log.info("%d worker(s) on the Ray cluster (%s)", n, f"{gpus} GPU(s)" if gpus else "CPU")


def run_on_ray(inbox: queue.Queue, book: JobBook, pool: RayPool, private: bool, send: Send) -> None:
    """The dispatcher thread: each checked job in ``inbox`` (None stops it) goes to the next free
    worker, followed by a thread of its own until its reply."""
    followers: list[threading.Thread] = []
    while (job := inbox.get()) is not None:
        worker = pool.idle.get()
        t = threading.Thread(target=_follow, args=(job, worker, pool, book, private, send), name="partdistill-ray-job")
        t.start()
        followers = [f for f in followers if f.is_alive()] + [t]
    for t in followers:
        t.join(timeout=30)


def _follow(job: Job, worker, pool: RayPool, book: JobBook, private: bool, send: Send) -> None:
    ray = pool.ray
    reply = None
    try:
        for attempt in (1, 2):
            try:
                reply = _stream(job, worker, ray, private, send)
                break
            except ray.exceptions.RayActorError as e:
                log.warning("job %s: its worker died (%s)", job.id, type(e).__name__)
                if attempt == 2 or job.cancel.is_set():
                    reply = protocol.error_message(job.id, "internal", "", "the workers running this job died twice")
                    break
                pool.idle.put(worker)  # Ray restarts it; the job goes to whichever worker is free first
                send(job.envelope, protocol.progress_message(job.id, 0, 0, "queued", "its worker died; sent again"))
                worker = pool.idle.get()
    except Exception as e:  # noqa: BLE001 - the client hears of anything else too
        log.exception("job %s failed on the cluster", job.id)
        reply = protocol.error_message(job.id, "internal", "", f"the cluster failed the job: {type(e).__name__}")
    finally:
        pool.idle.put(worker)
        finish(book, job, reply or protocol.error_message(job.id, "internal", "", "no reply"), send)


def _stream(job: Job, worker, ray, private: bool, send: Send) -> protocol.Message:
    """Run ``job`` on ``worker``: its progress to the client, a cancel to the worker; returns its reply."""
    job.state, job.started = "running", time.monotonic()
    stream = worker.run.remote(job.key, job.id, job.request, private)
    cancel_sent = False
    while True:
        if job.cancel.is_set() and not cancel_sent:
            worker.cancel.remote(job.key)
            cancel_sent = True
        ready, _ = ray.wait([stream], timeout=POLL_S)
        if not ready:
            continue
        try:
            msg = ray.get(next(stream))
        except StopIteration:
            raise RuntimeError("the worker's stream ended without a reply") from None
        if msg.type != "progress":
            if msg.type == "error" and msg.fields["code"] == "cancelled":
                msg = protocol.error_message(job.id, "cancelled", "", job.why_cancelled)
            return msg
        f = msg.fields
        job.done, job.total, job.stage = f["done"], f["total"], f["stage"]
        send(job.envelope, msg)
