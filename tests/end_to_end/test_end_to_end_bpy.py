"""End to end: headless-bpy capture of a three-part mesh -> the real ZeroMQ server (a separate
`partdistill serve` process) -> labels applied as material slots and the face attribute; the same
through the in-process CLI; the same capture with a tiny randomly-initialised teacher."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from partdistill.backend import cli  # noqa: E402
from partdistill.backend.metrics import shape_miou  # noqa: E402
from partdistill.bench.shapes import chair  # noqa: E402
from partdistill.bench.simulated import simulate_detections  # noqa: E402
from partdistill.blender_addon.apply import PART_ATTRIBUTE, result_labels  # noqa: E402
from partdistill.blender_addon.capture import capture_object  # noqa: E402
from partdistill.blender_addon.job import JobSettings, SegmentJob  # noqa: E402
from partdistill.blender_addon.operators import PARTDISTILL_OT_refine, _RunsJobs  # noqa: E402
from partdistill.blender_addon.preferences import preferences  # noqa: E402
from partdistill.shared.bundle import load_bundle  # noqa: E402
from partdistill.shared.client import BackendClient, BackendTimeout  # noqa: E402
from partdistill.shared.options import SegmentOptions  # noqa: E402

VIEWS, RES = 8, 160
SHAPE = chair(arms=False)  # seat, back, leg


@pytest.fixture(scope="module")
def backend():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "partdistill.backend.cli", "serve", "--bind", address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            BackendClient(address, timeout_s=1).ping()
            break
        except BackendTimeout:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"backend did not start: {proc.stderr.read().decode()[-2000:]}") from None
    yield address
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def scene(chair_object):
    return chair_object


def simulated_detections_file(obj, tmp_path: Path) -> Path:
    cap = capture_object(obj, ring=True, n_views=VIEWS, resolution=RES)
    cap.part_names = SHAPE.part_names
    cap.gt_face_labels = SHAPE.labels[cap.mesh.face_to_polygon]
    path = tmp_path / "detections.json"
    simulate_detections(cap).save_json(path)
    return path


def test_blender_operator_segments_through_the_server_and_applies_parts(scene, backend, tmp_path):
    obj = scene
    s = bpy.context.scene.partdistill
    s.parts = ", ".join(SHAPE.part_names)
    preferences(bpy.context).backend = backend
    s.detections = str(simulated_detections_file(obj, tmp_path))
    s.n_views, s.resolution, s.epochs = VIEWS, RES, 100
    n_objects, n_cameras = len(bpy.data.objects), len(bpy.data.cameras)
    assert bpy.ops.partdistill.segment.poll()
    assert bpy.ops.partdistill.segment() == {"FINISHED"}
    names, labels = result_labels(obj)
    assert names == SHAPE.part_names
    area = np.array([p.area for p in obj.data.polygons])
    assert shape_miou(labels, SHAPE.labels, 3, area) >= 0.9
    slots = [m.name for m in obj.data.materials if m is not None]
    assert slots == [f"partdistill: {n}" for n in SHAPE.part_names]
    index = np.zeros(len(obj.data.polygons), np.int32)
    obj.data.polygons.foreach_get("material_index", index)
    assert (index == labels + 1).all()  # slot 0 is the empty slot a mesh without materials gets
    attr = np.zeros(len(obj.data.polygons), np.int32)
    obj.data.attributes[PART_ATTRIBUTE].data.foreach_get("value", attr)
    np.testing.assert_array_equal(attr, labels)
    assert (len(bpy.data.objects), len(bpy.data.cameras)) == (n_objects, n_cameras)  # ring removed


def test_a_dead_backend_is_reported_before_any_capture_within_a_second_or_so(scene, tmp_path):
    obj = scene
    settings = JobSettings(
        SHAPE.part_names,
        BackendClient("tcp://127.0.0.1:1", timeout_s=30),
        SegmentOptions(teacher="grounding_dino"),
        n_views=2,
        resolution=64,
    )
    scenes, t = len(bpy.data.scenes), time.monotonic()
    with pytest.raises(BackendTimeout, match="partdistill serve"):
        SegmentJob(obj, settings)
    assert time.monotonic() - t < 2.5
    assert len(bpy.data.scenes) == scenes and len(obj.data.materials) == 0  # nothing rendered, nothing applied


def test_detections_for_other_views_are_refused_before_any_capture(scene, tmp_path, backend):
    obj = scene
    det = simulated_detections_file(obj, tmp_path)  # VIEWS views of RES px
    from partdistill.shared.detections import Detections
    from partdistill.shared.errors import ValidationError

    settings = JobSettings(
        SHAPE.part_names,
        BackendClient(backend),
        SegmentOptions(),
        Detections.load_json(det),
        n_views=VIEWS + 2,
        resolution=RES,
    )
    with pytest.raises(ValidationError, match="view"):
        SegmentJob(obj, settings)


def test_cli_segments_a_mesh_file_in_process(scene, tmp_path):
    obj_path = SHAPE.write_obj(tmp_path / "chair.obj")
    bundle = tmp_path / "capture.npz"
    assert (
        cli.main(["capture", str(obj_path), "--out", str(bundle), "--views", str(VIEWS), "--resolution", str(RES)]) == 0
    )
    cap = load_bundle(bundle)
    cap.part_names, cap.gt_face_labels = SHAPE.part_names, SHAPE.labels[cap.mesh.face_to_polygon]
    simulate_detections(cap).save_json(tmp_path / "det.json")
    out = tmp_path / "out"
    det = str(tmp_path / "det.json")
    argv = [
        "segment",
        str(obj_path),
        "--parts",
        ",".join(SHAPE.part_names),
        "--detections",
        det,
        "--out",
        str(out),
        "--views",
        str(VIEWS),
        "--resolution",
        str(RES),
        "--epochs",
        "100",
        "--quiet",
    ]
    assert cli.main(argv) == 0
    z = np.load(out / "labels.npz")
    assert list(z["part_names"]) == list(SHAPE.part_names)
    polygon_area = np.bincount(cap.mesh.face_to_polygon, cap.mesh.face_areas())
    assert shape_miou(z["polygon_labels"], SHAPE.labels, 3, polygon_area) >= 0.9
    assert shape_miou(z["face_labels"], cap.gt_face_labels, 3, cap.mesh.face_areas()) >= 0.9
    for name in ("segmented.glb", "preview.png", "loss.png", "labels.json"):
        assert (out / name).stat().st_size > 0


def test_tiny_teacher_through_the_server_returns_labels_of_the_right_shape(scene, backend, tiny_grounding_dino):
    cap = capture_object(scene, ring=True, n_views=3, resolution=128)
    opts = SegmentOptions(
        teacher="grounding_dino",
        teacher_model=str(tiny_grounding_dino),
        box_threshold=0.0,
        text_threshold=0.0,
        n_points=1024,
        epochs=10,
    )
    res = BackendClient(backend, timeout_s=60).segment(cap, ["seat", "back", "leg"], opts)
    assert res.face_labels.shape == (cap.mesh.n_faces,)
    assert res.polygon_labels.shape == (len(scene.data.polygons),)
    assert res.stats["teacher"] == "grounding_dino" and res.stats["n_detections"] > 0


@pytest.mark.parametrize("mode", ["tta", "pre"])
def test_several_selected_meshes_are_segmented_one_by_one_or_together(scene, backend, tmp_path, mode):
    first = scene
    second = first.copy()
    second.data = first.data.copy()
    second.name = "chair copy"
    bpy.context.scene.collection.objects.link(second)
    second.select_set(True)
    s = bpy.context.scene.partdistill
    s.parts = ", ".join(SHAPE.part_names)
    preferences(bpy.context).backend = backend
    s.detections = str(simulated_detections_file(first, tmp_path))
    s.n_views, s.resolution, s.epochs, s.collection_mode = VIEWS, RES, 40, mode
    assert bpy.ops.partdistill.segment() == {"FINISHED"}
    for obj in (first, second):
        names, labels = result_labels(obj)
        assert names == SHAPE.part_names and shape_miou(labels, SHAPE.labels, 3, None) > 0.5


def _segment_then_move_the_legs_to_the_seat(obj, backend, tmp_path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Segment, then move the legs to the "seat" slot as Edit Mode's Assign does: (names, labels, moved)."""
    s = bpy.context.scene.partdistill
    s.parts = ", ".join(SHAPE.part_names)
    preferences(bpy.context).backend = backend
    s.detections = str(simulated_detections_file(obj, tmp_path))
    s.n_views, s.resolution, s.epochs = VIEWS, RES, 60
    assert bpy.ops.partdistill.refine.poll() is False  # nothing to refine before a result
    assert bpy.ops.partdistill.segment() == {"FINISHED"}
    names, labels = result_labels(obj)
    seat_slot = next(
        k for k, m in enumerate(obj.data.materials) if m is not None and m.get("partdistill_part") == "seat"
    )
    index = np.zeros(len(obj.data.polygons), np.int32)
    obj.data.polygons.foreach_get("material_index", index)
    moved = SHAPE.labels == names.index("leg")
    index[moved] = seat_slot
    obj.data.polygons.foreach_set("material_index", index)
    return names, labels, moved


