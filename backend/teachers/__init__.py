"""2D teachers (vision-language models) and their registry.

``make_teacher("grounding_dino", model="")`` builds a teacher by name; the heavy imports (torch,
transformers) happen only then, so importing this package is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import (
    DEFAULT_PROMPT_TEMPLATE,
    Teacher,
    TeacherCancelled,
    TeacherUnavailableError,
    make_prompts,
)

# name -> (module, class); modules are imported on first use.
_REGISTRY: dict[str, tuple[str, str]] = {
    "grounding_dino": (".grounding_dino", "GroundingDinoTeacher"),
}


def teacher_names() -> tuple[str, ...]:
    """The names ``make_teacher`` accepts."""
    return tuple(_REGISTRY)


def teacher_class(name: str) -> type[Teacher]:
    """The teacher class registered under ``name``; ValueError listing the names if unknown."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown teacher {name!r}; available teachers: {', '.join(teacher_names())}")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module, __name__), cls)


def make_teacher(name: str, model: str = "", **kw: Any) -> Teacher:
    """Build the teacher ``name`` with ``model`` (hub id or local folder; "" = the teacher's default).

    Extra keywords go to the teacher (device, thresholds, batch_size, prompt_template, ...).
    Raises ValueError for an unknown name and ``TeacherUnavailableError`` when the model cannot be
    loaded.
    """
    cls = teacher_class(name)
    return cls(model, **kw) if model else cls(**kw)


__all__ = [
    "DEFAULT_PROMPT_TEMPLATE",
    "Teacher",
    "TeacherCancelled",
    "TeacherUnavailableError",
    "make_prompts",
    "make_teacher",
    "teacher_class",
    "teacher_names",
]
