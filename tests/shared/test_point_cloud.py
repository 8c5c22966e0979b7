"""Point clouds: the readers of every format, spacing and normals on hand-made clouds, the surfel
mesh, the numpy camera ring and the point-cloud bundle."""

from __future__ import annotations

import numpy as np
import pytest
from partdistill.shared.bundle import load_bundle, save_bundle
from partdistill.shared.camera import project_points
from partdistill.shared.capture import PointCloud
from partdistill.shared.errors import ValidationError
from partdistill.shared.ply import ply_has_faces
from partdistill.shared.point_capture import capture_point_cloud, point_ids, ring_views
from partdistill.shared.point_cloud import estimate_normals, point_spacing, read_point_file, surfel_mesh


def grid(n: int = 20, step: float = 0.1) -> np.ndarray:
    """(n², 3) points of a square grid in the plane z = 0."""
    x, y = np.meshgrid(np.arange(n) * step, np.arange(n) * step)
    return np.column_stack([x.ravel(), y.ravel(), np.zeros(n * n)]).astype(np.float32)


def sphere(n: int = 3000, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


# --------------------------------------------------------------------------- readers


def test_xyz_with_colours_0_to_255_and_normals(tmp_path):
    f = tmp_path / "c.xyz"
    f.write_text("# x y z r g b nx ny nz\n" + "\n".join(f"{i} 0 0 255 128 0 0 0 2" for i in range(5)))
    c = read_point_file(f)
    assert c.points.shape == (5, 3) and c.points[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert c.colors.tolist()[0] == [255, 128, 0] and np.allclose(c.normals, [0, 0, 1])


def test_txt_with_commas_and_colours_in_0_to_1(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("\n".join(f"{i},1,2,1.0,0.5,0.0" for i in range(4)))
    c = read_point_file(f)
    assert c.colors.tolist()[0] == [255, 128, 0] and c.normals is None


def test_pts_skips_its_count_line(tmp_path):
    f = tmp_path / "c.pts"
    f.write_text("4\n" + "\n".join(f"{i} 1 2" for i in range(4)))
    assert read_point_file(f).n == 4


def test_npy_and_npz_arrays(tmp_path):
    np.save(tmp_path / "a.npy", np.column_stack([grid(3), np.full((9, 3), 200.0)]))
    assert read_point_file(tmp_path / "a.npy").colors[0].tolist() == [200, 200, 200]
    np.savez(tmp_path / "b.npz", points=grid(3), normals=np.tile([0.0, 0.0, 1.0], (9, 1)))
    c = read_point_file(tmp_path / "b.npz")
    assert c.n == 9 and c.colors is None and np.allclose(c.normals, [0, 0, 1])


def _ply_header(n: int, props: list[str], fmt: str, faces: int = 0) -> bytes:
    lines = ["ply", f"format {fmt} 1.0", "comment made by a test", f"element vertex {n}"]
    lines += [f"property {p}" for p in props]
    if faces:
        lines += [f"element face {faces}", "property list uchar int vertex_indices"]
    return ("\n".join([*lines, "end_header"]) + "\n").encode()


def test_ply_ascii_with_colours_and_binary_with_normals(tmp_path):
    a = tmp_path / "a.ply"
    a.write_bytes(
        _ply_header(4, ["float x", "float y", "float z", "uchar red", "uchar green", "uchar blue"], "ascii")
        + b"".join(f"{i} 0 0 10 20 30\n".encode() for i in range(4))
    )
    c = read_point_file(a)
    assert c.n == 4 and c.colors[0].tolist() == [10, 20, 30] and not ply_has_faces(a)
    b = tmp_path / "b.ply"
    rec = np.zeros(5, dtype=[("x", ">f4"), ("y", ">f4"), ("z", ">f4"), ("nx", ">f4"), ("ny", ">f4"), ("nz", ">f4")])
    rec["x"], rec["nz"] = np.arange(5), 1.0
    props = ["float x", "float y", "float z", "float nx", "float ny", "float nz"]
    b.write_bytes(_ply_header(5, props, "binary_big_endian") + rec.tobytes())
    c = read_point_file(b)
    assert c.points[:, 0].tolist() == [0, 1, 2, 3, 4] and c.colors is None and np.allclose(c.normals, [0, 0, 1])


def test_a_ply_with_faces_is_a_mesh(tmp_path):
    m = tmp_path / "m.ply"
    m.write_bytes(
        _ply_header(3, ["float x", "float y", "float z"], "ascii", faces=1) + b"0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"
    )
    assert ply_has_faces(m)


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("ragged.xyz", "0 0 0\n1 1\n", "different numbers of values"),
        ("words.xyz", "a b c\n", "not a readable point cloud"),
        ("four.xyz", "0 0 0 1\n1 1 1 1\n", "3, 6 or 9 values"),
        ("few.xyz", "0 0 0\n1 1 1\n", "at least 4 points"),
        ("nan.xyz", "0 0 nan\n1 1 1\n2 2 2\n3 3 3\n", "NaN"),
    ],
)
def test_bad_point_files_are_named_in_one_line(tmp_path, name, text, problem):
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(ValidationError, match=problem):
        read_point_file(f)


# --------------------------------------------------------------------------- geometry


def test_spacing_of_a_grid_is_its_step():
    assert point_spacing(grid(20, 0.1)) == pytest.approx(0.1, rel=1e-4)


def test_normals_of_a_plane_and_of_a_sphere():
    n = estimate_normals(grid(20, 0.1), 0.1)
    assert np.allclose(np.abs(n[:, 2]), 1.0, atol=1e-6)
    p = sphere()
    n = estimate_normals(p, point_spacing(p))
    cos = np.einsum("ij,ij->i", n, p)  # outward: along the radius
    assert np.median(cos) > 0.99 and (cos > 0.9).mean() > 0.97


def test_surfels_are_two_triangles_per_point_centred_on_it():
    p = grid(5, 0.1)
    mesh, normals = surfel_mesh(PointCloud(p), 0.1)
    assert mesh.surfels and mesh.n_faces == 50 and mesh.n_polygons == 25
    assert mesh.face_to_polygon.tolist()[:4] == [0, 0, 1, 1]
    squares = mesh.vertices.reshape(25, 4, 3)
    assert np.allclose(squares.mean(1), p, atol=1e-6)
    side = np.linalg.norm(squares[:, 1] - squares[:, 0], axis=1)
    assert np.allclose(side, 0.3, atol=1e-6) and np.allclose(squares[..., 2], 0.0, atol=1e-6)


# --------------------------------------------------------------------------- capture


def test_the_ring_looks_at_the_centre_from_the_documented_places():
    K, w2c, clips = ring_views(np.array([1.0, 2.0, 3.0]), 0.5, 3, 64)
    uv, z = project_points(np.array([[1.0, 2.0, 3.0]] * 3), K[0], w2c[0])
    assert np.allclose(uv, 32.0) and np.all(z > 0)
    eye = -w2c[0, :3, :3].T @ w2c[0, :3, 3]
    assert eye[0] == pytest.approx(1.0) and eye[1] < 2.0 and eye[2] > 3.0  # front (-Y), 10° up
    up = np.array([1.0, 2.0, 3.2])  # a point above the centre shows above it (v smaller)
    assert project_points(up[None], K[0], w2c[0])[0][0, 1] < 32.0
    assert all(near < z[0] < far for near, far in clips)


def test_a_captured_cloud_sees_nearly_every_point_and_survives_its_bundle(tmp_path):
    p = sphere(4000)
    colors = np.tile(np.array([[200, 40, 40]], np.uint8), (len(p), 1))
    cap = capture_point_cloud(PointCloud(p, colors), n_views=6, resolution=128)
    pid = point_ids(cap)
    assert cap.meta["kind"] == "points" and cap.cloud.normals is not None
    assert len(np.unique(pid[pid >= 0])) > 0.9 * len(p)
    fg = pid >= 0
    assert cap.rgb[fg][:, 0].mean() > cap.rgb[fg][:, 1].mean() + 60  # drawn in the points' colour
    cap.part_names, cap.gt_face_labels = ("top", "bottom"), np.repeat((p[:, 2] < 0).astype(np.int32), 2)
    back = load_bundle(save_bundle(tmp_path / "c.npz", cap))
    with np.load(tmp_path / "c.npz") as z:
        assert {"points", "colors", "normals", "point_id", "gt_point_labels"} <= set(z.files)
        assert "faces" not in z.files and np.array_equal(z["point_id"], pid)
    assert np.array_equal(back.face_id, cap.face_id) and np.array_equal(back.mesh.vertices, cap.mesh.vertices)
    assert np.array_equal(back.gt_face_labels, cap.gt_face_labels) and back.cloud.n == len(p)
