"""Headless capture with Blender as a Python module: face ids vs renders, cameras, modifiers, messy
meshes and occluders, the render engines, the ring of cameras."""

from __future__ import annotations

import math

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from bpy_scenes import COLOURS, add_camera, colour_cube  # noqa: E402
from mathutils import Vector  # noqa: E402
from partdistill.blender_addon import capture as cap_mod  # noqa: E402
from partdistill.blender_addon.capture import face_ids as cap_face_ids  # noqa: E402
from partdistill.shared.camera import project_points  # noqa: E402

pytestmark = pytest.mark.bpy

# --------------------------------------------------------------------------- helpers


def erode(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary erosion by a (2r+1)^2 square; the image border counts as outside."""
    out = mask.copy()
    h, w = mask.shape
    padded = np.pad(mask, r, constant_values=False)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out &= padded[r + dy : r + dy + h, r + dx : r + dx + w]
    return out


def colour_agreement(capture, view: int, r: int = 2) -> tuple[float, int]:
    """Fraction of eroded per-polygon interior pixels whose colour is that polygon's material colour
    (and of eroded background pixels that are white), and how many pixels were checked."""
    fid = capture.face_id[view]
    rgb = capture.rgb[view].astype(np.int32)
    poly = np.where(fid >= 0, capture.mesh.face_to_polygon[np.maximum(fid, 0)], -1)
    ok = total = 0
    for p in np.unique(poly):
        region = erode(poly == p, r)
        want = np.array([255, 255, 255]) if p < 0 else np.rint(COLOURS[p % 6] * 255)
        got = rgb[region]
        ok += int(np.all(np.abs(got - want) <= 3, axis=1).sum())
        total += len(got)
    return ok / max(total, 1), total


CAMERA_SETUPS = {
    "perspective": dict(location=(4.0, -5.0, 3.5)),
    "shifted": dict(location=(4.0, -5.0, 3.5), shift_x=0.1),
    "orthographic": dict(location=(4.0, -5.0, 3.5), kind="ORTHO", ortho_scale=4.5),
}


# --------------------------------------------------------------------------- face ids vs colours


@pytest.mark.parametrize("engine", ["workbench", "raster"])
@pytest.mark.parametrize("setup", list(CAMERA_SETUPS))
def test_face_ids_agree_with_rendered_colours(bpy_empty, setup, engine):
    cube = colour_cube()
    cam = add_camera(**CAMERA_SETUPS[setup])
    c = cap_mod.capture_object(cube, cameras=[cam], resolution=(96, 80), lighting="FLAT", engine=engine)
    assert c.meta["engine"] == engine
    if engine == "raster":  # painted from the face ids: every pixel, edges included, has its face's colour
        assert colour_agreement(c, 0, r=0)[0] == 1.0
    assert c.orthographic.tolist() == [setup == "orthographic"]
    assert c.rgb.shape == (1, 80, 96, 3) and c.face_id.shape == (1, 80, 96)
    visible = set(c.mesh.face_to_polygon[np.unique(c.face_id[0][c.face_id[0] >= 0])].tolist())
    assert len(visible) == 3  # a corner view sees three sides
    frac, n = colour_agreement(c, 0)
    assert n > 3000
    assert frac >= 0.999, f"{setup}: only {frac:.4%} of {n} interior pixels agree"
    # Rays are cast only where the render has coverage; casting every pixel finds nothing more.
    from mathutils.bvhtree import BVHTree

    bvh = BVHTree.FromPolygons(c.mesh.vertices.tolist(), c.mesh.faces.tolist(), all_triangles=True)
    aabb = np.stack([c.mesh.vertices.min(0), c.mesh.vertices.max(0)]).astype(np.float64)
    args = (c.K[0], c.world_to_cam[0], tuple(c.meta["clip"][0]), c.is_orthographic(0), (96, 80))
    assert np.array_equal(cap_face_ids.cast_face_ids(bvh, aabb, *args), c.face_id[0])


@pytest.mark.parametrize("setup", list(CAMERA_SETUPS))
def test_vertices_project_where_blender_puts_them(bpy_empty, setup):
    from bpy_extras.object_utils import world_to_camera_view

    cube = colour_cube()
    cam = add_camera(**CAMERA_SETUPS[setup])
    scene = bpy.context.scene
    width, height = 96, 80
    scene.render.resolution_x, scene.render.resolution_y = width, height
    c = cap_mod.capture_object(cube, cameras=[cam], resolution=(width, height), lighting="FLAT")
    uv, z = project_points(c.mesh.vertices, c.K[0], c.world_to_cam[0], c.is_orthographic(0))
    ref = np.array([world_to_camera_view(scene, cam, Vector(v.tolist())) for v in c.mesh.vertices])
    ref_uv = np.stack([ref[:, 0] * width, (1.0 - ref[:, 1]) * height], axis=1)
    assert np.abs(uv - ref_uv).max() < 0.5
    assert np.all(z > 0)

    # Every pixel centre showing triangle f lies inside f's projection (the face-id map and the
    # cameras agree), checked with barycentric coordinates and a 1e-3 px tolerance.
    fid = c.face_id[0]
    vs, us = np.nonzero(fid >= 0)
    tri = uv[c.mesh.faces[fid[vs, us]]]  # (N, 3, 2)
    p = np.stack([us + 0.5, vs + 0.5], axis=1)
    a, b, cc = tri[:, 0], tri[:, 1], tri[:, 2]
    den = (b[:, 1] - cc[:, 1]) * (a[:, 0] - cc[:, 0]) + (cc[:, 0] - b[:, 0]) * (a[:, 1] - cc[:, 1])
    l1 = ((b[:, 1] - cc[:, 1]) * (p[:, 0] - cc[:, 0]) + (cc[:, 0] - b[:, 0]) * (p[:, 1] - cc[:, 1])) / den
    l2 = ((cc[:, 1] - a[:, 1]) * (p[:, 0] - cc[:, 0]) + (a[:, 0] - cc[:, 0]) * (p[:, 1] - cc[:, 1])) / den
    lam = np.stack([l1, l2, 1 - l1 - l2], axis=1)
    edge_px = np.abs(den)[:, None] / np.linalg.norm(tri - np.roll(tri, -1, axis=1), axis=2).max(1)[:, None]
    assert np.all(lam * edge_px > -1e-3)


# --------------------------------------------------------------------------- modifiers


def test_subdivision_maps_back_to_original_polygons(bpy_empty):
    cube = colour_cube()
    mod = cube.modifiers.new("subsurf", "SUBSURF")
    mod.levels, mod.render_levels = 2, 3  # the capture renders what the viewport shows
    cam = add_camera((4.0, -5.0, 3.5))
    c = cap_mod.capture_object(cube, cameras=[cam], resolution=96, lighting="FLAT")
    m = c.mesh
    assert m.n_faces == 6 * 16 * 2
    assert c.meta["n_polygons"] == 6
    assert m.face_to_polygon.min() == 0 and m.face_to_polygon.max() == 5
    assert np.all(np.bincount(m.face_to_polygon, minlength=6) == 32)
    # Geometric consistency: each triangle lies on the side of the rounded cube its polygon came from.
    normals = np.array([[p.normal[:] for p in cube.data.polygons]])[0]
    centroids = m.vertices[m.faces].mean(axis=1)
    assert np.array_equal(np.argmax(centroids @ normals.T, axis=1), m.face_to_polygon)
    frac, n = colour_agreement(c, 0)
    assert frac >= 0.999 and n > 2000
    assert mod.render_levels == 3  # the user's modifier is untouched


def test_mirror_and_array_propagate_sources(bpy_empty):
    bpy.ops.mesh.primitive_plane_add(size=1.0, location=(1.0, 0.0, 0.0))
    obj = bpy.context.object
    obj.modifiers.new("mirror", "MIRROR")
    arr = obj.modifiers.new("array", "ARRAY")
    arr.count = 3
    cam = add_camera((0.0, 0.0, 8.0), target=(0.0, 0.0, 0.0))
    c = cap_mod.capture_object(obj, cameras=[cam], resolution=64)
    assert c.mesh.n_faces == 2 * 2 * 3
    assert np.all(c.mesh.face_to_polygon == 0)
    assert c.meta["n_polygons"] == 1


def test_modifier_dependencies_evaluate_in_the_private_scene(bpy_empty):
    """A parent and a Boolean cutter live only in the user's scene: the copy still sees them."""
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.object
    bpy.ops.object.empty_add(location=(3.0, 0.0, 0.0), rotation=(0.0, 0.0, 0.5))
    cube.parent = bpy.context.object
    bpy.context.view_layer.update()
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.7, location=cube.matrix_world @ Vector((1, 1, 1)))
    cutter = bpy.context.object
    cutter.hide_render = True
    boolean = cube.modifiers.new("cut", "BOOLEAN")
    boolean.object = cutter
    depsgraph = bpy.context.evaluated_depsgraph_get()
    ev = cube.evaluated_get(depsgraph)
    ev.data.calc_loop_triangles()
    expected = np.array([ev.matrix_world @ v.co for v in ev.data.vertices])
    c = cap_mod.capture_object(cube, ring=True, n_views=1, resolution=32)
    assert c.mesh.n_faces == len(ev.data.loop_triangles) > 12
    assert np.allclose(np.sort(c.mesh.vertices, axis=0), np.sort(expected, axis=0), atol=1e-5)
    assert 0 <= c.mesh.face_to_polygon.min() and c.mesh.face_to_polygon.max() < 6


