"""The batch's review of its collection: shapes unlike the rest flagged, worst first, to look at.

After a batch, every labelled shape's part figures (``labels.json`` stats ``parts``) and its
disagreement with the category student are compared across the collection
(``pipeline.outliers``). A flagged shape gets its warnings in its ``labels.json`` and the index (each
starting "collection: ", replaced on every re-run); ``collection.json`` holds the collection's
warnings, the figures and the shapes to check first; ``review.png`` shows those shapes, worst first.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from partdistill.shared.atomic import atomic_file

from ..pipeline.outliers import FLAG_PREFIX, CollectionFlags, PartFigures, flag_collection

#: At most this many shapes on the contact sheet.
SHEET_SHAPES = 12


def review_batch(out: Path, rows: dict[int, dict], names: tuple[str, ...], mode: str) -> list[str]:
    """Flag the batch's labelled shapes (``rows``: the index rows, updated in place) and write
    ``collection.json`` and ``review.png`` into ``out``; returns the summary's lines."""
    labelled = [i for i in sorted(rows) if rows[i]["status"] in ("done", "skipped")]
    docs, figures, disagreement = {}, [], []
    for i in labelled:
        try:
            doc = json.loads((Path(rows[i]["output"]) / "labels.json").read_text())
            parts = doc["stats"]["parts"]
        except (OSError, ValueError, KeyError, TypeError):
            doc, parts = None, None
        docs[i] = doc
        figures.append(None if parts is None else PartFigures.from_dict(parts, names))
        disagreement.append(float(doc["stats"].get("disagreement", np.nan)) if doc else np.nan)
    flags = flag_collection(figures, np.array(disagreement, np.float64), names)
    for k, i in enumerate(labelled):
        if docs[i] is not None:
            _rewrite_warnings(Path(rows[i]["output"]) / "labels.json", docs[i], flags.shape_warnings[k], rows[i])
    order = [labelled[k] for k in flags.review_order()]
    _write_summary(out / "collection.json", rows, labelled, flags, order, names, mode)
    lines = [f"collection: {w}" for w in flags.collection_warnings]
    if order:
        from ..io.preview import save_contact_sheet

        tiles = [
            (
                Path(rows[i]["output"]) / "preview.png",
                f"{Path(rows[i]['input']).name}{_sure(rows[i])}: {_first_flag(rows[i])}",
            )
            for i in order[:SHEET_SHAPES]
            if (Path(rows[i]["output"]) / "preview.png").is_file()
        ]
        if tiles:
            with atomic_file(out / "review.png") as tmp:
                save_contact_sheet(tmp, tiles, names)
        which = "this shape" if len(order) == 1 else f"these {len(order)} shapes"
        lines.append(f"check {which} first (worst first; pictures: {out / 'review.png'}):")
        lines += [f"  {rows[i]['input']}{_sure(rows[i])}: {_first_flag(rows[i])}" for i in order]
    else:
        (out / "review.png").unlink(missing_ok=True)
    return lines


def _sure(row: dict) -> str:
    """The shape's confidence from its index row, as `` (confidence 0.59)``; empty where the row
    has none (an index written before the column was)."""
    return f" (confidence {float(row['confidence']):.2f})" if row.get("confidence") not in (None, "") else ""


def _first_flag(row: dict) -> str:
    flags = [w for w in row["warnings"].split(" | ") if w.startswith(FLAG_PREFIX)]
    return flags[0].removeprefix(FLAG_PREFIX) if flags else ""


def _rewrite_warnings(path: Path, doc: dict, flags: list[str], row: dict) -> None:
    kept = [w for w in doc.get("warnings", []) if not w.startswith(FLAG_PREFIX)]
    warnings = kept + [FLAG_PREFIX + w for w in flags]
    if warnings != doc.get("warnings"):
        doc["warnings"] = warnings
        with atomic_file(path) as tmp:
            tmp.write_text(json.dumps(doc))
    row["warnings"] = " | ".join(warnings)


def _write_summary(
    path: Path,
    rows: dict[int, dict],
    labelled: list[int],
    flags: CollectionFlags,
    order: list[int],
    names: tuple[str, ...],
    mode: str,
) -> None:
    shapes = []
    for k, i in enumerate(labelled):
        fig = flags.figures[k]
        d = flags.disagreement[k]
        shapes.append(
            {
                "input": rows[i]["input"],
                "output": rows[i]["output"],
                "warnings": flags.shape_warnings[k],
                "suspicion": round(float(flags.suspicion[k]), 3),
                "disagreement": None if not np.isfinite(d) else round(float(d), 4),
                "parts": None if fig is None else fig.to_dict(names),
            }
        )
    doc = {
        "mode": mode,
        "part_names": list(names),
        "warnings": flags.collection_warnings,
        "check_first": [rows[i]["input"] for i in order],
        "shapes": shapes,
    }
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
