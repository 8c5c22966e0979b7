"""Geometry the procedural families share: random draws, rotations, and the finishing step.

The finishing step rests, centres and scales a built shape as the conventions in ``families`` say.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .shapes import LabelledShape, ShapeBuilder

#: The unit axes (z is up).
X, Y, Z = np.eye(3)


def draw(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One value drawn uniformly from [lo, hi)."""
    return float(rng.uniform(lo, hi))


def rotation(axis, angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` radians about ``axis`` (right-handed)."""
    a = np.asarray(axis, np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def about(pivot, rotation: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Vertex map rotating (N, 3) points about ``pivot``."""
    pivot = np.asarray(pivot, np.float64)
    return lambda p: (p - pivot) @ rotation.T + pivot


def finish(b: ShapeBuilder, rng: np.random.Generator) -> LabelledShape:
    """Rest the shape on z = 0, centre it in x and y, and scale its largest extent to U(1, 2)."""
    shape = b.build()
    v = shape.vertices.astype(np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    v -= np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])
    v *= draw(rng, 1.0, 2.0) / float((hi - lo).max())
    shape.vertices = v.astype(np.float32)
    return shape


def ellipse_exit(d: np.ndarray, center: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Distance along unit directions ``d`` (N, 2) from the origin to where the ray leaves the ellipse
    ``|(p - center) / radii| = 1`` (the origin must lie inside it)."""
    a = ((d / radii) ** 2).sum(axis=1)
    b = -2 * ((d * center) / radii**2).sum(axis=1)
    c = ((center / radii) ** 2).sum() - 1.0
    return (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
