"""Deployment targets: what a run executes, checked when the deployment is created.

A ``process`` target is run by an Interlock worker as a subprocess, in one of two forms::

    {"type": "process", "command": ["python", "-m", "reports", "--full"]}
    {"type": "process", "entrypoint": "reports.build:main"}

Optional fields of both: ``cwd`` (working directory; default: the worker's) and ``env``
(variables added to the worker's environment, string to string).

**Parameters.** Every run gets its parameters as one JSON object in the environment
variable ``INTERLOCK_PARAMETERS`` (with ``INTERLOCK_RUN_ID`` and
``INTERLOCK_DEPLOYMENT``). A ``command`` reads them from there; nothing is added to its
argv. An ``entrypoint`` is ``package.module:function``, imported and called by
``python -m interlock.service.deployments.entrypoint`` (with the worker's interpreter)
as ``function(**parameters)``; it may be sync or async. Output (stdout and stderr) goes
to the run's log either way; exit status 0 is ``completed``, anything else ``failed``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interlock.service.store import InvalidRecord

__all__ = [
    "PARAMETERS_VARIABLE",
    "ProcessTarget",
    "parse_target",
]

PARAMETERS_VARIABLE = "INTERLOCK_PARAMETERS"
"""The environment variable holding a run's parameters as a JSON object."""
RUN_ID_VARIABLE = "INTERLOCK_RUN_ID"
DEPLOYMENT_VARIABLE = "INTERLOCK_DEPLOYMENT"
ENTRYPOINT_MODULE = "interlock.service.deployments.entrypoint"

_ENTRYPOINT = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
_FIELDS = frozenset({"type", "command", "entrypoint", "cwd", "env"})


@dataclass(frozen=True, slots=True)
class ProcessTarget:
    """A checked ``process`` target.

    Attributes:
        command: The argv of a command target (empty for an entrypoint).
        entrypoint: ``package.module:function`` (``None`` for a command).
        cwd: The working directory, or ``None`` for the worker's.
        env: Variables added to the worker's environment.
    """

    command: tuple[str, ...] = ()
    entrypoint: str | None = None
    cwd: str | None = None
    env: Mapping[str, str] | None = None

    def argv(self) -> list[str]:
        """The argv to execute."""
        if self.entrypoint is not None:
            return [sys.executable, "-m", ENTRYPOINT_MODULE, self.entrypoint]
        return list(self.command)

    def environment(
        self, parameters: Mapping[str, Any], *, run_id: uuid.UUID, deployment: str
    ) -> dict[str, str]:
        """The subprocess's environment: the worker's, ``env``, and the run's variables."""
        return {
            **os.environ,
            **(self.env or {}),
            PARAMETERS_VARIABLE: json.dumps(dict(parameters)),
            RUN_ID_VARIABLE: str(run_id),
            DEPLOYMENT_VARIABLE: deployment,
        }


def parse_target(deployment: str, target: Mapping[str, Any]) -> ProcessTarget:
    """Check a deployment's target; return it as a :class:`ProcessTarget`.

    Raises:
        InvalidRecord: the target is malformed; the message names the field and says
            what is expected (see the module docstring).
    """

    def invalid(field: str, reason: str) -> InvalidRecord:
        return InvalidRecord("deployment", deployment, f"target.{field}", reason)

    if not isinstance(target, Mapping):
        raise InvalidRecord("deployment", deployment, "target", "must be an object")
    kind = target.get("type")
    if kind != "process":
        raise invalid(
            "type",
            f"must be 'process' (a command or a Python entry point run by a worker), not {kind!r}",
        )
    unknown = sorted(set(target) - _FIELDS)
    if unknown:
        raise invalid(
            unknown[0], f"is not a field of a process target ({', '.join(sorted(_FIELDS))})"
        )
    command = target.get("command")
    entrypoint = target.get("entrypoint")
    if (command is None) == (entrypoint is None):
        raise InvalidRecord(
            "deployment",
            deployment,
            "target",
            "needs exactly one of 'command' (a list of strings: the argv) or "
            "'entrypoint' ('package.module:function')",
        )
    if command is not None and (
        not isinstance(command, list)
        or not command
        or not all(isinstance(part, str) for part in command)
        or not command[0]
    ):
        raise invalid(
            "command", 'must be a non-empty list of strings, e.g. ["python", "-m", "reports"]'
        )
    if entrypoint is not None and (
        not isinstance(entrypoint, str) or not _ENTRYPOINT.match(entrypoint)
    ):
        raise invalid("entrypoint", "must read 'package.module:function'")
    cwd = target.get("cwd")
    if cwd is not None and (not isinstance(cwd, str) or not cwd):
        raise invalid("cwd", "must be a directory path (a string)")
    env = target.get("env")
    if env is not None and (
        not isinstance(env, Mapping)
        or not all(isinstance(k, str) and k and isinstance(v, str) for k, v in env.items())
    ):
        raise invalid("env", "must map variable names to strings")
    return ProcessTarget(
        command=tuple(command or ()),
        entrypoint=entrypoint,
        cwd=cwd,
        env=dict(env) if env is not None else None,
    )
