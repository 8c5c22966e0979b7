"""Capture a mesh object: rendered views, exact per-pixel triangle ids and OpenCV cameras.

How the user's scene stays untouched: everything happens in a private scene. The object is copied
(object and mesh) into it, the copy gets a face attribute with its source polygon index, the chosen
cameras are linked into it and the private scene is rendered and then deleted with everything made
for it. Other objects of the user's scene are simply not in the private scene, so they neither occlude
nor appear in the RGB images, and nothing of the user's render settings, cameras, selection,
visibility, frame or mesh data is ever written (the one exception is an object in Edit Mode, whose
edits are flushed to its mesh first, as saving the file would).

Face ids are exact: they are the triangle of ``Capture.mesh`` that the ray through each pixel
centre hits first, so ``face_id`` indexes ``mesh.faces`` directly. The default engine, the numpy
rasteriser (``shared.raster``), finds them with a z-buffer and paints the picture from them; with
Workbench or Cycles rays are cast against a BVH of the same triangles (the two agree on all but exact
ties on shared edges, checked in the tests). Both use the stored ``K`` / ``world_to_cam``, so ids,
cameras and images agree by construction.

Projection of a view: perspective, ``[u, v, 1]^T ~ K @ X_cam`` (divide by ``z``), or, where
``Capture.orthographic[n]`` is set, affine, ``[u, v, 1]^T = K @ [x_cam, y_cam, 1]^T`` (no division;
``fx``/``fy`` are pixels per scene unit). ``shared.camera.project_points`` implements both.

``X_cam = world_to_cam @ [X_world, 1]`` in the OpenCV camera frame (x right, y down, z forward);
pixel ``(i, j)`` spans ``[i, i+1) x [j, j+1)``.

Modules: ``session`` (the private scene and the per-view loop), ``settings`` (what a capture is
asked for, and the choice of cameras), ``cameras`` (the ring, OpenCV matrices), ``face_ids``
(triangulation and ray casting), ``render`` (engines and render settings), ``colors`` (what the
rasteriser paints), ``private_copy`` (the copy that is captured).
Importing mesh files (headless batch use) lives in ``blender_addon.headless.mesh_import``.
"""

from .cameras import RING_ELEVATIONS_DEG, camera_matrices, ring_cameras
from .render import workbench_available
from .session import CaptureSession, capture_object
from .settings import CaptureSettings

__all__ = [
    "RING_ELEVATIONS_DEG",
    "CaptureSession",
    "CaptureSettings",
    "camera_matrices",
    "capture_object",
    "ring_cameras",
    "workbench_available",
]
