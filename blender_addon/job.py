"""One segmentation of one object, as a small state machine the operators drive step by step:

    capturing (one view per step, on Blender's main thread)
      -> waiting (the capture is sent to the backend from a worker thread; progress streams back)
      -> done / failed / cancelled (the result is applied on the main thread, in one data change)

The operator stays thin (after Dream Textures): it calls ``step()`` from a timer so the UI stays
responsive, or loops over it in ``execute`` for scripts and headless use. The worker thread never
touches bpy; it only talks ZeroMQ through the shared client.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import bpy
import numpy as np
from partdistill.shared.client import BackendClient, BackendError, BackendTimeout
from partdistill.shared.detections import Detections
from partdistill.shared.errors import ValidationError
from partdistill.shared.options import CollectionOptions, SegmentOptions
from partdistill.shared.point_cloud import per_point
from partdistill.shared.progress import Progress, StageClock
from partdistill.shared.result import SegmentationResult

from .apply import apply_result
from .apply_points import apply_point_result
from .capture import CaptureSession
from .capture.points import PointSession, is_point_object, point_count
from .results import polygon_confidence, write_confidence

CAPTURE_SHARE = 0.3  # of the progress bar; the backend's stages share the rest

CAPTURING, WAITING, DONE, FAILED, CANCELLED = "capturing", "waiting", "done", "failed", "cancelled"
#: A job made to capture only (``send=False``): its capture waits to go out with a collection's.
CAPTURED = "captured"


class Replies:
    """What one request to the backend says, passed from the worker thread that sends it (no bpy
    there) to Blender's main thread, which reads it between steps."""

    def __init__(self):
        self._events: queue.Queue = queue.Queue()
        self._clock = StageClock()  # the time the backend's stage has left, for the status bar

    def talk(self, send: Callable[[Progress], object]) -> None:
        """Worker thread: ``send(on_progress)`` makes the request; its progress, then its reply, a
        cancellation or an error (an unexpected one as a one-line ``RuntimeError``) are queued."""
        events = self._events
        try:
            events.put(("result", send(lambda done, total, stage, msg: events.put(("progress", done, total, stage)))))
        except BackendError as e:
            events.put(("cancelled",) if e.code == "cancelled" else ("error", e))
        except (BackendTimeout, ValidationError) as e:
            events.put(("error", e))
        except Exception as e:
            events.put(("error", RuntimeError(f"{type(e).__name__}: {e}")))

    def read(self, job) -> tuple | None:
        """Main thread: move ``job.progress`` and ``job.message`` with the progress heard since the
        last call; return how the request ended (``("result", reply)``, ``("cancelled",)`` or
        ``("error", exception)``), or None while it runs."""
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return None
            if event[0] != "progress":
                return event
            _, done, total, stage = event
            job.progress = CAPTURE_SHARE + (1 - CAPTURE_SHARE) * (done / total if total > 0 else 0.0)
            job.message = self._clock.line(done, total, stage)


@dataclass
class JobSettings:
    """What a job needs beyond the object: the backend's client (its address, keys and timeout, made
    once from the preferences), the options and how to capture."""

    part_names: tuple[str, ...]
    client: BackendClient
    options: SegmentOptions = field(default_factory=SegmentOptions)
    detections: Detections | None = None
    use_scene_cameras: bool = False
    n_views: int = 10
    resolution: int = 512
    render: str = "raster"
    collection: CollectionOptions = field(default_factory=CollectionOptions)


#: What can stop a job before it starts: bad settings, a backend that refuses or does not answer,
#: a file that cannot be read.
JOB_ERRORS = (ValidationError, BackendError, BackendTimeout, OSError)


#: Where an artist sets each field a backend may name in an error.
PANEL_FIELDS = {
    "options.teacher_model": "the Model field (PartDistill › Options), or a Detections file",
    "options.teacher": "the Teacher field (PartDistill › Options), or a Detections file",
    "options.sam_model": "the SAM Model field (PartDistill › Options)",
    "options.category_model": "the Category Model field (PartDistill › Options)",
    "detections": "the Detections field (PartDistill › Options)",
    "part_names": "the Parts field",
    "collection.frame": "the Axes field (PartDistill › Options)",
    "backend address": "the backend address (Preferences › Add-ons › PartDistill)",
    "server key": "the Server Key (Preferences › Add-ons › PartDistill)",
    "client key": "the Client Key (Preferences › Add-ons › PartDistill)",
}


def for_panel(error: BaseException) -> str:
    """An error as the artist reads it: the message, and where in Blender to set what it names."""
    field = getattr(error, "field", "")
    field = field.split("[", 1)[0].split(".views", 1)[0] if field else ""
    where = PANEL_FIELDS.get(field)
    message = error.message if isinstance(error, BackendError) else str(error)
    return f"{message} (set it in {where})" if where else message


