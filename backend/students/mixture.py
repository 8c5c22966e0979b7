"""Several students as one: their per-point probabilities averaged.

A collection's category students fitted from several seeds (an ensemble: one fit's result depends
on its seed by several mIoU points) and a category student blended with a shape's own student are
both a ``StudentMixture``. It keeps the students' call convention, so labelling, saving and
fine-tuning take it where they take one student."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import Student


class StudentMixture(Student):
    """forward(xyz (B, N, 3), normals (B, N, 3), part_embeddings (P, E), nbr) -> (B, N, P) float32
    log of the weighted mean of the members' softmax probabilities (a softmax of it gives that mean
    back). weights: one per member, normalised to sum 1 (default: equal)."""

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float] | None = None):
        super().__init__()
        if not members:
            raise ValueError("a mixture needs at least one student")
        w = torch.ones(len(members)) if weights is None else torch.tensor([float(x) for x in weights])
        if len(w) != len(members) or (w < 0).any() or float(w.sum()) <= 0:
            raise ValueError(f"need {len(members)} non-negative weights, not all 0; got {list(weights or [])}")
        self.members = nn.ModuleList(members)
        self.register_buffer("weights", w / w.sum(), persistent=False)
        self.k = members[0].k
        self.embed_dim = members[0].embed_dim
        # saved as one student with its number of members (``checkpoint``): equal weights only
        self.config = {**getattr(members[0], "config", {}), "members": len(members)}

    def forward(
        self,
        xyz: torch.Tensor,
        normals: torch.Tensor,
        part_embeddings: torch.Tensor,
        nbr: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return torch.log(self.probabilities([(xyz, normals)] * len(self.members), part_embeddings, nbr) + 1e-12)

    def probabilities(
        self,
        inputs: Sequence[tuple[torch.Tensor, torch.Tensor]],
        part_embeddings: torch.Tensor,
        nbr: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, N, P) float32: the weighted mean of the members' softmax probabilities, member ``j``
        seeing ``inputs[j]`` (its xyz and normals, (B, N, 3) each: the same points, each member
        along its own axes)."""
        return sum(
            w * torch.softmax(m(xyz, normals, part_embeddings, nbr).float(), dim=-1)
            for w, m, (xyz, normals) in zip(self.weights, self.members, inputs, strict=True)
        )
