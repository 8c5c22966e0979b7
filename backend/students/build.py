"""The one student set-up shared by test-time alignment and pre-alignment.

For ``tta`` and ``pre`` alike: torch prepared for the job, the part-name embedder (loaded once per
process) and a fresh student."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch

from ..device import prepare_torch
from .edge_point_net import EdgePointNet
from .part_embeddings import PartEmbedder, resolve_text_encoder


@lru_cache(maxsize=4)
def part_embedder(text_encoder: str, device: str) -> PartEmbedder:
    """Loaded once per process (a CLIP text encoder takes seconds to load)."""
    return PartEmbedder(text_encoder, device=device)


@dataclass
class StudentSetup:
    """device: where the student runs. embeddings: (P, E) float32 part-name embeddings on ``device``.
    student: a freshly initialised ``EdgePointNet`` on ``device``, conditioned on ``E``-dim embeddings.
    text_encoder: the encoder the embeddings came from ("" = hashed names; see ``resolve_text_encoder``)."""

    device: torch.device
    embeddings: torch.Tensor
    student: EdgePointNet
    text_encoder: str = ""


def new_student(part_names: Sequence[str], text_encoder: str, device: str, seed: int) -> StudentSetup:
    """Torch seeded and set up (see ``device.prepare_torch``), the part names embedded, a new student."""
    dev = prepare_torch(device, seed)
    resolved = resolve_text_encoder(text_encoder)
    embedder = part_embedder(resolved, str(dev))
    return StudentSetup(dev, embedder(tuple(part_names)), EdgePointNet(text_dim=embedder.dim).to(dev), resolved)
