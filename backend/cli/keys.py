"""``partdistill keys``: CurveZMQ key pairs for an encrypted backend and its clients.

The key pairs are ZeroMQ certificate files; reading them back is here too."""

from __future__ import annotations

import argparse
from pathlib import Path

import zmq.auth
from partdistill.shared.errors import ValidationError

from ..service.auth import read_key as _read_key


def register(sub: argparse._SubParsersAction) -> None:
    k = sub.add_parser("keys", help="make CurveZMQ key pairs: the server's, or a client's (--client NAME)")
    k.add_argument("folder", type=Path)
    k.add_argument("--client", default=None, help="make a client key pair NAME.key / NAME.key_secret instead")
    k.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    name = args.client or "server"
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValidationError("--client", "use letters, digits, - and _ for the name")
    args.folder.mkdir(parents=True, exist_ok=True)
    if (args.folder / f"{name}.key").exists():
        raise ValidationError("keys", f"{args.folder / (name + '.key')} exists already: keys are never overwritten")
    public, secret = zmq.auth.create_certificates(str(args.folder), name)
    Path(secret).chmod(0o600)
    if args.client:
        print(
            f"wrote {public} (copy it into the server's --clients folder) and {secret} (the client's: "
            "`partdistill segment ... --client-key` or the add-on's preferences)"
        )
    else:
        print(f"wrote {public} (give it to clients) and {secret} (keep it on the server)")
    return 0


def read_key(path: Path, secret: bool = False) -> bytes:
    """A key from a key file (certificate or bare Z85); a ValidationError naming the file when missing
    or not a key."""
    return _read_key(path, secret)


def load_server_keys(folder: Path) -> tuple[bytes, bytes]:
    """(secret, public) keys of the server from a folder made by ``partdistill keys``."""
    if not (folder / "server.key_secret").exists():
        raise ValidationError(
            "--curve-keys", f"CurveZMQ keys not found in {folder} (make them with `partdistill keys {folder}`)"
        )
    return read_key(folder / "server.key_secret", secret=True), read_key(folder / "server.key")
