"""The 2D teacher interface: a vision-language model that looks at rendered views and says where
each named part is (boxes for a B-VLM, masks for a P-VLM).

Nothing here imports torch or transformers, so the registry and the CLI's help stay cheap.
"""

from __future__ import annotations

import abc
import os
import string
from collections.abc import Callable, Sequence

import numpy as np
from partdistill.backend.cancel import Cancelled
from partdistill.shared import limits
from partdistill.shared.detections import Detections
from partdistill.shared.errors import ValidationError
from partdistill.shared.validation import check_part_names

ProgressFn = Callable[[int, int, str], None]
"""``progress(done, total, message)``; ``done`` counts finished work units out of ``total``."""
CancelFn = Callable[[], bool]
"""Returns True when the caller wants the work stopped."""

DEFAULT_PROMPT_TEMPLATE = "{part}"
_TEMPLATE_FIELDS = ("part", "object")
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


class TeacherUnavailableError(RuntimeError):
    """The teacher's model cannot be loaded (offline without a cached copy, a missing folder, ...).

    The message is meant for the user as is: it names the model, the reason, and the three ways to
    provide a teacher (hub id, local folder, or detections brought as JSON). ``teacher``, ``model``
    and ``reason`` are kept as attributes.
    """

    def __init__(self, teacher: str, model: str, reason: str, *, default_model: str | None = None):
        self.teacher = teacher
        self.model = model
        self.reason = reason
        example = default_model or model or "<hub-id>"
        offline = ""
        if any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE") for v in _OFFLINE_VARS):
            offline = " (offline mode is on: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE is set)"
        super().__init__(
            f"Cannot load the {teacher} teacher model {model!r}: {reason}{offline}\n"
            "Provide the teacher's model in one of these ways:\n"
            f"  - a hub id, downloaded on first use when this machine is online: --teacher-model {example}\n"
            "  - a local folder holding the weights and processor files (config.json, model.safetensors, "
            "tokenizer/processor configs), e.g. made with save_pretrained: --teacher-model /path/to/folder\n"
            "  - or no teacher at all: bring 2D detections as a JSON file: --detections FILE.json "
            "(format in the README)"
        )


class TeacherCancelled(Cancelled):
    """Raised by ``detect`` when its ``cancel`` callback returned True; no partial result is returned.
    A kind of the engine's ``Cancelled``, so the server reports it as a cancelled job."""


def check_prompt_template(template: str) -> str:
    """Check a prompt template: it must use ``{part}`` and may use ``{object}``, nothing else."""
    if not isinstance(template, str) or not template.strip():
        raise ValidationError("prompt_template", "must be a non-empty string such as '{part}'")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise ValidationError("prompt_template", f"{template!r} is not a valid template: {e}") from None
    unknown = sorted({f for f in fields if f not in _TEMPLATE_FIELDS})
    if unknown:
        raise ValidationError(
            "prompt_template",
            f"{template!r} uses unknown field(s) {unknown}; only {{part}} and {{object}} exist",
        )
    if "part" not in fields:
        raise ValidationError("prompt_template", f"{template!r} must contain {{part}}")
    return template


def make_prompts(
    part_names: Sequence[str], template: str = DEFAULT_PROMPT_TEMPLATE, object_name: str | None = None
) -> list[str]:
    """One text prompt per part, e.g. ``"the {part} of a {object}"`` -> ``"the seat of a chair"``.

    Whitespace is collapsed (names may carry stray spaces). A template with ``{object}`` needs
    ``object_name``.
    """
    check_prompt_template(template)
    uses_object = any(f == "object" for _, f, _, _ in string.Formatter().parse(template))
    if uses_object and not (object_name and object_name.strip()):
        raise ValidationError("prompt_template", f"{template!r} uses {{object}}: give the object name (e.g. 'chair')")
    obj = " ".join((object_name or "").split())
    return [" ".join(template.format(part=" ".join(n.split()), object=obj).split()) for n in part_names]


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


def report_progress(progress: ProgressFn | None, done: int, total: int, message: str) -> None:
    if progress is not None:
        progress(done, total, message)


def check_cancel(cancel: CancelFn | None) -> None:
    if cancel is not None and cancel():
        raise TeacherCancelled("detection cancelled")


class Teacher(abc.ABC):
    """A 2D teacher. Subclasses load their model in ``__init__`` (raising ``TeacherUnavailableError``
    when it cannot be had) and implement ``detect``.

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

    @abc.abstractmethod
    def detect(
        self,
        images: np.ndarray,
        part_names: Sequence[str],
        *,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> Detections:
        """Detect the named parts in each view.

        images: ``(N, H, W, 3) uint8`` RGB views. part_names: the parts to look for; a detection's
        ``part`` indexes this list. Returns ``Detections(part_names, views)`` with one list per view,
        in view order; boxes are ``(4,) float32`` xyxy pixels inside the image. ``progress`` is called
        as work advances; when ``cancel()`` returns True, ``TeacherCancelled`` is raised.
        """

    @staticmethod
    def _check_inputs(images: object, part_names: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
        images = check_images(images)
        names = check_part_names("part_names", part_names, limits.MAX_PARTS, limits.MAX_PART_NAME_CHARS)
        return images, names
