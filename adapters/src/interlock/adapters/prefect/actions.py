"""Executors that act on a Prefect server: run a deployment, pause or resume a work queue.

Entry points in ``interlock.actions`` (loaded by the service, built from an
:class:`~interlock.sdk.executors.ExecutorContext`: the SDK's executor plugin API):

==============================  ===========================================================
``prefect_run_deployment``      ``deployment`` (``"flow/deployment"`` or an id),
                                ``parameters`` (rendered), optional ``tags``,
                                ``work_queue_name``, ``job_variables``
``prefect_pause_work_queue``    ``queue`` (a name), optional ``work_pool``
``prefect_resume_work_queue``   ``queue`` (a name), optional ``work_pool``
==============================  ===========================================================

Every action may name a ``prefect`` connection the service keeps
(``connection="prod-prefect"``: its API URL and API key or auth string), resolved
through :attr:`~interlock.sdk.executors.ExecutorContext.connections` each time it runs,
so a rotated key is used by the next call. Without one, an action may carry ``api_url``
(else ``INTERLOCK_PREFECT_API_URL``); the
credentials come from ``INTERLOCK_PREFECT_API_KEY`` (Prefect Cloud) or
``INTERLOCK_PREFECT_AUTH_STRING`` (a self-hosted server's ``user:password``) in the
context's environment (the service takes it once when it starts). An action may carry
``api_key`` too, but it is stored with the rule in plain text: prefer the environment.

A flow run is created with the action's idempotency key as Prefect's
``idempotency_key``, so a retry after a crash finds the run the first attempt created
instead of starting a second one. Errors name the action, the Prefect origin
(``scheme://host:port``) and Prefect's own reason, never a credential; 5xx, 408, 429,
timeouts and connection failures are retried, anything else (401, 403, 404, 422) is not.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from interlock.adapters.prefect._connection import PrefectConnection
from interlock.sdk.connections import ConnectionNotFound
from interlock.sdk.errors import InterlockError
from interlock.sdk.executors import ActionFailed, ActionRequest, ActionResult, ExecutorContext
from interlock.sdk.retry import retry_after

__all__ = [
    "PauseWorkQueueExecutor",
    "PrefectExecutor",
    "ResumeWorkQueueExecutor",
    "RunDeploymentExecutor",
]

_RETRY_STATUSES = frozenset({408, 425, 429})
_BUSY_STATUSES = frozenset({429, 503})
"""Answers Prefect gives while busy (503 while its database is locked, with
``Retry-After``): asked again within the call, as Prefect's own client does."""
_BUSY_RETRIES = 3
_BUSY_WAIT_MAX = 2.0
"""Seconds waited at most before asking a busy server again (its ``Retry-After``)."""
_BUSY_WAIT_DEFAULT = 0.5
"""Seconds waited when a busy answer says no ``Retry-After`` of seconds."""


