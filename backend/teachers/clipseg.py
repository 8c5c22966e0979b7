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
from partdistill.shared.detections import Detection, Detections
from partdistill.shared.progress import Progress

from ..device import flush_denormals, resolve_device
from .base import (
    CancelFn,
    Teacher,
    check_cancel,
    check_positive_int,
    check_unit,
    limit_per_view,
    report_progress,
)
from .loading import load_pretrained
from .prompts import DEFAULT_PROMPT_TEMPLATE

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


class ClipSegTeacher(Teacher):
    """CLIPSeg mask teacher.

    model: hub id (downloaded on first use when online) or a local folder saved with
    ``save_pretrained`` (model + processor). device: "auto" (CUDA when available), "cpu", "cuda[:n]".
    mask_threshold: probability at which a pixel belongs to the part. min_pixels: smallest connected
    region kept. split_components: one detection per region instead of one per part and view.
    box_threshold / text_threshold: minimum score (mean probability inside the mask) of a kept
    detection; accepted so that the common teacher options (CLI, server) fit every teacher.
    batch_size: views per forward pass (each view is paired with every part, so a forward holds
    ``batch_size * n_parts`` image-text pairs). prompt_template / object_name: see ``Teacher``.
    """

    name = "clipseg"
    default_model = DEFAULT_MODEL

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "auto",
        mask_threshold: float = 0.4,
        min_pixels: int = 16,
        split_components: bool = False,
        box_threshold: float = 0.0,
        text_threshold: float = 0.0,
        batch_size: int = 4,
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
        object_name: str | None = None,
    ):
        super().__init__(prompt_template=prompt_template, object_name=object_name)
        self.mask_threshold = check_unit("mask_threshold", mask_threshold)
        self.min_pixels = check_positive_int("min_pixels", min_pixels)
        self.split_components = bool(split_components)
        self.box_threshold = check_unit("box_threshold", box_threshold)
        self.text_threshold = check_unit("text_threshold", text_threshold)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.model_name = model or DEFAULT_MODEL
        self.device = resolve_device(device)
        self.processor, self.model = load_pretrained(
            self.name,
            self.model_name,
            default_model=DEFAULT_MODEL,
            auto_model="CLIPSegForImageSegmentation",
            model_types=_MODEL_TYPES,
            device=self.device,
        )

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
        with torch.inference_mode():
            logits = self.model(**inputs).logits
            # Older versions squeeze a batch of one to (h', w'): restore (pairs, 1, h', w').
            logits = logits.reshape(n * p, 1, logits.shape[-2], logits.shape[-1]).float()
            probs = torch.sigmoid(F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False))
        return probs.view(n, p, h, w).cpu().numpy()

    def detect(
        self,
        images: np.ndarray,
        part_names: Sequence[str],
        *,
        progress: Progress | None = None,
        cancel: CancelFn | None = None,
    ) -> Detections:
        """Masks (with their boxes) per view. images: ``(N, H, W, 3) uint8``. See ``Teacher.detect``."""
        images, names = self._check_inputs(images, part_names)
        n_views = images.shape[0]
        prompts = self.prompts(names)
        batches = [(s, min(s + self.batch_size, n_views)) for s in range(0, n_views, self.batch_size)]
        views: list[list[Detection]] = [[] for _ in range(n_views)]
        min_score = max(self.box_threshold, self.text_threshold)
        report_progress(progress, 0, len(batches), f"{self.name}: segmenting {len(names)} parts in {n_views} views")
        for done, (s, e) in enumerate(batches, start=1):
            check_cancel(cancel)
            probs = self.probabilities(images[s:e], prompts)
            for i in range(e - s):
                for k in range(len(names)):
                    dets = mask_detections(
                        probs[i, k],
                        k,
                        mask_threshold=self.mask_threshold,
                        min_pixels=self.min_pixels,
                        split_components=self.split_components,
                    )
                    views[s + i].extend(d for d in dets if d.score >= min_score)
            report_progress(progress, done, len(batches), f"{self.name}: views {s + 1}-{e} of {n_views}")
        return Detections(names, [limit_per_view(v) for v in views])
