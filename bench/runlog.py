"""The benchmarks' run logs, and the setup every run of the real-mesh runners is made with.

A run log holds one JSON line per finished run, keyed by ``row["key"]``, appended as each run ends
(an interrupted benchmark loses at most one run and resumes from the rest)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from partdistill.shared.options import SegmentOptions

T = TypeVar("T")
Log = Callable[[str], None]


@dataclass(frozen=True)
class RunSetup:
    """What every run of a benchmark on real meshes is made with: the product's options (validated
    here) and the capture settings of the meshes' views."""

    options: SegmentOptions = field(default_factory=SegmentOptions)
    views: int = 10
    resolution: int = 512

    def __post_init__(self) -> None:
        self.options.validate()


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


@dataclass
class RunLog:
    """A run log being added to: its file, the runs it holds by key (``done``), and the rows of this
    call (``rows``: the runs asked for, from the log or new, in the order they were asked for)."""

    path: Path
    done: dict[str, dict]
    rows: list[dict] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path) -> RunLog:
        """The log at ``path`` (its folder made when missing), with the runs it already holds."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(path, read_runs(path))

    def missing(self, runs: Iterable[tuple[T, str]]) -> Iterator[tuple[T, str]]:
        """The ``(item, run key)`` pairs of ``runs`` whose run is not in the log yet, in order.

        The rows of the others join ``rows`` as the iteration passes them, so the rows the caller adds
        while iterating keep the order of ``runs``."""
        for item, key in runs:
            if key in self.done:
                self.rows.append(self.done[key])
            else:
                yield item, key

    def all_done(self, keys: Sequence[str]) -> bool:
        """Whether every run of ``keys`` is in the log; their rows then join ``rows``."""
        if not all(key in self.done for key in keys):
            return False
        self.rows += [self.done[key] for key in keys]
        return True

    def add(self, row: dict) -> None:
        """Append a finished run to the file and to ``done`` and ``rows``."""
        with self.path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        self.done[row["key"]] = row
        self.rows.append(row)
