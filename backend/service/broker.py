"""Many workers behind one address: libzmq's own queue device (``zmq.proxy``), a ROUTER in front for
clients and the add-on, a DEALER behind that ``partdistill serve --connect`` workers dial out to.
Requests go to the workers in turn; replies find their way back by the clients' routing frames.

What a plain queue device cannot do, and how the rest copes: a client's later messages (its pings,
a cancel) reach any worker, not necessarily its job's, so behind a broker a job runs to its end when
its client goes away (the reply is dropped), and a cancel reaches the job's worker only by chance. A
worker that dies takes its jobs with it: their clients hear nothing, time out, and send the job once
more, to another worker. libzmq's own heartbeats (ZMTP) drop the connections of dead peers on every
socket involved.
"""

from __future__ import annotations

import logging

import zmq
from partdistill.shared import limits as wire_limits

from .auth import start_authenticator
from .server import ZMTP_HEARTBEAT_MS, is_loopback

log = logging.getLogger("partdistill.broker")


def run_broker(
    frontend: str,
    backend: str,
    *,
    curve_secret_key: bytes | None = None,
    curve_public_key: bytes | None = None,
    client_keys: list[bytes] | None = None,
    context: zmq.Context | None = None,
    ready=None,
) -> None:
    """Run the queue device until the context is terminated or Ctrl+C. Off loopback, either side
    needs the CurveZMQ keys (workers use the same pair to connect); ``client_keys`` lets in only those
    clients at the front. ``ready``: a threading.Event set once both sockets are bound (tests)."""
    for address in (frontend, backend):
        if not is_loopback(address) and curve_secret_key is None:
            raise ValueError(f"refusing to use {address} without encryption: give the broker CurveZMQ keys")
    ctx = context or zmq.Context.instance()
    # workers connect with the broker's own key pair; clients with theirs, when a list is given
    auth = start_authenticator(ctx, {"clients": client_keys, "workers": [curve_public_key]}) if client_keys else None
    front, back = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    front.zap_domain, back.zap_domain = b"clients", b"workers"
    try:
        for sock, address in ((front, frontend), (back, backend)):
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.HEARTBEAT_IVL, ZMTP_HEARTBEAT_MS)
            sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * ZMTP_HEARTBEAT_MS)
            if curve_secret_key is not None:
                sock.curve_server = True
                sock.curve_secretkey, sock.curve_publickey = curve_secret_key, curve_public_key
            sock.bind(address)
        front.setsockopt(zmq.MAXMSGSIZE, wire_limits.MAX_MESSAGE_BYTES + wire_limits.MAX_HEADER_BYTES)
        log.info("partdistill broker: clients on %s, workers on %s", frontend, backend)
        if ready is not None:
            ready.set()
        while True:
            try:
                zmq.proxy(front, back)
            except zmq.Again:
                # With CURVE and ZAP, libzmq's proxy can wake on a socket that then has nothing to
                # read and return EAGAIN (seen with libzmq 4.3.5); the device holds no state, so it
                # simply goes on.
                continue
    except zmq.ContextTerminated:
        pass
    finally:
        front.close(0)
        back.close(0)
        if auth is not None:
            auth.stop()