class PrefectExecutor:
    """What the Prefect executors share: one HTTP client, the default connection, errors.

    Args:
        context: Where ``INTERLOCK_PREFECT_*`` are read (its environment), and the
            seconds an HTTP call may take (its action timeout).
        transport: An httpx transport (tests).
    """

    label = "prefect"

    def __init__(
        self, context: ExecutorContext, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.environ = dict(context.environ)
        self.connections = context.connections
        self.client = httpx.AsyncClient(timeout=context.action_timeout, transport=transport)

    async def connection(self, action: Mapping[str, Any]) -> PrefectConnection:
        """The Prefect server of ``action``: its connection, else its fields, else the env.

        Raises:
            ActionFailed: no such connection or not a ``prefect`` one, no API URL
                anywhere, or not an http(s) URL (not retryable); the connection cannot
                be read now (retryable).
        """
        name = action.get("connection")
        if name:
            try:
                resolved = (await self.connections.resolve(str(name))).require("prefect")
            except ConnectionNotFound as exc:
                raise ActionFailed(f"{self.label}: {exc}", retryable=False) from None
            except InterlockError as exc:
                raise ActionFailed(f"{self.label}: connection {name!r}: {exc}") from None
            try:
                return PrefectConnection(
                    api_url=str(resolved.settings["url"]).rstrip("/"),
                    api_key=resolved.secrets.get("api_key"),
                    auth_string=resolved.secrets.get("auth_string"),
                )
            except ValueError as exc:
                raise ActionFailed(f"{self.label}: {exc}", retryable=False) from None
        try:
            return PrefectConnection.from_env(
                self.environ,
                api_url=_optional_string(action, "api_url", self.label),
                api_key=_optional_string(action, "api_key", self.label),
            )
        except ValueError as exc:
            raise ActionFailed(f"{self.label}: {exc}", retryable=False) from None

    async def call(
        self,
        connection: PrefectConnection,
        method: str,
        path: str,
        *,
        json: Any = None,
        what: str,
    ) -> httpx.Response:
        """One REST call; a 2xx answer is returned, anything else raises.

        Raises:
            ActionFailed: the call failed; retryable for 5xx, 408, 429 and transport errors.
        """
        origin = connection.origin
        try:
            response = await self._request(connection, method, path, json)
        except httpx.TimeoutException:
            raise ActionFailed(f"{self.label}: {what} at {origin}: timed out") from None
        except httpx.TransportError as exc:
            raise ActionFailed(
                f"{self.label}: {what} at {origin}: connection failed ({type(exc).__name__})"
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            return response
        if status in (401, 403):
            raise ActionFailed(
                f"{self.label}: {what} at {origin}: HTTP {status}, the credentials were refused "
                "(check the connection, or INTERLOCK_PREFECT_API_KEY or "
                "INTERLOCK_PREFECT_AUTH_STRING)",
                retryable=False,
            )
        retryable = status >= 500 or status in _RETRY_STATUSES
        raise ActionFailed(
            f"{self.label}: {what} at {origin}: HTTP {status} ({_detail(response)})",
            retryable=retryable,
        )

    async def _request(
        self, connection: PrefectConnection, method: str, path: str, json: Any
    ) -> httpx.Response:
        """The answer, asked again (up to ``_BUSY_RETRIES`` times) while the server is busy.

        A busy answer means the request was not done (Prefect rolled its transaction
        back), and the calls that create carry an idempotency key: asking again is safe.
        """
        url = f"{connection.base_url}{path}"
        for _ in range(_BUSY_RETRIES):
            response = await self.client.request(
                method, url, json=json, headers=connection.headers()
            )
            if response.status_code not in _BUSY_STATUSES:
                return response
            await asyncio.sleep(_retry_after(response))
        return await self.client.request(method, url, json=json, headers=connection.headers())

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()


class RunDeploymentExecutor(PrefectExecutor):
    """``prefect_run_deployment``: create a flow run of a Prefect deployment."""

    label = "prefect_run_deployment"

    async def execute(self, request: ActionRequest) -> ActionResult:
        """Create the flow run (or find the one an earlier attempt created)."""
        action = request.action
        connection = await self.connection(action)
        deployment = _required_string(action, "deployment", self.label)
        parameters = action.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ActionFailed(f"{self.label}: parameters must be an object", retryable=False)
        deployment_id = await self._deployment_id(connection, deployment)
        body: dict[str, Any] = {
            "parameters": parameters,
            "idempotency_key": str(request.idempotency_key),
        }
        for key in ("tags", "work_queue_name", "job_variables"):
            if action.get(key) is not None:
                body[key] = action[key]
        response = await self.call(
            connection,
            "POST",
            f"/deployments/{deployment_id}/create_flow_run",
            json=body,
            what=f"running deployment {deployment!r}",
        )
        run = response.json()
        created = response.status_code == httpx.codes.CREATED
        return ActionResult(
            detail=(
                f"flow run {run.get('name')} ({run.get('id')}) of deployment {deployment!r}"
                f"{'' if created else ', created by an earlier attempt'}"
            ),
            data={
                "flow_run_id": run.get("id"),
                "flow_run_name": run.get("name"),
                "deployment_id": deployment_id,
                "created": created,
            },
        )

    async def _deployment_id(self, connection: PrefectConnection, deployment: str) -> str:
        try:
            return str(uuid.UUID(deployment))
        except ValueError:
            pass
        flow, _, name = deployment.partition("/")
        if not flow or not name or "/" in name:
            raise ActionFailed(
                f"{self.label}: deployment {deployment!r} must be 'flow-name/deployment-name' "
                "or a deployment id",
                retryable=False,
            )
        response = await self.call(
            connection,
            "GET",
            f"/deployments/name/{_quote(flow)}/{_quote(name)}",
            what=f"looking up deployment {deployment!r}",
        )
        return str(response.json()["id"])


class _WorkQueueExecutor(PrefectExecutor):
    """Sets ``is_paused`` of a work queue, found by name (within a work pool if given)."""

    paused: bool

    async def execute(self, request: ActionRequest) -> ActionResult:
        """Pause or resume the queue."""
        action = request.action
        connection = await self.connection(action)
        queue = _required_string(action, "queue", self.label)
        pool = _optional_string(action, "work_pool", self.label)
        verb = "pausing" if self.paused else "resuming"
        where = f"work queue {queue!r}" + (f" of work pool {pool!r}" if pool else "")
        body = {"is_paused": self.paused}
        if pool:
            await self.call(
                connection,
                "PATCH",
                f"/work_pools/{_quote(pool)}/queues/{_quote(queue)}",
                json=body,
                what=f"{verb} {where}",
            )
            queue_id = None
        else:
            found = await self.call(
                connection,
                "GET",
                f"/work_queues/name/{_quote(queue)}",
                what=f"looking up {where}",
            )
            queue_id = str(found.json()["id"])
            await self.call(
                connection,
                "PATCH",
                f"/work_queues/{queue_id}",
                json=body,
                what=f"{verb} {where}",
            )
        state = "paused" if self.paused else "resumed"
        return ActionResult(
            detail=f"{where} {state} at {connection.origin}",
            data={"queue": queue, "work_pool": pool, "queue_id": queue_id, "paused": self.paused},
        )


class PauseWorkQueueExecutor(_WorkQueueExecutor):
    """``prefect_pause_work_queue``: pause a work queue (its runs wait for a resume)."""

    label = "prefect_pause_work_queue"
    paused = True


class ResumeWorkQueueExecutor(_WorkQueueExecutor):
    """``prefect_resume_work_queue``: resume a paused work queue."""

    label = "prefect_resume_work_queue"
    paused = False


def _quote(segment: str) -> str:
    return quote(segment, safe="")


def _optional_string(action: Mapping[str, Any], key: str, label: str) -> str | None:
    value = action.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ActionFailed(
            f"{label}: {key} must be a string, not {type(value).__name__}", retryable=False
        )
    return value


def _required_string(action: Mapping[str, Any], key: str, label: str) -> str:
    value = _optional_string(action, key, label)
    if value is None:
        raise ActionFailed(f"{label}: {key} is required", retryable=False)
    return value


def _detail(response: httpx.Response) -> str:
    """Prefect's own reason (its JSON ``detail``), shortened."""
    try:
        detail = response.json().get("detail", "")
    except (ValueError, AttributeError):
        detail = response.text
    return " ".join(str(detail).split())[:300] or response.reason_phrase


def _retry_after(response: httpx.Response) -> float:
    """Seconds to wait before asking again: the answer's ``Retry-After``, bounded."""
    wait = retry_after(response.headers.get("Retry-After"), at_most=_BUSY_WAIT_MAX)
    return max(0.1, _BUSY_WAIT_DEFAULT if wait is None else wait)
