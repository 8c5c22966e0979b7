"""The 2D teacher interface: a vision-language model that looks at rendered views and says where
each named part is (boxes for a B-VLM, masks for a P-VLM).

Nothing here imports torch or transformers, so the registry and the CLI's help stay cheap.
"""

from __future__ import annotations

import abc
import os
import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from partdistill.backend.cancel import Cancelled
from partdistill.shared import limits
from partdistill.shared.detections import Detection, Detections
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
    and ``reason`` are kept as attributes. ``option`` is the command-line option that names the
    model (``--teacher-model``; ``--sam-model`` for the SAM refiner).
    """

    def __init__(
        self,
        teacher: str,
        model: str,
        reason: str,
        *,
        default_model: str | None = None,
        option: str = "--teacher-model",
    ):
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
            f"  - a hub id, downloaded on first use when this machine is online: {option} {example}\n"
            "  - a local folder holding the weights and processor files (config.json, model.safetensors, "
            f"tokenizer/processor configs), e.g. made with save_pretrained: {option} /path/to/folder\n"
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


# ---- helpers for teachers built on Hugging Face checkpoints -----------------------------------------


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``; ``"cpu"`` / ``"cuda[:n]"`` checked."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise ValidationError("device", f"must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValidationError("device", f"{device!r} requested but CUDA is not available on this machine")
    return device


def flush_denormals() -> None:
    """Make torch flush denormal floats to zero (process-wide, as the engine does).

    Randomly initialised models (the tests' tiny ones) and some real weights produce denormal floats,
    which some CPUs compute a hundred times slower than normal ones; flushing them to zero changes
    no result that matters here. A no-op where the CPU has no such mode.
    """
    import torch

    torch.set_flush_denormal(True)


def check_unit(name: str, v: object) -> float:
    """A number in [0, 1] (thresholds), as float; ValidationError naming ``name`` otherwise."""
    if not isinstance(v, int | float) or isinstance(v, bool) or not 0.0 <= float(v) <= 1.0:
        raise ValidationError(name, f"must be a number in [0, 1], got {v!r}")
    return float(v)


def check_positive_int(name: str, v: object, minimum: int = 1) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        raise ValidationError(name, f"must be an integer >= {minimum}, got {v!r}")
    return v


def looks_like_path(model: str) -> bool:
    """True when ``model`` names the file system rather than a hub id ("name" or "org/name")."""
    return (
        model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1 or Path(model).expanduser().exists()
    )


def load_pretrained(
    teacher: str,
    model: str,
    *,
    default_model: str,
    auto_model: str,
    model_types: Sequence[str],
    processor_parts: Sequence[str] = ("tokenizer", "image_processor"),
    device: str = "cpu",
    option: str = "--teacher-model",
) -> tuple[Any, Any]:
    """Load ``(processor, model)`` from a hub id or a local folder (``save_pretrained`` layout).

    auto_model: the name of a transformers auto class (``"AutoModelForZeroShotObjectDetection"``) or
    model class. model_types: the ``config.model_type`` values accepted. processor_parts: attributes
    the processor must have. Every failure (missing folder, offline without a cache, wrong model
    type, bad files) becomes a ``TeacherUnavailableError`` that tells the user how to provide a
    model (``option``: the command-line option that names it). The model is put in eval mode on
    ``device``.
    """
    if looks_like_path(model):
        folder = Path(model).expanduser()
        if not folder.is_dir():
            raise TeacherUnavailableError(
                teacher, model, f"no such folder: {folder}", default_model=default_model, option=option
            )
        source = str(folder)
    else:
        source = model
    try:
        import transformers

        processor = transformers.AutoProcessor.from_pretrained(source)
        net = getattr(transformers, auto_model).from_pretrained(source)
    except Exception as e:  # OSError, hub errors, bad configs: all mean "no usable model here"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise TeacherUnavailableError(
            teacher, model, f"{type(e).__name__}: {first}", default_model=default_model, option=option
        ) from e
    model_type = getattr(net.config, "model_type", "")
    if model_type not in model_types:
        raise TeacherUnavailableError(
            teacher,
            model,
            f"it holds a {model_type!r} model, not one of {list(model_types)}",
            default_model=default_model,
            option=option,
        )
    missing = [p for p in processor_parts if getattr(processor, p, None) is None]
    if missing:
        raise TeacherUnavailableError(
            teacher,
            model,
            f"its processor lacks {' and '.join(missing)}",
            default_model=default_model,
            option=option,
        )
    net.eval().to(device)
    return processor, net


def limit_per_view(dets: list[Detection]) -> list[Detection]:
    """Keep at most ``limits.MAX_DETECTIONS_PER_VIEW`` detections, the best scored, in their order."""
    if len(dets) <= limits.MAX_DETECTIONS_PER_VIEW:
        return dets
    keep = sorted(range(len(dets)), key=lambda i: -dets[i].score)[: limits.MAX_DETECTIONS_PER_VIEW]
    return [dets[i] for i in sorted(keep)]


# ---- whole-object boxes -------------------------------------------------------------------------


def box_pixel_span(box: np.ndarray, h: int, w: int) -> tuple[int, int, int, int]:
    """Rows ``r0:r1`` and columns ``c0:c1`` of the pixels whose centre lies inside ``box`` (xyxy px),
    the convention of the lifting (pixel (i, j) spans [i, i+1))."""
    x0, y0, x1, y1 = (float(x) for x in box)
    c0, c1 = int(np.clip(np.ceil(x0 - 0.5), 0, w)), int(np.clip(np.ceil(x1 - 0.5), 0, w))
    r0, r1 = int(np.clip(np.ceil(y0 - 0.5), 0, h)), int(np.clip(np.ceil(y1 - 0.5), 0, h))
    return r0, r1, c0, c1


def whole_object_box(box: np.ndarray, foreground: np.ndarray, max_cover: float = 0.85) -> bool:
    """True when ``box`` covers (nearly) the whole object of one view.

    box: ``(4,)`` xyxy pixels. foreground: ``(H, W)`` bool, the object's pixels in that view. The box
    covers the whole object when it contains at least ``max_cover`` of the area of the foreground's
    bounding box (pixel edges: a foreground spanning columns 3..7 spans x in [3, 8)) AND at least
    ``max_cover`` of the foreground pixels (a pixel counts when its centre is inside the box). An
    empty foreground has no object to cover: False.
    """
    fg = np.asarray(foreground, dtype=bool)
    rows = np.flatnonzero(fg.any(axis=1))
    if rows.size == 0:
        return False
    cols = np.flatnonzero(fg.any(axis=0))
    fx0, fy0, fx1, fy1 = float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)
    x0, y0, x1, y1 = (float(x) for x in box)
    inter = max(0.0, min(x1, fx1) - max(x0, fx0)) * max(0.0, min(y1, fy1) - max(y0, fy0))
    if inter < max_cover * (fx1 - fx0) * (fy1 - fy0):
        return False
    r0, r1, c0, c1 = box_pixel_span(box, *fg.shape)
    return int(fg[r0:r1, c0:c1].sum()) >= max_cover * int(fg.sum())


def drop_whole_object_boxes(
    detections: Detections, foreground_masks: np.ndarray, max_cover: float = 0.85
) -> Detections:
    """Drop the boxes that cover (nearly) the whole object, as PartSLIP does.

    A box VLM asked for "leg" often answers with a box around the whole chair. Such a box says
    nothing about where the part is, and lifted it labels the whole shape with that part. A box is
    dropped when it contains at least ``max_cover`` of the area of the foreground's bounding box AND
    at least ``max_cover`` of the foreground pixels of its view (see ``whole_object_box``). Both are
    needed: a part seen large (a table top from above) may hold most of the object's pixels without
    spanning its bounding box, and a thin diagonal box may span the bounding box while holding few
    of its pixels.

    detections: one list per view. foreground_masks: ``(N, H, W)`` bool, the object's pixels per view
    (``face_id >= 0`` of a capture). max_cover: in (0, 1]. Detections without a box (masks only) are
    kept. Returns a new ``Detections`` sharing the kept ``Detection`` objects; the input is unchanged.
    """
    fg = np.asarray(foreground_masks)
    if fg.ndim != 3:
        raise ValidationError("foreground_masks", f"must be (N, H, W) bool, got shape {fg.shape}")
    if fg.shape[0] != len(detections.views):
        raise ValidationError(
            "foreground_masks", f"has {fg.shape[0]} views, the detections have {len(detections.views)}"
        )
    if not isinstance(max_cover, int | float) or isinstance(max_cover, bool) or not 0.0 < float(max_cover) <= 1.0:
        raise ValidationError("max_cover", f"must be a number in (0, 1], got {max_cover!r}")
    fg = fg.astype(bool, copy=False)
    views = [
        [d for d in dets if d.box is None or not whole_object_box(np.asarray(d.box), fg[n], float(max_cover))]
        for n, dets in enumerate(detections.views)
    ]
    return Detections(detections.part_names, views, detections.image_size)
