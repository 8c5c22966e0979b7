"""Point clouds through the engine: clouds sampled from the real development meshes get the parts of
the faces they were sampled from; the CLI writes per-point labels; the wire carries the surfel flag."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from partdistill.backend import cli
from partdistill.backend.io.inputs import read_input
from partdistill.backend.tta import segment
from partdistill.bench import psb
from partdistill.bench.levels import simulate
from partdistill.bench.points import sample_cloud
from partdistill.shared.options import SegmentOptions
from partdistill.shared.protocol import decode, encode, parse_segment_request, segment_request
from partdistill.shared.request import SegmentRequest

pytestmark = pytest.mark.skipif(not psb.available(psb.default_data_dir()), reason="no real development meshes")


def sampled_cloud(key: str, n: int = 12_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``n`` points sampled uniformly on a development mesh, each with the label of its face."""
    return sample_cloud(psb.default_data_dir(), key, n, seed)


def _capture(tmp_path, key: str, views: int = 6, resolution: int = 256):
    points, labels, names = sampled_cloud(key)
    path = tmp_path / f"{key}.xyz"
    np.savetxt(path, points, fmt="%.6f")  # no normals: the capture estimates them
    cap = read_input(path, views=views, resolution=resolution)
    cap.part_names, cap.gt_face_labels = names, np.repeat(labels, 2)
    return cap, labels, names


@pytest.mark.parametrize("key", ["Teddy_162", "FourLeg_382"])
def test_clouds_sampled_from_real_meshes_get_their_parts_about_as_well_as_the_meshes(tmp_path, key):
    cap, labels, names = _capture(tmp_path, key)
    assert cap.cloud is not None and cap.cloud.n == len(labels)
    vote = segment(cap, names, options=SegmentOptions(method="vote-fill"), detections=simulate(cap, "perfect"))
    assert vote.polygon_labels.shape == labels.shape
    assert (vote.polygon_labels == labels).mean() >= 0.85  # perfect boxes: most points right
    # Distillation under realistic noise, on the cloud and on the mesh it was sampled from (same
    # ring, same image size, the simulated teacher on each capture's own views).
    opts = SegmentOptions(n_points=2048, epochs=60)
    dist = segment(cap, names, options=opts, detections=simulate(cap, "realistic", seed=1))
    acc = (dist.polygon_labels == labels).mean()
    mesh = _mesh_capture(key, views=6, size=256)
    on_mesh = segment(mesh, names, options=opts, detections=simulate(mesh, "realistic", seed=1))
    area = mesh.mesh.face_areas()
    acc_mesh = (area * (on_mesh.face_labels == mesh.gt_face_labels)).sum() / area.sum()
    assert acc >= acc_mesh - 0.1, (acc, acc_mesh)


def test_the_cli_writes_labels_per_point(tmp_path):
    cap, labels, names = _capture(tmp_path, "Teddy_162", views=4, resolution=128)
    ply = tmp_path / "teddy.ply"
    header = f"ply\nformat ascii 1.0\nelement vertex {cap.cloud.n}\nproperty float x\nproperty float y\nproperty float z\nend_header\n"  # noqa: E501
    ply.write_text(header + "\n".join(" ".join(f"{c:.6f}" for c in p) for p in cap.cloud.points))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert (
            cli.main(["capture", str(ply), "--out", str(tmp_path / "c.npz"), "--views", "4", "--resolution", "128"])
            == 0
        )
    captured = read_input(tmp_path / "c.npz")
    captured.part_names, captured.gt_face_labels = names, np.repeat(labels, 2)
    simulate(captured, "perfect").save_json(tmp_path / "det.json")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(
            [
                "segment",
                str(tmp_path / "c.npz"),
                "--parts",
                ",".join(names),
                "--detections",
                str(tmp_path / "det.json"),
                "--method",
                "vote-fill",
                "--out",
                str(tmp_path / "o"),
                "--quiet",
            ]
        )
    assert rc == 0, err.getvalue()
    with np.load(tmp_path / "o" / "labels.npz") as z:
        assert z["point_labels"].shape == (cap.cloud.n,) and z["point_confidence"].shape == (cap.cloud.n,)
        assert (z["point_labels"] == labels).mean() >= 0.8
    doc = json.loads((tmp_path / "o" / "labels.json").read_text())
    assert doc["n_points"] == cap.cloud.n
    counted = sum(c["points"] for c in doc["coverage"].values())  # points, not their two surfel triangles
    assert counted == cap.cloud.n


def test_a_point_cloud_capture_crosses_the_wire_as_surfels(tmp_path):
    cap, labels, names = _capture(tmp_path, "FourLeg_382", views=2, resolution=64)
    msg = decode(
        encode(
            segment_request(
                "j", SegmentRequest(cap, names, SegmentOptions(method="vote-fill"), simulate(cap, "perfect"))
            )
        )
    )
    got = parse_segment_request(msg).capture
    assert got.mesh.surfels and np.array_equal(got.mesh.faces, cap.mesh.faces)


