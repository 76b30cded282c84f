"""The ledger of a worker that holds only the API's URL and a key of scope ``worker``.

::

    async with ApiLedger("https://interlock.example.com", token, log_dir=Path("logs")) as ledger:
        worker = Worker(ledger, ["etl"], name="etl-1")
        await worker.run()

Every method is one call of the worker API (:mod:`interlock.service.api.workers`); the
server does what :class:`~interlock.service.deployments.ledger.StoreLedger` does, so
the guarantees are the store's: one claim per run, the lease rule, the run events.

**Logs** are written here (``log_dir/<run id>.log``) and shipped to the API at every
poll and before a run's end is recorded, from the byte the server has on; a repeat
after a lost answer is skipped by the server, so nothing is written twice.

**Failures.** A call that gets no answer (the API restarting, a dropped connection) or
a 502/503/504 is tried again for up to ``patience`` seconds (backoff from 0.2 s to 2 s),
then raises :class:`~interlock.service.deployments.ledger.LedgerUnavailable`, which the
worker retries with its own backoff: a worker outlives an API restart, its processes
running on. A key the API does not accept (401, 403) is ``LedgerUnavailable`` too, with
the API's reason: a revoked key stops the worker's claims, never its running runs.
A 409 (the run was cancelled, or is another worker's) is
:class:`~interlock.service.deployments.ledger.RunMovedOn`; any other refusal a
:class:`~interlock.service.deployments.ledger.LedgerError` with the API's detail.

Claims cannot be repeated safely, so a claim is never retried: if its answer is lost,
the runs it took stay ``running`` under this worker's name without a process, and are
marked ``crashed`` when their lease passes (or at once when this worker restarts).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import msgspec

from interlock.sdk.connections import ConnectionLookup, ConnectionNotFound, ResolvedConnection
from interlock.sdk.targets import RemoteRun
from interlock.service.deployments.ledger import LedgerError, LedgerUnavailable, RunMovedOn
from interlock.service.store import Run, RunState

__all__ = ["ApiLedger"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_RETRIED_STATUSES = frozenset({502, 503, 504})
_LOG_CHUNK = 256 * 1024
"""Bytes of log per request (the API takes bodies up to 1 MiB)."""


class _Deployment(msgspec.Struct, frozen=True):
    target: dict[str, Any]
    policy: dict[str, Any] | None


class _LogSize(msgspec.Struct, frozen=True):
    size: int


class ApiLedger:
    """Runs claimed and recorded through the worker API.

    Args:
        api_url: The API's base URL (``https://interlock.example.com``).
        token: A key of scope ``worker`` (``None``: a local API without keys).
        log_dir: Where this worker writes its runs' logs before shipping them.
        action_timeout: Seconds a remote target's single call may take.
        patience: Seconds a call is tried again while the API does not answer.
        request_timeout: Seconds one request may take.
        transport: An httpx transport (tests: none needed, the API is real).
    """

    def __init__(
        self,
        api_url: str,
        token: str | None,
        *,
        log_dir: Path,
        action_timeout: float = 30.0,
        patience: float = 30.0,
        request_timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.log_dir = log_dir.resolve()
        self.patience = patience
        self._action_timeout = action_timeout
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            headers=headers,
            timeout=request_timeout,
            transport=transport,
        )
        self._shipped: dict[uuid.UUID, int] = {}
        """Bytes of each run's log the server holds (as far as this worker knows)."""
        self._refused: set[uuid.UUID] = set()
        """Runs whose log the server refused for good (not tried again)."""
        self._connections = _ApiConnections(self)

    def __repr__(self) -> str:
        return f"ApiLedger({self.api_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connections(self) -> ConnectionLookup:
        """The API's connections, read at every call (a rotation applies at once)."""
        return self._connections

    @property
    def action_timeout(self) -> float:
        """As given."""
        return self._action_timeout

    def log_path(self, run_id: uuid.UUID) -> Path:
        """``log_dir/<run id>.log``."""
        return self.log_dir / f"{run_id}.log"

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    # -- the calls ---------------------------------------------------------------------

    async def recover(self, worker: str) -> list[Run]:
        """``POST /api/worker/recover``."""
        return await self._call(
            "POST", "/api/worker/recover", list[Run], json_body={"worker": worker}
        )

    async def heartbeat(self, worker: str, run_ids: Sequence[uuid.UUID], lease: timedelta) -> None:
        """``POST /api/worker/heartbeat``."""
        body = {
            "worker": worker,
            "runs": [str(run_id) for run_id in run_ids],
            "lease": lease.total_seconds(),
        }
        await self._call("POST", "/api/worker/heartbeat", None, json_body=body)

    async def states(self, run_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, RunState]:
        """``POST /api/worker/states``."""
        body = {"runs": [str(run_id) for run_id in run_ids]}
        return await self._call(
            "POST", "/api/worker/states", dict[uuid.UUID, RunState], json_body=body
        )

    async def claim(self, queues: Sequence[str] | None, *, worker: str, limit: int) -> list[Run]:
        """``POST /api/worker/claim``, once (see the module docstring)."""
        body = {
            "worker": worker,
            "limit": limit,
            "queues": None if queues is None else list(queues),
        }
        return await self._call(
            "POST", "/api/worker/claim", list[Run], json_body=body, patience=0.0
        )

    async def deployment(self, name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """``GET /api/worker/deployments/{name}``."""
        found = await self._call("GET", f"/api/worker/deployments/{name}", _Deployment)
        return found.target, found.policy

    async def finish(self, run: Run, state: RunState, message: str, *, worker: str) -> None:
        """``POST /api/worker/runs/{id}/finish``."""
        body = {"worker": worker, "state": state, "message": message}
        await self._call("POST", f"/api/worker/runs/{run.id}/finish", None, json_body=body)
        self._forget(run.id)

    async def retry(self, run: Run, *, delay: float, message: str, worker: str) -> None:
        """``POST /api/worker/runs/{id}/retry``."""
        body = {"worker": worker, "attempt": run.attempt, "delay": delay, "message": message}
        await self._call("POST", f"/api/worker/runs/{run.id}/retry", None, json_body=body)
        self._forget(run.id)

    async def set_remote(self, run: Run, remote: RemoteRun, *, worker: str) -> None:
        """``PUT /api/worker/runs/{id}/remote``."""
        body = {
            "worker": worker,
            "remote_id": remote.remote_id,
            "remote_url": remote.url,
            "remote_state": (remote.remote_state or remote.state)[:64],
            "state": remote.state,
        }
        await self._call("PUT", f"/api/worker/runs/{run.id}/remote", None, json_body=body)

    async def sync_logs(self, run_ids: Sequence[uuid.UUID], *, worker: str) -> None:
        """Send what the logs of ``run_ids`` gained since the server's size."""
        for run_id in run_ids:
            if run_id in self._refused:
                continue
            try:
                await self._ship(run_id, worker)
            except LedgerUnavailable:
                raise
            except LedgerError as exc:  # the run is gone or another's: its log with it
                logger.warning("run %s: its log is not shipped: %s", run_id, exc)
                self._refused.add(run_id)

    async def resolve_connection(self, name: str) -> ResolvedConnection:
        """``GET /api/worker/connections/{name}``.

        Raises:
            ConnectionNotFound: the API has none of that name.
        """
        try:
            return await self._call("GET", f"/api/worker/connections/{name}", ResolvedConnection)
        except _NotFound as exc:
            raise ConnectionNotFound(name, str(exc)) from None

    # -- helpers -----------------------------------------------------------------------

    def _forget(self, run_id: uuid.UUID) -> None:
        self._shipped.pop(run_id, None)
        self._refused.discard(run_id)

    async def _ship(self, run_id: uuid.UUID, worker: str) -> None:
        path = self.log_path(run_id)
        offset = self._shipped.get(run_id, 0)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return
        while offset < size:
            data = await asyncio.to_thread(_read, path, offset, _LOG_CHUNK)
            if not data:
                break
            answer = await self._call(
                "POST",
                f"/api/worker/runs/{run_id}/log",
                _LogSize,
                content=data,
                params={"worker": worker, "offset": offset},
                headers={"Content-Type": "application/octet-stream"},
            )
            sent, offset = offset, answer.size  # less than sent: the server's end
            self._shipped[run_id] = offset
            if offset == sent:
                break

    async def _call(
        self,
        method: str,
        path: str,
        answer: type[T] | None,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        patience: float | None = None,
    ) -> T:
        deadline = time.monotonic() + (self.patience if patience is None else patience)
        pause = 0.2
        while True:
            try:
                response = await self._http.request(
                    method, path, json=json_body, content=content, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                problem = f"{self.api_url} did not answer: {exc or type(exc).__name__}"
            else:
                if response.status_code not in _RETRIED_STATUSES:
                    return self._decode(response, answer, f"{method} {path}")
                problem = f"{self.api_url} answered {response.status_code}: {_detail(response)}"
            if time.monotonic() + pause > deadline:
                raise LedgerUnavailable(problem)
            logger.info("worker API: %s; trying again in %.1fs", problem, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    def _decode(self, response: httpx.Response, answer: type[T] | None, what: str) -> T:
        status = response.status_code
        if status in (401, 403):
            raise LedgerUnavailable(f"the API refused this worker's key: {_detail(response)}")
        if status == 404:
            raise _NotFound(_detail(response))
        if status == 409:
            raise RunMovedOn(_detail(response))
        if response.is_error:
            raise LedgerError(f"{what}: {_detail(response)} (HTTP {status})")
        if answer is None:
            return None  # type: ignore[return-value] # callers asking for None get None
        try:
            return msgspec.json.decode(response.content, type=answer)
        except msgspec.ValidationError as exc:
            raise LedgerError(f"{what} answered something unexpected: {exc}") from None


class _NotFound(LedgerError):
    """404: the deployment or connection is gone."""


class _ApiConnections:
    """A :class:`ConnectionLookup` through the worker API."""

    def __init__(self, ledger: ApiLedger) -> None:
        self._ledger = ledger

    async def resolve(self, name: str) -> ResolvedConnection:
        """The connection as the API has it now."""
        return await self._ledger.resolve_connection(name)


def _read(path: Path, offset: int, limit: int) -> bytes:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read(limit)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])
    return response.reason_phrase
