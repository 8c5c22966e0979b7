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


class StageClock:
    """How long the current stage has left, from its pace so far: for progress shown without tqdm
    (Blender's status bar). ``line(done, total, stage)`` -> ``"teacher 3/10, 21 s left"``."""

    def __init__(self, clock: Callable[[], float] | None = None):
        import time

        self._clock = clock or time.monotonic
        self._stage: str | None = None
        self._start = 0.0
        self._first = 0

    def remaining(self, done: int, total: int, stage: str) -> float | None:
        """Seconds left in ``stage`` at ``done`` of ``total`` (None until one step of it is done)."""
        now = self._clock()
        if stage != self._stage or done < self._first:
            self._stage, self._start, self._first = stage, now, done
        steps = done - self._first
        if steps <= 0 or total <= 0:
            return None
        return (now - self._start) / steps * max(total - done, 0)

    def line(self, done: int, total: int, stage: str) -> str:
        left = self.remaining(done, total, stage)
        text = f"{stage} {done}/{total}" if total > 0 else stage
        return text if left is None else f"{text}, {_duration(left)} left"


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60:02d} s"