def test_batch_labels_point_clouds_in_process_and_reports_a_broken_one(tmp_path):
    import csv

    folder = tmp_path / "in"
    folder.mkdir()
    points, labels, names = sampled_cloud("Teddy_162", n=4000)
    np.save(folder / "teddy.npy", points)
    cap = read_input(folder / "teddy.npy", views=4, resolution=96)
    cap.part_names, cap.gt_face_labels = names, np.repeat(labels, 2)
    simulate(cap, "perfect").save_json(folder / "teddy.detections.json")
    (folder / "broken.xyz").write_text("1 2\n3 4 5\n")
    out = tmp_path / "out"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = cli.main(
            [
                "batch",
                str(folder),
                "--parts",
                ",".join(names),
                "--out",
                str(out),
                "--views",
                "4",
                "--resolution",
                "96",
                "--method",
                "vote-fill",
                "--quiet",
            ]
        )
    assert rc == 1, buf.getvalue()
    rows = {r["input"].rsplit("/", 1)[-1]: r for r in csv.DictReader(open(out / "index.csv"))}
    assert rows["teddy.npy"]["status"] == "done" and rows["broken.xyz"]["status"] == "failed"
    assert "different numbers of values" in rows["broken.xyz"]["reason"]
    with np.load(out / "teddy" / "labels.npz") as z:
        assert (z["point_labels"] == labels).mean() >= 0.8


def _mesh_capture(key: str, views: int = 6, size: int = 192):
    """A mesh capture made with the numpy rasteriser and ring (no Blender), with ground truth."""
    from partdistill.shared.capture import Capture, Mesh
    from partdistill.shared.point_capture import ring_views
    from partdistill.shared.raster import rasterize, shade

    data = psb.default_data_dir()
    with np.load(data / "psb-dev.npz") as z:
        v, f, lab = z[f"{key}_vertices"], z[f"{key}_faces"].astype(np.int32), z[f"{key}_labels"].astype(np.int32)
    names = psb.part_words(data, key.split("_")[0])
    c = (v.min(0) + v.max(0)) / 2
    K, w2c, clips = ring_views(c, float(np.linalg.norm(v - c, axis=1).max()), views, size)
    fid = np.stack([rasterize(v, f, K[i], w2c[i], (size, size), clip=clips[i]).face_id for i in range(views)])
    rgb = np.stack([shade(fid[i], v, f, K[i], w2c[i], face_colors=np.full((len(f), 3), 90.0)) for i in range(views)])
    meta = {"clip": [list(x) for x in clips]}
    return Capture(Mesh(v.astype(np.float32), f), rgb, fid, K, w2c, part_names=names, gt_face_labels=lab, meta=meta)


def test_the_four_render_types_show_the_same_shape_and_bring_labels_back_to_the_faces():
    from partdistill.backend.metrics import shape_miou
    from partdistill.backend.render_types import DENSE_POINTS, SPARSE_POINTS, render_as

    cap = _mesh_capture("FourLeg_382")
    det = simulate(cap, "perfect")
    gray = render_as(cap, "gray-mesh").capture
    assert np.array_equal(gray.face_id, cap.face_id) and gray.rgb[cap.face_id >= 0].mean() > 120  # repainted grey
    dense, sparse = render_as(cap, "dense-points"), render_as(cap, "sparse-points")
    assert dense.capture.cloud.n == DENSE_POINTS and sparse.capture.cloud.n == SPARSE_POINTS
    assert dense.capture.cloud.colors is not None and sparse.capture.cloud.colors is None
    assert abs(int(dense.capture.cloud.colors.mean()) - 90) < 40  # the captured pixels' colour, shaded
    # the same cameras: the silhouettes agree with the mesh's (sparse surfels are larger, so looser)
    for r, least in ((dense, 0.9), (sparse, 0.75)):
        fg_mesh, fg_pts = cap.face_id >= 0, r.capture.face_id >= 0
        assert (fg_mesh & fg_pts).sum() / (fg_mesh | fg_pts).sum() > least
    area = cap.mesh.face_areas()
    for kind in ("color-mesh", "gray-mesh", "dense-points", "sparse-points"):
        res = segment(cap, cap.part_names, options=SegmentOptions(method="vote-fill", render_type=kind), detections=det)
        assert res.face_labels.shape == (cap.mesh.n_faces,) and (res.face_labels >= 0).all()
        assert shape_miou(res.face_labels, cap.gt_face_labels, len(cap.part_names), area) > 0.7, kind
    with pytest.raises(Exception, match="render types apply to mesh captures"):
        points = render_as(cap, "sparse-points").capture
        segment(
            points, cap.part_names, options=SegmentOptions(method="vote-fill", render_type="gray-mesh"), detections=det
        )
