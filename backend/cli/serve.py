"""``partdistill serve``: run the ZeroMQ backend."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from partdistill.shared.protocol import DEFAULT_ADDRESS

from ..io import InputError
from .keys import load_server_keys


def register(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("serve", help="run the ZeroMQ backend")
    v.add_argument("--bind", default=DEFAULT_ADDRESS)
    v.add_argument("--curve-keys", type=Path, help="folder made by `partdistill keys` (required off loopback)")
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..server import Server

    secret = public = None
    if args.curve_keys is not None:
        secret, public = load_server_keys(args.curve_keys)
    try:
        server = Server(args.bind, curve_secret_key=secret, curve_public_key=public)
    except ValueError as e:
        raise InputError(str(e)) from None
    print(f"partdistill backend on {args.bind} (Ctrl+C to stop)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
    return 0
