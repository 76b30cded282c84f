"""``interlock adapters list``: the adapters a running service polls, and how they are doing.

The service polls the ``[adapters.NAME]`` sections of its ``adapters_file``
(``config/adapters.toml``); this lists each with its last poll, its lag (time since the
last successful poll), failures in a row and the last error. (``interlock adapter run``
runs one adapter standalone, outside the service.)
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from interlock.sdk.durations import format_duration
from interlock.service.cli.client import ApiClient, add_api_arguments, print_output

__all__ = ["register"]

_COLUMNS = [
    "name",
    "kind",
    "every",
    "last_poll_at",
    "lag",
    "failing",
    "events",
    "last_error",
    "next_poll_at",
]


def register(groups: Any) -> None:
    """Add the ``adapters`` command group."""
    parser = groups.add_parser(
        "adapters", help="the adapters the running service polls, and how they are doing"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    listing = commands.add_parser(
        "list",
        help="list the polled adapters",
        description="List the adapters the service polls (adapters_file): last poll, "
        "LAG (time since the last successful poll), FAILING (failed polls in a row), the "
        "last error and the next poll.",
    )
    add_api_arguments(listing)
    listing.set_defaults(handler=_list)


def _list(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        adapters = api.get("/api/adapters")
    if not args.json:
        for adapter in adapters:
            adapter["every"] = _seconds(adapter["interval_seconds"])
            adapter["lag"] = _seconds(adapter["lag_seconds"])
            adapter["failing"] = adapter["consecutive_failures"]
    print_output(args, adapters, columns=_COLUMNS)
    return 0


def _seconds(value: float | None) -> str | None:
    return None if value is None else format_duration(timedelta(seconds=round(value)))
