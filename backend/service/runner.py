"""The server's working threads: checking jobs and running them.

They work away from the network loop (which must keep answering pings and cancels, and must never
stall on a big job):

- the checker validates each segment (or collection) request down to every array value (a 20-view job of a
  200k-face mesh takes a second), resolves its model names against the server's allow-list and
  applies the server's limits, then hands the job on, or answers with the error;
- the worker runs the jobs one at a time in this process (loading teachers through the cache),
  streaming progress; with ``serve --ray`` the jobs run on a Ray cluster instead (``ray_pool``),
  through the same :func:`run_job`.

All answer through ``send(envelope, message)``, which queues the frames for the loop to send.
"""

from __future__ import annotations

import logging
import queue
import time
import traceback
from collections.abc import Callable

from partdistill.shared import protocol
from partdistill.shared.collection_wire import collection_reply, parse_collection_request
from partdistill.shared.errors import ValidationError
from partdistill.shared.progress import StageClock
from partdistill.shared.request import CollectionRequest, SegmentRequest

from ..cancel import Cancelled
from ..collection import review_members, segment_collection
from ..teachers.loading import TeacherUnavailableError
from ..tta import segment
from .jobs import Job, JobBook, Limits
from .models import MODEL_OPTIONS, ModelPolicy, TeacherCache

log = logging.getLogger("partdistill.server")

Send = Callable[[list[bytes], protocol.Message], None]


def check_jobs(
    inbox: queue.Queue, outbox: queue.Queue, book: JobBook, policy: ModelPolicy, limits: Limits, send: Send
) -> None:
    """The checker thread: ``inbox`` holds unchecked jobs (None stops it); checked ones go to ``outbox``."""
    while (job := inbox.get()) is not None:
        try:
            collection = None
            if job.message.type == "collection":
                request = parse_collection_request(job.message)
                collection = request.collection
            else:
                request = protocol.parse_segment_request(job.message)
            request.options = policy.resolve(request.options)
            limits.check_options(request.options, collection)
            job.request, job.message = request, None
        except ValidationError as e:
            finish(book, job, protocol.error_message(job.id, "invalid", e.field, str(e)), send)
            continue
        except Exception as e:  # a message must never take the server down
            log.error("checking job %s failed:\n%s", job.id, traceback.format_exc())
            finish(book, job, protocol.error_message(job.id, "internal", "", f"{type(e).__name__}: {e}"), send)
            continue
        outbox.put(job)
    outbox.put(None)


def finish(book: JobBook, job: Job, reply: protocol.Message, send: Send) -> None:
    """The job's last word: it leaves the book (its reply held there a while) and goes to its client."""
    book.finish(job, reply)
    log.info("job %s: %s", job.id, reply.type if reply.type != "error" else reply.fields["code"])
    send(job.envelope, reply)


def run_jobs(inbox: queue.Queue, book: JobBook, teachers: TeacherCache, private: bool, send: Send) -> None:
    """The worker thread: runs the checked jobs in ``inbox`` (None stops it) one at a time."""
    while (job := inbox.get()) is not None:
        log.info("job %s: running", job.id)
        finish(book, job, run_job(job, teachers, private, lambda msg, job=job: send(job.envelope, msg)), send)


def run_job(job: Job, teachers: TeacherCache, private: bool, progress_to: Callable[[protocol.Message], None]):
    """Run one checked job; its progress goes to ``progress_to(message)``; returns its reply (a result
    or an error). ``private``: errors say nothing of the server's files."""
    request = job.request
    options = request.options
    last = [0.0]
    clock = StageClock()

    def progress(done: int, total: int, stage: str) -> None:
        job.done, job.total, job.stage = done, total, stage
        now = time.monotonic()
        line = clock.line(done, total, stage)  # every step, so that the stage's pace is measured
        if now - last[0] >= 0.1 or done == total:
            last[0] = now
            progress_to(protocol.progress_message(job.id, done, total, stage, line))

    try:
        if job.cancel.is_set():
            raise Cancelled()
        job.state, job.started = "running", time.monotonic()
        teacher = None
        if _needs_teacher(request):
            job.stage = "loading teacher"
            teacher = teachers.get(options, job.cancel.is_set, private)
        if isinstance(request, CollectionRequest):
            return _run_collection(job, request, teacher, progress)
        result = segment(
            request.capture,
            request.part_names,
            options=options,
            detections=request.detections,
            teacher=teacher,
            labelled_faces=request.labelled_faces,
            progress=progress,
            cancel=job.cancel.is_set,
        )
        return protocol.result_message(job.id, result)
    except Cancelled:
        return protocol.error_message(job.id, "cancelled", "", job.why_cancelled)
    except ValidationError as e:
        if private and e.field.removeprefix("options.") in MODEL_OPTIONS:  # nothing about the server's files
            log.warning("job %s: %s", job.id, e)
            return protocol.error_message(job.id, "invalid", e.field, "the model could not be loaded on this server")
        return protocol.error_message(job.id, "invalid", e.field, str(e))
    except TeacherUnavailableError as e:
        return protocol.error_message(job.id, "teacher_unavailable", e.field, str(e))
    except Exception as e:
        log.error("job %s failed:\n%s", job.id, traceback.format_exc())
        if private:
            return protocol.error_message(job.id, "internal", "", "the job failed on this server (see its log)")
        return protocol.error_message(job.id, "internal", "", f"{type(e).__name__}: {e}")


def _needs_teacher(request: SegmentRequest | CollectionRequest) -> bool:
    o = request.options
    if o.teacher is None or o.category_model:
        return False
    if isinstance(request, CollectionRequest):
        return any(m.detections is None for m in request.members)
    return request.detections is None


def _run_collection(job: Job, request: CollectionRequest, teacher, progress) -> protocol.Message:
    out = segment_collection(
        request.members,
        request.part_names,
        request.options,
        request.collection,
        teacher=teacher,
        progress=progress,
        cancel=job.cancel.is_set,
    )
    warnings = review_members(request.members, out, request.part_names)
    return collection_reply(job.id, request.part_names, out.results, out.errors, warnings)
