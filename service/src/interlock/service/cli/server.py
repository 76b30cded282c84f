"""``interlock server``: run the service (embedded by default)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
import sys
from pathlib import Path
from typing import Any

from interlock.sdk.cli._logging import add_logging_arguments, configure_logging, level_from
from interlock.service.cli.config import add_config_argument, settings_from

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``server`` command."""
    parser = subparsers.add_parser(
        "server",
        help="run the Interlock service",
        description=(
            "Run the service: consume events, fire rules, run actions, serve the API. With "
            "no configuration it runs embedded: a nats-server child process and SQLite "
            "under .interlock/, the rules in config/rules/, the API on 127.0.0.1:8400. "
            "Configure production with config/interlock.toml or INTERLOCK_* variables. "
            "One server per data directory. Logs go to standard error, at INFO by default."
        ),
    )
    add_config_argument(parser)
    parser.add_argument("--host", help="address to bind the API (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="API port (default 8400; 0: any free port)")
    parser.add_argument("--data-dir", type=Path, help="embedded state (default .interlock)")
    parser.add_argument("--rules", type=Path, help="rule modules (default config/rules)")
    parser.add_argument(
        "--nats-port",
        type=int,
        help="port of the embedded nats-server (default: the one it had last time, else "
        "4222, else a free one)",
    )
    add_logging_arguments(parser, sub=True)
    parser.set_defaults(handler=_serve, default_log_level="INFO")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    api: dict[str, Any] = {}
    if args.host:
        api["host"] = args.host
    if args.port is not None:
        api["port"] = args.port
    if api:
        values["api"] = api
    if args.data_dir:
        values["data_dir"] = args.data_dir
    if args.rules:
        values["rules_dir"] = args.rules
    if args.nats_port is not None:
        values["embedded_nats_port"] = args.nats_port
    return values


def _serve(args: argparse.Namespace) -> int:
    from interlock.service.event_loop import run  # noqa: PLC0415

    return run(_serve_async(args))


async def _serve_async(args: argparse.Namespace) -> int:
    from interlock.service.server import Service  # noqa: PLC0415 - heavy imports

    settings = settings_from(args, **_overrides(args))
    level = level_from(args, settings.log_level)
    configure_logging(level, getattr(args, "log_format", None) or settings.log_format)
    service = Service(settings, worker=settings.embedded_worker)
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    # SIGHUP too: a closed terminal stops the service, which stops its nats-server (a
    # process group of its own, so the hangup does not reach it).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, main.cancel)
    try:
        await service.start()
        # What start built (modules, rules, the engine) lives as long as the process:
        # leave it out of the collector's full passes, which otherwise stall the loop
        # for a few hundred milliseconds every few seconds under load. Not collected
        # first: with 12,000 rules that pass alone took 0.6 s of the start, to free the
        # few cycles imports leave behind.
        gc.freeze()
        sys.stderr.write(
            f"interlock: serving the API at {service.api_url} (NATS {service.nats_url}); "
            "Ctrl-C stops\n"
        )
        with contextlib.suppress(asyncio.CancelledError):
            await service.serve_forever()
    finally:
        await asyncio.shield(service.stop())
    return 0
