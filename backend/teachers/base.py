"""The 2D teacher interface, and the checks every teacher applies.

A teacher is a vision-language model that looks at rendered views and says where each named part is
(boxes for a B-VLM, masks for a P-VLM); the checks cover its inputs, settings and outputs.

Nothing here imports torch or transformers, so the registry and the CLI's help stay cheap.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Callable, Sequence

import numpy as np
from partdistill.shared import limits
from partdistill.shared.detections import Detection, Detections
from partdistill.shared.errors import ValidationError
from partdistill.shared.progress import Progress
from partdistill.shared.validation import check_part_names

from ..cancel import Cancelled
from ..device import resolve_device
from .prompts import DEFAULT_PROMPT_TEMPLATE, check_prompt_template, make_prompts

CancelFn = Callable[[], bool]
#: The progress stage of every teacher (SAM included), counted in views done.
TEACHER_STAGE = "teacher"
"""Returns True when the caller wants the work stopped."""


class TeacherCancelled(Cancelled):
    """Raised by ``detect`` when its ``cancel`` callback returned True; no partial result is returned.
    A kind of the engine's ``Cancelled``, so the server reports it as a cancelled job."""


class Teacher(abc.ABC):
    """A 2D teacher. Subclasses load their model in ``__init__`` (raising ``TeacherUnavailableError``
    when it cannot be had) and implement ``detect_checked``.

    ``prompt_template`` turns each part name into the text the model sees ("{part}",
    "the {part} of a {object}"); ``object_name`` fills ``{object}``.
    """

    name: str = "teacher"

    def __init__(self, *, prompt_template: str = DEFAULT_PROMPT_TEMPLATE, object_name: str | None = None):
        self.prompt_template = check_prompt_template(prompt_template)
        self.object_name = object_name
        # Fail now rather than at the first detect() when {object} has nothing to fill it.
        make_prompts(["part"], self.prompt_template, self.object_name)

    def prompts(self, part_names: Sequence[str]) -> list[str]:
        """The text prompt of each part, in the order of ``part_names``."""
        return make_prompts(part_names, self.prompt_template, self.object_name)

    #: Settings a job may change without loading the model again (``with_settings``).
    PER_CALL = ("box_threshold", "text_threshold", "prompt_template", "object_name")

    def with_settings(self, **settings) -> Teacher:
        """A shallow copy sharing this teacher's loaded model, with some of ``PER_CALL`` changed
        (unknown names and settings this teacher does not have are ignored): a server keeps one
        model in memory whatever thresholds its jobs ask for."""
        out = copy.copy(self)
        for name, value in settings.items():
            if name in self.PER_CALL and hasattr(self, name):
                if name in ("box_threshold", "text_threshold"):
                    value = check_unit(name, value)
                setattr(out, name, value)
        out.prompt_template = check_prompt_template(out.prompt_template)
        make_prompts(["part"], out.prompt_template, out.object_name)
        return out

    def detect(
        self,
        images: np.ndarray,
        part_names: Sequence[str],
        *,
        progress: Progress | None = None,
        cancel: CancelFn | None = None,
    ) -> Detections:
        """Detect the named parts in each view.

        images: ``(N, H, W, 3) uint8`` RGB views. part_names: the parts to look for; a detection's
        ``part`` indexes this list. Returns ``Detections(part_names, views)`` with one list per view,
        in view order; boxes are ``(4,) float32`` xyxy pixels inside the image. ``progress`` is called
        as work advances; when ``cancel()`` returns True, ``TeacherCancelled`` is raised.
        """
        images = check_images(images)
        names = check_part_names("part_names", part_names, limits.MAX_PARTS, limits.MAX_PART_NAME_CHARS)
        return self.detect_checked(images, names, progress, cancel)

    @abc.abstractmethod
    def detect_checked(
        self, images: np.ndarray, names: tuple[str, ...], progress: Progress | None, cancel: CancelFn | None
    ) -> Detections:
        """``detect`` once its inputs passed the checks every teacher applies."""


class PretrainedModel:
    """A Hugging Face model loaded for inference through the real ``from_pretrained`` path: a hub id
    (downloaded on first use when online) or a local folder saved with ``save_pretrained`` (model and
    processor), on ``device`` (see ``device.resolve_device``), run on ``batch_size``
    views per forward pass. Subclasses name the model: ``name``, ``default_model``, ``auto_model``
    (a transformers auto class), ``model_types`` (accepted ``config.model_type`` values)."""

    name = "model"
    default_model = ""
    auto_model = ""
    model_types: tuple[str, ...] = ()
    processor_parts: tuple[str, ...] = ("tokenizer", "image_processor")
    field = "options.teacher_model"

    def __init__(self, model: str = "", *, device: str = "auto", batch_size: int = 4):
        from .loading import load_pretrained

        self.batch_size = check_positive_int("batch_size", batch_size)
        self.model_name = model or self.default_model
        self.device = resolve_device(device)
        self.processor, self.model = load_pretrained(self, self.model_name, self.device)

    def view_batches(self, n_views: int) -> list[tuple[int, int]]:
        """``(start, end)`` of the views each forward pass takes."""
        return [(s, min(s + self.batch_size, n_views)) for s in range(0, n_views, self.batch_size)]


