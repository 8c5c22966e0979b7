"""What every student network provides: per-point part logits from points and part embeddings."""

from __future__ import annotations

import torch
from torch import nn


class Student(nn.Module):
    """Maps surface points to part logits.

    forward(xyz (B, N, 3), normals (B, N, 3), part_embeddings (P, E)) -> logits (B, N, P).
    The head is conditioned on the part embeddings, so the same weights serve any part list.
    """

    embed_dim: int

    def forward(self, xyz: torch.Tensor, normals: torch.Tensor, part_embeddings: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
