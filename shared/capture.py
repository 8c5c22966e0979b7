"""A capture: a triangulated mesh plus N rendered views with exact face-id maps and cameras.

Conventions (also in the README):
- ``K`` are OpenCV intrinsics: pixel (u, v) with u to the right, v down, pixel (i, j) spanning
  [i, i+1) x [j, j+1), so the centre of the top-left pixel is (0.5, 0.5).
- ``world_to_cam`` maps world points to the OpenCV camera frame (x right, y down, z forward).
- ``face_id[n, v, u]`` is the index into ``faces`` of the triangle seen at that pixel, -1 for background.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import limits
from .errors import ValidationError
from .validation import (
    check_array,
    check_index_range,
    check_max,
    check_part_names,
    check_warnings,
    optional_scalar_int,
)

#: The least share of pixels, averaged over the views, that must show the object.
MIN_FOREGROUND_SHARE = 1e-3
#: The arrays of :meth:`Capture.to_arrays`: always these, and these when set.
REQUIRED_ARRAYS = ("vertices", "faces", "rgb", "face_id", "K", "world_to_cam")
OPTIONAL_ARRAYS = ("face_to_polygon", "polygon_count", "surfels", "orthographic")
ARRAY_KEYS = REQUIRED_ARRAYS + OPTIONAL_ARRAYS


@dataclass
class Mesh:
    """A triangle mesh.

    vertices: (V, 3) float32. faces: (F, 3) int32 indices into vertices.
    face_to_polygon: (F,) int32, the source polygon of each triangle (identity when the source was
    already triangles); results are reported per triangle and per polygon.
    polygon_count: the number of source polygons (a modifier may have deleted some, so it can exceed
    ``face_to_polygon.max() + 1``); None = ``face_to_polygon.max() + 1``.
    surfels: True when the mesh stands for a point cloud (``point_cloud.surfel_mesh``: polygon ``i``
    is point ``i``; the faces share no edges, so neighbourhoods come from the points instead).
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_to_polygon: np.ndarray | None = None
    polygon_count: int | None = None
    surfels: bool = False

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def n_polygons(self) -> int:
        if self.polygon_count is not None:
            return int(self.polygon_count)
        if self.face_to_polygon is None or self.face_to_polygon.size == 0:
            return self.n_faces
        return int(self.face_to_polygon.max()) + 1

    def validate(self) -> Mesh:
        v = check_array("vertices", self.vertices, np.float32, (None, 3), finite=True)
        f = check_array("faces", self.faces, np.int32, (None, 3))
        check_max("vertices", v.shape[0], limits.MAX_VERTICES)
        check_max("faces", f.shape[0], limits.MAX_FACES)
        if v.shape[0] == 0:
            raise ValidationError("vertices", "the mesh has no vertices")
        if f.shape[0] == 0:
            raise ValidationError("faces", "the mesh has no faces")
        check_index_range("faces", f, 0, v.shape[0])
        if self.polygon_count is not None:
            c = self.polygon_count
            if not isinstance(c, int | np.integer) or isinstance(c, bool) or not 1 <= int(c) <= limits.MAX_FACES:
                raise ValidationError("polygon_count", f"must be an integer in [1, {limits.MAX_FACES}], got {c!r}")
            if self.face_to_polygon is None:
                raise ValidationError("polygon_count", "given without face_to_polygon")
            self.polygon_count = int(c)
        if self.face_to_polygon is not None:
            p = check_array("face_to_polygon", self.face_to_polygon, np.int32, (f.shape[0],))
            check_index_range("face_to_polygon", p, 0, self.polygon_count or limits.MAX_FACES)
        return self

    def face_areas(self) -> np.ndarray:
        """(F,) float64 triangle areas."""
        v, f = self.vertices.astype(np.float64), self.faces
        p0 = v[f[:, 0]]  # one corner at a time: a third faster than gathering (F, 3, 3)
        return 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - p0, v[f[:, 2]] - p0), axis=1)


