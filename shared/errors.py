"""The one error type for bad input, on both sides of the wire."""

from __future__ import annotations


class ValidationError(ValueError):
    """Input that breaks a documented rule. ``field`` names what was wrong (e.g. ``"faces"``,
    ``"views[3][0].box"``, ``"header.type"``) and always starts the message."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")
