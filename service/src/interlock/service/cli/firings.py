"""``interlock firings list | show``: what rules fired, from a running service."""

from __future__ import annotations

import argparse
from typing import Any

from interlock.service.cli.client import ApiClient, add_api_arguments, print_output, print_table

__all__ = ["register"]

_COLUMNS = ["at", "rule", "key", "status", "late", "summary", "id"]


def register(groups: Any) -> None:
    """Add the ``firings`` command group."""
    parser = groups.add_parser("firings", help="show what rules fired")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    listing = commands.add_parser(
        "list",
        help="list firings, newest first",
        description="List firings, newest first, optionally of one rule and key.",
    )
    listing.add_argument("--rule", help="only this rule's firings")
    listing.add_argument("--key", help="only this for_each key")
    listing.add_argument("--since", help="at or after this time (ISO 8601 with an offset)")
    listing.add_argument("--until", help="before this time (ISO 8601 with an offset)")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    add_api_arguments(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser(
        "show",
        help="show a firing and its actions' states",
        description="Show a firing and the state of each action it queued.",
    )
    show.add_argument("id", metavar="ID", help="the firing's id")
    add_api_arguments(show)
    show.set_defaults(handler=_show)


def _list(args: argparse.Namespace) -> int:
    params = {
        "rule": args.rule,
        "key": args.key,
        "since": args.since,
        "until": args.until,
        "limit": args.limit,
    }
    with ApiClient.from_args(args) as api:
        print_output(args, api.get("/api/firings", params=params), columns=_COLUMNS)
    return 0


def _show(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        detail = api.get(f"/api/firings/{args.id}")
    if args.json:
        print_output(args, detail, columns=[])
        return 0
    print_table([detail["firing"]], _COLUMNS)
    print()
    print_table(detail["actions"], ["index", "kind", "state", "attempts", "last_error"])
    return 0