@dataclass
class PointCloud:
    """points: (N, 3) float32 world space. colors: (N, 3) uint8 or None. normals: (N, 3) float32 unit
    vectors or None (estimated when a surfel mesh is made)."""

    points: np.ndarray
    colors: np.ndarray | None = None
    normals: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.points.shape[0])

    def validate(self) -> PointCloud:
        p = check_array("points", self.points, np.float32, (None, 3), finite=True)
        if p.shape[0] < 4:
            raise ValidationError("points", f"a point cloud needs at least 4 points, got {p.shape[0]}")
        check_max("points", p.shape[0], limits.MAX_FACES // 2)
        if self.colors is not None:
            check_array("colors", self.colors, np.uint8, (p.shape[0], 3))
        if self.normals is not None:
            check_array("normals", self.normals, np.float32, (p.shape[0], 3), finite=True)
        return self


@dataclass
class Capture:
    """A mesh with N views.

    rgb: (N, H, W, 3) uint8. face_id: (N, H, W) int32 (-1 background). K: (N, 3, 3) float64.
    world_to_cam: (N, 4, 4) float64. orthographic: (N,) bool, optional — views whose camera is
    orthographic (affine projection ``[u, v, 1] = K [x_cam, y_cam, 1]``, no division by depth); absent
    means all perspective. part_names / gt_face_labels (F,) int32 are optional (ground truth, used
    by tests and benchmarks; -1 = unlabelled). cloud: the point cloud when the capture is of one
    (``mesh`` is then its surfel mesh and ``face_to_polygon[face_id]`` is the point id).
    warnings: what the capture noticed that may make a result wrong (faces an importer dropped,
    specks left out of the views); they travel with the capture and join the result's warnings.
    """

    mesh: Mesh
    rgb: np.ndarray
    face_id: np.ndarray
    K: np.ndarray
    world_to_cam: np.ndarray
    orthographic: np.ndarray | None = None
    part_names: tuple[str, ...] = ()
    gt_face_labels: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    cloud: PointCloud | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def n_views(self) -> int:
        return int(self.rgb.shape[0])

    def is_orthographic(self, view: int) -> bool:
        return self.orthographic is not None and bool(self.orthographic[view])

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W)."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[2])

    def validate(self) -> Capture:
        self.mesh.validate()
        if self.cloud is not None:
            self.cloud.validate()
            if not self.mesh.surfels or self.mesh.n_polygons != self.cloud.n:
                raise ValidationError("cloud", "a point-cloud capture needs the surfel mesh of its points")
        rgb = check_array("rgb", self.rgb, np.uint8, (None, None, None, 3))
        n, h, w, _ = rgb.shape
        if n == 0:
            raise ValidationError("rgb", "a capture needs at least one view")
        check_max("rgb (views)", n, limits.MAX_VIEWS)
        check_max("rgb (height)", h, limits.MAX_IMAGE_SIDE)
        check_max("rgb (width)", w, limits.MAX_IMAGE_SIDE)
        if h == 0 or w == 0:
            raise ValidationError("rgb", f"empty images of size {h}x{w}")
        fid = check_array("face_id", self.face_id, np.int32, (n, h, w))
        check_index_range("face_id", fid, -1, self.mesh.n_faces)
        check_array("K", self.K, np.float64, (n, 3, 3), finite=True)
        check_array("world_to_cam", self.world_to_cam, np.float64, (n, 4, 4), finite=True)
        if self.orthographic is not None:
            check_array("orthographic", self.orthographic, np.bool_, (n,))
        if self.part_names:
            self.part_names = check_part_names(
                "part_names", self.part_names, limits.MAX_PARTS, limits.MAX_PART_NAME_CHARS
            )
        if self.gt_face_labels is not None:
            gt = check_array("gt_face_labels", self.gt_face_labels, np.int32, (self.mesh.n_faces,))
            if not self.part_names:
                raise ValidationError("gt_face_labels", "given without part_names")
            check_index_range("gt_face_labels", gt, -1, len(self.part_names))
        self.warnings = check_warnings("warnings", self.warnings)
        return self

    # ---- arrays form, for the bundle file and the wire alike ------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """The capture's numeric arrays by name (``ARRAY_KEYS``; the optional ones when set). Part
        names, ground truth and warnings travel apart: the bundle stores them as arrays of strings,
        the wire in its header."""
        m = self.mesh
        out = {
            "vertices": m.vertices,
            "faces": m.faces,
            "rgb": self.rgb,
            "face_id": self.face_id,
            "K": self.K,
            "world_to_cam": self.world_to_cam,
        }
        if m.face_to_polygon is not None:
            out["face_to_polygon"] = m.face_to_polygon
        if m.polygon_count is not None:
            out["polygon_count"] = np.array(m.polygon_count, dtype=np.int64)
        if m.surfels:
            out["surfels"] = np.array(True)
        if self.orthographic is not None:
            out["orthographic"] = self.orthographic
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], **fields: object) -> Capture:
        """The capture whose :meth:`to_arrays` gave ``arrays`` (validated); ``fields`` set the rest
        (``part_names``, ``gt_face_labels``, ``warnings``)."""
        for key in REQUIRED_ARRAYS:
            if key not in arrays:
                raise ValidationError(key, "required in a capture")
        a = arrays
        polygon_count = optional_scalar_int("polygon_count", a.get("polygon_count"), np.int64)
        mesh = Mesh(
            a["vertices"],
            a["faces"],
            a.get("face_to_polygon"),
            polygon_count,
            surfels=_flag("surfels", a.get("surfels")),
        )
        return cls(
            mesh, a["rgb"], a["face_id"], a["K"], a["world_to_cam"], orthographic=a.get("orthographic"), **fields
        ).validate()

    def check_views_show_object(self, hint: str = "") -> Capture:
        """Refuse a capture whose views show (almost) nothing of the object (on average under
        ``MIN_FOREGROUND_SHARE`` of their pixels): nothing could be learnt from it. ``hint`` says
        what the capturing side suspects. Views that show nothing while others do get a warning."""
        shown = (self.face_id >= 0).reshape(self.n_views, -1).mean(1)
        if shown.mean() < MIN_FOREGROUND_SHARE:
            h, w = self.image_size
            raise ValidationError(
                "capture",
                f"the views show almost nothing of the object ({int((self.face_id >= 0).sum())} object pixels in "
                f"{self.n_views} views of {w}x{h}): {hint or 'the cameras do not see it'}",
            )
        empty = [i for i, s in enumerate(shown) if s == 0]
        if empty and not any("show nothing of the object" in w for w in self.warnings):
            self.warnings.append(f"views {', '.join(map(str, empty))} show nothing of the object")
        return self


def _flag(name: str, value: np.ndarray | None) -> bool:
    """An optional 0-d bool array: absent = False."""
    if value is None:
        return False
    if not isinstance(value, np.ndarray) or value.shape != () or value.dtype != np.bool_:
        raise ValidationError(name, "must be a single bool")
    return bool(value)
