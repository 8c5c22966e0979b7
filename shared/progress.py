"""The progress callback types: one for every stage, one for what a client hears.

A backend's progress messages add a line of their own to the stage's."""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(done, total, stage)``: ``done`` of ``total`` steps of ``stage`` (a short label); an
#: exception raised in it stops the work.
Progress = Callable[[int, int, str], None]

#: ``on_progress(done, total, stage, message)``: the same from a backend, with its message ("queued",
#: "heartbeat", why a job was sent again, ...).
ServerProgress = Callable[[int, int, str, str], None]
