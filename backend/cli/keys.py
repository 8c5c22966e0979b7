"""``partdistill keys``: CurveZMQ key pairs for an encrypted backend off loopback, and reading them."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io import InputError


def register(sub: argparse._SubParsersAction) -> None:
    k = sub.add_parser("keys", help="make CurveZMQ key pairs for an encrypted non-loopback backend")
    k.add_argument("folder", type=Path)
    k.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import zmq

    args.folder.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.curve_keypair()
    (args.folder / "server.key").write_bytes(public)
    sec = args.folder / "server.key_secret"
    sec.write_bytes(secret)
    sec.chmod(0o600)
    print(f"wrote {args.folder}/server.key (give it to clients) and server.key_secret (keep it on the server)")
    return 0


def load_server_keys(folder: Path) -> tuple[bytes, bytes]:
    """(secret, public) z85 keys of the server from a folder made by ``partdistill keys``."""
    try:
        return (folder / "server.key_secret").read_bytes().strip(), (folder / "server.key").read_bytes().strip()
    except FileNotFoundError as e:
        raise InputError(
            f"CurveZMQ keys not found: {e.filename} (make them with `partdistill keys {folder}`)"
        ) from None
