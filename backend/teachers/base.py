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
    PER_CALL = ("box_threshold", "text_threshold", "prompt_template", "object_name", "batch_size", "keep_render_size")

    def with_settings(self, **settings) -> Teacher:
        """A shallow copy sharing this teacher's loaded model, with some of ``PER_CALL`` changed
        (unknown names and settings this teacher does not have are ignored): a server keeps one
        model in memory whatever thresholds its jobs ask for."""
        out = copy.copy(self)
        for name, value in settings.items():
            if name in self.PER_CALL and hasattr(self, name):
                if name in ("box_threshold", "text_threshold"):
                    value = check_unit(name, value)
                elif name == "batch_size":
                    value = check_views_per_forward(value)
                elif name == "keep_render_size":
                    value = out.check_render_size(value)
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
    processor), on ``device`` (see ``device.resolve_device``), after checking that it fits in the
    memory free there (``memory.check_fits``). ``batch_size``: views per forward pass (0: one on a
    CPU, else as many as the memory the first view took allows). ``precision``: one of
    ``TEACHER_PRECISIONS``. Subclasses name the model: ``name``, ``default_model``, ``auto_model``
    (a transformers auto class), ``model_types`` (accepted ``config.model_type`` values)."""

    name = "model"
    default_model = ""
    auto_model = ""
    model_types: tuple[str, ...] = ()
    processor_parts: tuple[str, ...] = ("tokenizer", "image_processor")
    field = "options.teacher_model"

    def __init__(self, model: str = "", *, device: str = "auto", batch_size: int = 0, precision: str = "fp32"):
        from .loading import load_pretrained
        from .memory import check_fits, model_bytes

        self.batch_size = check_views_per_forward(batch_size)
        self.model_name = model or self.default_model
        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.device)
        check_fits(self, self.model_name, self.device)
        if self.device == "cpu":
            from ..allocator import keep_freed_memory

            keep_freed_memory()
        self.processor, self.model = load_pretrained(self, self.model_name, self.device)
        if self.precision == "int8":
            import warnings

            import torch

            with warnings.catch_warnings():  # torch.ao's notice of its move to torchao: the pinned torch has it
                warnings.simplefilter("ignore")
                self.model = torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8)
        self.memory_bytes = model_bytes(self.model)
        self._fitted = 0  # views per forward learnt from the memory a view took (batch_size 0, GPU)
        self._cap = 0  # views per forward after a pass ran out of memory (0: none did)

    def views_per_forward(self) -> int:
        """Views the next forward pass takes."""
        want = self.batch_size or (1 if self.device == "cpu" else max(self._fitted, 1))
        return min(want, self._cap) if self._cap else want

    def running(self):
        """The context every forward pass runs in: inference mode, and autocast at ``precision``."""
        import contextlib

        import torch

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.precision in ("bf16", "fp16"):
            dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
            stack.enter_context(torch.autocast(self.device.split(":")[0], dtype=dtype))
        return stack

    def forward_views(self, n_views: int, forward: Callable[[int, int], None]) -> None:
        """Call ``forward(start, end)`` over ``n_views`` views, ``views_per_forward()`` at a time.
        With ``batch_size`` 0 on a GPU the first pass takes one view and the rest as many as fit the
        memory it took; a pass out of memory is halved, and a single view out of memory is
        ``TeacherTooLargeError``."""
        import torch

        from .memory import TeacherTooLargeError, free_bytes, views_that_fit

        gpu = self.device.startswith("cuda")
        s = 0
        while s < n_views:
            e = min(s + self.views_per_forward(), n_views)
            if gpu:
                torch.cuda.reset_peak_memory_stats(self.device)
                before = torch.cuda.memory_allocated(self.device)
            try:
                forward(s, e)
            except torch.OutOfMemoryError:
                if e - s == 1:
                    raise TeacherTooLargeError(
                        self.name,
                        self.model_name,
                        self.memory_bytes * 2,
                        free_bytes(self.device),
                        self.device,
                        self.field,
                    ) from None
                self._cap = (e - s) // 2
                if gpu:
                    torch.cuda.empty_cache()
                continue
            if gpu and not self.batch_size:
                per_view = (torch.cuda.max_memory_allocated(self.device) - before) / (e - s)
                self._fitted = views_that_fit(int(per_view), free_bytes(self.device))
            s = e


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
        batch_size: int = 0,
        precision: str = "fp32",
        keep_render_size: bool = False,
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
        object_name: str | None = None,
    ):
        Teacher.__init__(self, prompt_template=prompt_template, object_name=object_name)
        box, text = self.thresholds
        self.box_threshold = check_unit("box_threshold", box if box_threshold is None else box_threshold)
        self.text_threshold = check_unit("text_threshold", text if text_threshold is None else text_threshold)
        self.keep_render_size = self.check_render_size(keep_render_size)
        PretrainedModel.__init__(self, model, device=device, batch_size=batch_size, precision=precision)

    #: Whether the model takes views at any size (``keep_render_size``); most are trained at one.
    any_size = False

    def check_render_size(self, keep: bool) -> bool:
        if keep and not self.any_size:
            raise ValidationError(
                "options.teacher_input", f"{self.name} sees every view at its own input size; only 'processor' applies"
            )
        return bool(keep)

    def detect_checked(
        self, images: np.ndarray, names: tuple[str, ...], progress: Progress | None, cancel: CancelFn | None
    ) -> Detections:
        """The loop over view batches; see ``Teacher.detect``."""
        from ..device import flush_denormals

        flush_denormals()
        n_views = images.shape[0]
        prompts = self.prompts(names)
        self.prepare(prompts)
        views: list[list[Detection]] = [[] for _ in range(n_views)]
        report_progress(progress, 0, n_views, TEACHER_STAGE)

        def forward(s: int, e: int) -> None:
            check_cancel(cancel)
            found: list[list[Detection]] = [[] for _ in range(e - s)]  # kept only when the pass succeeds
            self.detect_batch(images[s:e], prompts, found)
            views[s:e] = found
            report_progress(progress, e, n_views, TEACHER_STAGE)

        self.forward_views(n_views, forward)
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


def check_views_per_forward(v: object) -> int:
    """Views per forward pass: 0 (by memory) or a positive integer."""
    return check_positive_int("options.teacher_batch", v, minimum=0)


def check_precision(precision: object, device: str) -> str:
    """One of ``TEACHER_PRECISIONS`` that ``device`` can run: int8 only on the CPU, fp16 not there."""
    from partdistill.shared.options import TEACHER_PRECISIONS

    if precision not in TEACHER_PRECISIONS:
        raise ValidationError("options.teacher_precision", f"must be one of {', '.join(TEACHER_PRECISIONS)}")
    if precision == "int8" and device != "cpu":
        raise ValidationError("options.teacher_precision", f"int8 runs on the CPU only, not on {device}")
    if precision == "fp16" and device == "cpu":
        raise ValidationError("options.teacher_precision", "fp16 runs on a GPU only; on the CPU use bf16")
    return str(precision)


def limit_per_view(dets: list[Detection]) -> list[Detection]:
    """Keep at most ``limits.MAX_DETECTIONS_PER_VIEW`` detections, the best scored, in their order."""
    if len(dets) <= limits.MAX_DETECTIONS_PER_VIEW:
        return dets
    keep = sorted(range(len(dets)), key=lambda i: -dets[i].score)[: limits.MAX_DETECTIONS_PER_VIEW]
    return [dets[i] for i in sorted(keep)]