PREFLIGHT_S = 1.0  # how long the checks before capture may wait for the backend


def preflight(settings: JobSettings) -> None:
    """What can be known before rendering, in about a second: the address, detections that do not
    fit the views about to be captured, a backend that does not answer, a teacher it does not have.
    Raises ValidationError (or BackendTimeout / BackendError) naming the problem."""
    if settings.detections is not None and not settings.use_scene_cameras:
        settings.detections.validate(settings.n_views, (settings.resolution, settings.resolution))
    hello = settings.client.hello(timeout_s=PREFLIGHT_S)
    teacher = settings.options.teacher if settings.detections is None else None
    if teacher is not None and teacher not in hello.get("teachers", ()):
        raise ValidationError(
            "teacher", f"the backend has no teacher {teacher!r}; it has {', '.join(hello['teachers'])}"
        )


class Steps:
    """What a job driven step by step has: it is ``finished`` in a final state, and ``run`` steps it
    to the end. A job sets ``state``, ``_thread`` (its worker thread, or None) and ``step()``."""

    state: str
    _thread: threading.Thread | None

    def step(self) -> str:
        raise NotImplementedError

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED, CANCELLED)

    def run(self, poll_s: float = 0.05) -> str:
        """Run to the end (scripts, headless use)."""
        while not self.finished:
            self.step()
            if self.state == WAITING and self._thread is not None:
                self._thread.join(poll_s)
        return self.state


def done_message(result: SegmentationResult) -> str:
    """What the panel says of a result: each part's polygons (points), and the result's confidence
    (about the share of its surface labelled right) where the backend gave it."""
    counts = [int((result.polygon_labels == i).sum()) for i in range(len(result.part_names))]
    text = "segmented: " + ", ".join(f"{n} {c}" for n, c in zip(result.part_names, counts, strict=True))
    sure = result.stats.get("confidence")
    return text + (f"; confidence {sure:.2f}" if isinstance(sure, int | float) else "")


