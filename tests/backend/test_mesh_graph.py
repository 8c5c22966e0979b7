"""The face-adjacency graph, filling along the surface and superpoints, on hand-made meshes."""

from __future__ import annotations

import numpy as np
from partdistill.backend.pipeline.mesh_graph import face_graph, nearest_labelled
from partdistill.backend.pipeline.superpoints import superpoints
from partdistill.shared.capture import Mesh
from scipy.sparse.csgraph import shortest_path


def _l_shape(n: int = 4) -> Mesh:
    """A floor (z = 0, x in [0, n]) meeting a wall (x = 0, z in [0, n]) along the y axis, y in [0, 1]:
    n quads each, two triangles per quad, normals up (+z) and inwards (+x): a concave crease."""
    verts, faces = [], []

    def quad(p0, p1, p2, p3):
        i = len(verts)
        verts.extend([p0, p1, p2, p3])
        faces.extend([[i, i + 1, i + 2], [i, i + 2, i + 3]])

    for k in range(n):
        quad((k, 0, 0), (k + 1, 0, 0), (k + 1, 1, 0), (k, 1, 0))  # floor, normal +z
        quad((0, 0, k + 1), (0, 0, k), (0, 1, k), (0, 1, k + 1))  # wall, normal +x
    # weld duplicate vertices so that neighbouring quads share edges
    v = np.array(verts, np.float32)
    uniq, inv = np.unique(v, axis=0, return_inverse=True)
    return Mesh(uniq.astype(np.float32), inv.reshape(-1)[np.array(faces)].astype(np.int32))


def test_face_graph_finds_shared_edges_their_angle_and_the_concave_crease():
    g = face_graph(_l_shape(1))  # faces 0, 1: floor; 2, 3: wall
    pairs = {tuple(e) for e in g.edges.tolist()}
    assert (0, 1) in pairs and (2, 3) in pairs
    crossing = [i for i, (a, b) in enumerate(g.edges.tolist()) if (a < 2) != (b < 2)]
    assert len(crossing) == 1  # the floor and the wall share one mesh edge, between one face of each
    i = crossing[0]
    np.testing.assert_allclose(g.dihedral[i], np.pi / 2, atol=1e-6)
    assert g.concave[i] and g.edge_len[i] == 1.0
    flat = [i for i, (a, b) in enumerate(g.edges.tolist()) if (a < 2) == (b < 2)]
    np.testing.assert_allclose(g.dihedral[flat], 0.0, atol=1e-6)
    np.testing.assert_allclose(g.areas.sum(), 2.0)


def test_nearest_labelled_goes_along_the_surface_not_through_the_air():
    g = face_graph(_l_shape(6))  # quad k of the floor: faces 4k, 4k+1; of the wall: 4k+2, 4k+3
    labelled = np.zeros(g.n_faces, bool)
    labelled[[4 * 1 + 3, 4 * 2]] = True  # a wall face at z in [1, 2], a floor face at x in [2, 3]
    src = nearest_labelled(g, labelled)
    geodesic = shortest_path(g.adjacency(), directed=False)[:, labelled]
    air = np.linalg.norm(g.centroids[:, None] - g.centroids[labelled][None], axis=2)
    targets = np.flatnonzero(labelled)
    np.testing.assert_array_equal(src, targets[geodesic.argmin(axis=1)])
    # some faces near the crease are nearer the wall face through the air, yet take the floor's
    assert (targets[air.argmin(axis=1)] != src).any()


def test_superpoints_split_at_a_concave_crease_and_keep_flat_regions_whole():
    g = face_graph(_l_shape(4))
    sp = superpoints(g, max_area=1.0, min_area=0.0)
    floor = sp[[4 * k + i for k in range(4) for i in (0, 1)]]
    wall = sp[[4 * k + i for k in range(4) for i in (2, 3)]]
    assert len(set(floor)) == 1 and len(set(wall)) == 1 and floor[0] != wall[0]
    # a size cap splits a flat region too
    assert len(np.unique(superpoints(g, max_area=0.3, min_area=0.0))) > 2


def _reference_superpoints(g, k: float, max_area: float, min_area: float) -> np.ndarray:
    """The segmentation of ``superpoints`` written plainly: a union-find over the edges in order of
    crease weight, then the two passes for small patches."""
    from partdistill.backend.pipeline.superpoints import crease_weight

    parent = list(range(g.n_faces))
    size = list(g.areas / g.areas.sum())
    inner = [0.0] * g.n_faces

    def find(a):
        while parent[a] != a:
            a = parent[a]
        return a

    def union(a, b):
        a, b = (a, b) if size[a] >= size[b] else (b, a)
        parent[b] = a
        size[a] += size[b]

    w = crease_weight(g)
    order = np.argsort(w, kind="stable")
    for n in order:
        a, b = find(g.edges[n, 0]), find(g.edges[n, 1])
        if a == b or size[a] + size[b] > max_area:
            continue
        if w[n] <= inner[a] + k / max(size[a], 1e-12) and w[n] <= inner[b] + k / max(size[b], 1e-12):
            union(a, b)
            inner[find(a)] = w[n]
    for capped in (True, False):
        for n in order:
            a, b = find(g.edges[n, 0]), find(g.edges[n, 1])
            if a == b or (size[a] >= min_area and size[b] >= min_area):
                continue
            if not capped or size[a] + size[b] <= max_area or (size[a] < min_area and size[b] < min_area):
                union(a, b)
    roots = np.array([find(a) for a in range(g.n_faces)])
    return np.unique(roots, return_inverse=True)[1]


def test_superpoints_compiled_loop_matches_the_plain_algorithm_on_a_bumpy_surface():
    rng = np.random.default_rng(3)
    n = 24  # a height field of n x n quads with random bumps: creases of every sharpness
    xs, ys = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    z = rng.normal(0, 0.4, xs.shape)
    v = np.stack([xs, ys, z], -1).reshape(-1, 3).astype(np.float32)
    idx = lambda i, j: i * (n + 1) + j  # noqa: E731
    f = [[idx(i, j), idx(i + 1, j), idx(i + 1, j + 1)] for i in range(n) for j in range(n)]
    f += [[idx(i, j), idx(i + 1, j + 1), idx(i, j + 1)] for i in range(n) for j in range(n)]
    g = face_graph(Mesh(v, np.array(f, np.int32)))
    for k, max_area, min_area in ((1e-6, 0.05, 0.0005), (0.05, 0.2, 0.01), (1.0, 1.0, 0.0)):
        got = superpoints(g, k=k, max_area=max_area, min_area=min_area)
        want = _reference_superpoints(g, k, max_area, min_area)
        assert 1 < len(np.unique(got)) < g.n_faces or k == 1.0
        np.testing.assert_array_equal(got, want)
