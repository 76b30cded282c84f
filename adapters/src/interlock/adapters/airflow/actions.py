"""The service's Airflow executors: trigger a DAG run, pause and unpause a DAG.

Loaded by the service through the entry-point group ``interlock.actions`` and built
from an :class:`~interlock.sdk.executors.ExecutorContext` (the executor plugin API of the
SDK: this module needs neither the service nor Airflow itself, only httpx):

========================  ====================================================================
``airflow_trigger_dag``   ``POST /api/v2/dags/{dag_id}/dagRuns`` with ``conf`` (already rendered
                          by the service) and ``logical_date: null``. The run id is
                          ``interlock__<idempotency key>``, the same on every attempt, so a
                          retry never starts a second run: Airflow's 409 for an existing run
                          id counts as success.
``airflow_pause_dag``     ``PATCH /api/v2/dags/{dag_id}`` ``{"is_paused": true}``
``airflow_unpause_dag``   ``PATCH /api/v2/dags/{dag_id}`` ``{"is_paused": false}``
========================  ====================================================================

Fields of the action (``dag_id`` required; ``conf`` and ``note`` for a trigger) and the
connection. Best, ``connection="prod-airflow"`` names an ``airflow`` connection the
service keeps (its URL, API version, user and password or token), resolved through
:attr:`~interlock.sdk.executors.ExecutorContext.connections` each time an action runs,
so a rotated password is used by the next call. Otherwise ``url``, ``api_version``,
``username``, ``password`` / ``password_env``, ``token`` / ``token_env``, ``timeout`` in
the action win over the context's environment (the service's, taken at start):
``INTERLOCK_AIRFLOW_URL``, ``INTERLOCK_AIRFLOW_API_VERSION``,
``INTERLOCK_AIRFLOW_USERNAME``, ``INTERLOCK_AIRFLOW_PASSWORD``,
``INTERLOCK_AIRFLOW_TOKEN``; fields in the action win over a named connection too.
Unreachable, 5xx and 429 fail retryably; 401/403, an unknown DAG and a bad field fail
at once. Messages name the DAG and Airflow's base URL, never a password or token.
"""

from __future__ import annotations

import abc
import asyncio
from typing import Any

import httpx

from interlock.adapters.airflow._client import (
    AirflowClient,
    AirflowError,
    AirflowUnavailable,
    Connection,
    path_segment,
)
from interlock.adapters.airflow._options import OptionReader, read_connection
from interlock.adapters.base import AdapterConfigError
from interlock.sdk.connections import ConnectionNotFound
from interlock.sdk.errors import InterlockError
from interlock.sdk.executors import ActionFailed, ActionRequest, ActionResult, ExecutorContext

__all__ = ["PauseDagExecutor", "TriggerDagExecutor", "UnpauseDagExecutor", "run_id_for"]

_ENVIRONMENT = {
    "url": "INTERLOCK_AIRFLOW_URL",
    "api_version": "INTERLOCK_AIRFLOW_API_VERSION",
    "username": "INTERLOCK_AIRFLOW_USERNAME",
    "password": "INTERLOCK_AIRFLOW_PASSWORD",
    "token": "INTERLOCK_AIRFLOW_TOKEN",
}
_CONNECTION_FIELDS = frozenset(
    {"url", "api_version", "username", "password", "password_env", "token", "token_env"}
    | {"timeout"}
)
_IGNORED = frozenset({"action", "kind"})
"""Keys of a stored action that say which action it is, not how to run it."""


def run_id_for(request: ActionRequest) -> str:
    """The DAG run id of a trigger: the same on every attempt of the same action."""
    return f"interlock__{request.idempotency_key}"


