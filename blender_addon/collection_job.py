"""Several objects segmented together as one collection, as a small state machine like ``SegmentJob``.

The objects are captured one after the other (one private capture scene at a time, one view per
step), then sent in one ``collection`` request: the backend fits category students over them and
labels each (``CollectionOptions``). Each object's result is applied as its own job
would apply it; the collection's flags come back as warnings naming the object and the part.
"""

from __future__ import annotations

import threading

import bpy
from partdistill.shared.errors import ValidationError
from partdistill.shared.request import CollectionRequest, Member

from .job import (
    CANCELLED,
    CAPTURE_SHARE,
    CAPTURED,
    CAPTURING,
    DONE,
    FAILED,
    WAITING,
    JobSettings,
    Replies,
    SegmentJob,
    Steps,
    for_panel,
    preflight,
)


class CollectionJob(Steps):
    """Segments ``objects`` together; driven by ``step()`` like a ``SegmentJob`` (see there)."""

    def __init__(self, objects: list[bpy.types.Object], settings: JobSettings):
        settings.options.validate()
        settings.collection.validate()
        preflight(settings)
        self.settings = settings
        self.object_name = f"{len(objects)} objects"
        self.state, self.progress, self.message = CAPTURING, 0.0, "capturing views"
        self.error: str | None = None
        self.warnings: list[str] = []  # the collection's own
        self._names = [o.name for o in objects]
        self._todo = list(objects)
        self._jobs: list[SegmentJob | None] = []
        self._failed: dict[int, str] = {}  # object index -> why it never got captured
        self._cancel = threading.Event()
        self._replies = Replies()
        self._thread: threading.Thread | None = None
        self._next_capture()

    def step(self) -> str:
        if self.state == CAPTURING:
            job = self._jobs[-1]
            job.step()
            n = len(self._names)
            self.progress = CAPTURE_SHARE * (len(self._jobs) - 1 + job.progress / CAPTURE_SHARE) / n
            self.message = f"{job.object_name}: {job.message}"
            if job.state == FAILED:
                self._failed[len(self._jobs) - 1] = job.error
            if job.state in (CAPTURED, FAILED):
                self._next_capture()
        elif self.state == WAITING:
            self._drain()
        return self.state

    def cancel(self) -> None:
        self._cancel.set()
        if self.state == CAPTURING:
            for job in self._jobs:
                if job is not None:
                    job.cancel()
            self.state, self.message = CANCELLED, "cancelled"

    def outcomes(self) -> list[tuple[str, str, str, list[str]]]:
        """Per object: ``(name, state, message or error, warnings)``; the collection's warnings go
        with the first object that has a result."""
        out = []
        for k, name in enumerate(self._names):
            job = self._jobs[k] if k < len(self._jobs) else None
            if k in self._failed or job is None:
                state = CANCELLED if self.state == CANCELLED else FAILED
                out.append((name, state, self._failed.get(k, self.error or self.message), []))
            elif job.state in (CAPTURING, CAPTURED, WAITING):
                out.append((name, self.state if self.state != DONE else FAILED, self.error or self.message, []))
            else:
                out.append((name, job.state, job.error or job.message, job.warnings))
        first = next((k for k, o in enumerate(out) if o[1] == DONE), None)
        if first is not None and self.warnings:
            name, state, text, warnings = out[first]
            out[first] = (name, state, text, [*warnings, *self.warnings])
        return out

    # ---- stages -----------------------------------------------------------------------------
    def _next_capture(self) -> None:
        """Start capturing the next object (one that cannot be captured is noted and skipped); when
        none is left, send the collection."""
        while self._todo:
            obj = self._todo.pop(0)
            try:
                self._jobs.append(SegmentJob(obj, self.settings, send=False, checked=True))
                return
            except ValidationError as e:
                self._failed[len(self._jobs)] = for_panel(e)
                self._jobs.append(None)
        sent = [j for j in self._jobs if j is not None and j.state == CAPTURED]
        if not sent:
            self.state, self.error = FAILED, "no object could be captured"
            self.message = self.error
            return
        self.state, self.message = WAITING, "sending the collection to the backend"
        self._thread = threading.Thread(target=self._talk, args=(sent,), name="partdistill-client", daemon=True)
        self._thread.start()

    def _talk(self, jobs: list[SegmentJob]) -> None:
        """Worker thread: no bpy here."""
        st = self.settings
        request = CollectionRequest(
            [Member(j.capture, st.detections) for j in jobs], st.part_names, st.options, st.collection
        )
        self._replies.talk(
            lambda on_progress: (
                jobs,
                st.client.segment_collection(request, on_progress=on_progress, should_cancel=self._cancel.is_set),
            )
        )

    def _drain(self) -> None:
        end = self._replies.read(self)
        if end is None:
            return
        if end[0] == "result":
            self._apply(*end[1])
        elif end[0] == "cancelled":
            self.state, self.message = CANCELLED, "cancelled"
        else:
            self.state = FAILED
            self.error = self.message = for_panel(end[1])

    def _apply(self, jobs: list[SegmentJob], reply) -> None:
        """Each object's result applied by its own job (one data change each)."""
        results, errors, warnings = reply
        for job, result, error in zip(jobs, results, errors, strict=True):
            if result is None:
                job.fail(ValidationError("object", error))
            else:
                job.apply(result)
        self.warnings = list(warnings)
        done = sum(j.state == DONE for j in jobs)
        self.state, self.progress = (DONE if done else FAILED), 1.0
        self.message = f"segmented {done} of {len(self._names)} objects together"
        if not done:
            self.error = self.message
