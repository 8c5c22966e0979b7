"""The ``partdistill`` command line run in the test's own process, its output captured."""

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
