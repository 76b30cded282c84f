"""``interlock deployments list | show | create | run | delete``: deployments on a service.

``list`` shows each deployment's ``NEXT_RUN``: when its schedule runs it next (the cron of
:mod:`interlock.rules.crontab`, as the service's scheduler computes it), ``-`` without a
schedule or while it is paused. ``run NAME --param k=v ...`` starts a run (a value is JSON
when it parses as JSON — ``n=3``, ``full=true``, ``tags=["a"]`` — else a string);
``--wait`` waits for it to finish and exits 0 only if it completed. ``delete NAME``
deletes it with its finished runs (refused while a run is not finished).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

from interlock.sdk.errors import InterlockError
from interlock.sdk.vocabulary import FINAL_RUN_STATES
from interlock.service.cli.client import ApiClient, add_api_arguments, print_output

__all__ = ["parse_params", "register"]

_COLUMNS = ["name", "queue", "schedule", "schedule_enabled", "next_run", "tags", "target"]
_RUN_COLUMNS = ["id", "deployment", "state", "queue", "message"]


class BadParameter(InterlockError, ValueError):
    """A ``--param`` is not ``key=value``."""

    def __init__(self, text: str) -> None:
        super().__init__(f"--param {text!r} must read key=value")


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}`` (values that parse as JSON are JSON)."""
    parameters: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadParameter(pair)
        try:
            parameters[key] = json.loads(value)
        except ValueError:
            parameters[key] = value
    return parameters


def register(groups: Any) -> None:
    """Add the ``deployments`` command group."""
    parser = groups.add_parser("deployments", help="list, create and run deployments")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="list deployments", description="List deployments.")
    listing.add_argument("--queue", help="only this queue's")
    add_api_arguments(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="show a deployment", description="Show NAME.")
    show.add_argument("name", metavar="NAME")
    add_api_arguments(show)
    show.set_defaults(handler=_show)

    create = commands.add_parser(
        "create",
        help="create a deployment",
        description="Create a process deployment: give --command (the rest of the line is "
        "the argv; its run's parameters are in $INTERLOCK_PARAMETERS, JSON) or --entrypoint "
        "package.module:function (called with the parameters as keyword arguments).",
    )
    create.add_argument("name", metavar="NAME")
    what = create.add_mutually_exclusive_group(required=True)
    what.add_argument("--entrypoint", help="package.module:function")
    what.add_argument("--command", nargs=argparse.REMAINDER, help="the command line (last)")
    create.add_argument("--queue", default="default", help="its work queue (default: default)")
    create.add_argument(
        "--schedule",
        help="a cron expression, UTC (e.g. '0 6 * * 1-5'), or after CRON_TZ=Zone in that zone "
        "('CRON_TZ=Europe/Berlin 0 6 * * 1-5')",
    )
    create.add_argument("--param", action="append", metavar="KEY=VALUE", help="a default")
    create.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    create.add_argument("--cwd", help="working directory of its runs")
    add_api_arguments(create)
    create.set_defaults(handler=_create)

    run = commands.add_parser(
        "run",
        help="start a run",
        description="Start a run of NAME. With --wait, wait for it to end and exit 0 only "
        "if it completed.",
    )
    run.add_argument("name", metavar="NAME")
    run.add_argument("--param", action="append", metavar="KEY=VALUE", help="a parameter")
    run.add_argument("--wait", action="store_true", help="wait until the run has finished")
    run.add_argument(
        "--timeout", type=float, default=None, help="with --wait: give up after SECONDS"
    )
    add_api_arguments(run)
    run.set_defaults(handler=_run)

    remove = commands.add_parser(
        "delete",
        help="delete a deployment",
        description="Delete NAME, its schedule and its finished runs (their logs stay). "
        "Refused while one of its runs is waiting or running: cancel it first. A deployment "
        "declared in the service's deployments file (config/deployments.toml) comes back "
        "at the next start: remove it there too.",
    )
    remove.add_argument("name", metavar="NAME")
    add_api_arguments(remove)
    remove.set_defaults(handler=_delete)


def _list(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        deployments = api.get("/api/deployments", params={"queue": args.queue})
    now = datetime.now(UTC)
    for deployment in deployments:
        deployment["next_run"] = _next_run(deployment, now)
        if not args.json:
            deployment["target"] = _describe(deployment["target"])
    print_output(args, deployments, columns=_COLUMNS)
    return 0


def _next_run(deployment: dict[str, Any], now: datetime) -> str | None:
    """When the deployment's schedule runs it next (ISO 8601, UTC), if it is scheduled."""
    from interlock.service.cron_trigger import CronScheduleTrigger  # noqa: PLC0415

    schedule = deployment.get("schedule")
    if not schedule or not deployment.get("schedule_enabled"):
        return None
    try:
        due = CronScheduleTrigger(schedule).get_next_fire_time(None, now)
    except ValueError:
        return "invalid schedule"
    return None if due is None else due.isoformat().replace("+00:00", "Z")


def _delete(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        deleted = api.delete(f"/api/deployments/{args.name}")
    if args.json:
        print_output(args, deleted, columns=[])
    else:
        runs = deleted["runs_deleted"]
        print(f"deployment {args.name} deleted, with its {runs} finished run(s)")
    return 0


def _show(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        deployment = api.get(f"/api/deployments/{args.name}")
    print(json.dumps(deployment, indent=2))
    return 0


def _create(args: argparse.Namespace) -> int:
    target: dict[str, Any] = {"type": "process"}
    if args.entrypoint:
        target["entrypoint"] = args.entrypoint
    else:
        target["command"] = args.command
    if args.cwd:
        target["cwd"] = args.cwd
    body = {
        "name": args.name,
        "target": target,
        "queue": args.queue,
        "schedule": args.schedule,
        "parameters": parse_params(args.param),
        "tags": args.tag,
    }
    with ApiClient.from_args(args) as api:
        deployment = api.post("/api/deployments", body)
    if args.json:
        print_output(args, deployment, columns=_COLUMNS)
    else:
        print(f"deployment {deployment['name']} created (queue {deployment['queue']})")
    return 0


def _run(args: argparse.Namespace) -> int:
    body = {"parameters": parse_params(args.param)}
    with ApiClient.from_args(args) as api:
        run = api.post(f"/api/deployments/{args.name}/run", body)
        if not args.wait:
            print_output(args, run, columns=_RUN_COLUMNS)
            return 0
        deadline = None if args.timeout is None else time.monotonic() + args.timeout
        while run["state"] not in FINAL_RUN_STATES:
            if deadline is not None and time.monotonic() > deadline:
                raise WaitTimedOut(run["id"], run["state"], args.timeout)
            time.sleep(0.5)
            run = api.get(f"/api/runs/{run['id']}")
    print_output(args, run, columns=_RUN_COLUMNS)
    return 0 if run["state"] == "completed" else 1


class WaitTimedOut(InterlockError, TimeoutError):
    """``--wait --timeout`` passed before the run ended."""

    def __init__(self, run_id: str, state: str, timeout: float) -> None:
        super().__init__(f"run {run_id} is still {state} after {timeout:g}s (it goes on)")


def _describe(target: dict[str, Any]) -> str:
    if "entrypoint" in target:
        return str(target["entrypoint"])
    command = target.get("command")
    if isinstance(command, list):
        return " ".join(str(part) for part in command)
    return str(target.get("type", "?"))
