"""Fixtures of the add-on tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def server():
    """A loopback backend (in this process, one worker thread) for the add-on's jobs to talk to."""
    from partdistill.backend.service.server import Server

    s = Server("tcp://127.0.0.1:0", heartbeat_s=0.2)
    t = s.start()
    yield s
    s.stop()
    t.join(10)
