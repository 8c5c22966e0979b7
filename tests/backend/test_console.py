"""The CLI's progress: one bar per stage that counts the stage's own units, so its rate and the time
left are the work's (a teacher's views), not one bar per message."""

from __future__ import annotations

import io
import time

from partdistill.backend.cli import console


def test_a_stage_keeps_one_bar_that_counts_views_and_says_the_time_left(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(console.sys, "stderr", err)
    with console.ProgressBars(quiet=False) as bars:
        bars.update(0, 4, "teacher")
        first = bars.bar
        for done in range(1, 4):
            time.sleep(0.05)
            bars.update(done, 4, "teacher")
        assert bars.bar is first and first.n == 3 and first.unit == "view"
        shown = str(first)
        assert "3/4" in shown and "<" in shown and "view/s" in shown  # elapsed<remaining, views per second
        rate = first.format_dict["rate"] or first.n / first.format_dict["elapsed"]
        assert rate < 100  # the views' own pace (about 20 a second here), not thousands of steps
        bars.update(5, 100, "distill")
        assert bars.bar is not first and bars.bar.unit == "epoch"


def test_quiet_shows_nothing(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(console.sys, "stderr", err)
    with console.ProgressBars(quiet=True) as bars:
        bars.update(1, 4, "teacher")
    assert bars.bar is None and err.getvalue() == ""
