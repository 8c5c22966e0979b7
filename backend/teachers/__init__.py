"""2D teachers (vision-language models) and their registry.

``make_teacher("grounding_dino", model="")`` builds a teacher by name; the heavy imports (torch,
transformers) happen only then, so importing this package is cheap. Teachers: "grounding_dino" and
"owlv2" (boxes, B-VLM), "clipseg" (masks, P-VLM). Any of them can have its boxes refined into masks
by SAM per run: ``make_teacher(name, model, sam_model="")``.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import Teacher, TeacherCancelled
from .loading import TeacherUnavailableError
from .prompts import DEFAULT_PROMPT_TEMPLATE, make_prompts

# name -> (module, class); modules are imported on first use.
_REGISTRY: dict[str, tuple[str, str]] = {
    "grounding_dino": (".grounding_dino", "GroundingDinoTeacher"),
    "owlv2": (".owlv2", "Owlv2Teacher"),
    "clipseg": (".clipseg", "ClipSegTeacher"),
}
DEFAULT_SAM_MODEL = "facebook/sam-vit-base"


def teacher_names() -> tuple[str, ...]:
    """The names ``make_teacher`` accepts."""
    return tuple(_REGISTRY)


def teacher_class(name: str) -> type[Teacher]:
    """The teacher class registered under ``name``; ValueError listing the names if unknown."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown teacher {name!r}; available teachers: {', '.join(teacher_names())}")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module, __name__), cls)


def make_teacher(name: str, model: str = "", *, sam_model: str | None = None, **kw: Any) -> Teacher:
    """Build the teacher ``name`` with ``model`` (hub id or local folder; "" = the teacher's default).

    Extra keywords go to the teacher (device, thresholds, batch_size, precision, keep_render_size,
    prompt_template, ...); SAM gets the same device, batch_size and precision.
    sam_model: None (no refinement), or a SAM hub id / local folder ("" or "default" =
    ``facebook/sam-vit-base``): the teacher's boxes are then turned into masks by SAM
    (``SamRefinedTeacher``), on the teacher's ``device``.
    Raises ValueError for an unknown name and ``TeacherUnavailableError`` when a model cannot be
    loaded.
    """
    cls = teacher_class(name)
    teacher = cls(model, **kw) if model else cls(**kw)
    if sam_model is None:
        return teacher
    from .sam import SamRefinedTeacher, SamRefiner

    sam = DEFAULT_SAM_MODEL if sam_model in ("", "default") else sam_model
    same = {k: kw[k] for k in ("device", "batch_size", "precision") if k in kw}
    return SamRefinedTeacher(teacher, SamRefiner(sam, **same))


def teacher_from_options(options) -> Teacher:
    """The teacher a ``SegmentOptions`` asks for (name, model, thresholds, prompt template, SAM)."""
    return make_teacher(
        options.teacher,
        options.teacher_model,
        device=options.device,
        box_threshold=options.box_threshold,
        text_threshold=options.text_threshold,
        prompt_template=options.prompt_template,
        object_name=options.object_name or None,
        sam_model=options.sam_model,
        batch_size=options.teacher_batch,
        precision=options.teacher_precision,
        keep_render_size=options.teacher_input == "render",
    )


__all__ = [
    "teacher_from_options",
    "DEFAULT_PROMPT_TEMPLATE",
    "DEFAULT_SAM_MODEL",
    "Teacher",
    "TeacherCancelled",
    "TeacherUnavailableError",
    "make_prompts",
    "make_teacher",
    "teacher_class",
    "teacher_names",
]
