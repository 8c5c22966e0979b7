"""Fixtures of the add-on tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def server():
    """A loopback backend (in this process, one worker thread) for the add-on's jobs to talk to."""
    from loopback import running_server

    with running_server(heartbeat_s=0.2) as (s, _):
        yield s
