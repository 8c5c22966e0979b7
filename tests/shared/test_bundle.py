"""The capture bundle (.npz): a lossless round trip, and a ValidationError naming the problem for
every kind of bad file (never a crash, never unpickling)."""

from __future__ import annotations

import pathlib
import pickle
from pathlib import Path

import numpy as np
import pytest
from partdistill.shared.bundle import OPTIONAL_KEYS, REQUIRED_KEYS, load_bundle, save_bundle
from partdistill.shared.capture import Capture, Mesh
from partdistill.shared.errors import ValidationError
from synthetic import capture_of, table


@pytest.fixture(scope="module")
def capture() -> Capture:
    mesh, gt, names = table()  # 60 triangles, 30 quads
    cap = capture_of(mesh, gt, names, n_views=3, size=32)
    cap.mesh.polygon_count = 32  # a modifier deleted two source polygons
    cap.orthographic = np.array([False, True, False])
    gt = cap.gt_face_labels.copy()
    gt[:2] = -1  # two unlabelled faces
    cap.gt_face_labels = gt
    cap.warnings = ["cap.obj: the import kept 60 of the file's 61 faces"]
    return cap.validate()


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write(path: Path, arrays: dict) -> Path:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)  # pickles object arrays
    return path


@pytest.fixture(scope="module")
def good_arrays(capture: Capture, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    return _arrays(save_bundle(tmp_path_factory.mktemp("bundle") / "good.npz", capture))


def _bad_bundle(tmp_path: Path, good: dict, **changes) -> Path:
    arrays = dict(good)
    for k, v in changes.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    return _write(tmp_path / "bad.npz", arrays)


def _field(path: Path) -> ValidationError:
    with pytest.raises(ValidationError) as e:
        load_bundle(path)
    assert str(e.value).startswith(e.value.field + ":")
    return e.value


# ---- round trip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_keeps_every_key_with_its_dtype_and_values(capture, tmp_path, compress):
    path = save_bundle(tmp_path / "cap.npz", capture, compress=compress)
    assert set(_arrays(path)) == set(REQUIRED_KEYS) | set(OPTIONAL_KEYS)
    back = load_bundle(path)
    pairs = [
        (back.mesh.vertices, capture.mesh.vertices, np.float32),
        (back.mesh.faces, capture.mesh.faces, np.int32),
        (back.mesh.face_to_polygon, capture.mesh.face_to_polygon, np.int32),
        (back.rgb, capture.rgb, np.uint8),
        (back.face_id, capture.face_id, np.int32),
        (back.K, capture.K, np.float64),
        (back.world_to_cam, capture.world_to_cam, np.float64),
        (back.orthographic, capture.orthographic, np.bool_),
        (back.gt_face_labels, capture.gt_face_labels, np.int32),
    ]
    for got, want, dtype in pairs:
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
    assert back.mesh.polygon_count == 32 and back.mesh.n_polygons == 32
    assert back.part_names == ("top", "leg") and all(type(n) is str for n in back.part_names)
    assert back.is_orthographic(1) and not back.is_orthographic(0)
    assert back.warnings == ["cap.obj: the import kept 60 of the file's 61 faces"]


def test_a_bundle_without_optional_keys_loads_with_them_absent(capture, tmp_path):
    mesh = Mesh(capture.mesh.vertices, capture.mesh.faces)
    minimal = Capture(mesh, capture.rgb, capture.face_id, capture.K, capture.world_to_cam)
    path = save_bundle(tmp_path / "min.npz", minimal)
    assert set(_arrays(path)) == set(REQUIRED_KEYS)
    back = load_bundle(path)
    assert back.mesh.face_to_polygon is None and back.mesh.polygon_count is None
    assert back.orthographic is None and back.gt_face_labels is None and back.part_names == ()
    assert back.mesh.n_polygons == back.mesh.n_faces == 60


def test_a_bundle_path_without_npz_suffix_is_written_and_read_at_exactly_that_path(capture, tmp_path):
    path = save_bundle(tmp_path / "sub" / "shape.capture", capture)
    assert path == tmp_path / "sub" / "shape.capture" and path.is_file()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["shape.capture"]  # no ".npz" appended
    np.testing.assert_array_equal(load_bundle(path).face_id, capture.face_id)


def test_save_refuses_an_invalid_capture(capture, tmp_path):
    bad = Capture(capture.mesh, capture.rgb, capture.face_id.astype(np.int64), capture.K, capture.world_to_cam)
    with pytest.raises(ValidationError) as e:
        save_bundle(tmp_path / "bad.npz", bad)
    assert e.value.field == "face_id"
    assert not (tmp_path / "bad.npz").exists()


# ---- unreadable files ---------------------------------------------------------------------------


def test_a_missing_file_names_the_input(tmp_path):
    e = _field(tmp_path / "nope.npz")
    assert e.field == "input" and "not found" in e.problem


@pytest.mark.parametrize("content", [b"", b"hello, not a zip file\n" * 10, b"PK\x03\x04" + b"\x00" * 40])
def test_garbage_bytes_are_not_a_readable_bundle(tmp_path, content):
    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    e = _field(path)
    assert e.field == "input" and "not a readable" in e.problem


def test_a_plain_npy_file_is_not_a_bundle(tmp_path):
    path = tmp_path / "single.npz"
    with open(path, "wb") as fh:
        np.save(fh, np.zeros(3))
    assert _field(path).field == "input"


# ---- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_a_missing_required_key_is_named(good_arrays, tmp_path, key):
    e = _field(_bad_bundle(tmp_path, good_arrays, **{key: None}))
    assert e.field == "input" and repr(key) in e.problem


def test_an_unknown_key_is_named(good_arrays, tmp_path):
    e = _field(_bad_bundle(tmp_path, good_arrays, normals=np.zeros((60, 3), np.float32)))
    assert e.field == "input" and "'normals'" in e.problem and "unknown" in e.problem


# ---- contents -----------------------------------------------------------------------------------


def _fid_out_of_range(good):
    fid = good["face_id"].copy()
    fid[0, 0, 0] = 60  # F = 60
    return fid


def _nan_vertices(good):
    v = good["vertices"].copy()
    v[3, 1] = np.nan
    return v


@pytest.mark.parametrize(
    "key, make, field",
    [
        ("faces", lambda g: g["faces"].astype(np.int64), "faces"),
        ("vertices", lambda g: g["vertices"].astype(np.float64), "vertices"),
        ("rgb", lambda g: g["rgb"].astype(np.float32), "rgb"),
        ("K", lambda g: g["K"].astype(np.float32), "K"),
        ("face_id", _fid_out_of_range, "face_id"),
        ("face_id", lambda g: g["face_id"][:, :-1], "face_id"),  # views of another size than rgb
        ("vertices", _nan_vertices, "vertices"),
        ("faces", lambda g: np.where(g["faces"] == 0, 99, g["faces"]).astype(np.int32), "faces"),  # V = 40
        ("gt_face_labels", lambda g: np.full(60, 2, np.int32), "gt_face_labels"),  # only 2 part names
        ("gt_face_labels", lambda g: g["gt_face_labels"][:-1], "gt_face_labels"),
        ("face_to_polygon", lambda g: g["face_to_polygon"].astype(np.int64), "face_to_polygon"),
        ("orthographic", lambda g: g["orthographic"].astype(np.uint8), "orthographic"),
        ("polygon_count", lambda g: np.float64(32), "polygon_count"),
        ("polygon_count", lambda g: np.array([32]), "polygon_count"),
        ("polygon_count", lambda g: np.int64(10), "face_to_polygon"),  # polygons 10..29 out of range
        ("part_names", lambda g: np.array([1, 2]), "part_names"),
        ("part_names", lambda g: np.array([["top", "leg"]]), "part_names"),
        ("part_names", lambda g: np.array(["top", "top"]), "part_names[1]"),
    ],
)
def test_bad_contents_raise_a_validation_error_naming_the_key(good_arrays, tmp_path, key, make, field):
    e = _field(_bad_bundle(tmp_path, good_arrays, **{key: make(good_arrays)}))
    assert e.field == field


# ---- pickles ------------------------------------------------------------------------------------


class _Trap:
    """Unpickling this creates the file ``marker``: proof that pickled data was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_a_pickled_object_array_is_refused_and_never_unpickled(good_arrays, tmp_path):
    marker = tmp_path / "unpickled"
    names = np.empty(2, dtype=object)
    names[:] = ["top", _Trap(marker)]
    path = _write(tmp_path / "pickled.npz", {**good_arrays, "part_names": names})
    e = _field(path)
    assert e.field == "input" and "pickle" in e.problem.lower()
    assert not marker.exists()


def test_a_raw_pickle_file_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "capture.npz"
    path.write_bytes(pickle.dumps({"vertices": _Trap(marker)}))
    e = _field(path)
    assert e.field == "input" and "pickle" in e.problem.lower()
    assert not marker.exists()
