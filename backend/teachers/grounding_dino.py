"""Grounding DINO as a box teacher (B-VLM): boxes with a part label and a confidence per view.

The prompt is the part phrases joined the way Grounding DINO was trained ("seat. back. leg.").
The model scores every query box against every text token; a part's score for a box is the max
sigmoid over the tokens of that part's phrase, the box goes to the part with the highest score, and
that score is its confidence. The token -> part map comes from the tokenizer's character offsets
(with a fallback that locates each phrase's tokens in ``input_ids``), never from decoded label text,
which merges neighbouring phrases ("seat back") and keeps special tokens.

torch and transformers are imported inside the functions that need them, so importing this module
(and the teacher registry) stays cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from partdistill.shared.detections import Detection
from partdistill.shared.errors import ValidationError

from .base import ModelTeacher

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

DEFAULT_MODEL = "IDEA-Research/grounding-dino-tiny"
_MODEL_TYPES = ("grounding-dino", "mm-grounding-dino")
# Grounding DINO splits its text into phrases at these characters (the model's SPECIAL_TOKENS are
# [CLS], [SEP], "." and "?"): inside a part name they would cut the phrase in two.
_DELIMITERS = ".?"


# ---- text: caption, token -> part map, chunking ---------------------------------------------------


def clean_phrase(phrase: str) -> str:
    """Lowercase, drop the model's phrase delimiters, collapse whitespace ("Seat." -> "seat")."""
    for ch in _DELIMITERS:
        phrase = phrase.replace(ch, " ")
    return " ".join(phrase.lower().split())


