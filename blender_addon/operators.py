"""Operators: thin wrappers that build a SegmentJob from the panel's settings and drive it."""

from __future__ import annotations

from collections.abc import Callable

import bpy
from partdistill.shared.client import BackendError, BackendTimeout
from partdistill.shared.detections import Detections
from partdistill.shared.options import CollectionOptions, SegmentOptions, collection_ruled_out
from partdistill.shared.request import collection_groups
from partdistill.shared.validation import parse_part_names

from .apply import remove_result, result_labels
from .apply_points import remove_point_result
from .capture.points import is_point_object
from .collection_job import CollectionJob
from .job import CANCELLED, CAPTURING, DONE, FAILED, JOB_ERRORS, JobSettings, SegmentJob, for_panel
from .preferences import client as prefs_client
from .preferences import describe_backend, preferences
from .properties import AUTO_FRAME
from .results import corrections, make_vertex_groups, split_parts


def job_settings(scene: bpy.types.Scene) -> JobSettings:
    s = scene.partdistill
    detections = None
    if s.detections.strip():
        detections = Detections.load_json(bpy.path.abspath(s.detections))
    return JobSettings(
        part_names=parse_part_names(s.parts),
        client=prefs_client(preferences()),  # checks the address and reads the key files
        options=SegmentOptions(
            method=s.method,
            teacher=None if detections is not None or s.category_model.strip() else s.teacher,
            category_model=s.category_model.strip(),
            teacher_model=s.teacher_model.strip(),
            sam_model=(s.sam_model.strip() if s.sam else None),
            box_threshold=s.box_threshold,
            text_threshold=s.text_threshold,
            prompt_template=s.prompt_template,
            object_name=s.object_name.strip(),
            epochs=s.epochs,
        ),
        detections=detections,
        use_scene_cameras=s.cameras == "SCENE",
        n_views=s.n_views,
        resolution=s.resolution,
        render=s.render,
        collection=CollectionOptions(
            mode=s.collection_mode, frame=None if s.collection_frame == AUTO_FRAME else s.collection_frame
        ),
    )


class _Greyed:
    """An operator greyed out while ``why_not`` gives a reason (Blender shows it on hover)."""

    @classmethod
    def why_not(cls, context: bpy.types.Context) -> str | None:
        return None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        why = cls.why_not(context)
        if why is not None:
            cls.poll_message_set(why)
        return why is None


def _why_busy(context: bpy.types.Context) -> str | None:
    if context.window_manager.partdistill.running:
        return "A segmentation is running: wait for it or cancel it"
    return None


def _why_no_object(context: bpy.types.Context, doing: str = "") -> str | None:
    obj = context.active_object
    if obj is None or (obj.type != "MESH" and not is_point_object(obj)):
        return f"Select a mesh or point-cloud object{doing}"
    if obj.mode != "OBJECT":
        return f"Switch to Object Mode{doing}"
    return None


def _why_no_result(context: bpy.types.Context) -> str | None:
    obj = context.active_object
    if obj is None or obj.type != "MESH" or result_labels(obj) is None:
        return "Select a mesh with a partdistill result"
    if obj.mode != "OBJECT":
        return "Switch to Object Mode"
    return None


