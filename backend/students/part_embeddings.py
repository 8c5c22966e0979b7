"""Part-name embeddings that condition the student's head."""

from __future__ import annotations

import zlib

import torch


def hashed_embeddings(part_names: list[str] | tuple[str, ...], dim: int) -> torch.Tensor:
    """(P, dim) float32 fixed random unit vectors, one per name, seeded by the name itself, so the
    same name always gets the same vector (a checkpoint trained with "leg" finds "leg" again).
    Used when no text encoder is loaded; the head learns to align point features to them."""
    out = []
    for name in part_names:
        g = torch.Generator().manual_seed(zlib.crc32(name.strip().lower().encode()))
        out.append(torch.randn(dim, generator=g))
    e = torch.stack(out)
    return e / e.norm(dim=-1, keepdim=True)