def test_refine_keeps_the_faces_the_user_moved_to_another_part(scene, backend, tmp_path):
    obj = scene
    names, labels, moved = _segment_then_move_the_legs_to_the_seat(obj, backend, tmp_path)
    assert bpy.ops.partdistill.refine() == {"FINISHED"}
    _, after = result_labels(obj)
    assert (after[moved] == names.index("seat")).mean() >= 0.9
    assert (after[~moved] == labels[~moved]).mean() >= 0.8  # the rest stays about as it was


class _ModalRefine(_RunsJobs):
    """Refine as Blender's event loop drives it from the panel (a timer event at a time), outside a
    window: what the artist sees is the progress bar and the reports."""

    bl_label = "Refine"
    _plan = PARTDISTILL_OT_refine._plan
    _done_text = PARTDISTILL_OT_refine._done_text

    def __init__(self):
        self.reports = []

    def report(self, kind, text):
        self.reports.append((next(iter(kind)), text))

    def drive(self, cancel_after: int | None = None) -> tuple[set[str], list[float]]:
        state = bpy.context.window_manager.partdistill
        assert self._start(bpy.context)
        state.running, seen, ticks = True, [], 0
        while True:
            ticks += 1
            if ticks == cancel_after:
                state.cancel_requested = True  # the panel's Cancel button
            out = self.modal(bpy.context, SimpleNamespace(type="TIMER"))
            seen.append(state.progress)
            if out != {"RUNNING_MODAL"}:
                return out, seen


def test_refine_runs_step_by_step_with_progress_and_a_cancel_leaves_the_result_as_it_was(scene, backend, tmp_path):
    obj = scene
    names, _, moved = _segment_then_move_the_legs_to_the_seat(obj, backend, tmp_path)
    before = result_labels(obj)[1].copy()
    out, _ = _ModalRefine().drive(cancel_after=3)
    assert out == {"CANCELLED"} and not bpy.context.window_manager.partdistill.running
    assert (result_labels(obj)[1] == before).all()  # nothing half-applied
    op = _ModalRefine()
    out, seen = op.drive()
    assert out == {"FINISHED"} and not bpy.context.window_manager.partdistill.running
    assert len(set(seen)) > 3 and seen == sorted(seen)  # the bar moves, forwards only
    assert op.reports[-1][0] == "INFO" and "refined with" in op.reports[-1][1]
    assert (result_labels(obj)[1][moved] == names.index("seat")).mean() >= 0.9
