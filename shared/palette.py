"""Part colours, the same in Blender, in preview images and in exported meshes."""

from __future__ import annotations

import colorsys


def _rgb(hex_code: str) -> tuple[float, float, float]:
    """``"rrggbb"`` as RGB in [0, 1], rounded to 3 decimals."""
    r, g, b = (round(int(hex_code[i : i + 2], 16) / 255, 3) for i in (0, 2, 4))
    return r, g, b


# Hand-picked for distinctness on a grey mesh (ColorBrewer Set1, then Dark2), then generated.
_BASE = [_rgb(c) for c in "e41a1c 377eb8 4daf4a 984ea3 ff7f00 a65628 f781bf 1b9e77 e6ab02 66a61e 7570b3 d95f02".split()]
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
