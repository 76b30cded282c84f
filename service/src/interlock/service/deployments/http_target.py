"""The ``http`` target: a run is one HTTP request to an endpoint; done when it answers.

::

    {"type": "http", "connection": "jobs-api", "path": "/jobs/rebuild", "method": "POST"}

``connection`` names an ``http`` connection (its base URL and headers, such as a bearer
token), resolved at every call, so a rotated token is sent by the next run. ``path``
(default ``""``) goes under the base URL; ``method`` is ``POST`` (default), ``PUT``,
``PATCH``, ``GET`` or ``DELETE``; ``headers`` adds headers (the connection's win for
``Authorization``). The run's parameters are the JSON body (``POST``, ``PUT``,
``PATCH``) or the query (``GET``, ``DELETE``). Every call carries ``Idempotency-Key``,
the same for one attempt. A 2xx answer completes the run; any other answer, a refused
connection or a timeout fails the attempt (which the deployment's retries may try
again). The remote id is the idempotency key, the link the URL without its query.
A request cannot be cancelled once sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx

from interlock.sdk.connections import ConnectionKind, ConnectionNotFound
from interlock.sdk.errors import ActionFailed, InterlockError
from interlock.sdk.executors import ExecutorContext
from interlock.sdk.targets import RemoteRun, TargetInvalid, TargetRun
from interlock.service.connections.http import headers_of, join

__all__ = ["HttpTarget"]

_METHODS: Final = ("POST", "PUT", "PATCH", "GET", "DELETE")
_FIELDS: Final = frozenset({"type", "connection", "path", "method", "headers"})
IDEMPOTENCY_HEADER = "Idempotency-Key"


class HttpTarget:
    """Runs ``http`` deployments (see the module's docstring).

    Args:
        context: The connections, and the seconds one request may take (the action
            timeout; a deployment's policy ``timeout`` bounds the attempt too).
    """

    connection_kind: ConnectionKind = "http"

    def __init__(self, context: ExecutorContext) -> None:
        self._connections = context.connections
        self._timeout = context.action_timeout
        self._client: httpx.AsyncClient | None = None

    def check(self, target: Mapping[str, Any]) -> None:
        """Refuse unknown fields, a missing connection name, a bad method or path."""
        unknown = sorted(set(target) - _FIELDS)
        if unknown:
            raise TargetInvalid(
                unknown[0], f"is not a field of an http target ({', '.join(sorted(_FIELDS))})"
            )
        connection = target.get("connection")
        if not isinstance(connection, str) or not connection:
            raise TargetInvalid("connection", "is required: the name of an http connection")
        method = target.get("method", "POST")
        if method not in _METHODS:
            raise TargetInvalid("method", f"must be one of {', '.join(_METHODS)}")
        path = target.get("path", "")
        if not isinstance(path, str):
            raise TargetInvalid("path", "must be a string (a path under the base URL)")
        headers = target.get("headers", {})
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise TargetInvalid("headers", "must map header names to strings")

    async def start(self, run: TargetRun) -> RemoteRun:
        """Send the request; the run ends with its answer."""
        target = run.target
        name = str(target["connection"])
        try:
            connection = (await self._connections.resolve(name)).require("http")
        except ConnectionNotFound as exc:
            raise ActionFailed(f"http target: {exc}", retryable=False) from None
        except InterlockError as exc:
            raise ActionFailed(f"http target: connection {name!r}: {exc}") from None
        url = join(str(connection.settings.get("base_url", "")), str(target.get("path", "")))
        method = str(target.get("method", "POST"))
        headers = {**dict(target.get("headers") or {}), **headers_of(connection)}
        headers[IDEMPOTENCY_HEADER] = run.key
        body: dict[str, Any] = (
            {"json": run.parameters}
            if method in ("POST", "PUT", "PATCH")
            else {"params": {k: str(v) for k, v in run.parameters.items()}}
        )
        shown = str(httpx.URL(url).copy_with(query=None))
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        try:
            response = await self._client.request(method, url, headers=headers, **body)
        except httpx.TimeoutException:
            raise ActionFailed(f"http target: {method} {shown}: no answer in time") from None
        except httpx.HTTPError as exc:
            raise ActionFailed(f"http target: {method} {shown}: {type(exc).__name__}") from None
        status = response.status_code
        answered = f"HTTP {status}"
        if 200 <= status < 300:
            return RemoteRun(
                remote_id=run.key,
                url=shown,
                state="completed",
                remote_state=answered,
                message=f"{method} {shown}: {answered}",
            )
        return RemoteRun(
            remote_id=run.key,
            url=shown,
            state="failed",
            remote_state=answered,
            message=f"{method} {shown}: {answered} {response.reason_phrase}".rstrip(),
        )

    async def poll(self, run: TargetRun, remote_id: str) -> RemoteRun:
        """Never needed: :meth:`start` returns the answer."""
        raise ActionFailed("http target: a request has no state to follow", retryable=False)

    async def cancel(self, run: TargetRun, remote_id: str) -> str:
        """A request sent cannot be taken back."""
        return "an HTTP request cannot be cancelled once sent"

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