class _RunsJobs(_Greyed):
    """Runs jobs in turn (a SegmentJob per object, or one CollectionJob for several): modal from the
    UI (a timer steps the job, the progress bar moves, Esc or Cancel stops it, the user works on while
    the backend does), or blocking from ``execute`` for scripts and headless Blender. Subclasses say
    which jobs to run (``_plan``)."""

    bl_options = {"REGISTER", "UNDO"}
    _job: SegmentJob | CollectionJob | None = None
    _timer = None
    _queue: list = []
    _index = -1
    _outcomes: list = []

    def _plan(self, context: bpy.types.Context) -> list[tuple[str, Callable[[], SegmentJob | CollectionJob]]]:
        """``(what it segments, a function that starts the job)`` for each job; raises one of JOB_ERRORS."""
        raise NotImplementedError

    def _done_text(self, text: str) -> str:
        """What the report says of an object segmented (``text``: the job's own words)."""
        return text

    def _start(self, context: bpy.types.Context) -> bool:
        self._index, self._outcomes = -1, []
        try:
            self._queue = self._plan(context)
        except JOB_ERRORS as e:
            self.report({"ERROR"}, f"partdistill: {for_panel(e)}")
            return False
        if not self._next():
            self._finish(context)
            return False
        return True

    def _next(self) -> bool:
        """Start the next object's job; False when none is left (a job that cannot start is
        reported and skipped; a backend that does not answer ends the queue)."""
        while self._index + 1 < len(self._queue):
            self._index += 1
            name, start = self._queue[self._index]
            try:
                self._job = start()
                return True
            except JOB_ERRORS as e:
                self._outcomes.append((name, FAILED, for_panel(e)))
                if isinstance(e, BackendTimeout | BackendError):
                    return False
        return False

    def _record(self) -> None:
        job = self._job
        applied = 0
        for name, state, text, warnings in job.outcomes():
            self._outcomes.append((name, state, self._done_text(text) if state == DONE else text))
            for w in warnings:
                self.report({"WARNING"}, f"partdistill: {name}: {w}")
            applied += state == DONE
        if applied and self._index + 1 < len(self._queue):
            try:  # one undo step per applied job (the operator's own step covers the last)
                bpy.ops.ed.undo_push(message=f"partdistill: {self.bl_label.lower()} {job.object_name}")
            except RuntimeError:
                pass  # no window to push from (headless): the whole run is one step

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Blocking form, for scripts and headless Blender: runs every job."""
        if not self._start(context):
            return {"CANCELLED"}
        while True:
            self._job.run()
            self._record()
            if self._job.state == CANCELLED or not self._next():
                return self._finish(context)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if not self._start(context):
            return {"CANCELLED"}
        state = context.window_manager.partdistill
        state.running, state.cancel_requested, state.progress, state.message = True, False, 0.0, "capturing"
        self._timer = context.window_manager.event_timer_add(0.05, window=context.window)
        context.window_manager.modal_handler_add(self)
        context.window_manager.progress_begin(0, 100)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        state = context.window_manager.partdistill
        if event.type == "ESC" or state.cancel_requested:
            state.cancel_requested = False
            self._job.cancel()
            self._queue = self._queue[: self._index + 1]  # the queue ends with this job
        if event.type != "TIMER" and not self._job.finished:
            # while views are captured the private capture scene exists: no key may reach it (Ctrl+Z
            # would undo into it); while the backend works, the user works on
            return {"RUNNING_MODAL"} if self._job.state == CAPTURING else {"PASS_THROUGH"}
        self._job.step()
        n = len(self._queue)
        progress = (self._index + self._job.progress) / n
        prefix = f"[{self._index + 1}/{n}] {self._job.object_name}: " if n > 1 else ""
        state.progress, state.message = progress, prefix + self._job.message
        context.window_manager.progress_update(int(100 * progress))
        if context.workspace is not None:  # the status bar: the stage and the time it has left
            context.workspace.status_text_set(f"partdistill: {state.message}")
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()
        if not self._job.finished:
            return {"RUNNING_MODAL"}
        self._record()
        if self._job.state != CANCELLED and self._next():
            return {"RUNNING_MODAL"}
        self._end_modal(context)
        return self._finish(context)

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender ends the operator itself (a file is loaded, the window closes): stop the job and
        leave nothing behind (timer, progress, the running flag that greys the operators out)."""
        if self._job is not None and not self._job.finished:
            self._job.cancel()
        self._end_modal(context)

    def _end_modal(self, context: bpy.types.Context) -> None:
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        context.window_manager.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        context.window_manager.partdistill.running = False

    def _finish(self, context: bpy.types.Context) -> set[str]:
        """Report every object's outcome; FINISHED (one undo step) when any result was applied."""
        many = len(self._outcomes) > 1
        for name, state, text in self._outcomes:
            if state == DONE:
                self.report({"INFO"}, f"partdistill: {name}: {text}" if many else f"partdistill: {text}")
            elif state == CANCELLED:
                self.report({"WARNING"}, f"partdistill: {name}: cancelled")
            else:
                self.report({"ERROR"}, f"partdistill: {name}: {text}" if many else f"partdistill: {text}")
        return {"FINISHED"} if any(o[1] == DONE for o in self._outcomes) else {"CANCELLED"}


class PARTDISTILL_OT_segment(_RunsJobs, bpy.types.Operator):
    """Render views of the selected meshes, send them to the partdistill backend and colour their parts"""

    bl_idname = "partdistill.segment"
    bl_label = "Segment"

    @classmethod
    def why_not(cls, context: bpy.types.Context) -> str | None:
        return _why_busy(context) or _why_no_object(context, " to segment")

    def _plan(self, context: bpy.types.Context) -> list[tuple[str, Callable[[], SegmentJob | CollectionJob]]]:
        """Every selected mesh or point cloud (the active one first): together as one collection
        (*Options › Several Objects*; more objects than a request holds as a few collections of
        about equal size), or one job each."""
        active = context.active_object
        others = [o for o in context.selected_objects if (o.type == "MESH" or is_point_object(o)) and o != active]
        objects, settings = [active, *others], job_settings(context.scene)
        together = settings.collection.mode != "tta" and collection_ruled_out(settings.options) is None
        if len(objects) > 1 and together:
            groups = [[objects[i] for i in g] for g in collection_groups(len(objects))]
            return [(", ".join(o.name for o in g), lambda g=g: CollectionJob(g, settings)) for g in groups]
        return [(o.name, lambda o=o: SegmentJob(o, settings)) for o in objects]


