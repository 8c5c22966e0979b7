"""The ``partdistill`` command line run in the test's own process, its output captured, and what a
user error must look like."""

from __future__ import annotations

import contextlib
import io

from partdistill.backend import cli


def run_cli(argv) -> tuple[int, str, str]:
    """``(exit status, stdout, stderr)`` of ``partdistill ARGV`` (arguments made strings)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def assert_one_line_error(rc: int, stderr: str, *needles: str) -> None:
    """A user error: exit status 2, no traceback, one line on stderr naming every one of ``needles``."""
    assert rc == 2
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("partdistill: error: "), stderr
    for n in needles:
        assert n in lines[0], stderr
