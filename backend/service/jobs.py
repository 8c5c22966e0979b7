"""The server's book of jobs: who owns each one, what it costs, where it stands, and the limits that
keep a shared backend standing (jobs and bytes queued, epochs, points, seconds)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from partdistill.shared import protocol
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import SegmentOptions


@dataclass
class Limits:
    """What one server accepts. max_jobs / max_queued_bytes: jobs and request bytes held at once
    (queued or running); more gets a "busy" error. max_epochs / max_points: per job. max_job_s: a job
    running longer is stopped. client_timeout_s: a job whose client sent nothing (its heartbeats
    included) for this long is cancelled (0: never; a worker behind a broker cannot tell)."""

    max_jobs: int = 16
    max_queued_bytes: int = 2 << 30
    max_epochs: int = 2000
    max_points: int = 65536
    max_job_s: float = 3600.0
    client_timeout_s: float = 5.0

    def check_options(self, options: SegmentOptions) -> None:
        for name, value, limit in (("epochs", options.epochs, self.max_epochs),
                                   ("n_points", options.n_points, self.max_points)):  # fmt: skip
            if value > limit:
                raise ValidationError(f"options.{name}", f"{value} is over this server's limit of {limit}")


@dataclass
class Job:
    """One segment job. envelope: the routing frames to answer on. owner: who may see and cancel it
    (the client's authenticated key, or the client's session token). nbytes: its request's size.
    request: the decoded message until it is checked, then ``payload`` (capture, names, options,
    detections, labelled faces)."""

    id: str
    envelope: list[bytes]
    owner: str
    nbytes: int
    request: protocol.Message | None = None
    payload: tuple = ()
    cancel: threading.Event = field(default_factory=threading.Event)
    why_cancelled: str = "the job was cancelled"
    state: str = "queued"
    stage: str = "queued"
    done: int = 0
    total: int = 0
    started: float = 0.0
    last_seen: float = field(default_factory=time.monotonic)

    def stop(self, why: str) -> None:
        if not self.cancel.is_set():
            self.why_cancelled = why
            self.cancel.set()

    def status(self) -> dict:
        return {"job": self.id, "state": self.state, "stage": self.stage, "done": self.done, "total": self.total}


class Busy(Exception):
    """The server holds as many jobs or bytes as it may; the client should try later."""


class JobBook:
    """The jobs a server holds, thread-safe. Owners see only their own jobs."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def add(self, job: Job) -> None:
        with self._lock:
            if job.id in self._jobs:
                raise ValidationError("header.job", f"job id {job.id!r} is already in use")
            if len(self._jobs) >= self.limits.max_jobs:
                raise Busy(f"{len(self._jobs)} jobs queued; try later")
            held = sum(j.nbytes for j in self._jobs.values())
            if held + job.nbytes > self.limits.max_queued_bytes:
                raise Busy(f"{held >> 20} MiB of jobs queued; try later")
            self._jobs[job.id] = job

    def get(self, job_id: str, owner: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def owned_by(self, owner: str) -> list[Job]:
        return [j for j in self.all() if j.owner == owner]

    def seen(self, owner: str) -> None:
        """A message from ``owner`` arrived: its jobs' client is alive."""
        now = time.monotonic()
        for j in self.owned_by(owner):
            j.last_seen = now

    def expire(self) -> list[Job]:
        """Stop the jobs whose client went silent or that ran too long; returns them."""
        now, lim, out = time.monotonic(), self.limits, []
        for j in self.all():
            if lim.client_timeout_s and now - j.last_seen > lim.client_timeout_s:
                j.stop(f"the client sent nothing for {lim.client_timeout_s:g} s (gone?)")
                out.append(j)
            elif j.state == "running" and now - j.started > lim.max_job_s:
                j.stop(f"stopped after {lim.max_job_s:g} s, this server's limit for one job")
                out.append(j)
        return out
