"""Ctrl+C in a command ends it with its one line and status 130, never an abort: a Ctrl+C that comes
while the main thread is inside an import (where a cut-off extension module can abort the process)
is raised once the import is done."""

from __future__ import annotations

import importlib
import signal
import sys
import time

import pytest
from partdistill.backend.cli.interrupt import in_import, interrupts_outside_imports

MODULE = """
import signal, sys, time
SEEN = sys._getframe()
signal.raise_signal(signal.SIGINT)  # Ctrl+C in the middle of the import
time.sleep(0.1)  # longer than the wait before it is raised again: it is held more than once
DONE = True
"""


def test_a_ctrl_c_during_an_import_is_raised_once_the_import_is_done(tmp_path, monkeypatch):
    (tmp_path / "slow_to_import.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_to_import", raising=False)
    with interrupts_outside_imports():
        module = importlib.import_module("slow_to_import")  # not cut off
        assert module.DONE and in_import(module.SEEN)
        with pytest.raises(KeyboardInterrupt):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                time.sleep(0.001)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler before it is back
    assert not in_import(sys._getframe())


def test_a_ctrl_c_outside_imports_is_raised_at_once():
    with interrupts_outside_imports(), pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
        for _ in range(1000):  # the handler runs between two of these steps
            pass
        pytest.fail("no KeyboardInterrupt")
