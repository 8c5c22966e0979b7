"""Messages of several lines become one line where one line is all there is room for (an index row,
a log line, a status bar)."""

from __future__ import annotations

from partdistill.shared.errors import one_line


def test_a_several_line_message_reads_as_one_line_with_its_breaks_kept():
    message = "cannot read x.obj:\n  line 3: a face names vertex 9\nthe file has 4 vertices\n"
    assert one_line(message) == "cannot read x.obj: line 3: a face names vertex 9; the file has 4 vertices"


def test_one_line_leaves_a_single_line_alone():
    assert one_line("  input: x.obj is a folder  ") == "input: x.obj is a folder"
