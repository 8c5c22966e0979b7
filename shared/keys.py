"""Reading CurveZMQ key files, for the CLI, the server and the add-on alike.

Keys are what ``partdistill keys`` writes: ZeroMQ certificate files (``NAME.key`` public,
``NAME.key_secret`` secret), or bare 40-character Z85 keys.
"""

from __future__ import annotations

from pathlib import Path

import zmq.auth

from .errors import ValidationError
from .protocol import check_curve_key


def read_key(path: Path, secret: bool = False) -> bytes:
    """The public (or, with ``secret``, secret) key of a key file in either form; ValidationError
    naming the file when it is not one."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ValidationError(str(path), "no such key file") from None
    except OSError as e:
        raise ValidationError(str(path), f"cannot read it: {e.strerror}") from None
    if b"curve" in raw:
        try:
            public, secret_key = zmq.auth.load_certificate(str(path))
        except (ValueError, OSError):
            raise ValidationError(str(path), "not a ZeroMQ certificate") from None
        key = secret_key if secret else public
        if key is None:
            raise ValidationError(str(path), "holds no secret key" if secret else "holds no public key")
        return check_curve_key(key, str(path))
    return check_curve_key(raw, str(path))
