"""The ``interlock`` command line.

Command groups come from the entry-point group ``interlock.commands``: each entry point
is a function ``register(subparsers)`` that adds one group (``events`` here; ``rules``,
``server`` and others come from the packages that own them). So a producer that installs
only ``interlock-sdk`` gets ``interlock events``, and nothing pulls the server in.

Errors are printed as one line (``interlock: error: ...``) with exit status 1; usage
errors exit with 2, as argparse does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Union

from interlock.sdk.compat import entry_points
from interlock.sdk.errors import InterlockError

__all__ = ["Handler", "build_parser", "main"]

Handler = Callable[[argparse.Namespace], Union[Coroutine[Any, Any, int], int]]
"""What a subcommand's ``handler`` default is: sync or async, returning an exit status."""


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Return the parser with the installed command groups registered.

    Given the command line, only the group it names is registered: a group's module may
    import much (the service's settings, its database layer), and ``interlock runs list``
    need not pay for ``interlock server``. Without one, or when it names no installed
    group (``--help``, a typo), every group is, so help and errors list them all.
    """
    parser = argparse.ArgumentParser(
        prog="interlock", description="Interlock: a coordination plane for dataflow."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    groups = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    points = sorted(entry_points("interlock.commands"), key=lambda e: e.name)
    named = _group_named(argv, {point.name for point in points})
    for entry_point in points:
        if named is None or entry_point.name == named:
            register = entry_point.load()
            register(groups)
    return parser


def _group_named(argv: Sequence[str] | None, groups: set[str]) -> str | None:
    """The command group ``argv`` names, if it names an installed one."""
    for word in argv or ():
        if word == "--verbose" or (word.startswith("-") and set(word[1:]) == {"v"}):
            continue
        return word if word in groups else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * args.verbose
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    handler: Handler = args.handler
    try:
        result = handler(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
    except InterlockError as exc:
        print(f"interlock: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    assert isinstance(result, int)
    return result


if __name__ == "__main__":
    sys.exit(main())
