"""The ``airflow`` deployment target: a run is a DAG run, followed to its end.

::

    {"type": "airflow", "connection": "prod-airflow", "dag_id": "sales_daily",
     "conf": {"full": true}}

Loaded by the service's workers through the entry-point group ``interlock.targets``
(the plugin API of :mod:`interlock.sdk.targets`; this module needs neither the service
nor Airflow, only httpx). ``connection`` names an ``airflow`` connection (URL, API
version, user and password or token), resolved at every call, so a rotated password is
used by the next poll. ``conf`` is the DAG run's conf, updated by the run's parameters;
``note`` (optional) is the DAG run's note.

- start: ``POST /api/<v>/dags/{dag_id}/dagRuns`` with the DAG run id
  ``interlock__<run id>-<attempt>`` (Airflow's 409 for that id means an earlier call
  started it: that run is followed);
- poll: ``GET .../dagRuns/{id}``: ``queued`` is ``pending``, ``running`` ``running``,
  ``success`` ``completed``, ``failed`` ``failed`` (the message names the failed
  tasks);
- cancel: Airflow has no cancelled state: the DAG run is marked ``failed``
  (``PATCH .../dagRuns/{id}`` ``{"state": "failed"}``), which stops its running tasks.

The link is the DAG run's page in Airflow 3's UI (``/dags/{dag_id}/runs/{id}``).
Messages name the DAG and Airflow's base URL, never a password or token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from interlock.adapters.airflow._client import (
    AirflowClient,
    AirflowError,
    AirflowUnavailable,
    Connection,
    path_segment,
)
from interlock.adapters.airflow._options import OptionReader, read_connection
from interlock.adapters.base import AdapterConfigError
from interlock.sdk.connections import ConnectionKind, ConnectionNotFound
from interlock.sdk.errors import ActionFailed, InterlockError
from interlock.sdk.executors import ExecutorContext
from interlock.sdk.targets import RemoteRun, TargetInvalid, TargetRun
from interlock.sdk.vocabulary import RunState

__all__ = ["AirflowTarget"]

_FIELDS = frozenset({"type", "connection", "dag_id", "conf", "note"})
_OPTIONS = frozenset({"url", "api_version", "username", "password", "token", "timeout"})
_STATES: dict[str, RunState] = {
    "queued": "pending",
    "running": "running",
    "success": "completed",
    "failed": "failed",
}


class AirflowTarget:
    """Runs ``airflow`` deployments as DAG runs (see the module's docstring)."""

    connection_kind: ConnectionKind = "airflow"

    def __init__(self, context: ExecutorContext) -> None:
        self._connections = context.connections
        self._environ = dict(context.environ)
        self._clients: dict[Connection, AirflowClient] = {}

    def check(self, target: Mapping[str, Any]) -> None:
        """Refuse unknown fields, a missing connection or DAG id, a conf not an object."""
        unknown = sorted(set(target) - _FIELDS)
        if unknown:
            raise TargetInvalid(
                unknown[0], f"is not a field of an airflow target ({', '.join(sorted(_FIELDS))})"
            )
        for field, what in (
            ("connection", "the name of an airflow connection"),
            ("dag_id", "the DAG's id"),
        ):
            value = target.get(field)
            if not isinstance(value, str) or not value:
                raise TargetInvalid(field, f"is required: {what}")
        if not isinstance(target.get("conf", {}), Mapping):
            raise TargetInvalid("conf", "must be an object (the DAG run's conf)")

    async def _client(self, target: Mapping[str, Any]) -> AirflowClient:
        name = str(target["connection"])
        try:
            resolved = (await self._connections.resolve(name)).require("airflow")
        except ConnectionNotFound as exc:
            raise ActionFailed(f"airflow target: {exc}", retryable=False) from None
        except InterlockError as exc:
            raise ActionFailed(f"airflow target: connection {name!r}: {exc}") from None
        options = {
            k: v for k, v in {**resolved.settings, **resolved.secrets}.items() if k in _OPTIONS
        }
        try:
            connection = read_connection(OptionReader(f"connection {name}", options), self._environ)
        except AdapterConfigError as exc:
            raise ActionFailed(f"airflow target: {exc}", retryable=False) from None
        client = self._clients.get(connection)
        if client is None:
            client = self._clients[connection] = AirflowClient(connection)
        return client

    async def _call(self, target: Mapping[str, Any], call: Any, *args: Any) -> Any:
        client = await self._client(target)
        dag_id = target["dag_id"]
        try:
            return await asyncio.to_thread(call, client, *args)
        except AirflowUnavailable as exc:
            raise ActionFailed(f"airflow target, DAG {dag_id!r}: {exc}", retryable=True) from None
        except AirflowError as exc:
            raise ActionFailed(f"airflow target, DAG {dag_id!r}: {exc}", retryable=False) from None

    async def start(self, run: TargetRun) -> RemoteRun:
        """Trigger the DAG run of this attempt (or find it)."""
        return await self._call(run.target, self._trigger, run)  # type: ignore[no-any-return]

    async def poll(self, run: TargetRun, remote_id: str) -> RemoteRun:
        """The DAG run's state now."""
        return await self._call(run.target, self._read, run, remote_id)  # type: ignore[no-any-return]

    async def cancel(self, run: TargetRun, remote_id: str) -> str:
        """Mark the DAG run failed (Airflow has no cancelled state)."""
        return await self._call(run.target, self._mark_failed, run, remote_id)  # type: ignore[no-any-return]

    async def close(self) -> None:
        """Close the HTTP clients."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # -- blocking calls, in a worker thread --------------------------------------------

    @staticmethod
    def _path(client: AirflowClient, dag_id: str, run_id: str | None = None) -> str:
        path = f"{client.api}/dags/{path_segment(dag_id)}/dagRuns"
        return path if run_id is None else f"{path}/{path_segment(run_id)}"

    def _remote(self, client: AirflowClient, dag_id: str, body: Mapping[str, Any]) -> RemoteRun:
        run_id = str(body.get("dag_run_id"))
        word = str(body.get("state") or "queued")
        state = _STATES.get(word, "running")
        message = f"DAG run {run_id} of {dag_id}: {word}"
        if state == "failed":
            failed = self._failed_tasks(client, dag_id, run_id)
            if failed:
                message += f" (failed: {', '.join(failed)})"
        return RemoteRun(
            remote_id=run_id,
            url=f"{client.base}/dags/{path_segment(dag_id)}/runs/{path_segment(run_id)}",
            state=state,
            remote_state=word,
            message=message,
        )

    def _failed_tasks(self, client: AirflowClient, dag_id: str, run_id: str) -> list[str]:
        try:
            response = client.request("GET", f"{self._path(client, dag_id, run_id)}/taskInstances")
            items = response.json().get("task_instances") or []
        except (AirflowError, ValueError, AttributeError):
            return []
        return sorted(
            str(i.get("task_id"))
            for i in items
            if isinstance(i, dict) and i.get("state") == "failed"
        )

    def _trigger(self, client: AirflowClient, run: TargetRun) -> RemoteRun:
        target = run.target
        dag_id = str(target["dag_id"])
        run_id = f"interlock__{run.key}"
        body: dict[str, Any] = {
            "dag_run_id": run_id,
            "conf": {**dict(target.get("conf") or {}), **run.parameters},
        }
        if client.connection.api_version == "v2":
            body["logical_date"] = None
        if target.get("note"):
            body["note"] = str(target["note"])
        response = client.request("POST", self._path(client, dag_id), json=body, accept=(200, 409))
        if response.status_code == 409:  # an earlier call of this attempt started it
            return self._read(client, run, run_id)
        return self._remote(client, dag_id, response.json())

    def _read(self, client: AirflowClient, run: TargetRun, remote_id: str) -> RemoteRun:
        dag_id = str(run.target["dag_id"])
        response = client.request("GET", self._path(client, dag_id, remote_id))
        return self._remote(client, dag_id, response.json())

    def _mark_failed(self, client: AirflowClient, run: TargetRun, remote_id: str) -> str:
        dag_id = str(run.target["dag_id"])
        client.request(
            "PATCH",
            self._path(client, dag_id, remote_id),
            params={"update_mask": "state"},
            json={"state": "failed"},
        )
        return (
            f"DAG run {remote_id} of {dag_id} marked failed in Airflow (it has no cancelled state)"
        )
