"""Small checks shared by every data type; each raises ValidationError naming the field."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import limits
from .errors import ValidationError


def check_array(
    field: str,
    value: object,
    dtype: np.dtype | type,
    shape: Sequence[int | None],
    *,
    finite: bool = False,
) -> np.ndarray:
    """Check dtype (exactly), rank and the fixed dimensions of ``shape`` (None = any size)."""
    if not isinstance(value, np.ndarray):
        raise ValidationError(field, f"expected a numpy array, got {type(value).__name__}")
    want = np.dtype(dtype)
    if value.dtype != want:
        raise ValidationError(field, f"dtype must be {want}, got {value.dtype}")
    if value.ndim != len(shape):
        raise ValidationError(field, f"shape must be {_fmt(shape)}, got {value.shape}")
    for got, exp in zip(value.shape, shape, strict=True):
        if exp is not None and got != exp:
            raise ValidationError(field, f"shape must be {_fmt(shape)}, got {value.shape}")
    if finite and value.size and not np.isfinite(value).all():
        raise ValidationError(field, "contains NaN or infinite values")
    return value


def check_index_range(field: str, value: np.ndarray, low: int, high: int) -> None:
    """Every entry in [low, high)."""
    if value.size == 0:
        return
    lo, hi = int(value.min()), int(value.max())
    if lo < low or hi >= high:
        raise ValidationError(field, f"values must lie in [{low}, {high}), found range [{lo}, {hi}]")


def check_max(field: str, count: int, limit: int) -> None:
    if count > limit:
        raise ValidationError(field, f"{count} exceeds the limit of {limit}")


def check_part_names(field: str, names: Sequence[str], limit: int, max_chars: int) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Sequence | np.ndarray):
        raise ValidationError(field, "must be a list of part names")
    out = tuple(str(n) if isinstance(n, np.str_) else n for n in names)
    if not out:
        raise ValidationError(field, "at least one part name is required")
    if len(out) > limit:
        raise ValidationError(field, f"{len(out)} part names, more than the {limit} allowed")
    seen: set[str] = set()
    for i, n in enumerate(out):
        if not isinstance(n, str) or not n.strip():
            raise ValidationError(f"{field}[{i}]", "must be a non-empty string")
        if len(n) > max_chars:
            raise ValidationError(f"{field}[{i}]", f"longer than {max_chars} characters")
        if n in seen:
            raise ValidationError(f"{field}[{i}]", f"duplicate part name {n!r}")
        seen.add(n)
    return out


def optional_scalar_int(field: str, value: object, dtype: np.dtype | type | None = None) -> int | None:
    """A 0-d integer array (of exactly ``dtype`` when given) as an int; None stays None."""
    if value is None:
        return None
    a = np.asarray(value)
    if a.shape != () or a.dtype.kind not in "iu" or (dtype is not None and a.dtype != np.dtype(dtype)):
        want = np.dtype(dtype).name if dtype is not None else "integer"
        raise ValidationError(field, f"must be a scalar {want}, got {a.dtype} {a.shape}")
    return int(a)


def parse_part_names(text: str) -> tuple[str, ...]:
    """ "seat, back; leg" -> ("seat", "back", "leg") — what people type in a text field or on a command line."""
    names = tuple(n.strip() for n in text.replace(";", ",").split(",") if n.strip())
    if not names:
        raise ValidationError("part_names", "type the part names, separated by commas (e.g. seat, back, leg)")

    return check_part_names("part_names", names, limits.MAX_PARTS, limits.MAX_PART_NAME_CHARS)


def _fmt(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"


def check_warnings(field_name: str, warnings: object) -> list[str]:
    """A list of at most ``MAX_WARNINGS`` one-line strings of at most ``MAX_WARNING_CHARS``."""
    if not isinstance(warnings, list | tuple) or len(warnings) > limits.MAX_WARNINGS:
        raise ValidationError(field_name, f"must be a list of at most {limits.MAX_WARNINGS} strings")
    for i, w in enumerate(warnings):
        if not isinstance(w, str) or len(w) > limits.MAX_WARNING_CHARS:
            raise ValidationError(f"{field_name}[{i}]", f"must be a string of at most {limits.MAX_WARNING_CHARS} chars")
    return list(warnings)
