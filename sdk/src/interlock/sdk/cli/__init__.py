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
from importlib.metadata import entry_points
from typing import Any

from interlock.sdk.errors import InterlockError

__all__ = ["Handler", "build_parser", "main"]

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int] | int]
"""What a subcommand's ``handler`` default is: sync or async, returning an exit status."""


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every installed command group registered."""
    parser = argparse.ArgumentParser(
        prog="interlock", description="Interlock: a coordination plane for dataflow."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    groups = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for entry_point in sorted(entry_points(group="interlock.commands"), key=lambda e: e.name):
        register = entry_point.load()
        register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
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
