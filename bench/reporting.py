"""What the benchmarks' reports share.

Markdown table rows, headless matplotlib figures, and a report written into the output folder as
markdown with its figure beside it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def table_row(first: object, cells: Iterable[str]) -> str:
    """One markdown table row: ``first`` then the ``cells``."""
    return f"| {first} | " + " | ".join(cells) + " |"


def table_head(first: str, columns: Sequence[str]) -> list[str]:
    """The header row and the separator row of a markdown table of ``first`` then ``columns``."""
    return [table_row(first, columns), "|---" * (len(columns) + 1) + "|"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend: the benchmarks draw their figures without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path, dpi: float | None = None) -> Path:
    """Save ``fig`` to ``path`` (``dpi`` None: matplotlib's default) and close it: pyplot keeps every
    figure it made alive until it is closed."""
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def write_report(out: Path, name: str, lines: Sequence[str], fig: Any = None, title: str = "") -> str:
    """``out/<name>.md`` from ``lines`` and, with a figure, ``out/<name>.png`` under ``title``; returns
    the markdown."""
    if fig is not None:
        fig.suptitle(title)
        fig.tight_layout()
        save_figure(fig, out / f"{name}.png", dpi=110)
    text = "\n".join(lines)
    (out / f"{name}.md").write_text(text + "\n")
    return text
