"""``interlock approvals list | approve | reject``: manual approval steps on a running service.

``approve`` / ``reject`` decide the pending approval of a firing (its id is in
``interlock approvals list`` and in ``interlock firings``); the actions after the
``approve`` step then run, or are cancelled. ``--by`` says who decided (default: the
API key's name).
"""

from __future__ import annotations

import argparse
from typing import Any

from interlock.service.cli.client import ApiClient, add_api_arguments, print_output

__all__ = ["register"]

_COLUMNS = ["firing_id", "rule", "index", "title", "requested_at", "expires_at"]
_DECIDED_COLUMNS = [*_COLUMNS[:3], "decision", "decided_by", "decided_at", "reason"]


def register(groups: Any) -> None:
    """Add the ``approvals`` command group."""
    parser = groups.add_parser("approvals", help="list and decide manual approvals")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    listing = commands.add_parser(
        "list",
        help="list pending approvals",
        description="List approvals waiting for a decision, oldest first.",
    )
    listing.add_argument("--rule", help="only this rule's")
    listing.add_argument("--decided", action="store_true", help="include decided ones")
    add_api_arguments(listing)
    listing.set_defaults(handler=_list)

    for verb, effect in (("approve", "run"), ("reject", "are cancelled")):
        command = commands.add_parser(
            verb,
            help=f"{verb} a firing's pending approval",
            description=f"{verb.capitalize()} the pending approval of FIRING_ID: the actions "
            f"after the approve step {effect}.",
        )
        command.add_argument("firing_id", metavar="FIRING_ID")
        command.add_argument("--by", default="", help="who decides (default: the key's name)")
        command.add_argument("--reason", default="", help="why, recorded with the decision")
        add_api_arguments(command)
        command.set_defaults(handler=_decide, verb=verb)


def _list(args: argparse.Namespace) -> int:
    params = {"rule": args.rule, "decided": "true" if args.decided else None}
    with ApiClient.from_args(args) as api:
        approvals = api.get("/api/approvals", params=params)
    print_output(args, approvals, columns=_DECIDED_COLUMNS if args.decided else _COLUMNS)
    return 0


def _decide(args: argparse.Namespace) -> int:
    body = {"by": args.by, "reason": args.reason}
    with ApiClient.from_args(args) as api:
        approval = api.post(f"/api/firings/{args.firing_id}/{args.verb}", body)
    if args.json:
        print_output(args, approval, columns=_DECIDED_COLUMNS)
    else:
        print(
            f"firing {approval['firing_id']} (rule {approval['rule']}): "
            f"{approval['decision']} by {approval['decided_by']}"
        )
    return 0
