"""``interlock rules apply | list | pause | resume | resume-actions``: rules, live.

Registered into the ``rules`` group (which owns ``check``) through the entry-point group
``interlock.rules_commands``. Each command talks to the service's API (see
:mod:`interlock.service.cli.client` for ``--api-url``/``--api-key``).

``apply`` prints, under each rule of its plan, the warnings of the API's answer: a
deployment, queue, channel or rule it names that the service does not hold (yet), a
credential written in the rule (stored in plain text: use a channel). The
service also gives ``check`` (offline, owned by ``interlock.rules``) what its
``--strict`` needs: ``--api-url``/``--api-key`` and :func:`check_references`, which asks
``POST /api/rules/check`` for those warnings; ``check --strict`` reports them as errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from interlock.rules.errors import RuleIssue
from interlock.rules.loader import load_paths
from interlock.rules.rule import Rule, dump_rules
from interlock.sdk.errors import InterlockError
from interlock.service.cli.client import ApiClient, add_api_arguments, print_output, print_table

__all__ = ["RulesNotLoaded", "check_references", "register"]


class RulesNotLoaded(InterlockError, ValueError):
    """The rule modules given to ``rules apply`` have problems; nothing was sent.

    Attributes:
        problems: Each problem, as ``file:line: message``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n  ".join(problems)
        super().__init__(f"{len(problems)} problem(s) in the rules; nothing applied:\n  {listed}")


def register(commands: Any) -> None:
    """Add ``apply``, ``list``, ``pause``, ``resume`` and ``resume-actions`` to ``rules``.

    Also gives ``check`` the API flags and :func:`check_references` for ``--strict``.
    """
    check = commands.choices.get("check")
    if check is not None:
        add_api_arguments(check, json_flag=False)
        check.set_defaults(check_references=check_references)
    apply = commands.add_parser(
        "apply",
        help="apply rule modules to the running service",
        description="Load the rule modules under PATH (files or folders), validate them, "
        "and apply every rule to the running service: new rules are created, changed "
        "ones updated (a new version), unchanged ones keep their state. With --dry-run, "
        "print what would change (with a field-level diff) and change nothing.",
    )
    apply.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    apply.add_argument("--dry-run", action="store_true", help="show the plan; change nothing")
    add_api_arguments(apply)
    apply.set_defaults(handler=_apply)

    listing = commands.add_parser(
        "list", help="list the service's rules", description="List the service's rules."
    )
    add_api_arguments(listing)
    listing.set_defaults(handler=_list)

    for verb, paused in (("pause", True), ("resume", False)):
        parser = commands.add_parser(
            verb,
            help=f"{verb} a rule on the running service",
            description="Pause a rule: it stays loaded but does not fire until resumed."
            if paused
            else "Resume a paused rule.",
        )
        parser.add_argument("name", metavar="NAME", help="the rule's name")
        add_api_arguments(parser)
        parser.set_defaults(handler=_pause if paused else _resume)

    actions = commands.add_parser(
        "resume-actions",
        help="resume a rule's actions suspended by the circuit breaker",
        description="Close the circuit breaker of a rule's actions (all of them, or the "
        "one at --index): actions suspended after failing too often in a row are queued "
        "again, and new firings run them normally.",
    )
    actions.add_argument("name", metavar="NAME", help="the rule's name")
    actions.add_argument(
        "--index",
        type=int,
        metavar="N",
        help="only the rule's N-th action (0 is the first of its list)",
    )
    add_api_arguments(actions)
    actions.set_defaults(handler=_resume_actions)


def _apply(args: argparse.Namespace) -> int:
    loaded = load_paths(args.paths)
    if loaded.problems:
        raise RulesNotLoaded([str(problem) for problem in loaded.problems])
    if not loaded.rules:
        raise RulesNotLoaded([f"no rules found in {', '.join(map(str, args.paths))}"])
    document = json.loads(dump_rules(loaded.rules))
    with ApiClient.from_args(args) as api:
        result = api.post("/api/rules", document, params={"dry_run": str(args.dry_run).lower()})
    if args.json:
        print_output(args, result, columns=[])
        return 0
    changes: list[dict[str, Any]] = result["changes"]
    warnings: list[dict[str, Any]] = result.get("warnings", [])
    for change in changes:
        version = change["version"]
        suffix = f" (version {version})" if version is not None else ""
        print(f"{change['change']:>9}  {change['name']}{suffix}")
        for field in change.get("diff", []):
            before = json.dumps(field.get("before"))
            after = json.dumps(field.get("after"))
            print(f"           {field['path']}: {before} -> {after}")
        for warning in warnings:
            if warning.get("rule") == change["name"]:
                print(f"  warning  {_warning(warning)}")
    counts = {kind: sum(1 for c in changes if c["change"] == kind) for kind in _KINDS}
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    verb = "would be applied (dry run: nothing changed)" if args.dry_run else "applied"
    if warnings:
        summary += f"; {len(warnings)} warning(s), shown under their rules"
    print(f"{len(changes)} rule(s) {verb}: {summary}", file=sys.stderr)
    return 0


def _warning(data: dict[str, Any]) -> str:
    """A warning of the plan, under its rule: ``then[1].deployment: ... (hint)``."""
    where = f"{data['path']}: " if data.get("path") else ""
    hint = f" ({data['hint']})" if data.get("hint") else ""
    return f"{where}{data.get('message', '')}{hint}"


def check_references(args: argparse.Namespace, rules: list[Rule]) -> list[RuleIssue]:
    """What ``rules`` name that the service at ``--api-url`` does not hold (for ``check``).

    Raises:
        ApiUnreachable: no service answers (``--strict`` needs one).
        ApiError: the service refused the rules or the key.
    """
    document = json.loads(dump_rules(rules))
    with ApiClient.from_args(args) as api:
        result = api.post("/api/rules/check", document)
    return [msgspec.convert(warning, RuleIssue) for warning in result["warnings"]]


_KINDS = ("created", "updated", "unchanged")


def _list(args: argparse.Namespace) -> int:
    with ApiClient.from_args(args) as api:
        rules = api.get("/api/rules")
    if args.json:
        print_output(args, rules, columns=[])
        return 0
    rows = [{**rule, "next": (rule["next_deadlines"] or [rule["next_due"]])[0]} for rule in rules]
    print_table(rows, ["name", "version", "state", "trigger", "next"])
    for rule in rules:
        if rule.get("broken"):
            print(f"rule {rule['name']} is broken: {rule['broken']}", file=sys.stderr)
    return 0


def _pause(args: argparse.Namespace) -> int:
    return _set_paused(args, "pause")


def _resume(args: argparse.Namespace) -> int:
    return _set_paused(args, "resume")


def _set_paused(args: argparse.Namespace, verb: str) -> int:
    with ApiClient.from_args(args) as api:
        rule = api.post(f"/api/rules/{args.name}/{verb}")
    if args.json:
        print_output(args, rule, columns=[])
    else:
        print(f"rule {rule['name']} {'paused' if rule['paused'] else 'resumed'}")
    return 0


def _resume_actions(args: argparse.Namespace) -> int:
    params = {} if args.index is None else {"index": args.index}
    with ApiClient.from_args(args) as api:
        result = api.post(f"/api/rules/{args.name}/actions/resume", params=params)
    if args.json:
        print_output(args, result, columns=[])
        return 0
    which = "actions" if result["index"] is None else f"action {result['index']}"
    print(
        f"rule {result['rule']}: circuit breaker of its {which} closed; "
        f"{result['resumed']} suspended action(s) queued again"
    )
    return 0
