"""``interlock deployments list | show | create | run | delete | set-target | set-policy``.

``list`` shows each deployment's ``NEXT_RUN``: when its schedule runs it next (the cron of
:mod:`interlock.rules.crontab`, as the service's scheduler computes it), ``-`` without a
schedule or while it is paused. ``run NAME --param k=v ...`` starts a run (a value is JSON
when it parses as JSON — ``n=3``, ``full=true``, ``tags=["a"]`` — else a string);
``--wait`` waits for it to finish and exits 0 only if it completed. ``delete NAME``
deletes it with its finished runs (refused while a run is not finished).

``set-target NAME TYPE KEY=VALUE ...`` points a deployment at another target (values are
JSON when they parse as JSON)::

    interlock deployments set-target backfill airflow connection=prod-airflow \
        dag_id=backfill_sales 'conf={"full": true}'
    interlock deployments set-target backfill prefect connection=prod-prefect \
        deployment=backfill/daily

The rules that start it (``run_deployment("backfill")``) are unchanged. ``set-policy
NAME --retries 2 --retry-delay 10 --backoff 2 --timeout 600 --concurrency-limit 2``
changes what it is given and keeps the rest (``--no-timeout``, ``--no-concurrency-limit``
remove them).
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
    what.add_argument(
        "--target", help='any target as JSON: {"type": "airflow", "connection": ..., ...}'
    )
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

    _add_set_target(commands)
    _add_set_policy(commands)

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


def _add_set_target(commands: Any) -> None:
    """``set-target NAME TYPE KEY=VALUE ...``."""
    target = commands.add_parser(
        "set-target",
        help="point a deployment at another target",
        description="Point NAME at a target of TYPE (process, airflow, prefect, http) with "
        "these fields; the rules that start it are unchanged. Values are JSON when they "
        "parse as JSON.",
    )
    target.add_argument("name", metavar="NAME")
    target.add_argument("type", metavar="TYPE")
    target.add_argument("fields", nargs="*", metavar="KEY=VALUE", help="a field of the target")
    add_api_arguments(target)
    target.set_defaults(handler=_set_target)


def _add_set_policy(commands: Any) -> None:
    """``set-policy NAME --retries N ...``."""
    policy = commands.add_parser(
        "set-policy",
        help="set a deployment's retries, timeout and concurrency limit",
        description="Change NAME's run policy; what is not given is kept.",
    )
    policy.add_argument("name", metavar="NAME")
    policy.add_argument("--retries", type=int, help="attempts after the first (0-100)")
    policy.add_argument("--retry-delay", type=float, help="seconds before the first retry")
    policy.add_argument("--backoff", type=float, help="each later retry waits this factor more")
    timeout = policy.add_mutually_exclusive_group()
    timeout.add_argument("--timeout", type=float, help="seconds one attempt may run")
    timeout.add_argument("--no-timeout", action="store_true", help="no time limit")
    limit = policy.add_mutually_exclusive_group()
    limit.add_argument("--concurrency-limit", type=int, help="its runs at once, over all workers")
    limit.add_argument("--no-concurrency-limit", action="store_true", help="no limit of its own")
    add_api_arguments(policy)
    policy.set_defaults(handler=_set_policy)


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
    if args.target:
        target = _json_object("--target", args.target)
    elif args.entrypoint:
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


def _set_target(args: argparse.Namespace) -> int:
    target: dict[str, Any] = {**_fields(args.fields), "type": args.type}
    with ApiClient.from_args(args) as api:
        deployment = api.request(
            "PUT", f"/api/deployments/{args.name}/target", json_body={"target": target}
        )
    if args.json:
        print_output(args, deployment, columns=_COLUMNS)
    else:
        print(f"deployment {args.name} now runs {_describe(deployment['target'])}")
    return 0


def _set_policy(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        current = api.get(f"/api/deployments/{args.name}")
        policy = dict(current.get("policy") or {})
        for field in ("retries", "retry_delay", "backoff", "timeout"):
            value = getattr(args, field)
            if value is not None:
                policy[field] = value
        if args.no_timeout:
            policy.pop("timeout", None)
        limit = current.get("concurrency_limit")
        if args.concurrency_limit is not None or args.no_concurrency_limit:
            limit = args.concurrency_limit
        body = {"policy": policy, "concurrency_limit": limit}
        deployment = api.request("PUT", f"/api/deployments/{args.name}/policy", json_body=body)
    if args.json:
        print_output(args, deployment, columns=_COLUMNS)
    else:
        shown = json.dumps(deployment["policy"]) if deployment["policy"] else "no retries"
        print(
            f"deployment {args.name}: {shown}, "
            f"concurrency limit {deployment['concurrency_limit'] or 'none'}"
        )
    return 0


class BadField(InterlockError, ValueError):
    """A target's field is not ``key=value``, or a JSON option is not an object."""

    def __init__(self, text: str, reason: str = "must read key=value") -> None:
        super().__init__(f"{text!r} {reason}")


def _fields(pairs: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadField(pair)
        try:
            fields[key] = json.loads(value)
        except ValueError:
            fields[key] = value
    return fields


def _json_object(option: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise BadField(option, f"is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadField(option, "must be a JSON object")
    return value


class WaitTimedOut(InterlockError, TimeoutError):
    """``--wait --timeout`` passed before the run ended."""

    def __init__(self, run_id: str, state: str, timeout: float) -> None:
        super().__init__(f"run {run_id} is still {state} after {timeout:g}s (it goes on)")


def _describe(target: dict[str, Any]) -> str:
    if target.get("type") not in (None, "process"):
        what = target.get("dag_id") or target.get("deployment") or target.get("path") or ""
        return f"{target['type']} {what} (connection {target.get('connection')})".replace("  ", " ")
    if "entrypoint" in target:
        return str(target["entrypoint"])
    command = target.get("command")
    if isinstance(command, list):
        return " ".join(str(part) for part in command)
    return str(target.get("type", "?"))
