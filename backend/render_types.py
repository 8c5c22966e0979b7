"""The paper's four render types (its supplementary C.3): what the teacher looks at, made from a mesh capture.

- ``color-mesh``: the views as captured (the mesh in its own colours);
- ``gray-mesh``: the same views repainted in one grey from their face ids (exact: no new render);
- ``dense-points`` (PartSLIP's input): 50,000 points sampled on the surface, coloured with the
  captured pixel under each one, drawn as surfels from the same cameras;
- ``sparse-points`` (PointCLIP's): 2,048 grey points, drawn the same way.

The point types run the whole engine on the point capture and bring the labels back to the mesh:
a face takes the confidence-weighted vote of the points sampled on it, faces without a point the
label of the nearest labelled face along the surface. Same cameras, same image size: detections
made for the mesh capture's views are valid for the point views too."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from partdistill.shared.camera import project_points
from partdistill.shared.capture import Capture, PointCloud
from partdistill.shared.errors import ValidationError
from partdistill.shared.point_capture import PointCapture
from partdistill.shared.point_cloud import per_face, per_point
from partdistill.shared.raster import shade
from partdistill.shared.result import SegmentationResult

from .pipeline.label import faces_to_polygons
from .pipeline.mesh_graph import face_graph, nearest_labelled
from .pipeline.sample import sample_surface

DENSE_POINTS = 50_000
SPARSE_POINTS = 2_048


@dataclass
class Rendered:
    """A capture as a render type shows it. ``point_face (N,) int32``: for point types, the mesh
    triangle each point was sampled on (None for mesh types)."""

    capture: Capture
    point_face: np.ndarray | None = None


def render_as(capture: Capture, render_type: str, seed: int = 0) -> Rendered:
    """``capture`` (a mesh capture) as ``render_type`` shows it; ground truth is carried along."""
    if capture.cloud is not None:
        raise ValidationError("options.render_type", "render types apply to mesh captures; this one is a point cloud")
    if render_type == "color-mesh":
        return Rendered(capture)
    if render_type == "gray-mesh":
        m = capture.mesh
        rgb = np.stack(
            [
                shade(
                    capture.face_id[v],
                    m.vertices,
                    m.faces,
                    capture.K[v],
                    capture.world_to_cam[v],
                    orthographic=capture.is_orthographic(v),
                )
                for v in range(capture.n_views)
            ]
        )
        return Rendered(replace(capture, rgb=rgb, meta={**capture.meta, "render_type": render_type}))
    if render_type not in ("dense-points", "sparse-points"):
        raise ValidationError("options.render_type", f"unknown render type {render_type!r}")
    dense = render_type == "dense-points"
    pts = sample_surface(capture.mesh, DENSE_POINTS if dense else SPARSE_POINTS, seed=seed)
    colors = _pixel_colors(capture, pts.xyz, pts.face) if dense else None
    clips = [tuple(c) for c in capture.meta["clip"]] if "clip" in capture.meta else None
    pc = PointCapture(
        PointCloud(pts.xyz, colors, pts.normals),
        n_views=capture.n_views,
        resolution=capture.image_size[1],
        cameras=(capture.K, capture.world_to_cam, clips),
        height=capture.image_size[0],
    )
    for v in range(pc.n_views):
        pc.capture_view(v)
    points = pc.result({"render_type": render_type})
    points.orthographic = capture.orthographic
    if capture.gt_face_labels is not None:
        points.part_names, points.gt_face_labels = capture.part_names, per_face(capture.gt_face_labels[pts.face])
    return Rendered(points, pts.face.astype(np.int32))


def _pixel_colors(capture: Capture, xyz: np.ndarray, face: np.ndarray) -> np.ndarray:
    """``(N, 3) uint8``: each point's colour in the first view whose pixel under it shows its face
    (textures and materials included, shading too); light grey where no view shows it."""
    out = np.full((len(xyz), 3), 204, np.uint8)
    todo = np.ones(len(xyz), bool)
    h, w = capture.image_size
    for v in range(capture.n_views):
        uv, z = project_points(xyz, capture.K[v], capture.world_to_cam[v], capture.is_orthographic(v))
        col, row = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
        inside = todo & (z > 0) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
        idx = np.flatnonzero(inside)
        seen = idx[capture.face_id[v, row[idx], col[idx]] == face[idx]]
        out[seen] = capture.rgb[v, row[seen], col[seen]]
        todo[seen] = False
    return out


def to_mesh(result: SegmentationResult, capture: Capture, point_face: np.ndarray) -> SegmentationResult:
    """A point-capture result as labels of ``capture``'s faces (see the module docstring).
    ``point_face (N,) int32``: the mesh triangle each point was sampled on."""
    mesh = capture.mesh
    n_parts = len(result.part_names)
    point_labels = result.polygon_labels
    point_conf = per_point(result.face_confidence)
    scores = np.zeros((mesh.n_faces, n_parts))
    ok = point_labels >= 0
    np.add.at(scores, (point_face[ok], point_labels[ok]), np.maximum(point_conf[ok], 1e-3))
    counts = np.bincount(point_face[ok], minlength=mesh.n_faces)
    has = counts > 0
    labels = np.where(has, scores.argmax(1), -1)
    conf = np.where(has, scores.max(1) / np.maximum(counts, 1), 0.0)
    if has.any() and not has.all():
        src = nearest_labelled(face_graph(mesh), has)
        labels, conf = labels[src], conf[src]
    scores = scores / np.maximum(scores.sum(1, keepdims=True), 1e-12)
    polygons = faces_to_polygons(mesh, scores, labels.astype(np.int32))
    stats = {
        **{k: v for k, v in result.stats.items() if k != "coverage"},
        "n_faces": mesh.n_faces,
        "n_render_points": int(len(point_face)),
    }
    return SegmentationResult(
        result.part_names, labels.astype(np.int32), conf.astype(np.float32), polygons, stats, dict(result.timings)
    )


def to_points(labelled_faces: np.ndarray | None, point_face: np.ndarray) -> np.ndarray | None:
    """Faces a user labelled ``(F,) int32`` (-1 = not labelled) as labels of the point capture's
    units (two surfel triangles per point): a point takes its face's label."""
    return None if labelled_faces is None else per_face(labelled_faces[point_face]).astype(np.int32)
