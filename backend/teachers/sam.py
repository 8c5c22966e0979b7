"""SAM box -> mask refinement, and a teacher wrapper that applies it to any teacher's boxes.

A box VLM's box also holds background and pieces of the parts around the one it names; prompting
SAM (Segment Anything) with the box gives the mask of the object inside it, as PartSLIP++ does.
Per view the image embedding is computed once (``get_image_embeddings``, batched over views), then
all boxes of that view are prompts of the mask decoder; of SAM's three candidate masks per box the
one with the highest predicted IoU is kept (chosen before upsampling, so only one mask per box is
brought to the view size by ``post_process_masks``).

Each detection keeps its part, score and box and gets the mask. A detection that already had a
mask (CLIPSeg's, with its bounding box) gets SAM's mask instead; one without a box is left as it
is. When SAM's mask is empty the detection's mask is its box (all pixels whose centre is inside),
which claims exactly what the box alone did.

torch and transformers are imported inside the functions that need them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from partdistill.shared.detections import Detection, Detections, box_mask
from partdistill.shared.errors import ValidationError
from partdistill.shared.progress import Progress

from ..device import flush_denormals
from .base import (
    TEACHER_STAGE,
    CancelFn,
    PretrainedModel,
    Teacher,
    check_cancel,
    check_images,
    check_positive_int,
    check_views_per_forward,
    report_progress,
)

DEFAULT_MODEL = "facebook/sam-vit-base"
_MODEL_TYPES = ("sam",)


class SamRefiner(PretrainedModel):
    """Turns boxes into masks with SAM (see ``PretrainedModel`` for model, device, batch_size: views
    per image-encoder forward). boxes_per_prompt: boxes per mask-decoder call (bounds the memory of
    the upsampled masks).
    """

    name = "sam"
    default_model = DEFAULT_MODEL
    auto_model = "SamModel"
    model_types = _MODEL_TYPES
    processor_parts = ("image_processor",)
    field = "options.sam_model"

    def __init__(self, model: str = DEFAULT_MODEL, *, boxes_per_prompt: int = 32, **kw):
        self.boxes_per_prompt = check_positive_int("boxes_per_prompt", boxes_per_prompt)
        super().__init__(model, **kw)

    def refine(
        self,
        images: np.ndarray,
        detections: Detections,
        *,
        progress: Progress | None = None,
        cancel: CancelFn | None = None,
    ) -> Detections:
        """A mask for every detection with a box. images: ``(N, H, W, 3) uint8``, the views the
        detections were made on (one list per view). Returns new ``Detections``; the input is unchanged."""
        import torch

        flush_denormals()
        images = check_images(images)
        n_views, h, w, _ = images.shape
        if len(detections.views) != n_views:
            raise ValidationError("detections", f"has {len(detections.views)} view lists for {n_views} views")
        views = [list(v) for v in detections.views]
        todo = [n for n in range(n_views) if any(d.box is not None for d in views[n])]
        report_progress(progress, 0, len(todo), TEACHER_STAGE)

        def forward(s: int, e: int) -> None:
            check_cancel(cancel)
            encodings = []
            for n in todo[s:e]:
                boxes = [d.box for d in views[n] if d.box is not None]
                boxes = np.stack([np.asarray(b, dtype=np.float32) for b in boxes])
                boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
                boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
                # The processor resizes/pads the view and maps the boxes to the model's input frame.
                encodings.append(
                    self.processor(
                        images=[images[n]],
                        input_boxes=[boxes.tolist()],
                        input_data_format="channels_last",
                        return_tensors="pt",
                    )
                )
            pixels = torch.cat([e["pixel_values"] for e in encodings]).to(self.device)
            with self.running():
                embeddings = self.model.get_image_embeddings(pixels)
            masked = {}  # written into the views only when the whole pass succeeded
            for i, n in enumerate(todo[s:e]):
                it = iter(self._masks(embeddings[i : i + 1], encodings[i]))
                masked[n] = [d if d.box is None else self._with_mask(d, next(it), (h, w)) for d in views[n]]
            for n, dets in masked.items():
                views[n] = dets
            report_progress(progress, e, len(todo), TEACHER_STAGE)

        self.forward_views(len(todo), forward)
        return Detections(detections.part_names, views, detections.image_size)

    def _masks(self, embedding, enc) -> list[np.ndarray]:
        """``(H, W)`` bool masks, one per box of ``enc["input_boxes"]`` (1, B, 4), best predicted IoU."""
        import torch

        boxes = enc["input_boxes"].to(device=self.device, dtype=torch.float32)
        out: list[np.ndarray] = []
        for s in range(0, boxes.shape[1], self.boxes_per_prompt):
            with self.running():
                pred = self.model(
                    image_embeddings=embedding,
                    input_boxes=boxes[:, s : s + self.boxes_per_prompt],
                    multimask_output=True,
                )
                # Keep the candidate with the best predicted IoU before upsampling: (1, b, 1, h', w').
                best = pred.iou_scores.argmax(dim=-1)  # (1, b)
                masks = pred.pred_masks
                idx = best[..., None, None, None].expand(-1, -1, 1, *masks.shape[-2:])
                masks = torch.gather(masks, 2, idx)
                full = self.processor.post_process_masks(
                    masks, enc["original_sizes"], enc["reshaped_input_sizes"], binarize=True
                )[0]  # (b, 1, H, W) bool
            out.extend(full[:, 0].cpu().numpy())
        return out

    @staticmethod
    def _with_mask(d: Detection, mask: np.ndarray, size: tuple[int, int]) -> Detection:
        mask = np.ascontiguousarray(mask, dtype=bool)
        if not mask.any():
            mask = box_mask(d.box, size)
        return replace(d, box=np.asarray(d.box, dtype=np.float32), mask=mask)


class SamRefinedTeacher(Teacher):
    """A teacher whose boxes are refined into masks by SAM: ``base.detect`` then ``refiner.refine``.

    Prompts (template, object name) are the base teacher's. Progress runs over both stages.
    """

    def __init__(self, base: Teacher, refiner: SamRefiner):
        super().__init__(prompt_template=base.prompt_template, object_name=base.object_name)
        self.base = base
        self.refiner = refiner
        self.name = f"{base.name}+sam"

    def prompts(self, part_names: Sequence[str]) -> list[str]:
        return self.base.prompts(part_names)

    def with_settings(self, **settings) -> Teacher:
        out = super().with_settings(**settings)
        out.base = self.base.with_settings(**settings)
        if settings.get("batch_size") is not None:
            out.refiner = copy.copy(self.refiner)
            out.refiner.batch_size = check_views_per_forward(settings["batch_size"])
        return out

    def detect_checked(
        self, images: np.ndarray, names: tuple[str, ...], progress: Progress | None, cancel: CancelFn | None
    ) -> Detections:
        """The base teacher's detections with a SAM mask for every box. See ``Teacher.detect``."""
        n_views = images.shape[0]

        # one bar over both: the base's views, then SAM's (scaled: SAM skips views without boxes)
        def base_progress(done: int, total: int, stage: str) -> None:
            report_progress(progress, done * n_views // max(total, 1), 2 * n_views, TEACHER_STAGE)

        def sam_progress(done: int, total: int, stage: str) -> None:
            report_progress(
                progress, n_views + (n_views if total == 0 else done * n_views // total), 2 * n_views, TEACHER_STAGE
            )

        dets = self.base.detect(images, names, progress=base_progress if progress else None, cancel=cancel)
        check_cancel(cancel)
        return self.refiner.refine(images, dets, progress=sam_progress if progress else None, cancel=cancel)
