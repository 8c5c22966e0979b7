"""``partdistill serve``: the ZeroMQ backend, in this process or on a Ray cluster.

The server is the one front door; with ``--ray ADDRESS`` its jobs run on a Ray cluster."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import zmq
from partdistill.shared.errors import ValidationError
from partdistill.shared.protocol import DEFAULT_ADDRESS

from .keys import load_server_keys

if TYPE_CHECKING:
    from ..service.server import Server


def register(sub: argparse._SubParsersAction) -> None:
    from ..service.jobs import Limits

    v = sub.add_parser("serve", help="run the ZeroMQ backend (its jobs in this process, or on a Ray cluster)")
    v.add_argument("--bind", default=DEFAULT_ADDRESS, help=f"address to listen on (default {DEFAULT_ADDRESS})")
    v.add_argument("--curve-keys", type=Path, help="folder made by `partdistill keys` (required off loopback)")
    v.add_argument("--clients", type=Path, help="folder of client public keys (*.key): only those get in")
    v.add_argument("--models", type=Path, help="JSON list of the models clients may name (see README)")
    v.add_argument(
        "--ray",
        default=None,
        metavar="ADDRESS",
        help="run the jobs on a Ray cluster (auto, HOST:PORT, ray://...; 'local' starts one)",
    )
    v.add_argument(
        "--ray-workers", type=int, default=0, help="worker actors on the cluster (default: one per GPU, or one)"
    )
    lim = Limits()
    v.add_argument("--max-jobs", type=int, default=lim.max_jobs, help="jobs held at once (queued or running)")
    v.add_argument(
        "--max-jobs-per-client", type=int, default=lim.max_jobs_per_client, help="jobs one client may hold at once"
    )
    v.add_argument(
        "--max-mib-per-client",
        type=int,
        default=lim.max_bytes_per_client >> 20,
        help="request memory one client's jobs may hold at once (MiB)",
    )
    v.add_argument("--max-epochs", type=int, default=lim.max_epochs, help="the most epochs a job may ask for")
    v.add_argument(
        "--max-points",
        type=int,
        default=lim.max_points,
        help="the most surface points per job (a shape's, or a collection's category students')",
    )
    v.add_argument("--max-job-seconds", type=float, default=lim.max_job_s, help="a job running longer is stopped")
    v.add_argument(
        "--client-timeout",
        type=float,
        default=lim.client_timeout_s,
        help="cancel the jobs of a client silent this long (s; 0: never)",
    )
    v.set_defaults(func=run)


def _keys(args: argparse.Namespace):
    from ..service.auth import allowed_client_keys

    secret = public = clients = None
    if args.curve_keys is not None:
        secret, public = load_server_keys(args.curve_keys)
    if args.clients is not None:
        clients = allowed_client_keys(args.clients)
    return secret, public, clients


def run(args: argparse.Namespace) -> int:
    from ..service.jobs import Limits
    from ..service.models import ModelPolicy
    from ..service.server import Server

    secret, public, clients = _keys(args)
    if args.ray_workers < 0:
        raise ValidationError("--ray-workers", "must be 0 (one per GPU) or more")
    try:
        models = ModelPolicy.from_file(args.models) if args.models else None
        limits = Limits(
            max_jobs=args.max_jobs,
            max_jobs_per_client=args.max_jobs_per_client,
            max_bytes_per_client=args.max_mib_per_client << 20,
            max_epochs=args.max_epochs,
            max_points=args.max_points,
            max_job_s=args.max_job_seconds,
            client_timeout_s=args.client_timeout,
        )
        server = Server(
            args.bind,
            curve_secret_key=secret,
            curve_public_key=public,
            client_keys=clients,
            models=models,
            limits=limits,
        )
    except ValueError as e:
        raise ValidationError("serve", str(e)) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    _stop_on_signals(server)
    with _cluster(args.ray, args.ray_workers) as pool:
        server.use_ray(pool)
        where = f"on {server.address}" + (f", jobs on the Ray cluster at {args.ray}" if args.ray else "")
        print(f"partdistill backend {where} (Ctrl+C to stop)", file=sys.stderr)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            server.stop()
        except zmq.ZMQError as e:
            raise ValidationError("--bind", _socket_error(server.address, e)) from None
    return 0


def _stop_on_signals(server: Server) -> None:
    """Ctrl+C (SIGINT) and a service manager's SIGTERM stop the server the same way: clients are told,
    threads end. The handler only sets the server's stop flag, which the loop reads every 100 ms: a
    KeyboardInterrupt raised wherever the main thread happens to be can land in a finaliser, where
    Python ignores it and the server would serve on. A second signal stops at once. A SIGINT that was
    ignored when the process started (a job started in the background) stays ignored."""
    heard = []

    def stop(signum, frame) -> None:
        heard.append(signum)
        if len(heard) > 1:
            raise KeyboardInterrupt
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, stop)


@contextlib.contextmanager
def _cluster(address: str | None, workers: int):
    """The Ray workers for ``address`` while the block runs; None without ``--ray``."""
    if address is None:
        yield None
        return
    from ..ray_cluster import connected, import_ray
    from ..service.ray_pool import RayPool

    ray = import_ray()
    with connected(ray, address):
        yield RayPool(ray, workers)


def _socket_error(address: str, e: zmq.ZMQError) -> str:
    if e.errno == zmq.EADDRINUSE:
        return f"cannot listen on {address}: the address is in use (another backend?)"
    return f"cannot use {address}: {e}"