class ModelTeacher(PretrainedModel, Teacher):
    """A teacher that is one pretrained model: the loop over view batches (cancel, progress, the cap
    on detections per view) is here; each teacher supplies :meth:`detect_batch`.

    box_threshold / text_threshold: the minimum confidence of a kept detection (each teacher says
    what its scores are). prompt_template / object_name: see ``Teacher``.
    """

    #: ``(box_threshold, text_threshold)`` when a caller gives none.
    thresholds: tuple[float, float] = (0.0, 0.0)

    def __init__(
        self,
        model: str = "",
        *,
        device: str = "auto",
        box_threshold: float | None = None,
        text_threshold: float | None = None,
        batch_size: int = 4,
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
        object_name: str | None = None,
    ):
        Teacher.__init__(self, prompt_template=prompt_template, object_name=object_name)
        box, text = self.thresholds
        self.box_threshold = check_unit("box_threshold", box if box_threshold is None else box_threshold)
        self.text_threshold = check_unit("text_threshold", text if text_threshold is None else text_threshold)
        PretrainedModel.__init__(self, model, device=device, batch_size=batch_size)

    def detect_checked(
        self, images: np.ndarray, names: tuple[str, ...], progress: Progress | None, cancel: CancelFn | None
    ) -> Detections:
        """The loop over view batches; see ``Teacher.detect``."""
        from ..device import flush_denormals

        flush_denormals()
        n_views = images.shape[0]
        prompts = self.prompts(names)
        self.prepare(prompts)
        batches = self.view_batches(n_views)
        views: list[list[Detection]] = [[] for _ in range(n_views)]
        report_progress(progress, 0, n_views, TEACHER_STAGE)
        for s, e in batches:
            check_cancel(cancel)
            self.detect_batch(images[s:e], prompts, views[s:e])
            report_progress(progress, e, n_views, TEACHER_STAGE)
        return Detections(names, [limit_per_view(v) for v in views])

    def prepare(self, prompts: Sequence[str]) -> None:
        """Work on the prompts once per ``detect`` (warnings, caches); nothing by default."""

    @abc.abstractmethod
    def detect_batch(self, images: np.ndarray, prompts: Sequence[str], views: list[list[Detection]]) -> None:
        """Append the detections of ``images`` ``(n, H, W, 3) uint8`` to ``views`` (one list per
        image); a detection's ``part`` indexes ``prompts``."""


def check_images(images: object) -> np.ndarray:
    """Check the views given to a teacher: ``(N, H, W, 3) uint8`` with N >= 1."""
    if not isinstance(images, np.ndarray):
        raise ValidationError("images", f"expected a numpy array (N, H, W, 3) uint8, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise ValidationError("images", f"dtype must be uint8, got {images.dtype}")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValidationError("images", f"shape must be (N, H, W, 3), got {images.shape}")
    n, h, w, _ = images.shape
    if n < 1:
        raise ValidationError("images", "at least one view is required")
    if n > limits.MAX_VIEWS:
        raise ValidationError("images", f"{n} views exceed the limit of {limits.MAX_VIEWS}")
    if not (1 <= h <= limits.MAX_IMAGE_SIDE and 1 <= w <= limits.MAX_IMAGE_SIDE):
        raise ValidationError("images", f"view size {h}x{w} outside 1..{limits.MAX_IMAGE_SIDE} pixels")
    return images


def report_progress(progress: Progress | None, done: int, total: int, message: str) -> None:
    if progress is not None:
        progress(done, total, message)


def check_cancel(cancel: CancelFn | None) -> None:
    if cancel is not None and cancel():
        raise TeacherCancelled("detection cancelled")


def check_unit(name: str, v: object) -> float:
    """A number in [0, 1] (thresholds), as float; ValidationError naming ``name`` otherwise."""
    if not isinstance(v, int | float) or isinstance(v, bool) or not 0.0 <= float(v) <= 1.0:
        raise ValidationError(name, f"must be a number in [0, 1], got {v!r}")
    return float(v)


def check_positive_int(name: str, v: object, minimum: int = 1) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        raise ValidationError(name, f"must be an integer >= {minimum}, got {v!r}")
    return v


def limit_per_view(dets: list[Detection]) -> list[Detection]:
    """Keep at most ``limits.MAX_DETECTIONS_PER_VIEW`` detections, the best scored, in their order."""
    if len(dets) <= limits.MAX_DETECTIONS_PER_VIEW:
        return dets
    keep = sorted(range(len(dets)), key=lambda i: -dets[i].score)[: limits.MAX_DETECTIONS_PER_VIEW]
    return [dets[i] for i in sorted(keep)]
