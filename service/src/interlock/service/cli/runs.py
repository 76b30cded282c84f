"""``interlock runs list | show | logs | cancel``: runs on a running service."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from interlock.sdk.vocabulary import FINAL_RUN_STATES, RUN_STATES
from interlock.service.cli.client import ApiClient, add_api_arguments, print_output

__all__ = ["register"]

_COLUMNS = ["id", "deployment", "state", "queue", "started_at", "ended_at", "message"]


def register(groups: Any) -> None:
    """Add the ``runs`` command group."""
    parser = groups.add_parser("runs", help="list runs, read their logs, cancel them")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="list runs", description="List runs, newest first.")
    listing.add_argument("--deployment", help="only this deployment's")
    listing.add_argument("--queue", help="only this queue's")
    listing.add_argument("--state", choices=RUN_STATES, help="only in this state")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    add_api_arguments(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="show a run", description="Show the run ID.")
    show.add_argument("run_id", metavar="ID")
    add_api_arguments(show)
    show.set_defaults(handler=_show)

    logs = commands.add_parser(
        "logs",
        help="print a run's output",
        description="Print the output (stdout and stderr) of the run ID. With --follow, "
        "keep printing as it grows until the run ends.",
    )
    logs.add_argument("run_id", metavar="ID")
    logs.add_argument("--follow", "-f", action="store_true", help="follow until the run ends")
    logs.add_argument("--tail", type=int, help="only the last N lines")
    add_api_arguments(logs, json_flag=False)
    logs.set_defaults(handler=_logs)

    cancel = commands.add_parser(
        "cancel",
        help="cancel a run",
        description="Cancel the run ID: a waiting run never starts, a running one is "
        "terminated by its worker.",
    )
    cancel.add_argument("run_id", metavar="ID")
    add_api_arguments(cancel)
    cancel.set_defaults(handler=_cancel)


def _list(args: argparse.Namespace) -> int:
    params = {
        "deployment": args.deployment,
        "queue": args.queue,
        "state": args.state,
        "limit": args.limit,
    }
    with ApiClient.from_args(args) as api:
        print_output(args, api.get("/api/runs", params=params), columns=_COLUMNS)
    return 0


def _show(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        run = api.get(f"/api/runs/{args.run_id}")
    print(json.dumps(run, indent=2))
    return 0


def _logs(args: argparse.Namespace) -> int:
    path = f"/api/runs/{args.run_id}/logs"
    with ApiClient.from_args(args) as api:
        first = api.get(path, params={"json": "true", "tail": args.tail})
        sys.stdout.write(first["text"])
        offset = first["size"]
        while args.follow:
            if api.get(f"/api/runs/{args.run_id}")["state"] in FINAL_RUN_STATES:
                args.follow = False  # one last read: what it wrote before it ended
            else:
                time.sleep(0.5)
            sys.stdout.flush()
            more = api.get(path, params={"json": "true", "offset": offset})
            sys.stdout.write(more["text"])
            offset = max(offset, more["size"])
    sys.stdout.flush()
    return 0


def _cancel(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        run = api.post(f"/api/runs/{args.run_id}/cancel")
    if args.json:
        print_output(args, run, columns=_COLUMNS)
    else:
        print(f"run {run['id']} cancelled")
    return 0
