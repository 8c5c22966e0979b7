"""The time a stage has left, from its pace so far (Blender's status bar shows it)."""

from __future__ import annotations

from partdistill.shared.progress import StageClock


def test_the_time_left_follows_the_stages_own_pace_and_restarts_with_a_new_stage():
    now = [100.0]
    clock = StageClock(lambda: now[0])
    assert clock.line(0, 10, "teacher") == "teacher 0/10"
    now[0] += 6.0
    assert clock.line(2, 10, "teacher") == "teacher 2/10, 24 s left"  # 3 s a view, 8 views to go
    now[0] += 300.0
    assert clock.line(3, 10, "teacher") == "teacher 3/10, 11 min 54 s left"  # 102 s a view now
    assert clock.line(0, 100, "distill") == "distill 0/100"  # a new stage starts its own clock
    now[0] += 1.0
    assert clock.line(10, 100, "distill") == "distill 10/100, 9 s left"
