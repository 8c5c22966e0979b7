"""The benchmarks' run logs: one JSON line per finished run, keyed by ``row["key"]``, appended as each
run ends (an interrupted benchmark loses at most one run and resumes from the rest)."""

from __future__ import annotations

import json
from pathlib import Path


def read_runs(path: Path) -> dict[str, dict]:
    """The runs already in ``path`` (none when it does not exist), by key."""
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            out[row["key"]] = row
    return out


def append_run(path: Path, row: dict, done: dict, rows: list) -> None:
    """Write ``row`` to ``path`` and record it in ``done`` and ``rows``."""
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    done[row["key"]] = row
    rows.append(row)