def test_sources_lost_by_a_modifier_fall_back_to_the_nearest_polygon(bpy_empty):
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.object
    remesh = cube.modifiers.new("remesh", "REMESH")
    remesh.mode, remesh.voxel_size = "VOXEL", 0.25
    c = cap_mod.capture_object(cube, ring=True, n_views=1, resolution=32)
    m = c.mesh
    normals = np.array([p.normal[:] for p in cube.data.polygons])
    nearest = np.argmax(m.vertices[m.faces].mean(axis=1) @ normals.T, axis=1)
    assert (nearest == m.face_to_polygon).mean() > 0.99


# --------------------------------------------------------------------------- messy meshes, occluders


def messy_mesh() -> bpy.types.Object:
    """An n-gon (hexagon), a quad, two triangles with duplicated vertices, a loose far-away quad,
    three faces on one edge (non-manifold), a loose vertex and a loose edge."""
    hexagon = [(math.cos(a) * 0.8, math.sin(a) * 0.8, 0.0) for a in np.linspace(0, 2 * math.pi, 7)[:-1]]
    verts = list(hexagon)
    faces = [list(range(6))]
    base = len(verts)
    verts += [(1.0, -0.5, 0.0), (2.0, -0.5, 0.0), (2.0, 0.5, 0.0), (1.0, 0.5, 0.0)]
    faces.append([base, base + 1, base + 2, base + 3])
    base = len(verts)  # duplicate vertices: two triangles that do not share vertex indices
    verts += [(-2.0, -0.5, 0.0), (-1.0, -0.5, 0.0), (-1.0, 0.5, 0.0)]
    verts += [(-2.0, -0.5, 0.0), (-1.0, 0.5, 0.0), (-2.0, 0.5, 0.0)]
    faces += [[base, base + 1, base + 2], [base + 3, base + 4, base + 5]]
    base = len(verts)  # non-manifold fan: three faces on the edge (0,-1.5)-(0,-1)
    verts += [(0.0, -1.5, 0.0), (0.0, -1.0, 0.0), (-0.6, -1.2, 0.0), (0.6, -1.2, 0.0), (0.0, -1.2, 0.4)]
    faces += [[base, base + 1, base + 2], [base, base + 1, base + 3], [base, base + 1, base + 4]]
    base = len(verts)
    verts += [(0.0, 1.4, 0.0), (0.5, 1.4, 0.0), (0.5, 1.9, 0.0), (0.0, 1.9, 0.0)]  # loose part
    faces.append([base, base + 1, base + 2, base + 3])
    verts += [(3.0, 3.0, 0.0), (3.0, 2.5, 0.0), (2.5, 3.0, 0.0)]  # loose vertex + loose edge
    edges = [(len(verts) - 2, len(verts) - 1)]
    mesh = bpy.data.meshes.new("messy")
    mesh.from_pydata(verts, edges, faces)
    mesh.validate()
    obj = bpy.data.objects.new("messy", mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def test_messy_mesh_and_an_occluder_in_front(bpy_empty):
    obj = messy_mesh()
    n_poly = len(obj.data.polygons)
    cam = add_camera((0.3, -2.0, 6.0), target=(0.0, 0.0, 0.0))
    kw = dict(cameras=[cam], resolution=96, lighting="FLAT", color_type="SINGLE")
    alone = cap_mod.capture_object(obj, **kw)
    m = alone.mesh
    assert m.n_polygons == n_poly
    expected_tris = [len(p.vertices) - 2 for p in obj.data.polygons]
    assert np.array_equal(np.bincount(m.face_to_polygon, minlength=n_poly), expected_tris)
    seen = set(m.face_to_polygon[np.unique(alone.face_id[0][alone.face_id[0] >= 0])].tolist())
    assert seen >= {0, 1, 2, 3, 4, 5, 7}  # every flat polygon (6 is the upright fan face)
    # A red plane between the camera and the mesh, and another object beside it.
    bpy.ops.mesh.primitive_plane_add(size=3.0, location=(0.0, -1.0, 3.0))
    red = bpy.data.materials.new("red")
    red.diffuse_color = (1.0, 0.0, 0.0, 1.0)
    bpy.context.object.data.materials.append(red)
    bpy.ops.mesh.primitive_monkey_add(location=(2.0, 2.0, 0.5))
    occluded = cap_mod.capture_object(obj, **kw)
    assert np.array_equal(occluded.face_id, alone.face_id)
    assert np.array_equal(occluded.rgb, alone.rgb)
    assert not np.any((occluded.rgb[..., 0] > 200) & (occluded.rgb[..., 1] < 60))


# --------------------------------------------------------------------------- engines, ring, the rasteriser


def test_cycles_fallback_renders_the_same_layout(bpy_empty):
    cube = colour_cube()
    cam = add_camera((4.0, -5.0, 3.5))
    c = cap_mod.capture_object(cube, cameras=[cam], resolution=32, engine="cycles", cycles_samples=4)
    assert c.meta["engine"] == "cycles"
    fid, rgb = c.face_id[0], c.rgb[0].astype(int)
    bg = erode(fid < 0, 1)
    assert np.all(rgb[bg] >= 250)  # composited over white
    poly = c.mesh.face_to_polygon[np.maximum(fid, 0)]
    for p in np.unique(poly[fid >= 0]):
        region = erode((fid >= 0) & (poly == p), 1)
        mean = rgb[region].mean(0)
        # lit, not flat: the channels the material has are the brightest ones
        assert np.all(mean[COLOURS[p] > 0] > mean[COLOURS[p] == 0].max(initial=0) + 20)


def test_ring_cameras_surround_the_object(bpy_empty):
    cube = colour_cube()
    cams = cap_mod.ring_cameras(cube, 10)
    try:
        assert len(cams) == 10
        locs = np.array([c.location[:] for c in cams])
        dist = np.linalg.norm(locs, axis=1)
        assert np.allclose(dist, dist[0])
        elev = np.degrees(np.arcsin(locs[:, 2] / dist))
        assert np.allclose(elev[:3], cap_mod.RING_ELEVATIONS_DEG)
    finally:
        for c in cams:
            data = c.data
            bpy.data.objects.remove(c)
            bpy.data.cameras.remove(data)
    c = cap_mod.capture_object(cube, ring=True, n_views=10, resolution=32, aa_samples=1)
    assert c.n_views == 10
    coverage = (c.face_id >= 0).mean(axis=(1, 2))
    assert np.all(coverage > 0.15) and np.all(coverage < 0.8)  # framed: visible, not cut off
    assert np.all(c.face_id[:, 0, :] == -1) and np.all(c.face_id[:, :, -1] == -1)
    assert set(np.unique(c.mesh.face_to_polygon[c.face_id[c.face_id >= 0]])) == set(range(6))


def test_rasterised_face_ids_match_ray_casting_on_a_real_mesh(bpy_empty):
    """The default engine's face ids against ray casting every pixel centre, on a real 20k-face mesh
    seen by a ring of 6 cameras: identical but for exact ties on shared edges."""
    from mathutils.bvhtree import BVHTree
    from partdistill.bench import psb

    if not psb.available(psb.default_data_dir()):
        pytest.skip("the real-mesh development set is not here")
    with np.load(psb.default_data_dir() / "psb-dev.npz") as z:
        verts, faces = z["Teddy_162_vertices"], z["Teddy_162_faces"]
    mesh = bpy.data.meshes.new("teddy")
    mesh.from_pydata(verts.tolist(), [], faces.tolist())
    obj = bpy.data.objects.new("teddy", mesh)
    bpy.context.scene.collection.objects.link(obj)
    c = cap_mod.capture_object(obj, ring=True, n_views=6, resolution=256)
    assert c.meta["engine"] == "raster" and len(c.mesh.faces) > 20_000
    bvh = BVHTree.FromPolygons(c.mesh.vertices.tolist(), c.mesh.faces.tolist(), all_triangles=True, epsilon=0.0)
    aabb = np.stack([c.mesh.vertices.min(0), c.mesh.vertices.max(0)]).astype(np.float64)
    same = seen = 0
    for i in range(6):
        args = (c.K[i], c.world_to_cam[i], tuple(c.meta["clip"][i]), c.is_orthographic(i), (256, 256))
        cast = cap_face_ids.cast_face_ids(bvh, aabb, *args)
        fg = (cast >= 0) | (c.face_id[i] >= 0)
        same += int((cast[fg] == c.face_id[i][fg]).sum())
        seen += int(fg.sum())
    assert seen > 50_000 and same / seen >= 0.9995, f"{seen - same} of {seen} pixels differ"


def test_a_view_captured_in_steps_has_the_face_ids_of_one_go(bpy_empty):
    from partdistill.bench.shapes import chair
    from partdistill.blender_addon.capture import CaptureSession

    shape = chair(arms=False)
    mesh = bpy.data.meshes.new("chair")
    mesh.from_pydata(shape.vertices.tolist(), [], shape.polygons)
    obj = bpy.data.objects.new("chair", mesh)
    bpy.context.scene.collection.objects.link(obj)
    with CaptureSession(obj, ring=True, n_views=2, resolution=96) as s:  # the rasteriser: one short step a view
        assert len(list(s.view_steps(0, bands=4))) == 0 and (s._face_id[0] >= 0).any()
    with CaptureSession(obj, ring=True, n_views=2, resolution=96, engine="workbench") as s:
        s.capture_view(0)
        assert len(list(s.view_steps(1, bands=1))) == 1  # the render; the face ids in one band end the view
        one_go = s._face_id[1].copy()
        steps = list(s.view_steps(1, bands=4))
        assert len(steps) == 4  # the render, then bands 1-3 (the last band ends the view)
        np.testing.assert_array_equal(s._face_id[1], one_go)
        assert (one_go >= 0).any()
