"""Runs an ``entrypoint`` target: ``python -m interlock.service.deployments.entrypoint MOD:FUNC``.

Imports ``MOD``, looks up ``FUNC`` (dotted attributes allowed), and calls it with the
run's parameters (the JSON object in ``INTERLOCK_PARAMETERS``) as keyword arguments,
awaiting the result if it is a coroutine. Exit status: 0 when it returns, 1 when it
raises (the traceback goes to the run's log), 2 when it cannot be found or the
parameters are not a JSON object.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from interlock.service.deployments.targets import PARAMETERS_VARIABLE

__all__ = ["main"]


def _load(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Call the entry point named by ``argv[0]``; return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or ":" not in args[0]:
        _error("usage: python -m interlock.service.deployments.entrypoint MODULE:FUNCTION")
        return 2
    spec = args[0]
    try:
        parameters = json.loads(os.environ.get(PARAMETERS_VARIABLE) or "{}")
    except ValueError as exc:
        _error(f"interlock: {PARAMETERS_VARIABLE} is not JSON: {exc}")
        return 2
    if not isinstance(parameters, dict):
        _error(f"interlock: {PARAMETERS_VARIABLE} must hold a JSON object")
        return 2
    try:
        function = _load(spec)
    except (ImportError, AttributeError) as exc:
        _error(f"interlock: cannot load entry point {spec}: {exc}")
        return 2
    if not callable(function):
        _error(f"interlock: entry point {spec} is not callable")
        return 2
    try:
        result = function(**parameters)
        if inspect.isawaitable(result):
            result = asyncio.run(_wait(result))
    except SystemExit:
        raise
    except BaseException:  # noqa: BLE001 - the run's own failure, reported in its log
        traceback.print_exc()
        return 1
    return 0


def _error(message: str) -> None:
    sys.stderr.write(message + "\n")


async def _wait(awaitable: Any) -> Any:
    return await awaitable


if __name__ == "__main__":
    sys.exit(main())
