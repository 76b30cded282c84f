"""``interlock rules``: check rule modules and print them as a readable plan; test them.

``test`` runs scenario files against the rules (:mod:`interlock.rules.testing.cli`).

Other packages add subcommands to the group through the entry-point group
``interlock.rules_commands``: each entry point is a function ``register(commands)``
called with the group's subparsers (the service adds ``apply``, ``list``, ``pause``,
``resume``, which talk to a running service's API).

``check`` works offline: it loads and validates the modules, and warns of credentials
written in the rules (:mod:`interlock.rules.inline_secrets`). ``check --strict`` also
asks whether what the rules name (deployments, queues, channels, other rules) exists,
which only a running service knows: the package that can ask (``interlock-service``)
sets the ``check`` parser's default ``check_references``, a function
``(args, rules) -> list[RuleIssue]`` (and adds the flags it needs, ``--api-url``);
each issue it returns is an error under ``--strict``. Without such a package,
``--strict`` is an error saying what to install.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from interlock.rules.describe import describe_rule
from interlock.rules.errors import RuleIssue
from interlock.rules.inline_secrets import inline_secret_warnings
from interlock.rules.loader import load_paths
from interlock.rules.rule import Rule

__all__ = ["register"]


def register(groups: Any) -> None:
    """Add the ``rules`` command group."""
    rules = groups.add_parser("rules", help="check and manage rules")
    commands = rules.add_subparsers(title="commands", metavar="COMMAND", required=True)
    check = commands.add_parser(
        "check",
        help="load rule modules, validate them and print the plan",
        description="Load the rule modules under PATH (files or folders), validate every "
        "rule, and print each as a plan block. Exit status 1 on any problem. Offline, "
        "unless --strict: then the running service is also asked whether the "
        "deployments, queues, channels and rules they name exist, and a missing one is "
        "a problem too (`rules apply` only warns).",
    )
    check.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    check.add_argument("--quiet", "-q", action="store_true", help="print problems only")
    check.add_argument(
        "--strict",
        action="store_true",
        help="also check what the rules name against the running service (needs "
        "interlock-service; see --api-url): a name that does not exist is an error",
    )
    check.set_defaults(handler=_check, check_references=None)
    test = commands.add_parser(
        "test",
        help="run scenario files (*.test.toml) against the rules they name",
        description="Run the scenarios of the scenario files under PATH (a file, or a folder "
        "searched for *.test.toml): each feeds events to the rules in simulated time and "
        "compares what fires with what it expects. Exit status 0: all passed; 1: a scenario "
        "failed (its diff is printed); 2: a file or its rules could not be loaded. See "
        "docs/rules-testing.md for the format.",
    )
    test.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    test.add_argument("--quiet", "-q", action="store_true", help="print failures and errors only")
    test.set_defaults(handler=_test)
    for entry_point in sorted(entry_points(group="interlock.rules_commands"), key=lambda e: e.name):
        entry_point.load()(commands)


def _test(args: argparse.Namespace) -> int:
    from interlock.rules.testing.cli import run_test_command  # noqa: PLC0415 - the engine

    return run_test_command(args.paths, quiet=args.quiet)


def _check(args: argparse.Namespace) -> int:
    result = load_paths(args.paths)
    now = datetime.now(UTC)
    if not args.quiet:
        for rule in result.rules:
            print(describe_rule(rule, now))
            print()
    problems = [str(problem) for problem in result.problems]
    warnings = [] if args.strict else inline_secret_warnings(result.rules)
    if args.strict:  # the service's warnings include these, as errors
        problems.extend(_strict_problems(args, result.rules))
    for problem in problems:
        print(f"error: {problem}")
    for warning in warnings:
        print(f"warning: {warning}")
    status = "ok" if not problems else f"{len(problems)} problem(s)"
    if warnings:
        status += f", {len(warnings)} warning(s)"
    print(f"{len(result.rules)} rule(s) checked: {status}")
    return 1 if problems else 0


def _strict_problems(args: argparse.Namespace, rules: list[Rule]) -> list[str]:
    """What ``--strict`` adds: each name the rules use that the service does not hold."""
    check_references: Callable[[argparse.Namespace, list[Rule]], list[RuleIssue]] | None = (
        args.check_references
    )
    if check_references is None:
        return [
            "--strict checks what the rules name against a running Interlock service: "
            "install interlock-service (it adds --api-url)"
        ]
    if not rules:
        return []
    return [str(issue) for issue in check_references(args, rules)]
