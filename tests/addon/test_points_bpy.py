"""Point objects in the add-on: a mesh with vertices and no faces (what the PLY importer makes of a
scan) and a point-cloud object are captured, segmented through a loopback backend and labelled with
point attributes; Clear takes the result off again."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from partdistill.bench.simulated import simulate_detections  # noqa: E402
from partdistill.blender_addon.apply import PART_ATTRIBUTE  # noqa: E402
from partdistill.blender_addon.apply_points import COLOR_ATTRIBUTE, point_result_labels  # noqa: E402
from partdistill.blender_addon.capture.points import PointSession, is_point_object  # noqa: E402
from partdistill.blender_addon.job import DONE, JobSettings, SegmentJob  # noqa: E402
from partdistill.shared.client import BackendClient  # noqa: E402
from partdistill.shared.options import SegmentOptions  # noqa: E402

NAMES = ("top", "bottom")


def sphere_points(n: int = 3000) -> np.ndarray:
    v = np.random.default_rng(0).normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(params=["vertices-only mesh", "point cloud"])
def points_object(request, bpy_empty):
    import partdistill.blender_addon as addon

    if not hasattr(bpy.types.Scene, "partdistill"):
        addon.register()
    mesh = bpy.data.meshes.new("scan")
    mesh.from_pydata((sphere_points() + [0.0, 0.0, 2.0]).tolist(), [], [])
    obj = bpy.data.objects.new("scan", mesh)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    if request.param == "point cloud":
        bpy.ops.object.convert(target="POINTCLOUD")
        obj = bpy.context.active_object
        assert obj.type == "POINTCLOUD"
    return obj


def test_a_point_object_is_segmented_into_point_attributes_and_cleared(points_object, server):
    obj = points_object
    assert is_point_object(obj)
    with PointSession(obj, n_views=4, resolution=96) as s:
        for i in range(s.n_views):
            s.capture_view(i)
        cap = s.result()
    pts = cap.cloud.points
    assert np.allclose(pts[:, 2].mean(), 2.0, atol=0.05)  # world space
    truth = (pts[:, 2] < 2.0).astype(np.int32)  # top = 0, bottom = 1
    cap.part_names, cap.gt_face_labels = NAMES, np.repeat(truth, 2)
    det = simulate_detections(cap, mode="mask")
    settings = JobSettings(
        NAMES,
        BackendClient(server.endpoint, timeout_s=30),
        SegmentOptions(method="vote-fill"),
        det,
        n_views=4,
        resolution=96,
    )
    job = SegmentJob(obj, settings)
    assert job.run() == DONE, job.error
    names, labels = point_result_labels(obj)
    assert names == NAMES and (labels == truth).mean() > 0.95
    assert obj.data.attributes[COLOR_ATTRIBUTE].domain == "POINT"
    assert bpy.ops.partdistill.clear() == {"FINISHED"}
    assert PART_ATTRIBUTE not in obj.data.attributes and point_result_labels(obj) is None


def test_corrections_are_refused_on_point_objects(points_object, server):
    settings = JobSettings(NAMES, BackendClient(server.endpoint, timeout_s=30), SegmentOptions(method="vote-fill"))
    from partdistill.shared.errors import ValidationError

    with pytest.raises(ValidationError, match="corrections"):
        SegmentJob(points_object, settings, labelled_polygons=np.zeros(3000, np.int32))


def test_capture_writes_a_render_type_as_its_own_bundle(tmp_path):
    import contextlib
    import io

    from partdistill.backend import cli
    from partdistill.bench.shapes import chair
    from partdistill.shared.bundle import load_bundle

    obj = chair(arms=False).write_obj(tmp_path / "chair.obj")
    for kind in ("gray-mesh", "sparse-points"):
        out = tmp_path / f"{kind}.npz"
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = cli.main(
                ["capture", str(obj), "--out", str(out), "--views", "3", "--resolution", "64", "--render-type", kind]
            )
        assert rc == 0, err.getvalue()
        cap = load_bundle(out)
        assert (cap.cloud is not None and cap.cloud.n == 2048) == (kind == "sparse-points")
    gray = load_bundle(tmp_path / "gray-mesh.npz")
    fg = gray.face_id >= 0
    assert gray.rgb[fg].std(axis=1).max() < 1.0  # grey: the three channels equal
