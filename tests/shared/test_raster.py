"""The numpy rasteriser on hand-computed cases: coverage of pixel centres, nearest-first, clipping,
orthographic views, chunking and the camera-plane fallback."""

from __future__ import annotations

import numpy as np
import pytest
from partdistill.shared import raster
from partdistill.shared.raster import rasterize, shade

# A camera at the origin looking down +z, f = 10 px, principal point (4, 4): an 8x8 image where the
# plane z = 1 maps x -> 10 x + 4.
K = np.array([[10.0, 0.0, 4.0], [0.0, 10.0, 4.0], [0.0, 0.0, 1.0]])
EYE = np.eye(4)


def tri_at(z: float, pixels: list[tuple[float, float]]) -> np.ndarray:
    """World vertices at depth ``z`` that project onto the given pixel positions."""
    return np.array([[(u - 4.0) * z / 10.0, (v - 4.0) * z / 10.0, z] for u, v in pixels])


def test_a_pixel_is_covered_exactly_when_its_centre_lies_in_the_triangle():
    # Right triangle with legs along x = 1 and y = 1 and hypotenuse x + y = 8: centres (i+.5, j+.5)
    # with i, j >= 1 and i + j + 1 <= 8 (a centre on an edge counts as inside).
    verts = tri_at(2.0, [(1, 1), (7, 1), (1, 7)])
    r = rasterize(verts, [[0, 1, 2]], K, EYE, (8, 8))
    expected = np.array([[i >= 1 and j >= 1 and i + j + 1 <= 8 for i in range(8)] for j in range(8)])
    assert np.array_equal(r.face_id == 0, expected)
    assert np.allclose(r.depth[expected], 2.0)
    assert np.all(np.isinf(r.depth[~expected]))


def test_the_nearer_triangle_wins_whatever_the_order():
    square = [(0, 0), (8, 0), (0, 8)]
    far, near = tri_at(3.0, square), tri_at(2.0, square)
    for verts, near_id in ((np.vstack([far, near]), 1), (np.vstack([near, far]), 0)):
        r = rasterize(verts, [[0, 1, 2], [3, 4, 5]], K, EYE, (8, 8))
        covered = r.face_id >= 0
        assert covered.sum() == 36 and np.all(r.face_id[covered] == near_id)


def test_depth_is_interpolated_perspective_correctly_on_a_slanted_triangle():
    # A plane z = 2 + x: its depth at a pixel centre must be the ray's hit, not a screen-space blend.
    verts = np.array([[-1.0, -1.0, 1.0], [1.0, -1.0, 3.0], [-1.0, 1.0, 1.0], [1.0, 1.0, 3.0]])
    r = rasterize(verts, [[0, 1, 2], [1, 3, 2]], K, EYE, (8, 8))
    v, u = np.nonzero(r.face_id >= 0)
    x_over_z = (u + 0.5 - 4.0) / 10.0
    expected = 2.0 / (1.0 - x_over_z)  # z = 2 + x with x = z * x_over_z
    assert len(u) > 20 and np.allclose(r.depth[v, u], expected, rtol=1e-5)


def test_surfaces_outside_the_clip_range_are_not_seen():
    square = [(0, 0), (8, 0), (0, 8)]
    verts = np.vstack([tri_at(1.0, square), tri_at(5.0, square)])
    faces = [[0, 1, 2], [3, 4, 5]]
    assert set(np.unique(rasterize(verts, faces, K, EYE, (8, 8), clip=(2.0, 10.0)).face_id)) == {-1, 1}
    assert set(np.unique(rasterize(verts, faces, K, EYE, (8, 8), clip=(0.5, 4.0)).face_id)) == {-1, 0}


def test_orthographic_views_use_no_division():
    Ko = np.array([[2.0, 0.0, 4.0], [0.0, 2.0, 4.0], [0.0, 0.0, 1.0]])  # 2 px per unit
    verts = np.array([[-2.0, -2.0, 7.0], [2.0, -2.0, 7.0], [-2.0, 2.0, 7.0]])  # pixels (0,0) (8,0) (0,8)
    r = rasterize(verts, [[0, 1, 2]], Ko, EYE, (8, 8), orthographic=True)
    expected = np.array([[i + j + 1 <= 8 for i in range(8)] for j in range(8)])
    assert np.array_equal(r.face_id == 0, expected) and np.allclose(r.depth[expected], 7.0)


def test_chunked_passes_give_the_one_pass_answer(monkeypatch):
    rng = np.random.default_rng(0)
    verts = np.column_stack([rng.uniform(-1, 1, (300, 2)), rng.uniform(2, 4, 300)])
    faces = rng.integers(0, 300, (200, 3))
    one = rasterize(verts, faces, K, EYE, (8, 8))
    monkeypatch.setattr(raster, "_CHUNK", 7)
    many = rasterize(verts, faces, K, EYE, (8, 8))
    assert np.array_equal(one.face_id, many.face_id) and (one.face_id >= 0).sum() > 30


def test_a_triangle_through_the_camera_plane_asks_for_ray_casting():
    verts = np.array([[0.0, 0.0, -1.0], [0.2, 0.0, 2.0], [0.0, 0.2, 2.0]])
    r = rasterize(verts, [[0, 1, 2]], K, EYE, (8, 8), clip=(0.1, 100.0))
    assert r.needs_ray_casting
    behind = rasterize(verts - [0, 0, 5.0], [[0, 1, 2]], K, EYE, (8, 8), clip=(0.1, 100.0))
    assert not behind.needs_ray_casting and np.all(behind.face_id == -1)


def test_shading_paints_face_colours_lit_by_the_headlight():
    verts = tri_at(2.0, [(0, 0), (8, 0), (0, 8)])
    r = rasterize(verts, [[0, 1, 2]], K, EYE, (8, 8))
    colors = np.array([[200.0, 100.0, 50.0]])
    flat = shade(r.face_id, verts, [[0, 1, 2]], K, EYE, face_colors=colors, lighting="FLAT", background=(0, 0, 0))
    fg = r.face_id >= 0
    assert np.all(flat[fg] == [200, 100, 50]) and np.all(flat[~fg] == 0)
    lit = shade(r.face_id, verts, [[0, 1, 2]], K, EYE, face_colors=colors, background=(0, 0, 0))
    # Facing the camera: the centre ray is along the normal, so full light there and dimmer off-axis.
    centre = lit[3, 3].astype(float)
    assert np.allclose(centre, [200, 100, 50], atol=3)
    assert lit[0, 0, 0] < centre[0]


@pytest.mark.parametrize("n", [0, 1])
def test_empty_inputs_give_an_empty_view(n):
    verts = tri_at(2.0, [(0, 0), (8, 0), (0, 8)])[:n] if n else np.zeros((0, 3))
    r = rasterize(verts, np.zeros((0, 3), int), K, EYE, (8, 8))
    assert np.all(r.face_id == -1) and r.face_id.dtype == np.int32
