"""Messages of several lines become one line where one line is all there is room for (an index row,
a log line, a status bar)."""

from __future__ import annotations

from partdistill.backend.teachers.loading import TeacherUnavailableError
from partdistill.shared.errors import one_line


def test_a_teachers_several_line_message_reads_as_one_line_with_its_breaks_kept():
    reason = "it is not in the local cache and https://huggingface.co does not answer"
    message = str(TeacherUnavailableError("grounding_dino", "IDEA-Research/grounding-dino-tiny", reason))
    line = one_line(message)
    assert "\n" not in line and "does not answer Provide" not in line
    assert "does not answer; Provide the teacher's model in one of these ways: - a hub id" in line
    assert "/path/to/folder; - or no teacher at all" in line


def test_one_line_leaves_a_single_line_alone():
    assert one_line("  input: x.obj is a folder  ") == "input: x.obj is a folder"
