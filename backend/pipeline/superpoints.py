"""Superpoints: patches of adjacent faces that rarely straddle a part boundary.

A geometric over-segmentation, as PartSLIP votes over. Real meshes are often one connected component, so
components alone give nothing; patches grow across flat or convex edges and stop at concave creases.

Felzenszwalb-Huttenlocher segmentation of the dual graph: edges in order of their crease weight
(1 - cos of the dihedral angle, convex edges scaled down: parts mostly meet at concave creases)
merge two patches while the edge is no sharper than either patch's own sharpest inner edge plus
``k / area``; a patch never grows past ``max_area`` of the surface, and patches under ``min_area``
then join their neighbour across the weakest edge. The defaults were chosen on the real-mesh
benchmark's validation split (docs/benchmark.md).
"""

from __future__ import annotations

import numpy as np

from .mesh_graph import FaceGraph

#: Chosen on the validation split of ``partdistill bench real`` (the superpoint vote's mean mIoU over
#: box/mask teachers and all noise levels).
DEFAULT_K = 1e-6
DEFAULT_MAX_AREA = 0.05
DEFAULT_MIN_AREA = 0.0005
CONVEX_WEIGHT = 0.2


def crease_weight(graph: FaceGraph, convex_weight: float = CONVEX_WEIGHT) -> np.ndarray:
    """(E,) float64 in [0, 2]: 1 - cos(dihedral), times ``convex_weight`` on convex edges."""
    w = 1.0 - np.cos(graph.dihedral)
    return np.where(graph.concave, w, convex_weight * w)


def superpoints(
    graph: FaceGraph, k: float = DEFAULT_K, max_area: float = DEFAULT_MAX_AREA, min_area: float = DEFAULT_MIN_AREA
) -> np.ndarray:
    """(F,) int32 superpoint ids 0..S-1 (see the module docstring). Areas are fractions of the
    surface, so the parameters do not depend on the mesh's scale."""
    f = graph.n_faces
    size = (graph.areas / max(float(graph.areas.sum()), 1e-20)).tolist()
    w = crease_weight(graph)
    order = np.argsort(w, kind="stable")
    # Plain lists and a local find: the merges are sequential by nature, and list indexing in a
    # Python loop costs a third of numpy scalar indexing (a million-face mesh has 1.5M edges).
    parent = list(range(f))
    internal = [0.0] * f

    def find(a: int) -> int:
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return root

    def union(a: int, b: int, weight: float) -> None:
        if size[a] < size[b]:
            a, b = b, a
        parent[b] = a
        size[a] += size[b]
        internal[a] = max(internal[a], internal[b], weight)

    ea, eb = graph.edges[order, 0].tolist(), graph.edges[order, 1].tolist()
    wo = w[order].tolist()
    for i, j, we in zip(ea, eb, wo, strict=True):
        a, b = parent[i], parent[j]
        if parent[a] != a:  # most elements sit right under their root: find() only for the rest
            a = find(i)
        if parent[b] != b:
            b = find(j)
        if a == b:
            continue
        sa, sb = size[a], size[b]
        if sa + sb > max_area:
            continue
        if we <= internal[a] + k / (sa if sa > 1e-12 else 1e-12) and we <= internal[b] + k / (
            sb if sb > 1e-12 else 1e-12
        ):
            # union() inlined (a third of the loop's time); the edges come in increasing weight, so
            # ``we`` is the sharpest edge inside the merged patch
            if sa < sb:
                a, b = b, a
            parent[b] = a
            size[a] = sa + sb
            internal[a] = we
    # small patches join a neighbour across their weakest edge (the cap holds unless both are small),
    # then anything still small (wedged between two capped patches) joins one of them anyway. Patches
    # only merge and grow, so an edge inside one patch, or between two that are not small, when a pass
    # starts never acts in it: each pass walks only the other edges, in the same order.
    ea_, eb_ = np.asarray(ea), np.asarray(eb)
    for capped in (True, False):
        roots = _roots(parent)
        small = np.asarray(size)[roots] < min_area
        ra, rb = roots[ea_], roots[eb_]
        touch = np.flatnonzero((ra != rb) & (small[ra] | small[rb])).tolist()
        for n in touch:
            a, b = find(ea[n]), find(eb[n])
            if a == b or (size[a] >= min_area and size[b] >= min_area):
                continue
            if not capped or size[a] + size[b] <= max_area or (size[a] < min_area and size[b] < min_area):
                union(a, b, wo[n])
    return np.unique(_roots(parent), return_inverse=True)[1].astype(np.int32)


def _roots(parent: list[int]) -> np.ndarray:
    """(F,) int64 the root of every element of a union-find forest (pointer jumping in numpy)."""
    p = np.asarray(parent, np.int64)
    while True:
        q = p[p]
        if np.array_equal(q, p):
            return p
        p = q
