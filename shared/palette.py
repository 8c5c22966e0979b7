"""Part colours, the same in Blender, in preview images and in exported meshes."""

from __future__ import annotations

import colorsys

# Hand-picked for distinctness on a grey mesh (after ColorBrewer Set1/Dark2), then generated.
_BASE = [
    (0.894, 0.102, 0.110),
    (0.216, 0.494, 0.722),
    (0.302, 0.686, 0.290),
    (0.596, 0.306, 0.639),
    (1.000, 0.498, 0.000),
    (0.651, 0.337, 0.157),
    (0.969, 0.506, 0.749),
    (0.106, 0.620, 0.467),
    (0.902, 0.671, 0.008),
    (0.400, 0.651, 0.118),
    (0.459, 0.439, 0.702),
    (0.851, 0.373, 0.008),
]
UNLABELLED = (0.55, 0.55, 0.55)


def part_color(i: int) -> tuple[float, float, float]:
    """RGB in [0, 1] (sRGB) for part ``i``; -1 (unlabelled) is grey."""
    if i < 0:
        return UNLABELLED
    if i < len(_BASE):
        return _BASE[i]
    h = (i * 0.618033988749895) % 1.0  # golden-ratio hue steps stay apart for any count
    return colorsys.hsv_to_rgb(h, 0.75, 0.9)


def palette(n: int) -> list[tuple[float, float, float]]:
    return [part_color(i) for i in range(n)]
