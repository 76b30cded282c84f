"""``interlock worker``: run the runs of work queues on this machine.

With ``--api-url`` the worker talks to the API only, with a
key of scope ``worker`` (``--api-key`` or ``INTERLOCK_API_KEY``): it needs neither the
database's credentials nor NATS, and ships its runs' logs to the API (kept locally
first in ``<data_dir>/worker-logs/<name>/``). See
:mod:`interlock.service.deployments.api_ledger`.

Without it, the worker talks to the database and NATS directly: it reads the same
settings as ``interlock server`` (``config/interlock.toml``, ``INTERLOCK_*``). Beside an
embedded server it needs nothing more: the server's NATS URL comes from the data
directory (``<data_dir>/server.json``), and so does the secret key
(``<data_dir>/secret.key``), as for the server. Elsewhere give ``--nats-url`` (or
``INTERLOCK_NATS_URL``), the database and ``INTERLOCK_SECRET_KEY``. Stop it with Ctrl-C
or SIGTERM: it terminates its running processes and marks their runs crashed. See
:mod:`interlock.service.deployments.worker` for leases and names.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interlock.sdk.cli._logging import add_logging_arguments
from interlock.sdk.durations import parse_duration
from interlock.sdk.errors import ConfigurationError
from interlock.sdk.local_server import read_local_server
from interlock.service.cli.client import API_KEY_VARIABLE
from interlock.service.cli.config import add_config_argument, settings_from
from interlock.service.settings import Settings

if TYPE_CHECKING:
    from interlock.service.deployments.ledger import RunLedger

__all__ = ["register"]


def register(groups: Any) -> None:
    """Add the ``worker`` command."""
    parser = groups.add_parser(
        "worker",
        help="run deployments' runs from work queues",
        description="Take runs from work queues and execute them as subprocesses (or "
        "start and follow them on their remote targets). With --api-url, it needs only the "
        "API and a key of scope worker (INTERLOCK_API_KEY): it claims and records runs "
        "and ships their logs through the API. Otherwise, their output goes to "
        "<data_dir>/runs/<run id>.log and it uses the settings of `interlock "
        "server` (config/interlock.toml, INTERLOCK_*) to reach the database and NATS. "
        "Beside a server running embedded with the same data directory, it finds that "
        "server's NATS and reads its secret key (<data_dir>/secret.key) by itself; "
        "otherwise give --nats-url and set INTERLOCK_SECRET_KEY as the server has it.",
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
        "--api-url",
        default=None,
        help="run with the API only, at this URL, with a key of scope worker (without "
        "it: the database and NATS directly)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"with --api-url: a key of scope worker (default: ${API_KEY_VARIABLE}; prefer "
        "the variable, which stays out of shell history)",
    )
    parser.add_argument(
        "--nats-url",
        help="NATS server URLs, comma-separated (default: the settings', or the embedded "
        "server's found in the data directory)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the server's data directory: run logs, its secret key, its NATS URL when "
        "embedded (default .interlock)",
    )
    add_config_argument(parser)
    add_logging_arguments(parser, sub=True)
    parser.set_defaults(handler=_work, default_log_level="INFO")


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _work(args: argparse.Namespace) -> int:
    from interlock.service.event_loop import run  # noqa: PLC0415

    return run(_work_async(args))


async def _work_async(args: argparse.Namespace) -> int:
    if args.api_url:
        return await _work_through_api(args)
    from interlock.service.deployments.ledger import StoreLedger  # noqa: PLC0415
    from interlock.service.deployments.standalone import standalone_services  # noqa: PLC0415

    values: dict[str, Any] = {}
    if args.nats_url:
        values["nats_url"] = args.nats_url
    if args.data_dir:
        values["data_dir"] = args.data_dir
    settings = _beside_embedded(args, settings_from(args, **values), values)
    lease: timedelta = args.lease
    queues = args.queues or ["default"]
    async with standalone_services(settings, name=args.name) as services:
        await _serve(args, StoreLedger(services), queues, lease)
    return 0


async def _work_through_api(args: argparse.Namespace) -> int:
    from interlock.service.deployments.api_ledger import ApiLedger  # noqa: PLC0415
    from interlock.service.deployments.ledger import LedgerError  # noqa: PLC0415

    data_dir: Path = args.data_dir or Path(".interlock")
    token = args.api_key or os.environ.get(API_KEY_VARIABLE) or None
    ledger = ApiLedger(args.api_url, token, log_dir=data_dir / "worker-logs" / args.name)
    async with ledger:
        try:  # what a wrong URL or key says, at once and in one line
            await ledger.states([])
        except LedgerError as exc:
            sys.stderr.write(f"interlock: worker {args.name}: {exc}\n")
            return 2
        await _serve(args, ledger, args.queues or ["default"], args.lease)
    return 0


async def _serve(
    args: argparse.Namespace, ledger: RunLedger, queues: list[str], lease: timedelta
) -> None:
    from interlock.service.deployments.worker import Worker  # noqa: PLC0415

    worker = Worker(
        ledger,
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
    through = f" through {args.api_url}" if args.api_url else ""
    sys.stderr.write(
        f"interlock: worker {args.name} serving {', '.join(queues)}{through}; Ctrl-C stops\n"
    )
    with contextlib.suppress(asyncio.CancelledError):
        await worker.run()


def _beside_embedded(
    args: argparse.Namespace, settings: Settings, values: dict[str, Any]
) -> Settings:
    """With embedded NATS in the settings, the URL of the server running on the data dir."""
    if not settings.nats_embedded:
        return settings
    server = read_local_server(settings.data_dir)
    if server is None or not server.running or not server.nats_url:
        raise ConfigurationError(
            "nats_url",
            f"no server running embedded on the data directory {settings.data_dir} (no "
            f"live server in {settings.data_dir / 'server.json'}): start `interlock server` "
            "there, give this worker its --data-dir, or give --nats-url",
        )
    return settings_from(args, **values, nats_url=server.nats_url)
