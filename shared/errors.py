"""The one error type for bad input, on both sides of the wire."""

from __future__ import annotations

import reprlib


class ValidationError(ValueError):
    """Input that breaks a documented rule. ``field`` names what was wrong (e.g. ``"faces"``,
    ``"views[3][0].box"``, ``"header.type"``) and always starts the message."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 2, 60, 60, 6, 4


def shown(value: object) -> str:
    """A short repr of anything a message may carry, for error messages: never long, never deep
    (a hostile, deeply nested value must not turn a clear error into a crash)."""
    return _SHORT.repr(value)


def one_line(message: str) -> str:
    """A message of several lines as one (for an index row, a log line, a status bar): a line that
    ends with ":" runs into the next, other lines are separated by "; "."""
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    out = ""
    for ln in lines:
        out += ln if not out else (" " if out.endswith(":") else "; ") + ln
    return out
