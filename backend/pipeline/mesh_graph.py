"""The mesh's face-adjacency graph, and labels spread along the surface.

The dual graph says which triangles share an edge and how sharp the crease between them is;
labels spread over it to faces that have none (nearest labelled face along the
surface, not through the air: a leg's label must not jump to the seat above it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from partdistill.shared.capture import Mesh
from partdistill.shared.point_cloud import faces_of_points, per_point
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree


@dataclass
class FaceGraph:
    """The dual graph of a triangle mesh.

    centroids: (F, 3) float64. normals: (F, 3) float64 unit normals (zero for degenerate faces).
    areas: (F,) float64. edges: (E, 2) int64 pairs i < j of faces sharing a mesh edge (a non-manifold
    edge shared by k faces yields all k(k-1)/2 pairs). edge_len: (E,) float64 length of the shared
    edge. dihedral: (E,) float64 angle between the two normals in [0, pi]. concave: (E,) bool, the
    surface folds inwards across the edge (where parts usually meet). dist: (E,) float64 distance
    between the two centroids."""

    centroids: np.ndarray
    normals: np.ndarray
    areas: np.ndarray
    edges: np.ndarray
    edge_len: np.ndarray
    dihedral: np.ndarray
    concave: np.ndarray
    dist: np.ndarray

    @property
    def n_faces(self) -> int:
        return int(self.centroids.shape[0])

    def adjacency(self, weight: np.ndarray | None = None) -> sparse.csr_matrix:
        """(F, F) symmetric sparse matrix with ``weight`` (E,) per edge (default: centroid distance)."""
        w = self.dist if weight is None else weight
        i, j = self.edges[:, 0], self.edges[:, 1]
        f = self.n_faces
        return sparse.coo_matrix((np.r_[w, w], (np.r_[i, j], np.r_[j, i])), shape=(f, f)).tocsr()


def face_graph(mesh: Mesh) -> FaceGraph:
    """Build the dual graph of ``mesh.faces`` (F, 3) over ``mesh.vertices``; for the surfel mesh of a
    point cloud, the graph of its points' nearest neighbours instead (see :func:`_surfel_pairs`)."""
    v = mesh.vertices.astype(np.float64)
    f = mesh.faces.astype(np.int64)
    p0, p1, p2 = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    cross = np.cross(p1 - p0, p2 - p0)
    norm = np.linalg.norm(cross, axis=1)
    normals = cross / np.maximum(norm, 1e-20)[:, None]
    centroids = (p0 + p1 + p2) / 3.0
    # every undirected mesh edge with the faces that use it, grouped by a sort on the edge's key
    a, b = np.concatenate([f[:, 0], f[:, 1], f[:, 2]]), np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    e = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)
    owner = np.tile(np.arange(len(f)), 3)
    keep = e[:, 0] != e[:, 1]
    e, owner = e[keep], owner[keep]
    key = e[:, 0] * (len(v) + 1) + e[:, 1]
    order = np.argsort(key, kind="stable")
    key, owner, e = key[order], owner[order], e[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    counts = np.diff(np.r_[starts, len(key)])
    two = starts[counts == 2]  # manifold edges, vectorised; boundary (1) and non-manifold (>2) apart
    pairs = [np.stack([owner[two], owner[two + 1]], axis=1)]
    lengths = [np.linalg.norm(v[e[two, 0]] - v[e[two, 1]], axis=1)]
    if mesh.surfels:
        pairs[0], lengths[0] = _surfel_pairs(v, f)
    for s, c in zip(starts[counts > 2], counts[counts > 2], strict=True):
        o = owner[s : s + c]
        ii, jj = np.triu_indices(c, 1)
        pairs.append(np.stack([o[ii], o[jj]], axis=1))
        lengths.append(np.full(len(ii), np.linalg.norm(v[e[s, 0]] - v[e[s, 1]])))
    edges, edge_len = np.concatenate(pairs).astype(np.int64), np.concatenate(lengths)
    ok = edges[:, 0] != edges[:, 1]
    edges = np.sort(edges[ok], axis=1)
    # one int64 key per pair: unique on it is several times faster than unique over rows
    _, first = np.unique(edges[:, 0] * len(f) + edges[:, 1], return_index=True)
    edges, edge_len = edges[first], edge_len[ok][first]
    n0, n1 = normals[edges[:, 0]], normals[edges[:, 1]]
    dihedral = np.arccos(np.clip(np.einsum("ij,ij->i", n0, n1), -1.0, 1.0))
    d = centroids[edges[:, 1]] - centroids[edges[:, 0]]
    # (n_i - n_j) . (c_j - c_i) > 0 where the surface folds inwards (a floor meeting a wall)
    concave = np.einsum("ij,ij->i", n0 - n1, d) > 1e-12
    dist = np.maximum(np.linalg.norm(d, axis=1), 1e-12)
    return FaceGraph(centroids, normals, 0.5 * norm, edges, edge_len, dihedral, concave, dist)


def _surfel_pairs(v: np.ndarray, f: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Face pairs of a surfel mesh (``shared.point_cloud``: each point's square is two triangles): the two
    halves of each square, and the same halves of the squares of each point's ``k`` nearest
    neighbours; ``(E, 2) int64`` pairs and ``(E,) float64`` lengths (the square's side, the width
    the two surfels meet over)."""
    corners = v[per_point(f)]  # (n, 3, 3): three of the square's corners
    n = len(corners)
    centre = (corners[:, 0] + corners[:, 2]) / 2.0
    side = np.linalg.norm(corners[:, 1] - corners[:, 0], axis=1)
    _, nn = cKDTree(centre).query(centre, k=min(k + 1, n))
    i = np.repeat(np.arange(n), nn.shape[1] - 1)
    j = nn[:, 1:].reshape(-1)
    first = faces_of_points(np.arange(n)).astype(np.int64)  # each square's first triangle; the other follows it
    fi, fj = first[i], first[j]
    halves = np.stack([first, first + 1], axis=1)
    pairs = np.concatenate([halves, np.stack([fi, fj], 1), np.stack([fi + 1, fj + 1], 1)])
    lengths = np.concatenate([side * np.sqrt(2.0), side[i], side[i]])
    return pairs, lengths


def nearest_labelled(graph: FaceGraph, labelled: np.ndarray) -> np.ndarray:
    """labelled (F,) bool -> (F,) int64: for every face the labelled face nearest along the surface
    (centroid-to-centroid paths over the dual graph, one multi-source Dijkstra), itself when labelled.
    Faces of a component without labelled faces take the nearest in space; all -1 when none is."""
    labelled = np.asarray(labelled, dtype=bool)
    src = np.flatnonzero(labelled)
    f = graph.n_faces
    if src.size == 0:
        return np.full(f, -1, np.int64)
    if src.size == f:
        return np.arange(f, dtype=np.int64)
    _, _, sources = csgraph.dijkstra(
        graph.adjacency(), directed=False, indices=src, min_only=True, return_predecessors=True
    )
    out = np.asarray(sources, dtype=np.int64)
    out[src] = src
    rest = np.flatnonzero(out < 0)
    if rest.size:
        _, nn = cKDTree(graph.centroids[src]).query(graph.centroids[rest])
        out[rest] = src[nn]
    return out
