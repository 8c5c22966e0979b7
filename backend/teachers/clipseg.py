"""CLIPSeg as a mask teacher (P-VLM): a probability map per view and part, turned into masks.

CLIPSeg segments one image for one text prompt at a time: its text batch must equal its image
batch. Each batch of views is therefore preprocessed once and paired with every part prompt
(views x parts pairs in one forward). The logits come out at the processor's square input size
(352 px for the real checkpoint; the views are resized to it without keeping the aspect ratio),
so they are upsampled bilinearly to the view size and passed through a sigmoid.

A part's mask in a view is ``prob >= mask_threshold`` restricted to its connected regions of at
least ``min_pixels`` pixels (8-connected); its confidence is the mean probability inside the mask,
and its box is the mask's bounding box, so box-based consumers (voting, SAM refinement, the
whole-object filter) work on it too. ``split_components=True`` gives one detection per region
instead. A part with an empty mask gives no detection.

torch and transformers are imported inside the functions that need them, so importing this module
(and the teacher registry) stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from partdistill.shared.detections import Detection

from ..device import flush_denormals
from .base import ModelTeacher, check_positive_int, check_unit

DEFAULT_MODEL = "CIDAS/clipseg-rd64-refined"
_MODEL_TYPES = ("clipseg",)
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def mask_box(mask: np.ndarray) -> np.ndarray:
    """``(4,) float32`` xyxy pixel box of a non-empty ``(H, W)`` mask: ``[c0, r0, c1 + 1, r1 + 1]``
    (the exclusive bottom-right corner of the detections format)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float32)


def mask_detections(
    prob: np.ndarray,
    part: int,
    *,
    mask_threshold: float = 0.4,
    min_pixels: int = 16,
    split_components: bool = False,
) -> list[Detection]:
    """Detections of one part in one view from its ``(H, W)`` probability map.

    The mask is ``prob >= mask_threshold`` without its 8-connected regions smaller than
    ``min_pixels``. One detection (or, with ``split_components``, one per region) with that mask,
    the mask's bounding box, and the mean probability inside the mask as the score; none when the
    mask is empty.
    """
    from scipy import ndimage

    prob = np.asarray(prob, dtype=np.float32)
    fg = prob >= mask_threshold
    if not fg.any():
        return []
    labels, n = ndimage.label(fg, structure=_EIGHT_CONNECTED)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    big = np.flatnonzero(sizes >= min_pixels)
    big = big[big > 0]  # label 0 is the background
    if big.size == 0:
        return []
    if split_components:
        regions = [labels == k for k in big]
    else:
        keep = np.zeros(n + 1, dtype=bool)
        keep[big] = True
        regions = [keep[labels]]
    out = []
    for mask in regions:
        score = float(np.clip(prob[mask].mean(), 0.0, 1.0))
        out.append(Detection(part=int(part), score=score, box=mask_box(mask), mask=mask))
    return out


class ClipSegTeacher(ModelTeacher):
    """CLIPSeg mask teacher (see ``ModelTeacher`` for model, device, prompts).

    mask_threshold: probability at which a pixel belongs to the part. min_pixels: smallest connected
    region kept. split_components: one detection per region instead of one per part and view.
    box_threshold / text_threshold: minimum score (mean probability inside the mask) of a kept
    detection. batch_size: views per forward pass (each view is paired with every part, so a forward
    holds ``batch_size * n_parts`` image-text pairs).
    """

    name = "clipseg"
    default_model = DEFAULT_MODEL
    auto_model = "CLIPSegForImageSegmentation"
    model_types = _MODEL_TYPES

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        mask_threshold: float = 0.4,
        min_pixels: int = 16,
        split_components: bool = False,
        **kw,
    ):
        self.mask_threshold = check_unit("mask_threshold", mask_threshold)
        self.min_pixels = check_positive_int("min_pixels", min_pixels)
        self.split_components = bool(split_components)
        super().__init__(model, **kw)

    def detect_batch(self, images: np.ndarray, prompts: Sequence[str], views: list[list[Detection]]) -> None:
        probs = self.probabilities(images, prompts)
        min_score = max(self.box_threshold, self.text_threshold)
        for i, dets in enumerate(views):
            for k in range(len(prompts)):
                found = mask_detections(
                    probs[i, k],
                    k,
                    mask_threshold=self.mask_threshold,
                    min_pixels=self.min_pixels,
                    split_components=self.split_components,
                )
                dets.extend(d for d in found if d.score >= min_score)

    def probabilities(self, images: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        """``(n, P, H, W) float32`` part probabilities of one batch of views ``(n, H, W, 3) uint8``."""
        import torch
        import torch.nn.functional as F

        flush_denormals()
        n, h, w, _ = images.shape
        p = len(prompts)
        text = self.processor(text=list(prompts), padding=True, truncation=True, return_tensors="pt")
        pixels = self.processor(images=list(images), input_data_format="channels_last", return_tensors="pt")
        # Pair every view with every prompt: view-major, so pair i * P + k is (view i, part k).
        inputs = {
            "pixel_values": pixels["pixel_values"].repeat_interleave(p, dim=0),
            "input_ids": text["input_ids"].repeat(n, 1),
        }
        if "attention_mask" in text:
            inputs["attention_mask"] = text["attention_mask"].repeat(n, 1)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with self.running():
            logits = self.model(**inputs).logits
            # Older versions squeeze a batch of one to (h', w'): restore (pairs, 1, h', w').
            logits = logits.reshape(n * p, 1, logits.shape[-2], logits.shape[-1]).float()
            probs = torch.sigmoid(F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False))
        return probs.view(n, p, h, w).cpu().numpy()
