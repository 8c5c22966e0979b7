"""Who may talk to a server: CurveZMQ keys checked in the handshake.

CurveZMQ encrypts and authenticates the server to its clients, and every
client proves a key pair of its own in the handshake. ZeroMQ's own authentication protocol (ZAP, in a
thread of the server) checks that key: with a folder of allowed client public keys only the clients
holding one of them get in, without one any client that knows the server's key does. Either way every
message carries the client's key, which owns the client's jobs.

Keys are what ``partdistill keys`` writes (read by ``partdistill.shared.keys``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import zmq
from partdistill.shared.errors import ValidationError
from partdistill.shared.keys import read_key
from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger("partdistill.server")


def allowed_client_keys(folder: Path) -> list[bytes]:
    """The public keys in ``folder`` (every ``*.key`` file); ValidationError when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValidationError("clients", f"{folder} is not a folder of client public keys")
    keys = [read_key(p) for p in sorted(folder.glob("*.key"))]
    if not keys:
        raise ValidationError("clients", f"{folder} holds no client public key (*.key): see `partdistill keys`")
    return keys


def start_authenticator(ctx: zmq.Context, keys: dict[str, list[bytes] | None]) -> ThreadAuthenticator:
    """ZAP for every CURVE socket of ``ctx``: on a socket of ZAP domain d (``*`` for sockets without
    one), only the public keys ``keys[d]`` get in (any key when it is None)."""
    auth = ThreadAuthenticator(ctx, log=log)
    auth.start()
    for domain, allowed in keys.items():
        auth.configure_curve_callback(domain=domain, credentials_provider=_Allowed(allowed))
    return auth


class _Allowed:
    """ZAP's credentials provider: a client is let in when its public key is on the list."""

    def __init__(self, keys: list[bytes] | None):
        self.keys = None if keys is None else set(keys)  # z85, as ZAP hands them over

    def callback(self, domain: str, key: bytes) -> bool:
        allowed = self.keys is None or key in self.keys
        if not allowed:
            log.warning("refused a client whose key is not on the list")
        return allowed


def client_key_of(frame: zmq.Frame) -> str:
    """The authenticated client key a received frame carries ("" without authentication)."""
    try:
        return frame.get("User-Id") or ""
    except (zmq.ZMQError, AttributeError, TypeError):
        return ""
