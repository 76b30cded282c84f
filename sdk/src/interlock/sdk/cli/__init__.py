"""The ``interlock`` command line.

Command groups come from the entry-point group ``interlock.commands``: each entry point
is a function ``register(subparsers)`` that adds one group (``events`` here; ``rules``,
``server`` and others come from the packages that own them). So a producer that installs
only ``interlock-sdk`` gets ``interlock events``, and nothing pulls the server in; a
group of a package that is not installed is named with the package to install
(:data:`GROUPS`).

``interlock --version`` (``-V``) names the version of every Interlock package installed.
Logging goes to standard error (:mod:`._logging`): ``-v``, ``--log-level``,
``--log-format json``.

Errors are printed as one line (``interlock: error: ...``) with exit status 1; usage
errors exit with 2, as argparse does. Output cut short by its reader (``| head``) ends
quietly with status 141, as a shell's own tools do on SIGPIPE.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from importlib import metadata
from typing import Any, Union

from interlock.sdk.cli._logging import add_logging_arguments, configure_logging, level_from
from interlock.sdk.compat import entry_points
from interlock.sdk.errors import InterlockError

__all__ = ["DISTRIBUTIONS", "GROUPS", "Handler", "build_parser", "main", "version_text"]

Handler = Callable[[argparse.Namespace], Union[Coroutine[Any, Any, int], int]]
"""What a subcommand's ``handler`` default is: sync or async, returning an exit status."""

DISTRIBUTIONS = ("interlock-sdk", "interlock-rules", "interlock-adapters", "interlock-service")
"""Interlock's distributions, in the order ``--version`` names them."""

GROUPS: Mapping[str, str] = {
    "events": "interlock-sdk",
    "rules": "interlock-rules",
    "adapter": "interlock-adapters",
    **dict.fromkeys(
        (
            "adapters",
            "approvals",
            "channels",
            "connections",
            "deployments",
            "firings",
            "keys",
            "queues",
            "runs",
            "server",
            "worker",
        ),
        "interlock-service",
    ),
}
"""Which distribution brings each command group (a new group adds its line here)."""

_SIGPIPE_STATUS = 128 + 13


class _MissingGroup(InterlockError, LookupError):
    def __init__(self, group: str, distribution: str) -> None:
        super().__init__(
            f"'interlock {group}' comes with {distribution}, which is not installed here: "
            f"pip install {distribution}"
        )


def version_text() -> str:
    """``interlock 0.1.0 (interlock-sdk 0.1.0, ...; Python 3.11.7)``: what is installed."""
    found = []
    for distribution in DISTRIBUTIONS:
        try:
            found.append(f"{distribution} {metadata.version(distribution)}")
        except metadata.PackageNotFoundError:
            continue
    sdk = metadata.version("interlock-sdk")
    return f"interlock {sdk} ({', '.join(found)}; Python {platform.python_version()})"


class _Version(argparse.Action):
    """``--version``, printed as is (argparse's own action rewraps it to the terminal)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(version_text())
        parser.exit()


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
    parser.add_argument(
        "-V", "--version", action=_Version, nargs=0, help="show the installed versions and exit"
    )
    add_logging_arguments(parser)
    groups = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    points = sorted(entry_points("interlock.commands"), key=lambda e: e.name)
    named = _group_named(argv, {point.name for point in points})
    for entry_point in points:
        if named is None or entry_point.name == named:
            register = entry_point.load()
            register(groups)
    return parser


def _first_word(argv: Sequence[str] | None) -> str | None:
    """The first word of ``argv`` that is not a logging option (nor its value)."""
    words = iter(argv or ())
    for word in words:
        if word in ("--log-level", "--log-format"):
            next(words, None)
        elif word.startswith(("--log-level=", "--log-format=")) or word == "--verbose":
            continue
        elif not (word.startswith("-") and set(word[1:]) == {"v"}):
            return word  # a group, or an option such as --help: then every group
    return None


def _group_named(argv: Sequence[str] | None, groups: set[str]) -> str | None:
    """The command group ``argv`` names, if it names an installed one."""
    word = _first_word(argv)
    return word if word in groups else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`| head`): say nothing more, and let the interpreter's
        # final flush of stdout go nowhere instead of raising again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return _SIGPIPE_STATUS


def _main(argv: Sequence[str]) -> int:
    installed = {point.name for point in entry_points("interlock.commands")}
    word = _first_word(argv)
    if word is not None and word not in installed and word in GROUPS:
        print(f"interlock: error: {_MissingGroup(word, GROUPS[word])}", file=sys.stderr)
        return 2
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    level = level_from(args, getattr(args, "default_log_level", "WARNING"))
    configure_logging(level, getattr(args, "log_format", None) or "text")
    handler: Handler = args.handler
    try:
        result = handler(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
    except InterlockError as exc:
        print(f"interlock: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        logging.getLogger("interlock").debug("the command failed", exc_info=exc)
        print(f"interlock: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    assert isinstance(result, int)
    return result


if __name__ == "__main__":
    sys.exit(main())
