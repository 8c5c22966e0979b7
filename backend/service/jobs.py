"""The server's book of jobs: owners, costs, states and limits.

Who owns each job, what it costs, where it stands, and the limits that keep a shared backend
standing (jobs and bytes held, in all and per client; epochs, points, seconds).

A job belongs to its owner (the client's authenticated key; on a loopback server without keys, the
client's session token) and is known by its owner and its id together: a client never learns
whether another client's job id exists. A finished job's reply is held for a while, so a client whose
connection dropped can fetch it again.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from partdistill.shared import protocol
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import CollectionOptions, SegmentOptions
from partdistill.shared.request import SegmentRequest


@dataclass
class Limits:
    """What one server accepts. max_jobs / max_queued_bytes: jobs and request bytes held at once
    (queued or running), in all; max_jobs_per_client / max_bytes_per_client: the same for one
    client, so that one client cannot fill every slot. More gets a "busy" error. max_epochs /
    max_points: per job. max_job_s: a job running longer is stopped. client_timeout_s: a job whose
    client sent nothing (its heartbeats included) for this long is cancelled (0: never).
    keep_results_s: how long a finished job's reply stays to be fetched again."""

    max_jobs: int = 16
    max_queued_bytes: int = 2 << 30
    max_jobs_per_client: int = 4
    max_bytes_per_client: int = 1 << 30
    max_epochs: int = 2000
    max_points: int = 65536
    max_job_s: float = 3600.0
    client_timeout_s: float = 5.0
    keep_results_s: float = 300.0

    def check_options(self, options: SegmentOptions, collection: CollectionOptions | None = None) -> None:
        """Refuses options over this server's limits, naming the field (``collection``: a collection
        request's, whose category students may be given points of their own)."""
        checked = [
            ("options.epochs", options.epochs, self.max_epochs),
            ("options.n_points", options.n_points, self.max_points),
        ]
        if collection is not None and collection.points is not None:
            checked.append(("collection.points", collection.points, self.max_points))
        for name, value, limit in checked:
            if value > limit:
                raise ValidationError(name, f"{value} is over this server's limit of {limit}")


@dataclass
class Job:
    """One segment job. envelope: the routing frames to answer on. owner: who may see and cancel it.
    nbytes: what its request holds in memory, counted against the limits. message: the decoded
    message until it is checked, then ``request``. key: unique on this server (what a worker knows
    the job by)."""

    id: str
    envelope: list[bytes]
    owner: str
    nbytes: int
    message: protocol.Message | None = None
    request: SegmentRequest | None = None
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
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


#: The most finished replies held at once (the oldest go first).
KEEP_RESULTS = 64


class Busy(Exception):
    """The server holds as many jobs or bytes as it may, in all or for this client; try later."""


class JobBook:
    """The jobs a server holds, and the replies of those that finished; thread-safe. Owners see only
    their own jobs."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._jobs: dict[tuple[str, str], Job] = {}
        self._finished: OrderedDict[tuple[str, str], tuple[float, protocol.Message]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, job: Job) -> None:
        with self._lock:
            lim, key = self.limits, (job.owner, job.id)
            if key in self._jobs:
                raise ValidationError("header.job", f"you already have a job {job.id!r}")
            mine = [j for j in self._jobs.values() if j.owner == job.owner]
            if len(mine) >= lim.max_jobs_per_client:
                raise Busy(f"you hold {len(mine)} jobs, this server's limit per client; try later")
            if sum(j.nbytes for j in mine) + job.nbytes > lim.max_bytes_per_client:
                raise Busy(f"your jobs would hold more than {lim.max_bytes_per_client >> 20} MiB here; try later")
            if len(self._jobs) >= lim.max_jobs:
                raise Busy(f"{len(self._jobs)} jobs queued; try later")
            held = sum(j.nbytes for j in self._jobs.values())
            if held + job.nbytes > lim.max_queued_bytes:
                raise Busy(f"{held >> 20} MiB of jobs queued; try later")
            self._finished.pop(key, None)
            self._jobs[key] = job

    def get(self, job_id: str, owner: str) -> Job | None:
        with self._lock:
            return self._jobs.get((owner, job_id))

    def finish(self, job: Job, reply: protocol.Message) -> None:
        """The job is done: it leaves the book, its reply is held ``keep_results_s`` for fetching again."""
        with self._lock:
            self._jobs.pop((job.owner, job.id), None)
            if self.limits.keep_results_s > 0:
                self._finished[(job.owner, job.id)] = (time.monotonic(), reply)
            self._forget_old()
            while len(self._finished) > KEEP_RESULTS:
                self._finished.popitem(last=False)

    def finished(self, job_id: str, owner: str) -> protocol.Message | None:
        """The held reply of ``owner``'s finished job ``job_id``, if any."""
        with self._lock:
            self._forget_old()
            got = self._finished.get((owner, job_id))
        return None if got is None else got[1]

    def _forget_old(self) -> None:
        now = time.monotonic()
        while self._finished and now - next(iter(self._finished.values()))[0] > self.limits.keep_results_s:
            self._finished.popitem(last=False)

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