def build_caption(phrases: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join cleaned phrases as Grounding DINO expects: ``"seat. back. leg."``.

    Returns the caption and, per phrase, its character span ``(start, end)`` in the caption.
    """
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for p in phrases:
        p = clean_phrase(p)
        if not p:
            raise ValidationError("part_names", "a part prompt is empty once '.' and '?' are removed")
        spans.append((pos, pos + len(p)))
        parts.append(p + ".")
        pos += len(p) + 2  # the "." and the joining space
    return " ".join(parts), spans


def token_parts_from_offsets(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Map tokens to phrases by character offsets.

    offsets: per token ``(start, end)`` in the caption, ``(0, 0)`` for special tokens (as fast
    tokenizers return them). spans: per phrase ``(start, end)``. Returns ``(T,) int64``: the phrase
    index of each token, -1 for special tokens and the "." separators.
    """
    out = np.full(len(offsets), -1, dtype=np.int64)
    for t, (s, e) in enumerate(offsets):
        if e <= s:
            continue
        for k, (ps, pe) in enumerate(spans):
            if s < pe and e > ps:
                out[t] = k
                break
    return out


def token_parts_from_ids(input_ids: Sequence[int], phrase_ids: Sequence[Sequence[int]]) -> np.ndarray:
    """Map tokens to phrases by finding each phrase's token ids in ``input_ids``, in order.

    The fallback for tokenizers without offsets. phrase_ids: per phrase, its ids tokenized alone
    without special tokens. Returns ``(T,) int64`` as ``token_parts_from_offsets``; a phrase that
    cannot be found (e.g. cut off by truncation) keeps no tokens.
    """
    ids = list(input_ids)
    out = np.full(len(ids), -1, dtype=np.int64)
    start = 0
    for k, pid in enumerate(phrase_ids):
        pid = list(pid)
        if not pid:
            continue
        for i in range(start, len(ids) - len(pid) + 1):
            if ids[i : i + len(pid)] == pid:
                out[i : i + len(pid)] = k
                start = i + len(pid)
                break
    return out


def chunk_phrases(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Split phrases into consecutive groups whose captions fit the model's text length.

    lengths: tokens per phrase (without its "."). budget: tokens available for phrases and their
    "." separators (the model's max text length minus [CLS] and [SEP]). A phrase longer than the
    budget gets a group of its own (the model then truncates it).
    """
    chunks: list[list[int]] = []
    used = 0
    for k, n in enumerate(lengths):
        need = int(n) + 1
        if chunks and used + need <= budget:
            chunks[-1].append(k)
            used += need
        else:
            chunks.append([k])
            used = need
    return chunks


def part_scores(probs: torch.Tensor, token_part: torch.Tensor, n_parts: int) -> torch.Tensor:
    """Per-part scores of each box: the max of ``probs`` over each part's tokens.

    probs: ``(B, Q, T)`` sigmoid scores of Q boxes against T text tokens. token_part: ``(T,)`` int64
    part index per token, -1 for tokens of no part. Returns ``(B, Q, n_parts)``; a part without
    tokens scores 0.
    """
    import torch

    b, q, t = probs.shape
    # Tokens of no part go to an extra column that is dropped, so one scatter does every part.
    index = torch.where(token_part[:t] < 0, n_parts, token_part[:t]).to(probs.device)
    out = torch.zeros(b, q, n_parts + 1, dtype=probs.dtype, device=probs.device)
    out.scatter_reduce_(2, index.view(1, 1, t).expand(b, q, t), probs, reduce="amax", include_self=True)
    return out[..., :n_parts]


# ---- the teacher ----------------------------------------------------------------------------------


class GroundingDinoTeacher(ModelTeacher):
    """Grounding DINO box teacher (see ``ModelTeacher`` for model, device, batch_size, prompts).

    box_threshold: minimum confidence of a kept box (the max sigmoid over its part's tokens).
    text_threshold: minimum score for a part to count as grounded in a box; a box is kept only when
    its best part passes both thresholds. Part phrases that do not fit the model's text length
    together are split into captions that do, each run on every view.
    """

    name = "grounding_dino"
    default_model = DEFAULT_MODEL
    auto_model = "AutoModelForZeroShotObjectDetection"
    model_types = _MODEL_TYPES
    thresholds = (0.25, 0.2)
    any_size = True  # a Swin backbone and sine position embeddings: any view size works

    def __init__(self, model: str = DEFAULT_MODEL, **kw):
        super().__init__(model, **kw)
        self.max_text_len = int(getattr(self.model.config, "max_text_len", 256))
        tok_max = getattr(self.processor.tokenizer, "model_max_length", None)
        if isinstance(tok_max, int) and 0 < tok_max < self.max_text_len:
            self.max_text_len = tok_max

    # ---- text ----

    def _phrase_token_ids(self, phrases: Sequence[str]) -> list[list[int]]:
        tok = self.processor.tokenizer
        return [list(tok(clean_phrase(p), add_special_tokens=False)["input_ids"]) for p in phrases]

    def _token_parts(
        self, caption: str, spans: list[tuple[int, int]], phrases: Sequence[str], input_ids: list[int]
    ) -> np.ndarray:
        """``(T,) int64``: phrase index of each token of the processor's ``input_ids``, -1 for none."""
        tok = self.processor.tokenizer
        try:
            enc = tok(caption, return_offsets_mapping=True)
            if list(enc["input_ids"]) == input_ids:
                return token_parts_from_offsets([tuple(o) for o in enc["offset_mapping"]], spans)
        except (NotImplementedError, TypeError, ValueError, KeyError):
            pass  # slow tokenizers have no offsets
        return token_parts_from_ids(input_ids, self._phrase_token_ids(phrases))

    def _chunks(self, phrases: Sequence[str]) -> list[list[int]]:
        lengths = [len(ids) for ids in self._phrase_token_ids(phrases)]
        budget = self.max_text_len - 2  # [CLS] and [SEP]
        for p, n in zip(phrases, lengths, strict=True):
            if n + 1 > budget:
                log.warning("prompt %r has %d tokens, more than the model's %d: it will be cut", p, n, budget)
        return chunk_phrases(lengths, budget)

    # ---- detection ----

    def prepare(self, prompts: Sequence[str]) -> None:
        """The captions of this call: each a chunk of the phrases, its token -> part map made once."""
        self._captions = [(chunk, *build_caption([prompts[k] for k in chunk])) for chunk in self._chunks(prompts)]
        self._token_part: dict[int, torch.Tensor] = {}

    def detect_batch(self, images: np.ndarray, prompts: Sequence[str], views: list[list[Detection]]) -> None:
        import torch

        for c, (chunk, caption, spans) in enumerate(self._captions):
            # channels_last said outright: inferring it is ambiguous for views 3 px wide or high.
            # keep_render_size: the views at their own size instead of resized to the processor's
            # (800 px on the short side for the published checkpoints: a 512 px render is upscaled).
            size = {"shortest_edge": min(images.shape[1:3]), "longest_edge": max(images.shape[1:3])}
            inputs = self.processor(
                images=list(images),
                text=[caption] * len(images),
                input_data_format="channels_last",
                return_tensors="pt",
                **({"size": size} if self.keep_render_size else {}),
            )
            if c not in self._token_part:
                ids = inputs["input_ids"][0]
                ids = ids[inputs["attention_mask"][0].bool()] if "attention_mask" in inputs else ids
                local = self._token_parts(caption, spans, [prompts[k] for k in chunk], ids.tolist())
                # Phrase index within the chunk -> index into the prompts.
                self._token_part[c] = torch.from_numpy(np.where(local < 0, -1, np.asarray(chunk)[np.maximum(local, 0)]))
            inputs = inputs.to(self.device)
            with self.running():
                out = self.model(**inputs)
            self._collect(out, self._token_part[c], len(prompts), images.shape[1:3], views)

    def _collect(
        self,
        out: Any,
        token_part: torch.Tensor,
        n_parts: int,
        size: tuple[int, int],
        views: list[list[Detection]],
    ) -> None:
        """Turn one forward's outputs into detections appended to ``views`` (one list per image)."""
        import torch

        h, w = size
        logits = out.logits.float()  # (B, Q, max_text_len), -inf beyond the text
        t = min(logits.shape[-1], token_part.shape[0])
        scores = part_scores(torch.sigmoid(logits[..., :t]), token_part[:t], n_parts)  # (B, Q, P)
        best, part = scores.max(dim=-1)
        # pred_boxes are (cx, cy, w, h) relative to the image; every view of a batch has the same
        # size, so the processor pads nothing and the boxes map straight to the view's pixels.
        cx, cy, bw, bh = out.pred_boxes.float().unbind(-1)
        boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=-1)
        boxes = boxes * torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
        boxes[..., 0::2] = boxes[..., 0::2].clamp(0, w)
        boxes[..., 1::2] = boxes[..., 1::2].clamp(0, h)
        keep = (
            (best >= self.box_threshold)
            & (best >= self.text_threshold)
            & (boxes[..., 2] > boxes[..., 0])
            & (boxes[..., 3] > boxes[..., 1])
        )
        best, part, boxes, keep = (x.cpu().numpy() for x in (best, part, boxes, keep))
        for i, dets in enumerate(views):
            for q in np.flatnonzero(keep[i]):
                dets.append(
                    Detection(
                        part=int(part[i, q]),
                        score=float(np.clip(best[i, q], 0.0, 1.0)),
                        box=boxes[i, q].astype(np.float32),
                    )
                )
