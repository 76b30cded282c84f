"""``interlock approvals list | show | approve | reject``: manual approval steps, live.

``list`` shows the open approvals with their ``STATE``: ``pending`` once the request went
out, ``sending``, ``request_failed`` or ``request_given_up`` while it has not (``show``
says why and when it is tried again). ``approve`` / ``reject`` decide the pending
approval of a firing (its id is in ``interlock approvals list`` and in
``interlock firings``) and say what the decision did: the actions after the ``approve``
step run, or are cancelled. ``--by`` says who decided (default: the API key's name).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from interlock.sdk.errors import InterlockError
from interlock.service.cli.client import ApiClient, add_api_arguments, print_output

__all__ = ["NoApproval", "register"]

_COLUMNS = ["firing_id", "rule", "index", "state", "title", "requested_at", "expires_at"]
_DECIDED_COLUMNS = [*_COLUMNS[:4], "decided_by", "decided_at", "reason"]
_SHOWN = [
    "firing_id",
    "rule",
    "index",
    "title",
    "state",
    "requested_at",
    "sent_at",
    "request_error",
    "attempts",
    "retry_at",
    "expires_at",
    "on_timeout",
    "decision",
    "decided_by",
    "decided_at",
    "reason",
]
_UNSENT = ("sending", "request_failed", "request_given_up")


class NoApproval(InterlockError, LookupError):
    """The firing has no approval (its ``approve`` step has not run, or it has none).

    Attributes:
        firing_id: The firing asked about.
    """

    def __init__(self, firing_id: str) -> None:
        self.firing_id = firing_id
        super().__init__(
            f"no approval for firing {firing_id}: its approve step has not run yet, or the "
            "firing has none (see `interlock firings show`)"
        )


def register(groups: Any) -> None:
    """Add the ``approvals`` command group."""
    parser = groups.add_parser("approvals", help="list and decide manual approvals")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    listing = commands.add_parser(
        "list",
        help="list open approvals",
        description="List approvals waiting for a decision, oldest first. STATE is "
        "'pending' once the request went out; 'sending', 'request_failed' (tried again "
        "by the action's retry policy) or 'request_given_up' while it has not.",
    )
    listing.add_argument("--rule", help="only this rule's")
    listing.add_argument("--decided", action="store_true", help="include decided and given-up ones")
    add_api_arguments(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser(
        "show",
        help="show a firing's approvals",
        description="Show the approvals of FIRING_ID, decided or not: whether the request "
        "went out (and if not, why, and when it is tried again), and the decision.",
    )
    show.add_argument("firing_id", metavar="FIRING_ID")
    add_api_arguments(show)
    show.set_defaults(handler=_show)

    for verb, effect in (("approve", "run"), ("reject", "are cancelled")):
        command = commands.add_parser(
            verb,
            help=f"{verb} a firing's pending approval",
            description=f"{verb.capitalize()} the pending approval of FIRING_ID: the actions "
            f"after the approve step {effect}. An approval whose request has not gone out "
            "may be decided too (it is then not sent); one given up cannot.",
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
    if not args.json:
        for approval in approvals:
            if approval["decision"] is None and approval["state"] in _UNSENT:
                print(f"note: {_not_sent(approval)}", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    params = {"firing_id": args.firing_id, "decided": "true"}
    with ApiClient.from_args(args) as api:
        approvals = api.get("/api/approvals", params=params)
    if not approvals:
        raise NoApproval(args.firing_id)
    if args.json:
        print_output(args, approvals, columns=[])
        return 0
    width = max(map(len, _SHOWN))
    for number, approval in enumerate(approvals):
        if number:
            print()
        for field in _SHOWN:
            value = approval.get(field)
            if value is not None and value != "":
                print(f"{field + ':':<{width + 1}} {value}")
    return 0


def _decide(args: argparse.Namespace) -> int:
    body = {"by": args.by, "reason": args.reason}
    with ApiClient.from_args(args) as api:
        approval = api.post(f"/api/firings/{args.firing_id}/{args.verb}", body)
    if args.json:
        print_output(args, approval, columns=[])
    else:
        print(
            f"firing {approval['firing_id']} (rule {approval['rule']}): "
            f"{approval['decision']} by {approval['decided_by']}: {approval['effect']}"
        )
    return 0


def _not_sent(approval: dict[str, Any]) -> str:
    where = f"firing {approval['firing_id']} (rule {approval['rule']})"
    error = approval.get("request_error") or "no error recorded yet"
    if approval["state"] == "sending":
        return f"{where}: its request is being sent; nobody was asked yet"
    if approval["state"] == "request_given_up":
        return (
            f"{where}: its request could not be sent ({error}) and was given up; nobody "
            "was asked, and the actions after it were cancelled"
        )
    retry = f"; tried again at {approval['retry_at']}" if approval.get("retry_at") else ""
    return f"{where}: its request could not be sent ({error}); nobody was asked yet{retry}"
