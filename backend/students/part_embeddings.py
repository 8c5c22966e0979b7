"""Part-name embeddings for the student's head: CLIP text features or fixed hashed vectors.

A CLIP text encoder when one is given
(hub id or local folder), else fixed per-name random vectors that the student's projection learns to
use. Either way the same name always maps to the same vector, so a checkpoint trained with "leg"
finds "leg" again."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import torch

HASHED_DIM = 64
#: The text encoder used by default when its weights are on this machine (hub cache or a folder).
DEFAULT_CLIP = "openai/clip-vit-base-patch32"


def resolve_text_encoder(name: str) -> str:
    """The text encoder a job uses: ``""`` (the default) -> ``DEFAULT_CLIP`` when its weights are
    available without a download, else ``""`` (hashed names, the offline fallback); ``"hashed"`` ->
    ``""`` always; anything else (a hub id or folder) as given."""
    if name == "hashed":
        return ""
    if name:
        return name
    return DEFAULT_CLIP if _available(DEFAULT_CLIP) else ""


def _available(ref: str) -> bool:
    from pathlib import Path

    if Path(ref).is_dir():
        return (Path(ref) / "config.json").is_file()
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(ref, "config.json"), str) and isinstance(
            try_to_load_from_cache(ref, "model.safetensors"), str
        )
    except Exception:  # no hub library or an unreadable cache: the fallback
        return False


def hashed_embeddings(part_names: Sequence[str], dim: int = HASHED_DIM) -> torch.Tensor:
    """(P, dim) float32 unit vectors seeded by each (lower-cased) name."""
    out = []
    for name in part_names:
        g = torch.Generator().manual_seed(zlib.crc32(name.strip().lower().encode()))
        out.append(torch.randn(dim, generator=g))
    e = torch.stack(out)
    return e / e.norm(dim=-1, keepdim=True)


class PartEmbedder:
    """``PartEmbedder("")`` -> hashed vectors; ``PartEmbedder("openai/clip-vit-base-patch32")`` or a
    local folder -> CLIP text embeddings of ``template.format(part=name)``."""

    def __init__(self, text_encoder: str = "", template: str = "a {part}", device: str | torch.device = "cpu"):
        self.source = text_encoder
        self.template = template
        self._model = self._tokenizer = None
        self.device = torch.device(device)
        if text_encoder:
            from transformers import AutoTokenizer, CLIPTextModelWithProjection

            from ..teachers.loading import TeacherUnavailableError, hub_unreachable, looks_like_path

            def unavailable(reason: str) -> TeacherUnavailableError:
                return TeacherUnavailableError(
                    "clip text encoder", text_encoder, reason, default_model=DEFAULT_CLIP, field="options.text_encoder"
                )

            if looks_like_path(text_encoder):
                from pathlib import Path

                if not Path(text_encoder).expanduser().is_dir():
                    raise unavailable(f"no such folder: {Path(text_encoder).expanduser()}")
            elif why := hub_unreachable(text_encoder):
                raise unavailable(why)
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(text_encoder)
                self._model = CLIPTextModelWithProjection.from_pretrained(text_encoder).to(self.device).eval()
            except Exception as e:  # OSError, hub errors, bad configs: all mean "no usable model here"
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise unavailable(f"{type(e).__name__}: {first}") from e

    @property
    def dim(self) -> int:
        return int(self._model.config.projection_dim) if self._model is not None else HASHED_DIM

    def __call__(self, part_names: Sequence[str]) -> torch.Tensor:
        """(P, dim) float32 on ``self.device``."""
        if self._model is None:
            return hashed_embeddings(part_names).to(self.device)
        texts = [self.template.format(part=n) for n in part_names]
        tok = self._tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            e = self._model(**tok).text_embeds.float()
        return (e / e.norm(dim=-1, keepdim=True)).clone()
