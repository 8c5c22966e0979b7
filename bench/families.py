"""Procedural shape families for the benchmark, named after ShapeNetPart categories.

Each family is a function ``family(rng) -> LabelledShape`` that draws varied proportions and styles
from the generator and assembles the shape from the primitives of ``shapes.ShapeBuilder``, so every
polygon's part label is known by construction (the household families are in ``families_home``,
the vehicles, instruments and tools in ``families_craft``, the geometry they share in
``family_geometry``; this module names them). Conventions for every family:

- z up; the shape rests on z = 0, centred on the z axis in x and y, and is scaled so that its largest
  extent is drawn uniformly from [1, 2] units.
- The part list is fixed per family (the order of ``part_names`` never changes between shapes), and
  every part appears in every shape drawn, except the parts listed in ``OPTIONAL_PARTS`` (the chair's
  arms), which are present in about half of the shapes by design.
- Each family has thin parts (legs, a cord, a handle, fins, a blade, keys, ...) because those are what
  2D teachers miss and what the 3D student has to recover.
- 500 to 6000 triangles per shape (``LabelledShape.triangles()``), no degenerate triangles.

``make_shape(family, seed)`` is the deterministic entry point: the same (family, seed) always gives
the same shape, and different families never share a random stream.

Families and parts:

======================  ====================================
family                  parts
======================  ====================================
chair                   seat, back, leg, arm (arm optional)
table                   top, leg
lamp                    base, pole, shade, cord
mug                     body, handle
airplane                body, wing, tail, engine
guitar                  body, neck, head
knife                   blade, handle
rocket                  body, fin, nose
laptop                  screen, keyboard
skateboard              deck, wheel, truck
======================  ====================================

The skateboard has a third part, ``truck`` (the axle and its mount; ShapeNetPart calls it "belt"),
rather than labelling the trucks as wheels or deck.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from .families_craft import airplane, guitar, knife, rocket, skateboard
from .families_home import chair, lamp, laptop, mug, table
from .shapes import LabelledShape

Family = Callable[[np.random.Generator], LabelledShape]

#: Parts a family may leave out of a shape, by design (documented in the family's docstring).
OPTIONAL_PARTS: dict[str, tuple[str, ...]] = {"chair": ("arm",)}

#: Triangle counts every family keeps to (``LabelledShape.triangles()``).
MIN_TRIANGLES, MAX_TRIANGLES = 500, 6000

FAMILIES: dict[str, Family] = {
    "chair": chair,
    "table": table,
    "lamp": lamp,
    "mug": mug,
    "airplane": airplane,
    "guitar": guitar,
    "knife": knife,
    "rocket": rocket,
    "laptop": laptop,
    "skateboard": skateboard,
}


def make_shape(family: str, seed: int) -> LabelledShape:
    """The shape number ``seed`` of ``family``: deterministic, and each family has its own random
    stream (the family name is hashed into its generator's seed). Raises KeyError for an unknown family and
    RuntimeError if a required part is missing (a generator bug)."""
    if family not in FAMILIES:
        raise KeyError(f"unknown shape family {family!r}; known: {', '.join(FAMILIES)}")
    rng = np.random.default_rng([zlib.crc32(family.encode()), int(seed)])
    shape = FAMILIES[family](rng)
    present = set(np.unique(shape.labels).tolist())
    missing = [
        n for i, n in enumerate(shape.part_names) if i not in present and n not in OPTIONAL_PARTS.get(family, ())
    ]
    if missing:
        raise RuntimeError(f"{family} seed {seed}: parts {missing} are missing")
    return shape
