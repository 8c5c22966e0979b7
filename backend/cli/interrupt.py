"""Ctrl+C in a command: a ``KeyboardInterrupt`` at the first moment outside an import.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be. Inside an import that
is not safe: an extension module (torch, matplotlib, PIL) whose initialisation is cut off can abort
the process (a C++ ``terminate``, or a fatal error while Python shuts down) instead of ending it
with status 130 and its one line. A command imports such modules late, some while it writes its
outputs, so a Ctrl+C that comes during an import is held until the import is done: it is raised
again a few milliseconds later, and then again, until the main thread is outside every import.
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

#: How long a Ctrl+C that came during an import waits before it is raised again (seconds).
RETRY_S = 0.01

_IMPORT_MACHINERY = "<frozen importlib._bootstrap"


def in_import(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside an import (an ``import`` statement, ``importlib``, or an
    extension module importing from its own initialisation): some frame of its stack is Python's
    import machinery."""
    while frame is not None:
        if frame.f_code.co_filename.startswith(_IMPORT_MACHINERY):
            return True
        frame = frame.f_back
    return False


def _on_interrupt(signum: int, frame: FrameType | None) -> None:
    if in_import(frame):
        later = threading.Timer(RETRY_S, _thread.interrupt_main, args=(signum,))
        later.daemon = True  # the process may end first: the import was its last step
        later.start()
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_outside_imports() -> Iterator[None]:
    """For the block, Ctrl+C raises ``KeyboardInterrupt`` only outside imports; the handler before it
    is restored after. A Ctrl+C ignored when the process started (a job started in the background)
    stays ignored, and outside the main thread the block runs as it is."""
    ignored = signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None)  # None: not set from Python
    if ignored or threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, _on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