class PARTDISTILL_OT_cancel(_Greyed, bpy.types.Operator):
    """Cancel the running segmentation"""

    bl_idname = "partdistill.cancel"
    bl_label = "Cancel"

    @classmethod
    def why_not(cls, context: bpy.types.Context) -> str | None:
        return None if context.window_manager.partdistill.running else "No segmentation is running"

    def execute(self, context: bpy.types.Context) -> set[str]:
        context.window_manager.partdistill.cancel_requested = True
        return {"FINISHED"}


class PARTDISTILL_OT_check_backend(bpy.types.Operator):
    """Ask the backend who it is and how fast it answers"""

    bl_idname = "partdistill.check_backend"
    bl_label = "Check Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        prefs = preferences(context)
        try:
            about = describe_backend(prefs, timeout_s=min(prefs.timeout, 5.0))
        except JOB_ERRORS as e:
            self.report({"ERROR"}, f"partdistill: {for_panel(e)}")
            return {"CANCELLED"}
        self.report({"INFO"}, about)
        return {"FINISHED"}


class _ResultTool(_Greyed):
    """An operator that makes something of the active mesh's result; ``make`` says what it made."""

    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def why_not(cls, context: bpy.types.Context) -> str | None:
        return _why_no_result(context)

    def make(self, context: bpy.types.Context) -> str:
        raise NotImplementedError

    def execute(self, context: bpy.types.Context) -> set[str]:
        self.report({"INFO"}, f"partdistill: {self.make(context)}")
        return {"FINISHED"}


class PARTDISTILL_OT_vertex_groups(_ResultTool, bpy.types.Operator):
    """Make one vertex group per part on the active mesh"""

    bl_idname = "partdistill.vertex_groups"
    bl_label = "Vertex Groups"

    def make(self, context: bpy.types.Context) -> str:
        return f"{len(make_vertex_groups(context.active_object))} vertex groups"


class PARTDISTILL_OT_split(_ResultTool, bpy.types.Operator):
    """Copy each part of the active mesh into an object of its own (the original is hidden)"""

    bl_idname = "partdistill.split"
    bl_label = "Split into Objects"

    def make(self, context: bpy.types.Context) -> str:
        return f"{len(split_parts(context.active_object, context))} objects, one per part"


class PARTDISTILL_OT_refine(_RunsJobs, bpy.types.Operator):
    """Segment the active mesh again, keeping the faces you moved to another part's slot in Edit Mode"""

    bl_idname = "partdistill.refine"
    bl_label = "Refine"

    @classmethod
    def why_not(cls, context: bpy.types.Context) -> str | None:
        return _why_busy(context) or _why_no_result(context)

    def _plan(self, context: bpy.types.Context) -> list[tuple[str, Callable[[], SegmentJob]]]:
        obj = context.active_object
        names, fixed = corrections(obj)
        settings = job_settings(context.scene)
        settings.part_names = names  # the result's parts, whatever the panel says now
        self._n_fixed = int((fixed >= 0).sum())
        return [(obj.name, lambda: SegmentJob(obj, settings, labelled_polygons=fixed))]

    def _done_text(self, text: str) -> str:
        return f"refined with {self._n_fixed} corrected faces; {text}"


class PARTDISTILL_OT_clear(_Greyed, bpy.types.Operator):
    """Remove the part materials and attribute from the active mesh, restoring its materials"""

    bl_idname = "partdistill.clear"
    bl_label = "Clear Parts"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def why_not(cls, context: bpy.types.Context) -> str | None:
        return _why_no_object(context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        obj = context.active_object
        if not (remove_point_result(obj) if is_point_object(obj) else remove_result(obj)):
            self.report({"INFO"}, "no partdistill result on this object")
            return {"CANCELLED"}
        return {"FINISHED"}


CLASSES = (
    PARTDISTILL_OT_segment,
    PARTDISTILL_OT_cancel,
    PARTDISTILL_OT_check_backend,
    PARTDISTILL_OT_vertex_groups,
    PARTDISTILL_OT_split,
    PARTDISTILL_OT_refine,
    PARTDISTILL_OT_clear,
)
