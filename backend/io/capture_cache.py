"""A batch's captures kept on disk, compressed, until the engine needs them.

Collection mode fits its category students over every shape of a batch before it labels any. Held
in memory, every capture would stay there until the end: about 18 MB each at 10 views of 512 px,
18 GB for a thousand meshes. Instead each capture is written compressed into ``OUT/.captures`` as it
arrives (a fraction of a megabyte for most meshes) and read back each time the engine needs it, so
memory holds the one being worked on. A file is named after its input (path, size, modification
time) and the capture settings, so a re-run of an interrupted batch captures only what it had not,
and an input or setting that changed is captured afresh.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from partdistill.shared.bundle import load_bundle, save_bundle
from partdistill.shared.capture import Capture
from partdistill.shared.detections import Detections

CAPTURES = ".captures"


@dataclass(frozen=True)
class CachedMember:
    """A collection member, as ``shared.request.Member`` (its ``capture`` and ``detections``), whose
    capture is read from ``file`` each time it is asked for."""

    file: Path
    detections: Detections | None = None

    @property
    def capture(self) -> Capture:
        return load_bundle(self.file)


class CaptureCache:
    """The captures of one ``--out`` folder at one setting of views, resolution and engine."""

    def __init__(self, out: Path, *, views: int, resolution: int, engine: str):
        self.folder = out / CAPTURES
        self._settings = f"{views}|{resolution}|{engine}"

    def file_for(self, source: Path) -> Path:
        """Where the capture of ``source`` is kept (it may not be there yet)."""
        st = source.stat()
        key = f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}|{self._settings}"
        return self.folder / f"{source.stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"

    def find(self, source: Path) -> Path | None:
        """The capture kept for ``source`` by an earlier run, if any."""
        f = self.file_for(source)
        return f if f.is_file() else None

    def keep(self, source: Path, capture: Capture) -> Path:
        """Write ``capture`` (of ``source``) compressed; returns its file."""
        return save_bundle(self.file_for(source), capture, compress=True)

    def remove(self) -> None:
        """Delete every kept capture (the batch is over)."""
        shutil.rmtree(self.folder, ignore_errors=True)
