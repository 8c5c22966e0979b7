"""The capture bundle: a Capture as one ``.npz`` file (the format is documented in the README).

Keys: vertices (V,3) float32, faces (F,3) int32, rgb (N,H,W,3) uint8, face_id (N,H,W) int32,
K (N,3,3) float64, world_to_cam (N,4,4) float64; optional face_to_polygon (F,) int32,
polygon_count () int64 (source polygons, when a modifier deleted some), orthographic (N,) bool,
part_names (P,) str, gt_face_labels (F,) int32, warnings (W,) str (what the capture noticed).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_file
from .capture import ARRAY_KEYS, REQUIRED_ARRAYS, Capture
from .errors import ValidationError

REQUIRED_KEYS = REQUIRED_ARRAYS
OPTIONAL_KEYS = ("face_to_polygon", "polygon_count", "orthographic", "part_names", "gt_face_labels", "warnings")
#: A point-cloud bundle: the points instead of a mesh, ``point_id`` instead of ``face_id``.
POINT_REQUIRED_KEYS = ("points", "rgb", "point_id", "K", "world_to_cam", "point_spacing")
POINT_OPTIONAL_KEYS = ("colors", "normals", "orthographic", "part_names", "gt_point_labels", "warnings")


def save_bundle(path: str | Path, capture: Capture, *, compress: bool = True) -> Path:
    """Write ``capture`` (validated first) to ``path``; returns the path written."""
    capture.validate()
    path = Path(path)
    if capture.cloud is not None:
        return _save_points(path, capture, compress)
    arrays = capture.to_arrays()
    if capture.part_names:
        arrays["part_names"] = np.array(capture.part_names, dtype=np.str_)
    if capture.gt_face_labels is not None:
        arrays["gt_face_labels"] = capture.gt_face_labels
    return _write(path, arrays | _warnings(capture), compress)


def _write(path: Path, arrays: dict, compress: bool) -> Path:
    """Written under a temporary name and renamed into place: an interrupted write leaves any earlier
    bundle at ``path`` whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:  # a handle: numpy would append ".npz" to other suffixes
        (np.savez_compressed if compress else np.savez)(fh, **arrays)
    return path


def _check_keys(path: Path, data: dict, required: tuple[str, ...], optional: tuple[str, ...], kind: str) -> None:
    missing = [k for k in required if k not in data]
    if missing:
        raise ValidationError("input", f"{path} lacks the {kind} key(s) {missing}")
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        raise ValidationError("input", f"{path} has unknown key(s) {unknown}")


def load_bundle(path: str | Path) -> Capture:
    """Read and validate a bundle. Unknown keys, missing keys, wrong dtypes all raise ValidationError."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError("input", f"capture bundle not found: {path}")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):  # a plain .npy file holds one array, not a bundle
            raise ValueError("it holds a single array (.npy), not named arrays")
        with z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ValidationError("input", f"{path} is not a readable .npz capture bundle: {e}") from None
    if "points" in data:
        return _load_points(path, data)
    _check_keys(path, data, REQUIRED_KEYS, OPTIONAL_KEYS, "bundle")
    fields = {
        "part_names": _names(data),
        "gt_face_labels": data.get("gt_face_labels"),
        "warnings": _strings("warnings", data),
    }
    return Capture.from_arrays({k: v for k, v in data.items() if k in ARRAY_KEYS}, **fields)


def _names(data: dict) -> tuple[str, ...]:
    return tuple(_strings("part_names", data))


def _strings(key: str, data: dict) -> list[str]:
    if key not in data:
        return []
    a = data[key]
    if a.dtype.kind != "U" or a.ndim != 1:
        raise ValidationError(key, "must be a 1-D array of strings")
    return [str(s) for s in a]


def _warnings(capture: Capture) -> dict[str, np.ndarray]:
    return {"warnings": np.array(capture.warnings, dtype=np.str_)} if capture.warnings else {}


def _save_points(path: Path, capture: Capture, compress: bool) -> Path:
    from .point_capture import point_ids
    from .point_cloud import per_point

    cloud = capture.cloud
    assert cloud is not None
    arrays = {
        "points": cloud.points,
        "rgb": capture.rgb,
        "point_id": point_ids(capture),
        "K": capture.K,
        "world_to_cam": capture.world_to_cam,
        "point_spacing": np.float64(capture.meta.get("point_spacing", 0.0)),
    }
    if cloud.colors is not None:
        arrays["colors"] = cloud.colors
    if cloud.normals is not None:
        arrays["normals"] = cloud.normals
    if capture.orthographic is not None:
        arrays["orthographic"] = capture.orthographic
    if capture.part_names:
        arrays["part_names"] = np.array(capture.part_names, dtype=np.str_)
    if capture.gt_face_labels is not None:
        arrays["gt_point_labels"] = per_point(capture.gt_face_labels)
    return _write(path, arrays | _warnings(capture), compress)


def _load_points(path: Path, data: dict) -> Capture:
    """A point-cloud bundle back into a capture: the surfel mesh is rebuilt from the points, their
    normals and spacing (the same mesh the capture made), ``face_id`` from ``point_id``."""
    from .point_cloud import PointCloud, faces_of_points, per_face, surfel_mesh
    from .validation import check_array, check_index_range

    _check_keys(path, data, POINT_REQUIRED_KEYS, POINT_OPTIONAL_KEYS, "point-cloud bundle")
    cloud = PointCloud(data["points"], data.get("colors"), data.get("normals")).validate()
    spacing = float(np.asarray(data["point_spacing"]))
    if not (np.isfinite(spacing) and spacing > 0):
        raise ValidationError("point_spacing", f"must be a positive number, got {spacing}")
    pid = check_array("point_id", data["point_id"], np.int32, (None, None, None))
    check_index_range("point_id", pid, -1, cloud.n)
    mesh, normals = surfel_mesh(cloud, spacing)
    cloud.normals = normals
    gt = data.get("gt_point_labels")
    if gt is not None:
        gt = per_face(check_array("gt_point_labels", gt, np.int32, (cloud.n,)))
    return Capture(
        mesh,
        data["rgb"],
        faces_of_points(pid),
        data["K"],
        data["world_to_cam"],
        orthographic=data.get("orthographic"),
        part_names=_names(data),
        gt_face_labels=gt,
        meta={"kind": "points", "point_spacing": spacing},
        cloud=cloud,
        warnings=_strings("warnings", data),
    ).validate()