class _AirflowExecutor(abc.ABC):
    """Reads the action's fields and connection, and keeps one client per Airflow.

    Args:
        context: The environment (``INTERLOCK_AIRFLOW_*``, and the variables an action's
            ``password_env`` / ``token_env`` name) comes from here.
        transport: An httpx transport (tests).
    """

    kind = ""
    fields: frozenset[str] = frozenset({"dag_id"})

    def __init__(
        self, context: ExecutorContext, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        env = context.environ
        self._defaults = {key: env[name] for key, name in _ENVIRONMENT.items() if env.get(name)}
        self._environ = dict(env)
        self._connections = context.connections
        self._transport = transport
        self._clients: dict[Connection, AirflowClient] = {}

    async def _named(self, request: ActionRequest) -> dict[str, Any]:
        """The options of the connection the action names (``{}`` if none)."""
        name = request.action.get("connection")
        if not name:
            return {}
        try:
            resolved = (await self._connections.resolve(str(name))).require("airflow")
        except ConnectionNotFound as exc:
            raise ActionFailed(f"{self.kind}: {exc}", retryable=False) from None
        except InterlockError as exc:  # the host's store failed: worth another attempt
            raise ActionFailed(f"{self.kind}: connection {name!r}: {exc}") from None
        options = {**resolved.settings, **resolved.secrets}
        return {k: v for k, v in options.items() if k in _CONNECTION_FIELDS}

    def _parse(
        self, request: ActionRequest, named: dict[str, Any] | None = None
    ) -> tuple[AirflowClient, str, dict[str, Any]]:
        action = {
            k: v for k, v in request.action.items() if k not in _IGNORED and k != "connection"
        }
        unknown = sorted(set(action) - self.fields - _CONNECTION_FIELDS)
        if unknown:
            known = ", ".join(sorted(self.fields | _CONNECTION_FIELDS))
            raise ActionFailed(
                f"{self.kind}: unknown field {unknown[0]!r} (fields: {known})", retryable=False
            )
        dag_id = action.get("dag_id")
        if not isinstance(dag_id, str) or not dag_id:
            raise ActionFailed(f"{self.kind}: dag_id is required (a DAG id)", retryable=False)
        given = {k: v for k, v in action.items() if k in _CONNECTION_FIELDS}
        options: dict[str, Any] = {**self._defaults, **(named or {}), **given}
        if "password_env" in given or "token_env" in given:
            options.pop("password" if "password_env" in given else "token", None)
        reader = OptionReader(self.kind, options)
        try:
            connection = read_connection(reader, self._environ)
        except AdapterConfigError as exc:
            raise ActionFailed(
                f"{self.kind} of DAG {dag_id!r}: {exc} (set it in the action or through "
                "INTERLOCK_AIRFLOW_URL, INTERLOCK_AIRFLOW_USERNAME and "
                "INTERLOCK_AIRFLOW_PASSWORD or INTERLOCK_AIRFLOW_TOKEN)",
                retryable=False,
            ) from None
        client = self._clients.get(connection)
        if client is None:
            client = self._clients[connection] = AirflowClient(
                connection, transport=self._transport
            )
        rest = {k: v for k, v in action.items() if k in self.fields and k != "dag_id"}
        return client, dag_id, rest

    async def execute(self, request: ActionRequest) -> ActionResult:
        """Carry the action out once (see the module's docstring)."""
        client, dag_id, fields = self._parse(request, await self._named(request))
        try:
            return await asyncio.to_thread(self._call, client, dag_id, fields, request)
        except AirflowUnavailable as exc:
            raise ActionFailed(f"{self.kind} of DAG {dag_id!r}: {exc}", retryable=True) from exc
        except AirflowError as exc:
            raise ActionFailed(f"{self.kind} of DAG {dag_id!r}: {exc}", retryable=False) from exc

    @abc.abstractmethod
    def _call(
        self,
        client: AirflowClient,
        dag_id: str,
        fields: dict[str, Any],
        request: ActionRequest,
    ) -> ActionResult:
        """Make the API call(s) of this kind of action (in a worker thread)."""

    async def close(self) -> None:
        """Close the HTTP clients."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()


class TriggerDagExecutor(_AirflowExecutor):
    """``airflow_trigger_dag``: start a DAG run with ``conf``; a retry never starts two."""

    kind = "airflow_trigger_dag"
    fields = frozenset({"dag_id", "conf", "note"})

    def _call(
        self,
        client: AirflowClient,
        dag_id: str,
        fields: dict[str, Any],
        request: ActionRequest,
    ) -> ActionResult:
        conf = fields.get("conf") or {}
        if not isinstance(conf, dict):
            raise ActionFailed(
                f"{self.kind} of DAG {dag_id!r}: conf must be an object, not {type(conf).__name__}",
                retryable=False,
            )
        run_id = run_id_for(request)
        body: dict[str, Any] = {"dag_run_id": run_id, "conf": conf}
        if client.connection.api_version == "v2":
            body["logical_date"] = None
        if fields.get("note"):
            body["note"] = str(fields["note"])
        response = client.request(
            "POST",
            f"{client.api}/dags/{path_segment(dag_id)}/dagRuns",
            json=body,
            accept=(200, 409),
        )
        created = response.status_code == 200
        state = response.json().get("state") if created else None
        detail = (
            f"DAG run {run_id} of {dag_id} started"
            if created
            else f"DAG run {run_id} of {dag_id} already existed (an earlier attempt started it)"
        )
        return ActionResult(
            detail=detail,
            data={"dag_id": dag_id, "dag_run_id": run_id, "created": created, "state": state},
        )


class _PauseExecutor(_AirflowExecutor):
    paused = True

    def _call(
        self,
        client: AirflowClient,
        dag_id: str,
        fields: dict[str, Any],
        request: ActionRequest,
    ) -> ActionResult:
        response = client.request(
            "PATCH",
            f"{client.api}/dags/{path_segment(dag_id)}",
            params={"update_mask": "is_paused"},
            json={"is_paused": self.paused},
        )
        paused = response.json().get("is_paused")
        word = "paused" if self.paused else "unpaused"
        return ActionResult(
            detail=f"DAG {dag_id} {word}", data={"dag_id": dag_id, "is_paused": paused}
        )


class PauseDagExecutor(_PauseExecutor):
    """``airflow_pause_dag``: pause a DAG (no new runs are scheduled)."""

    kind = "airflow_pause_dag"
    paused = True


class UnpauseDagExecutor(_PauseExecutor):
    """``airflow_unpause_dag``: unpause a DAG."""

    kind = "airflow_unpause_dag"
    paused = False
