"""``partdistill serve``: run the ZeroMQ backend, listening on an address or as a worker behind a
broker; ``partdistill broker``: many workers behind one address."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import zmq
from partdistill.shared.errors import ValidationError
from partdistill.shared.protocol import DEFAULT_ADDRESS

from ..io import InputError
from .keys import load_server_keys


def register(sub: argparse._SubParsersAction) -> None:
    from ..service.jobs import Limits

    v = sub.add_parser("serve", help="run the ZeroMQ backend (or a worker behind `partdistill broker`)")
    where = v.add_mutually_exclusive_group()
    where.add_argument("--bind", default=None, help=f"address to listen on (default {DEFAULT_ADDRESS})")
    where.add_argument("--connect", default=None, help="a broker's worker address to dial out to")
    _add_security(v)
    v.add_argument("--models", type=Path, help="JSON list of the models clients may name (see README)")
    lim = Limits()
    v.add_argument("--max-jobs", type=int, default=lim.max_jobs, help="jobs held at once (queued or running)")
    v.add_argument("--max-epochs", type=int, default=lim.max_epochs, help="the most epochs a job may ask for")
    v.add_argument("--max-points", type=int, default=lim.max_points, help="the most surface points per job")
    v.add_argument("--max-job-seconds", type=float, default=lim.max_job_s, help="a job running longer is stopped")
    v.add_argument("--client-timeout", type=float, default=lim.client_timeout_s,
                   help="cancel the jobs of a client silent this long (s; 0: never)")  # fmt: skip
    v.set_defaults(func=run)

    b = sub.add_parser("broker", help="put many `partdistill serve --connect` workers behind one address")
    b.add_argument("--frontend", default=DEFAULT_ADDRESS, help="where clients and the add-on connect")
    b.add_argument("--backend", default="tcp://127.0.0.1:5556", help="where workers connect")
    _add_security(b)
    b.set_defaults(func=run_broker)


def _add_security(p: argparse.ArgumentParser) -> None:
    p.add_argument("--curve-keys", type=Path, help="folder made by `partdistill keys` (required off loopback)")
    p.add_argument("--clients", type=Path, help="folder of client public keys (*.key): only those get in")


def _keys(args: argparse.Namespace):
    from ..service.auth import allowed_client_keys

    secret = public = clients = None
    if args.curve_keys is not None:
        secret, public = load_server_keys(args.curve_keys)
    if args.clients is not None:
        try:
            clients = allowed_client_keys(args.clients)
        except ValidationError as e:
            raise InputError(str(e)) from None
    return secret, public, clients


def run(args: argparse.Namespace) -> int:
    from ..service.jobs import Limits
    from ..service.models import ModelPolicy
    from ..service.server import Server

    secret, public, clients = _keys(args)
    try:
        models = ModelPolicy.from_file(args.models) if args.models else None
        limits = Limits(max_jobs=args.max_jobs, max_epochs=args.max_epochs, max_points=args.max_points,
                        max_job_s=args.max_job_seconds, client_timeout_s=args.client_timeout)  # fmt: skip
        server = Server(args.bind or (None if args.connect else DEFAULT_ADDRESS), connect=args.connect,
                        curve_secret_key=secret, curve_public_key=public, client_keys=clients, models=models,
                        limits=limits)  # fmt: skip
    except (ValueError, ValidationError) as e:
        raise InputError(str(e)) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    where = f"worker of the broker at {args.connect}" if args.connect else f"backend on {server.address}"
    print(f"partdistill {where} (Ctrl+C to stop)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
    except zmq.ZMQError as e:
        raise InputError(_socket_error(server.address, e)) from None
    return 0


def run_broker(args: argparse.Namespace) -> int:
    from ..service.broker import run_broker as broker

    secret, public, clients = _keys(args)
    print(f"partdistill broker: clients on {args.frontend}, workers on {args.backend} (Ctrl+C to stop)",
          file=sys.stderr)  # fmt: skip
    try:
        broker(args.frontend, args.backend, curve_secret_key=secret, curve_public_key=public, client_keys=clients)
    except ValueError as e:
        raise InputError(str(e)) from None
    except zmq.ZMQError as e:
        raise InputError(_socket_error(f"{args.frontend} / {args.backend}", e)) from None
    except KeyboardInterrupt:
        pass
    return 0


def _socket_error(address: str, e: zmq.ZMQError) -> str:
    if e.errno == zmq.EADDRINUSE:
        return f"cannot listen on {address}: the address is in use (another backend?)"
    return f"cannot use {address}: {e}"
