"""``interlock rules``: check rule modules and print them as a readable plan.

Other packages add subcommands to the group through the entry-point group
``interlock.rules_commands``: each entry point is a function ``register(commands)``
called with the group's subparsers (the service adds ``apply``, ``list``, ``pause``,
``resume``, which talk to a running service's API).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from interlock.rules.describe import describe_rule
from interlock.rules.loader import load_paths

__all__ = ["register"]


def register(groups: Any) -> None:
    """Add the ``rules`` command group."""
    rules = groups.add_parser("rules", help="check and manage rules")
    commands = rules.add_subparsers(title="commands", metavar="COMMAND", required=True)
    check = commands.add_parser(
        "check",
        help="load rule modules, validate them and print the plan",
        description="Load the rule modules under PATH (files or folders), validate every "
        "rule, and print each as a plan block. Exit status 1 on any problem.",
    )
    check.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    check.add_argument("--quiet", "-q", action="store_true", help="print problems only")
    check.set_defaults(handler=_check)
    for entry_point in sorted(entry_points(group="interlock.rules_commands"), key=lambda e: e.name):
        entry_point.load()(commands)


def _check(args: argparse.Namespace) -> int:
    result = load_paths(args.paths)
    now = datetime.now(UTC)
    if not args.quiet:
        for rule in result.rules:
            print(describe_rule(rule, now))
            print()
    for problem in result.problems:
        print(f"error: {problem}")
    status = "ok" if not result.problems else f"{len(result.problems)} problem(s)"
    print(f"{len(result.rules)} rule(s) checked: {status}")
    return 1 if result.problems else 0
