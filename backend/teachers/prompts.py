"""The text a teacher sees for each part: a template such as "the {part} of a {object}"."""

from __future__ import annotations

import string
from collections.abc import Sequence

from partdistill.shared.errors import ValidationError

DEFAULT_PROMPT_TEMPLATE = "{part}"
_TEMPLATE_FIELDS = ("part", "object")


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
