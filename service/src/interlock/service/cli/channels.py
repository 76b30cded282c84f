"""``interlock channels add | list | remove``: notification channels on a running service.

A channel's Apprise URL holds credentials: give ``-`` as the URL to read it from
standard input, so it stays out of the shell's history and the process list. The API
never shows it again (listings show ``slack://***``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from interlock.sdk.errors import InterlockError
from interlock.service.cli.client import ApiClient, add_api_arguments, print_output

__all__ = ["register"]

_COLUMNS = ["name", "url", "updated_at"]


class NoUrlGiven(InterlockError, ValueError):
    """``-`` was given as the URL but standard input held none."""

    def __init__(self) -> None:
        super().__init__("no URL on standard input (give the Apprise URL, or pipe it in)")


def register(groups: Any) -> None:
    """Add the ``channels`` command group."""
    parser = groups.add_parser("channels", help="manage notification channels")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    add = commands.add_parser(
        "add",
        help="create a channel or point it at a new URL",
        description="Create the channel NAME (or re-point it) at an Apprise URL, stored "
        "encrypted by the service. Give '-' as URL to read it from standard input: "
        'echo "$SLACK_URL" | interlock channels add ops -',
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument("url", metavar="URL", help="an Apprise URL, or '-' to read it from stdin")
    add_api_arguments(add)
    add.set_defaults(handler=_add)

    listing = commands.add_parser(
        "list", help="list channels (URLs redacted)", description="List channels."
    )
    add_api_arguments(listing)
    listing.set_defaults(handler=_list)

    remove = commands.add_parser(
        "remove", help="delete a channel", description="Delete the channel NAME."
    )
    remove.add_argument("name", metavar="NAME")
    add_api_arguments(remove, json_flag=False)
    remove.set_defaults(handler=_remove)


def _add(args: argparse.Namespace) -> int:
    url = args.url
    if url == "-":
        url = sys.stdin.readline().strip()
        if not url:
            raise NoUrlGiven
    with ApiClient.from_args(args) as api:
        channel = api.post("/api/channels", {"name": args.name, "url": url})
    if args.json:
        print_output(args, channel, columns=_COLUMNS)
    else:
        print(f"channel {channel['name']} -> {channel['url']}")
    return 0


def _list(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        print_output(args, api.get("/api/channels"), columns=_COLUMNS)
    return 0


def _remove(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        api.delete(f"/api/channels/{args.name}")
    print(f"channel {args.name} deleted")
    return 0