class SegmentJob(Steps):
    def __init__(
        self,
        obj: bpy.types.Object,
        settings: JobSettings,
        labelled_polygons: np.ndarray | None = None,
        *,
        send: bool = True,
        checked: bool = False,
    ):
        """``labelled_polygons`` (P,) int32, optional: parts the user set by hand (-1 elsewhere),
        sent as few-shot units of full confidence that backward distillation never lowers.
        ``send=False``: capture only, then wait in state ``CAPTURED`` with the ``capture`` (a
        collection sends it with the others'). ``checked``: the settings passed ``preflight`` already."""
        points = is_point_object(obj)
        if not isinstance(obj, bpy.types.Object) or (obj.type != "MESH" and not points):
            raise ValidationError("object", "select a mesh or point-cloud object to segment")
        if points and labelled_polygons is not None:
            raise ValidationError("corrections", "corrections (Refine) work on meshes, not on point clouds")
        if obj.mode == "EDIT":
            raise ValidationError("object", f"{obj.name!r} is in Edit Mode; switch to Object Mode first")
        settings.options.validate()
        if not checked:
            preflight(settings)
        self.object_name = obj.name
        self.send = send
        self.capture = None
        if labelled_polygons is not None and labelled_polygons.shape != (len(obj.data.polygons),):
            raise ValidationError("corrections", f"{len(labelled_polygons)} labels for {len(obj.data.polygons)} faces")
        self.labelled_polygons = labelled_polygons
        # found again by its session id: stable through renames and undo (a Python reference is not)
        self.object_uid = obj.session_uid
        self.settings = settings
        self.state = CAPTURING
        self.progress = 0.0
        self.message = "capturing views"
        self.error: str | None = None
        self.result: SegmentationResult | None = None
        self.warnings: list[str] = []  # the result's warnings, for the operator to report
        self._cancel = threading.Event()
        self._replies = Replies()
        self._thread: threading.Thread | None = None
        self._view = 0
        self._steps = None  # the current view's steps (CaptureSession.view_steps)
        # ring=False: the scene's cameras (an error names the problem when it has none)
        session_type = PointSession if points else CaptureSession
        self._session: CaptureSession | PointSession | None = session_type(
            obj,
            ring=not settings.use_scene_cameras,
            n_views=settings.n_views,
            resolution=settings.resolution,
            engine=settings.render,
            color_type="TEXTURE" if settings.render == "workbench" else "MATERIAL",  # Workbench can show textures
        ).__enter__()

    # ---- driving ----------------------------------------------------------------------------
    def step(self) -> str:
        """Advance a little (one view, or drain the backend's messages); returns the state."""
        try:
            if self.state == CAPTURING:
                self._capture_step()
            elif self.state == WAITING:
                self._drain()
        except ValidationError as e:
            self.fail(e)
        except Exception as e:  # the user's scene must be cleaned up whatever went wrong
            self.fail(RuntimeError(f"{type(e).__name__}: {e}"))
        return self.state

    def outcomes(self) -> list[tuple[str, str, str, list[str]]]:
        """``(object name, state, message or error, warnings)`` of each object of the job: one."""
        return [(self.object_name, self.state, self.error or self.message, self.warnings)]

    def cancel(self) -> None:
        """Stop: a capture in progress is cleaned up at once; a running backend job is cancelled
        (the job ends once the backend confirms)."""
        self._cancel.set()
        if self.state in (CAPTURING, CAPTURED):
            self._close_session()
            self.state, self.message = CANCELLED, "cancelled"

    # ---- stages -----------------------------------------------------------------------------
    def _capture_step(self) -> None:
        """One short step of the current view (its render, or a band of its face ids): a UI driving
        the job from a timer is never blocked for a whole view."""
        s = self._session
        if self._steps is None:
            self._steps = s.view_steps(self._view)
        try:
            next(self._steps)
            return
        except StopIteration:
            self._steps = None
        self._view += 1
        self.progress = CAPTURE_SHARE * self._view / s.n_views
        self.message = f"captured view {self._view}/{s.n_views}"
        if self._view < s.n_views:
            return
        capture = s.result()
        # for per-polygon confidences when the result comes back (the capture itself is sent away)
        self._face_to_polygon, self._face_areas = capture.mesh.face_to_polygon, capture.mesh.face_areas()
        self._close_session()
        if not self.send:
            self.capture, self.state, self.message = capture, CAPTURED, "captured"
            return
        self.state, self.message = WAITING, "sending to the backend"
        self._labelled = None
        if self.labelled_polygons is not None:  # polygons -> the capture's triangles
            f2p = capture.mesh.face_to_polygon
            self._labelled = (self.labelled_polygons if f2p is None else self.labelled_polygons[f2p]).astype(np.int32)
        self._thread = threading.Thread(target=self._talk, args=(capture,), name="partdistill-client", daemon=True)
        self._thread.start()

    def _talk(self, capture) -> None:
        """Worker thread: no bpy here."""
        st = self.settings
        self._replies.talk(
            lambda on_progress: st.client.segment(
                capture,
                st.part_names,
                st.options,
                st.detections,
                on_progress=on_progress,
                should_cancel=self._cancel.is_set,
                labelled_faces=self._labelled,
            )
        )

    def _drain(self) -> None:
        end = self._replies.read(self)
        if end is None:
            return
        if end[0] == "result":
            self._apply(end[1])
        elif end[0] == "cancelled":
            self.state, self.message = CANCELLED, "cancelled"
        else:
            self.fail(end[1])

    def apply(self, result: SegmentationResult) -> None:
        """Apply a result made for this job's capture (state ``DONE``), or fail naming why not."""
        try:
            self._apply(result)
        except ValidationError as e:
            self.fail(e)

    def _apply(self, result: SegmentationResult) -> None:
        obj = find_object(self.object_uid)
        if obj is not None and is_point_object(obj):
            self._apply_points(obj, result)
            return
        if obj is None or obj.type != "MESH":
            raise ValidationError("object", f"{self.object_name!r} was deleted while the backend worked")
        if len(obj.data.polygons) != len(result.polygon_labels):
            raise ValidationError(
                "object",
                f"{obj.name!r} was edited while the backend worked ({len(obj.data.polygons)} faces now, "
                f"{len(result.polygon_labels)} labelled); segment it again",
            )
        confidence = polygon_confidence(
            result.face_confidence, self._face_to_polygon, len(obj.data.polygons), self._face_areas
        )
        apply_result(obj, result.part_names, result.polygon_labels)
        write_confidence(obj, confidence)
        self.result = result
        self.state, self.progress = DONE, 1.0
        self.message = done_message(result)
        self.warnings = list(result.warnings)

    def _apply_points(self, obj: bpy.types.Object, result: SegmentationResult) -> None:
        if point_count(obj) != len(result.polygon_labels):
            raise ValidationError("object", f"{obj.name!r} was edited while the backend worked; segment it again")
        apply_point_result(obj, result.part_names, result.polygon_labels, per_point(result.face_confidence))
        self.result = result
        self.state, self.progress = DONE, 1.0
        self.message = done_message(result)
        self.warnings = list(result.warnings)

    def fail(self, error: BaseException) -> None:
        """End the job as failed (its capture cleaned up), the error worded for the panel."""
        message = for_panel(error)
        self._cancel.set()
        self._close_session()
        self.state, self.error, self.message = FAILED, message, message

    def _close_session(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            session.__exit__(None, None, None)


def find_object(session_uid: int) -> bpy.types.Object | None:
    """The object of this Blender session with that ``session_uid``, whatever its name now."""
    return next((o for o in bpy.data.objects if o.session_uid == session_uid), None)
