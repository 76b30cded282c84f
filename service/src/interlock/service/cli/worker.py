"""``interlock worker``: run the runs of work queues on this machine.

The worker talks to the database and NATS directly (not to the API): it reads the same
settings as ``interlock server`` (``config/interlock.toml``, ``INTERLOCK_*``). With the
default embedded NATS, give the URL the server printed with ``--nats-url``. Stop it
with Ctrl-C or SIGTERM: it terminates its running processes and marks their runs
crashed. See :mod:`interlock.service.deployments.worker` for leases and names.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from interlock.sdk.durations import parse_duration
from interlock.service.settings import DEFAULT_CONFIG_FILE, load_settings

__all__ = ["register"]


def register(groups: Any) -> None:
    """Add the ``worker`` command."""
    parser = groups.add_parser(
        "worker",
        help="run deployments' runs from work queues",
        description="Take runs from work queues and execute them as subprocesses, with "
        "their output in <data_dir>/runs/<run id>.log. Uses the settings of `interlock "
        "server` (config/interlock.toml, INTERLOCK_*) to reach the database and NATS.",
    )
    parser.add_argument(
        "--queue",
        "-q",
        dest="queues",
        action="append",
        metavar="NAME",
        help="a queue to serve (repeat for more; default: default)",
    )
    parser.add_argument(
        "--name",
        default=socket.gethostname(),
        help="this worker's name, unique among workers (default: the host name); a "
        "restarted worker marks the runs left running under its name crashed",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="runs at once (default 4)")
    parser.add_argument(
        "--poll-interval", type=float, default=1.0, help="seconds between polls (default 1)"
    )
    parser.add_argument(
        "--lease",
        type=_duration,
        default=timedelta(seconds=30),
        help="a run without its worker's heartbeat for this long is crashed (default 30s)",
    )
    parser.add_argument(
        "--grace", type=float, default=10.0, help="seconds from SIGTERM to SIGKILL (default 10)"
    )
    parser.add_argument(
        "--nats-url", help="NATS server URLs, comma-separated (the server's, if embedded)"
    )
    parser.add_argument("--data-dir", type=Path, help="where run logs go (default .interlock)")
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG_FILE, help="TOML settings file"
    )
    parser.set_defaults(handler=_work)


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _work(args: argparse.Namespace) -> int:
    from interlock.service.event_loop import run  # noqa: PLC0415

    return run(_work_async(args))


async def _work_async(args: argparse.Namespace) -> int:
    from interlock.service.deployments.standalone import standalone_services  # noqa: PLC0415
    from interlock.service.deployments.worker import Worker  # noqa: PLC0415

    values: dict[str, Any] = {}
    if args.nats_url:
        values["nats_url"] = args.nats_url
    if args.data_dir:
        values["data_dir"] = args.data_dir
    settings = load_settings(args.config, **values)
    lease: timedelta = args.lease
    queues = args.queues or ["default"]
    async with standalone_services(settings, name=args.name) as services:
        worker = Worker(
            services,
            queues,
            name=args.name,
            concurrency=args.concurrency,
            poll_interval=args.poll_interval,
            lease=lease,
            grace=args.grace,
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, lambda: asyncio.ensure_future(worker.stop()))
        sys.stderr.write(
            f"interlock: worker {args.name} serving {', '.join(queues)}; Ctrl-C stops\n"
        )
        with contextlib.suppress(asyncio.CancelledError):
            await worker.run()
    return 0
