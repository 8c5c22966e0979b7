"""Outputs that are never half there: atomic files, files renamed in together, folder locks.

Files are written under a temporary name beside their destination
and renamed into place when complete, sets of files renamed in together with Ctrl+C held off for
those microseconds, and a lock that keeps two runs from writing into one folder.

An interrupted run leaves the previous result whole (its temporary files are removed); a run that
completes replaces it as a whole; a second run into a locked folder is refused by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from .errors import ValidationError

#: The lock file a run holds in its output folder.
LOCK_NAME = ".partdistill.lock"


def temporary_name(path: Path) -> Path:
    """A hidden name beside ``path``, unique to this process and thread, with ``path``'s suffix (the
    writers that pick a format by suffix still do). Same folder: the rename into place stays on one
    file system, hence atomic."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{threading.get_ident()}{path.suffix}")


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; it replaces ``path`` when the block
    completes and is removed if the block raises (Ctrl+C included), leaving any earlier ``path``
    untouched."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        with signals_held():
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl+C (SIGINT) and SIGTERM off for the block: a few renames are done together or not at
    all; a signal that comes meanwhile takes effect right after the block. Python runs signal handlers
    in the main thread, so the block swaps in a handler that only notes the signal (masking would not
    do: another thread of the process, a BLAS or OpenMP worker, would take it). Outside the main
    thread the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    before = {sig: signal.signal(sig, lambda s, _frame: came.append(s)) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for sig in dict.fromkeys(came):
            signal.raise_signal(sig)  # now, under the handler the process had


def replace_together(folder: Path, written: Mapping[str, Path], stale: Sequence[str] = ()) -> None:
    """Rename each temporary file ``written[name]`` to ``folder / name`` and remove the files named in
    ``stale`` (an earlier run's outputs this run does not make), all with signals held: the folder
    shows either the earlier set or this one."""
    with signals_held():
        for name, tmp in written.items():
            os.replace(tmp, folder / name)
        for name in stale:
            if name not in written:
                (folder / name).unlink(missing_ok=True)


def check_writable(path: str | os.PathLike, field: str = "out") -> None:
    """Before any long work: ``path`` (a file to be written) is not a folder, and the folder it goes
    in exists or can be made, and takes a new file (tried, not guessed from permission bits)."""
    path = Path(path)
    if path.is_dir():
        raise ValidationError(field, f"{path} is a folder: give a file name")
    folder = path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise ValidationError(field, f"cannot write {path}: {folder} is a file, not a folder")
    probe = temporary_name(folder / ".partdistill-probe")
    try:
        probe.touch()
    except OSError as e:
        raise ValidationError(field, f"cannot write {path}: {folder}: {e.strerror or e}") from None
    probe.unlink(missing_ok=True)


class FolderLock:
    """An exclusive lock on an output folder for the length of a run (``with FolderLock(out):``).

    The folder is made if it does not exist, and removed again at the end if the run left nothing
    in it. A second run that finds the folder locked gets a ``ValidationError`` naming the folder
    (and the process that holds it). The lock is a hidden file in the folder, removed at the end;
    the operating system drops the lock itself when the holder exits, however it exits."""

    def __init__(self, folder: str | os.PathLike, field: str = "out"):
        self.folder, self.field = Path(folder), field
        self._fh = None
        self._made = False

    def __enter__(self) -> FolderLock:
        folder = self.folder
        if folder.exists() and not folder.is_dir():
            raise ValidationError(self.field, f"{folder} is a file, not a folder")
        self._made = not folder.exists()
        path = folder / LOCK_NAME
        while True:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                fh = open(path, "a+")
            except OSError as e:
                raise ValidationError(self.field, f"cannot write to {folder}: {e.strerror or e}") from None
            if not _try_lock(fh):
                fh.seek(0)
                holder = fh.read().strip()
                fh.close()
                who = f" (process {holder})" if holder.isdigit() else ""
                raise ValidationError(
                    self.field,
                    f"{folder} is in use by another partdistill run{who}: wait for it "
                    "to finish, or choose another folder",
                )
            if _same_file(fh, path):
                break
            fh.close()  # the holder removed the file while this one waited for it: lock the new one
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        fh, self._fh = self._fh, None
        if fh is None:
            return
        with contextlib.suppress(OSError):  # (Windows keeps an open file)
            (self.folder / LOCK_NAME).unlink()  # still held: nobody can take the old file now
        fh.close()
        if self._made:
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only if the run left nothing in it


def _same_file(fh, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fh.fileno()), os.stat(path))
    except OSError:
        return False


def _try_lock(fh) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
