"""A backend served on a loopback port in this process (one worker thread), for the tests that talk
to a real ZeroMQ server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from partdistill.backend.service.jobs import Limits
from partdistill.backend.service.server import Server


@contextmanager
def running_server(heartbeat_s: float, limits: Limits | None = None) -> Iterator[tuple[Server, object]]:
    """Start a server on a free loopback port (with ``limits``, the server's default without);
    yields (server, its thread); stops and joins it after."""
    s = Server("tcp://127.0.0.1:0", heartbeat_s=heartbeat_s, limits=limits)
    t = s.start()
    try:
        yield s, t
    finally:
        s.stop()
        t.join(10)
