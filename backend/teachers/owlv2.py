"""OWLv2 as a box teacher (B-VLM): boxes with a part label and a confidence per view.

OWLv2 predicts one box per image patch (3600 for the 960 px base checkpoint) and scores every box
against every text query; the part prompts are the queries, given once per image (nested lists).
A box goes to its best-scoring query and that score (the sigmoid of its logit) is its confidence.
The image processor pads each view to a square at the bottom/right before resizing, so boxes come
back relative to the padded square: they are scaled with ``target_sizes = (S, S)``, ``S = max(H, W)``,
and clipped to the real view. Neighbouring patches often give near-duplicate boxes of the same
part; non-maximum suppression per part thins them (``nms_threshold=1`` keeps them all). Prompts
longer than the model's 16 tokens are cut, with a warning.

torch and transformers are imported inside the functions that need them, so importing this module
(and the teacher registry) stays cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from partdistill.shared.detections import Detection

from .base import ModelTeacher, check_unit

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

DEFAULT_MODEL = "google/owlv2-base-patch16-ensemble"
_MODEL_TYPES = ("owlv2",)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(A, B)`` IoU of xyxy boxes ``a (A, 4)`` and ``b (B, 4)``; 0 where the union is empty."""
    import torch

    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def nms_per_label(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou: float) -> torch.Tensor:
    """Greedy non-maximum suppression within each label (pure torch: no torchvision here).

    Returns the indices kept, best score first. A box is suppressed by a better-scored box of the
    same label whose IoU with it is above ``iou``; ``iou >= 1`` keeps every box.
    """
    import torch

    order = torch.argsort(scores, descending=True, stable=True)
    if iou >= 1.0 or order.numel() <= 1:
        return order
    b, lab = boxes[order], labels[order]
    overlap = (box_iou(b, b) > iou) & (lab[:, None] == lab[None, :])
    overlap = overlap.triu(diagonal=1).cpu().numpy()  # [i, j]: better box i suppresses j
    keep = np.ones(len(order), dtype=bool)
    for i in range(len(order)):
        if keep[i]:
            keep[i + 1 :] &= ~overlap[i, i + 1 :]
    return order[torch.from_numpy(np.flatnonzero(keep)).to(order.device)]


class Owlv2Teacher(ModelTeacher):
    """OWLv2 box teacher (see ``ModelTeacher`` for model, device, batch_size, prompts).

    box_threshold: minimum confidence of a kept box (sigmoid of its best query's logit; OWLv2's
    scores are low, 0.1-0.3 is the usual range). text_threshold: a box must pass it too, which for
    OWLv2 is the same test as ``box_threshold``. nms_threshold: IoU above which a lower-scored box of
    the same part is dropped (1 = keep all).
    """

    name = "owlv2"
    default_model = DEFAULT_MODEL
    auto_model = "AutoModelForZeroShotObjectDetection"
    model_types = _MODEL_TYPES
    thresholds = (0.1, 0.0)

    def __init__(self, model: str = DEFAULT_MODEL, *, nms_threshold: float = 0.3, **kw):
        self.nms_threshold = check_unit("nms_threshold", nms_threshold)
        super().__init__(model, **kw)

    def prepare(self, prompts: Sequence[str]) -> None:
        self._warn_long_prompts(prompts)

    def detect_batch(self, images: np.ndarray, prompts: Sequence[str], views: list[list[Detection]]) -> None:

        inputs = self.processor(
            text=[list(prompts)] * len(images),  # nested: the same queries for every image
            images=list(images),
            truncation=True,  # OWLv2 reads 16 tokens; longer prompts are cut (warned)
            input_data_format="channels_last",  # said outright: ambiguous for views 3 px wide
            return_tensors="pt",
        ).to(self.device)
        with self.running():
            out = self.model(**inputs)
        self._collect(out, images.shape[1:3], views)

    def _warn_long_prompts(self, prompts: Sequence[str]) -> None:
        tok = self.processor.tokenizer
        limit = getattr(tok, "model_max_length", None)
        if not isinstance(limit, int) or limit <= 0 or limit > 10_000:
            return
        for p in prompts:
            n = len(tok(p)["input_ids"])
            if n > limit:
                log.warning("prompt %r has %d tokens, more than the model's %d: it will be cut", p, n, limit)

    def _collect(self, out: Any, size: tuple[int, int], views: list[list[Detection]]) -> None:
        """Turn one forward's outputs into detections appended to ``views`` (one list per image)."""
        import torch

        h, w = size
        side = max(h, w)  # the processor padded the view to a side x side square (bottom/right)
        # threshold -1 keeps every box (the processor keeps scores strictly above it); ours is ">=".
        results = self.processor.image_processor.post_process_object_detection(
            out, threshold=-1.0, target_sizes=[(side, side)] * len(views)
        )
        limit = max(self.box_threshold, self.text_threshold)
        for dets, r in zip(views, results, strict=True):
            scores = r["scores"].float()
            labels = r["labels"]
            boxes = r["boxes"].float().clone()
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
            ok = (scores >= limit) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            idx = torch.nonzero(ok).flatten()
            keep = idx[nms_per_label(boxes[idx], scores[idx], labels[idx], self.nms_threshold)]
            keep = keep.sort().values  # query order, independent of the batch
            s_np = scores[keep].cpu().numpy()
            l_np = labels[keep].cpu().numpy()
            b_np = boxes[keep].cpu().numpy().astype(np.float32)
            for score, label, box in zip(s_np, l_np, b_np, strict=True):
                dets.append(Detection(part=int(label), score=float(np.clip(score, 0.0, 1.0)), box=box))
