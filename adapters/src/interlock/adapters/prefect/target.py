"""The ``prefect`` deployment target: a run is a flow run of a Prefect deployment.

::

    {"type": "prefect", "connection": "prod-prefect", "deployment": "etl/daily",
     "parameters": {"region": "eu"}}

Loaded by the service's workers through the entry-point group ``interlock.targets``
(:mod:`interlock.sdk.targets`). ``connection`` names a ``prefect`` connection (API URL,
API key or auth string), resolved at every call. ``deployment`` is
``"flow-name/deployment-name"`` or a deployment id; ``parameters`` are updated by the
run's parameters; ``tags``, ``work_queue_name`` and ``job_variables`` are passed on.

- start: ``POST /deployments/{id}/create_flow_run`` with the idempotency key
  ``<run id>-<attempt>`` (a second call finds the first flow run);
- poll: ``GET /flow_runs/{id}``: ``SCHEDULED``/``PENDING`` are ``pending``;
  ``RUNNING``, ``PAUSED`` and ``CANCELLING`` ``running``; ``COMPLETED`` ``completed``;
  ``FAILED`` ``failed``; ``CRASHED`` ``crashed``; ``CANCELLED`` ``cancelled``;
- cancel: ``POST /flow_runs/{id}/set_state``: ``CANCELLING`` for a flow run that runs
  (its worker stops it), ``CANCELLED`` for one that has not started.

The link is the flow run's page in Prefect's UI (``<server>/runs/flow-run/{id}``).
Errors name the Prefect origin and Prefect's reason, never a credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.adapters.prefect.actions import RunDeploymentExecutor
from interlock.sdk.connections import ConnectionKind
from interlock.sdk.executors import ExecutorContext
from interlock.sdk.targets import RemoteRun, TargetInvalid, TargetRun
from interlock.sdk.vocabulary import RunState

__all__ = ["PrefectTarget"]

_FIELDS = frozenset(
    {"type", "connection", "deployment", "parameters", "tags", "work_queue_name", "job_variables"}
)
_STATES: dict[str, RunState] = {
    "SCHEDULED": "pending",
    "PENDING": "pending",
    "RUNNING": "running",
    "PAUSED": "running",
    "CANCELLING": "running",
    "COMPLETED": "completed",
    "FAILED": "failed",
    "CRASHED": "crashed",
    "CANCELLED": "cancelled",
}
_STARTED = frozenset({"RUNNING", "PAUSED", "CANCELLING"})


class PrefectTarget:
    """Runs ``prefect`` deployments as flow runs (see the module's docstring)."""

    connection_kind: ConnectionKind = "prefect"

    def __init__(self, context: ExecutorContext) -> None:
        self._context = context
        self._calls: RunDeploymentExecutor | None = None

    @property
    def _prefect(self) -> RunDeploymentExecutor:
        """The executors' client (connections, errors), built on first use."""
        if self._calls is None:
            self._calls = RunDeploymentExecutor(self._context)
            self._calls.label = "prefect target"
        return self._calls

    def check(self, target: Mapping[str, Any]) -> None:
        """Refuse unknown fields, a missing connection or deployment, bad parameters."""
        unknown = sorted(set(target) - _FIELDS)
        if unknown:
            raise TargetInvalid(
                unknown[0], f"is not a field of a prefect target ({', '.join(sorted(_FIELDS))})"
            )
        for field, what in (
            ("connection", "the name of a prefect connection"),
            ("deployment", "'flow-name/deployment-name' or a deployment id"),
        ):
            value = target.get(field)
            if not isinstance(value, str) or not value:
                raise TargetInvalid(field, f"is required: {what}")
        if not isinstance(target.get("parameters", {}), Mapping):
            raise TargetInvalid("parameters", "must be an object (the flow's parameters)")

    def _remote(self, ui: str, body: Mapping[str, Any]) -> RemoteRun:
        state = body.get("state") or {}
        word = str(state.get("type") or "SCHEDULED")
        flow_run = str(body.get("id"))
        message = f"flow run {body.get('name')} ({flow_run}): {state.get('name') or word}"
        if state.get("message") and word in ("FAILED", "CRASHED"):
            message += f": {' '.join(str(state['message']).split())[:200]}"
        return RemoteRun(
            remote_id=flow_run,
            url=f"{ui}/runs/flow-run/{flow_run}",
            state=_STATES.get(word, "running"),
            remote_state=word,
            message=message,
        )

    async def start(self, run: TargetRun) -> RemoteRun:
        """Create the flow run of this attempt (or find it by its idempotency key)."""
        target, prefect = run.target, self._prefect
        connection = await prefect.connection(target)
        deployment = str(target["deployment"])
        deployment_id = await prefect._deployment_id(connection, deployment)
        body: dict[str, Any] = {
            "parameters": {**dict(target.get("parameters") or {}), **run.parameters},
            "idempotency_key": run.key,
        }
        for key in ("tags", "work_queue_name", "job_variables"):
            if target.get(key) is not None:
                body[key] = target[key]
        response = await prefect.call(
            connection,
            "POST",
            f"/deployments/{deployment_id}/create_flow_run",
            json=body,
            what=f"running deployment {deployment!r}",
        )
        return self._remote(_ui(connection.base_url), response.json())

    async def poll(self, run: TargetRun, remote_id: str) -> RemoteRun:
        """The flow run's state now."""
        prefect = self._prefect
        connection = await prefect.connection(run.target)
        response = await prefect.call(
            connection, "GET", f"/flow_runs/{remote_id}", what=f"reading flow run {remote_id}"
        )
        return self._remote(_ui(connection.base_url), response.json())

    async def cancel(self, run: TargetRun, remote_id: str) -> str:
        """``CANCELLING`` a flow run that runs, ``CANCELLED`` one that has not started."""
        now = await self.poll(run, remote_id)
        word = "CANCELLING" if now.remote_state in _STARTED else "CANCELLED"
        prefect = self._prefect
        connection = await prefect.connection(run.target)
        await prefect.call(
            connection,
            "POST",
            f"/flow_runs/{remote_id}/set_state",
            json={"state": {"type": word, "message": "cancelled in Interlock"}, "force": True},
            what=f"cancelling flow run {remote_id}",
        )
        return f"flow run {remote_id} set {word} in Prefect (it was {now.remote_state})"

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._calls is not None:
            await self._calls.close()
            self._calls = None


def _ui(api_url: str) -> str:
    """The Prefect UI's base: the API URL without its ``/api``."""
    return api_url[: -len("/api")] if api_url.endswith("/api") else api_url
