"""Refinement on the mesh: superpoint pooling and the Potts graph cut, against hand computation and
brute force on small meshes."""

from __future__ import annotations

import itertools

import numpy as np
from partdistill.backend.pipeline.mesh_graph import face_graph
from partdistill.backend.pipeline.refine import graph_cut, pair_weights, pool, potts_energy
from partdistill.shared.capture import Mesh


def _strip(n: int) -> Mesh:
    """n unit quads in a row in the plane z = 0, two triangles each: a flat strip of 2n faces."""
    v = np.array([[x, y, 0] for x in range(n + 1) for y in (0, 1)], np.float32)
    f = []
    for q in range(n):
        a, b, c, d = 2 * q, 2 * q + 2, 2 * q + 3, 2 * q + 1
        f += [[a, b, c], [a, c, d]]
    return Mesh(v, np.array(f, np.int32))


def test_pool_gives_each_face_its_patch_mean_weighted_by_area():
    scores = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    out = pool(scores, np.array([0, 0, 1]), np.array([3.0, 1.0, 2.0]))
    np.testing.assert_allclose(out, [[0.75, 0.25], [0.75, 0.25], [0.5, 0.5]])
    half = pool(scores, np.array([0, 0, 1]), np.array([3.0, 1.0, 2.0]), mix=0.5)  # half its own, half the patch's
    np.testing.assert_allclose(half, [[0.875, 0.125], [0.375, 0.625], [0.5, 0.5]])


def test_graph_cut_finds_the_minimum_energy_of_two_labels_by_brute_force():
    mesh = _strip(4)  # 8 faces
    g = face_graph(mesh)
    rng = np.random.default_rng(0)
    for lam in (0.3, 1.0, 3.0):
        probs = rng.dirichlet([1.0, 1.0], size=8)
        unary = -np.log(np.clip(probs, 1e-4, 1.0))
        w = lam * pair_weights(g)
        ei, ej = g.edges[:, 0], g.edges[:, 1]
        best = min(potts_energy(unary, w, ei, ej, np.array(lab)) for lab in itertools.product((0, 1), repeat=8))
        got = graph_cut(g, probs, lam=lam)
        assert potts_energy(unary, w, ei, ej, got) <= best + 1e-3  # two labels: expansion is exact


def test_graph_cut_removes_a_speck_and_keeps_a_confident_boundary():
    g = face_graph(_strip(6))  # 12 faces along a flat strip
    probs = np.full((12, 2), [0.9, 0.1])
    probs[6:] = [0.1, 0.9]  # a clear boundary in the middle
    probs[2] = [0.45, 0.55]  # a weak speck of label 1 inside label 0
    labels = graph_cut(g, probs, lam=1.0)
    assert labels.tolist() == [0] * 6 + [1] * 6
    assert graph_cut(g, probs, lam=1e-6)[2] == 1  # without smoothing the speck stays


def test_graph_cut_stops_early_only_where_more_sweeps_change_nothing():
    from partdistill.backend.pipeline import refine

    g = face_graph(_strip(10))  # 20 faces
    rng = np.random.default_rng(1)
    for _ in range(20):
        probs = rng.dirichlet([0.5, 0.5, 0.5, 0.5], size=20)
        unary = -np.log(np.clip(probs, 1e-4, 1.0))
        w = 2.0 * pair_weights(g)
        ei, ej = g.edges[:, 0], g.edges[:, 1]
        labels = probs.argmax(axis=1)
        for _ in range(10):  # every label's expansion, sweep after sweep, to convergence
            before = labels
            for alpha in range(4):
                moved = refine._expand(unary, w, ei, ej, labels, alpha)
                if potts_energy(unary, w, ei, ej, moved) < potts_energy(unary, w, ei, ej, labels) - 1e-9:
                    labels = moved
            if np.array_equal(before, labels):
                break
        got = graph_cut(g, probs, lam=2.0, sweeps=10)
        assert potts_energy(unary, w, ei, ej, got) <= potts_energy(unary, w, ei, ej, labels) + 1e-9
