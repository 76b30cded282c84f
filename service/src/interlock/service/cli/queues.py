"""``interlock queues list | create | pause | resume``: work queues on a running service."""

from __future__ import annotations

import argparse
from typing import Any

from interlock.service.cli.client import ApiClient, add_api_arguments, print_output

__all__ = ["register"]

_COLUMNS = ["name", "paused", "concurrency_limit", "updated_at"]


def register(groups: Any) -> None:
    """Add the ``queues`` command group."""
    parser = groups.add_parser("queues", help="list, create, pause and resume work queues")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="list queues", description="List work queues.")
    add_api_arguments(listing)
    listing.set_defaults(handler=_list)

    create = commands.add_parser(
        "create", help="create a queue", description="Create the work queue NAME."
    )
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "--limit", type=int, help="runs of the queue running at once, over all workers"
    )
    create.add_argument("--paused", action="store_true", help="create it paused")
    add_api_arguments(create)
    create.set_defaults(handler=_create)

    for verb, text in (("pause", "hold the queue's runs"), ("resume", "let its runs go on")):
        command = commands.add_parser(
            verb,
            help=f"{verb} a queue ({text})",
            description=f"{verb.capitalize()} the queue NAME: {text}.",
        )
        command.add_argument("name", metavar="NAME")
        add_api_arguments(command)
        command.set_defaults(handler=_set_paused, verb=verb)


def _list(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        print_output(args, api.get("/api/queues"), columns=_COLUMNS)
    return 0


def _create(args: argparse.Namespace) -> int:
    body = {"name": args.name, "concurrency_limit": args.limit, "paused": args.paused}
    with ApiClient.from_args(args) as api:
        queue = api.post("/api/queues", body)
    if args.json:
        print_output(args, queue, columns=_COLUMNS)
    else:
        print(f"queue {queue['name']} created")
    return 0


def _set_paused(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        queue = api.post(f"/api/queues/{args.name}/{args.verb}")
    if args.json:
        print_output(args, queue, columns=_COLUMNS)
    else:
        print(f"queue {queue['name']} {'paused' if queue['paused'] else 'resumed'}")
    return 0
