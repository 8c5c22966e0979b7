"""Joining a Ray cluster, for the work that scales out on one (``batch --ray``, ``serve --ray``).

``ADDRESS`` is what ``ray.init`` takes ("auto", "HOST:PORT", "ray://HOST:10001"); "local" starts a
private instance on this machine, secured by a token of its own. A cluster that cannot be reached, or
that refuses this machine's token, is an :class:`ValidationError` of one line saying what to do.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

from partdistill.shared.errors import ValidationError


def import_ray():
    """The ``ray`` module, or a ValidationError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ValidationError("--ray", "this needs Ray: `pip install 'partdistill[ray]'`") from None
    return ray


# One secret per process for the private instances it starts (Ray caches the token a process read).
_LOCAL_TOKEN = secrets.token_hex(32)

TOKEN_HELP = (
    "copy the cluster's token (`ray get-auth-token` on its head node) into RAY_AUTH_TOKEN, or into a file "
    "named by RAY_AUTH_TOKEN_PATH (default ~/.ray/auth_token), and set RAY_AUTH_MODE=token"
)


@contextlib.contextmanager
def connected(ray, address: str) -> Iterator[None]:
    """``ray.init`` for ``address`` until the block ends. "local" starts a private instance secured
    by a token of its own, given to it in the environment (nothing is read from or written to
    ``~/.ray``). A cluster that cannot be reached, or that refuses this machine's token, is an
    :class:`ValidationError` of one line saying what to do."""
    saved = ""  # None: this block set RAY_AUTH_TOKEN, and removes it again
    try:
        if address == "local":
            if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
                os.environ["RAY_AUTH_TOKEN"], saved = _LOCAL_TOKEN, None
            ray.init(include_dashboard=False, log_to_driver=False)
        else:
            try:
                with _held_stderr() as held:
                    ray.init(address=address, log_to_driver=False)
                    held.keep = True
            except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as e:
                if "authentic" in f"{e} {e.__cause__}".lower():
                    raise ValidationError(
                        "--ray", f"the Ray cluster at {address} refused {_token_offered()}: {TOKEN_HELP}"
                    ) from None
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise ValidationError("--ray", f"cannot reach the Ray cluster at {address}: {first}") from None
        yield
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop("RAY_AUTH_TOKEN", None)


@contextlib.contextmanager
def _held_stderr() -> Iterator[SimpleNamespace]:
    """Hold what is written to file descriptor 2 (Ray's C++ core logs there directly, a warning a
    second while a cluster refuses the token); it is written out at the end only if ``keep`` was
    set, so a refusal reads as the one line of the error that follows."""
    held = SimpleNamespace(keep=False)
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as buffer:
        os.dup2(buffer.fileno(), 2)
        try:
            yield held
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if held.keep:
                buffer.seek(0)
                sys.stderr.write(buffer.read().decode(errors="replace"))


def _token_offered() -> str:
    """The token this process offered, found where Ray looks for one, in Ray's order."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "the token in RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return f"the token in {os.environ['RAY_AUTH_TOKEN_PATH']} (RAY_AUTH_TOKEN_PATH)"
    default = Path.home() / ".ray" / "auth_token"
    return f"the token in {default}" if default.is_file() else "to connect without a token (none found)"
