"""The add-on's operators and jobs in headless Blender: an object renamed while the backend works
still gets its result, Blender ending the modal operator leaves nothing behind, greyed-out buttons
say why."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

bpy = pytest.importorskip("bpy")

from partdistill.bench.shapes import chair  # noqa: E402
from partdistill.bench.simulated import simulate_detections  # noqa: E402
from partdistill.blender_addon.apply import PART_ATTRIBUTE  # noqa: E402
from partdistill.blender_addon.capture import capture_object  # noqa: E402
from partdistill.blender_addon.job import CANCELLED, CAPTURING, DONE, WAITING, JobSettings, SegmentJob  # noqa: E402
from partdistill.blender_addon.operators import PARTDISTILL_OT_segment  # noqa: E402
from partdistill.shared.client import BackendClient  # noqa: E402
from partdistill.shared.options import SegmentOptions  # noqa: E402

SHAPE = chair(arms=False)
VIEWS, RES = 4, 96


@pytest.fixture
def obj(chair_object):
    return chair_object


def _settings(o, address: str) -> JobSettings:
    cap = capture_object(o, ring=True, n_views=VIEWS, resolution=RES)
    cap.part_names, cap.gt_face_labels = SHAPE.part_names, SHAPE.labels[cap.mesh.face_to_polygon]
    return JobSettings(
        SHAPE.part_names,
        BackendClient(address, timeout_s=30),
        SegmentOptions(n_points=1024, epochs=20),
        simulate_detections(cap),
        n_views=VIEWS,
        resolution=RES,
    )


def test_an_object_renamed_while_the_backend_works_still_gets_its_result(obj, server):
    job = SegmentJob(obj, _settings(obj, server.endpoint))
    while job.state == CAPTURING:
        job.step()
    assert job.state == WAITING
    obj.name = "renamed chair"
    assert job.run() == DONE, job.error
    attributes = bpy.data.objects["renamed chair"].data.attributes
    assert PART_ATTRIBUTE in attributes and "partdistill_confidence" in attributes  # confidence colours too
    assert job.message.startswith("segmented: ") and "; confidence 0." in job.message


def test_blender_ending_the_modal_operator_cancels_the_job_and_frees_segment(obj, server):
    state = bpy.context.window_manager.partdistill
    job = SegmentJob(obj, _settings(obj, server.endpoint))
    job.step()  # one view captured: the private capture scene exists
    scenes = len(bpy.data.scenes)
    state.running = True
    op = SimpleNamespace(_job=job, _timer=None)
    op._end_modal = lambda ctx: PARTDISTILL_OT_segment._end_modal(op, ctx)
    PARTDISTILL_OT_segment.cancel(op, bpy.context)  # what Blender calls when it ends the operator
    assert job.state == CANCELLED and not state.running
    assert len(bpy.data.scenes) == scenes - 1  # the private capture scene is gone
    assert bpy.ops.partdistill.segment.poll()


def test_segment_is_greyed_out_while_running_and_without_a_mesh(obj):
    state = bpy.context.window_manager.partdistill
    assert bpy.ops.partdistill.segment.poll() and not bpy.ops.partdistill.cancel.poll()
    state.running = True
    try:
        assert not bpy.ops.partdistill.segment.poll() and bpy.ops.partdistill.cancel.poll()
    finally:
        state.running = False
    bpy.context.view_layer.objects.active = None
    assert not bpy.ops.partdistill.segment.poll()


def test_a_preset_fills_in_the_part_names(obj):
    s = bpy.context.scene.partdistill
    s.preset = "SNP_Chair"
    assert s.parts == "back, seat, leg, arm"
    s.preset = "PNE_Kettle"
    assert s.parts == "lid, handle, spout"
    s.preset = "CUSTOM"
    assert s.parts == "lid, handle, spout"  # custom keeps what is typed


def test_the_panels_teacher_settings_reach_the_jobs_options(obj):
    from partdistill.blender_addon.operators import job_settings

    s = bpy.context.scene.partdistill
    s.parts, s.teacher, s.sam, s.sam_model = "seat, back", "owlv2", True, "sam-base"
    s.box_threshold, s.prompt_template, s.object_name = 0.4, "the {part} of a {object}", "chair"
    o = job_settings(bpy.context.scene).options
    assert (o.teacher, o.sam_model, o.box_threshold) == ("owlv2", "sam-base", pytest.approx(0.4))
    assert (o.prompt_template, o.object_name) == ("the {part} of a {object}", "chair")
    s.sam = False
    assert job_settings(bpy.context.scene).options.sam_model is None


@pytest.mark.parametrize("render", ["raster", "workbench"])
def test_the_panels_render_choice_reaches_the_capture(obj, server, render):
    from dataclasses import replace

    from partdistill.blender_addon.operators import job_settings

    s = bpy.context.scene.partdistill
    s.render = render
    settings = replace(_settings(obj, server.endpoint), render=job_settings(bpy.context.scene).render)
    job = SegmentJob(obj, settings)
    try:
        steps = 0
        while job.state == CAPTURING and job._view < 1:
            job.step()
            steps += 1
        assert job._session._engine == render
        assert steps == (1 if render == "raster" else 5)  # the rasteriser: one tick a view; Workbench: render + 4 bands
    finally:
        job.cancel()
        s.render = "raster"


def test_a_category_model_in_the_panel_labels_without_a_teacher(obj):
    from partdistill.blender_addon.operators import job_settings

    s = bpy.context.scene.partdistill
    s.parts, s.category_model = "seat, back", "chairs"
    o = job_settings(bpy.context.scene).options
    assert o.category_model == "chairs" and o.teacher is None
    s.category_model = ""
    assert job_settings(bpy.context.scene).options.teacher == s.teacher


def test_errors_say_where_in_the_panels_the_named_field_is_set():
    from partdistill.blender_addon.job import for_panel
    from partdistill.shared.client import BackendError
    from partdistill.shared.errors import ValidationError

    missing = BackendError("teacher_unavailable", "options.teacher_model", "cannot load the owlv2 model 'x'")
    assert for_panel(missing) == (
        "cannot load the owlv2 model 'x' (set it in the Model field (PartDistill › Options), or a Detections file)"
    )
    bad = ValidationError("detections.views[3]", "2 boxes but 3 scores")
    assert for_panel(bad).endswith("(set it in the Detections field (PartDistill › Options))")
    assert for_panel(RuntimeError("disk full")) == "disk full"


def test_the_panels_choices_are_the_engines_methods_teachers_collection_modes_and_frames():
    from partdistill.backend.teachers import teacher_names
    from partdistill.blender_addon.properties import (
        AUTO_FRAME,
        COLLECTION_ITEMS,
        FRAME_ITEMS,
        METHOD_ITEMS,
        TEACHER_ITEMS,
    )
    from partdistill.shared.options import COLLECTION_MODES, FRAMES, METHODS

    assert [i[0] for i in METHOD_ITEMS] == list(METHODS)
    assert sorted(i[0] for i in COLLECTION_ITEMS) == sorted(COLLECTION_MODES)
    assert [i[0] for i in FRAME_ITEMS] == [AUTO_FRAME, *FRAMES]
    assert [i[0] for i in TEACHER_ITEMS] == list(teacher_names())


def test_the_panels_axes_reach_the_collection_both_with_four_students_and_only_for_together(obj):
    from partdistill.blender_addon.collection_job import CollectionJob
    from partdistill.blender_addon.job import for_panel
    from partdistill.blender_addon.operators import job_settings
    from partdistill.shared.errors import ValidationError

    s = bpy.context.scene.partdistill
    s.parts = "seat, back, leg"
    assert s.collection_frame == "auto"
    chosen = []
    for frame in ("auto", "given", "principal", "both"):
        s.collection_frame = frame
        settings = job_settings(bpy.context.scene)
        c = settings.collection
        chosen.append((c.mode, c.frame, c.students, c.fit_points(settings.options)))
    assert chosen == [
        ("pre", "both", 4, 2048),
        ("pre", "given", 3, 4096),
        ("pre", "principal", 3, 4096),
        ("pre", "both", 4, 2048),
    ]
    s.collection_mode = "pre-tta"
    s.collection_frame = "auto"
    c = job_settings(bpy.context.scene).collection
    assert (c.mode, c.frame, c.students) == ("pre-tta", "given", 3)
    s.collection_mode = "tta"
    s.collection_frame = "both"
    scenes = len(bpy.data.scenes)
    with pytest.raises(ValidationError) as e:
        CollectionJob([obj, obj.copy()], job_settings(bpy.context.scene))
    assert for_panel(e.value) == (
        "collection.frame: both is for mode pre, not tta (set it in the Axes field (PartDistill › Options))"
    )
    assert len(bpy.data.scenes) == scenes  # refused before any capture


def test_a_collection_job_captures_each_object_then_applies_each_result(obj, server):
    from partdistill.blender_addon.apply import result_labels
    from partdistill.blender_addon.collection_job import CollectionJob
    from partdistill.shared.options import CollectionOptions

    other = obj.copy()
    other.data = obj.data.copy()
    bpy.context.scene.collection.objects.link(other)
    settings = _settings(obj, server.endpoint)
    settings.collection = CollectionOptions(finetune_epochs=5, students=2)  # one along each frame
    scenes = len(bpy.data.scenes)
    job = CollectionJob([obj, other], settings)
    seen = set()
    while not job.finished:
        job.step()
        seen.add(job.state)
        assert len(bpy.data.scenes) <= scenes + 1  # one private capture scene at a time
    assert job.state == "done" and {"capturing", "waiting"} <= seen
    assert [o[1] for o in job.outcomes()] == ["done", "done"]
    assert result_labels(obj) is not None and result_labels(other) is not None
    assert len(bpy.data.scenes) == scenes


def test_a_collection_job_cancelled_while_capturing_leaves_the_scene_as_it_was(obj, server):
    from partdistill.blender_addon.collection_job import CollectionJob

    other = obj.copy()
    other.data = obj.data.copy()
    bpy.context.scene.collection.objects.link(other)
    scenes, materials = len(bpy.data.scenes), len(obj.data.materials)
    job = CollectionJob([obj, other], _settings(obj, server.endpoint))
    job.step()
    job.cancel()
    assert job.state == "cancelled" and [o[1] for o in job.outcomes()] == ["cancelled", "cancelled"]
    assert len(bpy.data.scenes) == scenes and len(obj.data.materials) == materials


def test_more_selected_objects_than_a_request_holds_are_segmented_as_a_few_collections(obj, server):
    from partdistill.blender_addon.preferences import preferences

    for k in range(16):  # 17 chairs selected, one more than a collection request holds
        other = obj.copy()
        other.name = f"chair {k:02d}"
        bpy.context.scene.collection.objects.link(other)
        other.select_set(True)
    bpy.context.scene.partdistill.parts = "seat, back, leg"
    preferences(bpy.context).backend = server.endpoint
    plan = PARTDISTILL_OT_segment._plan(SimpleNamespace(), bpy.context)
    groups = [name.split(", ") for name, _ in plan]
    assert [len(g) for g in groups] == [8, 9] and groups[0][0] == "chair"  # the active object first
    assert sorted(n for g in groups for n in g) == sorted(o.name for o in bpy.context.selected_objects)
