"""Where a worker reads and records its runs: the :class:`RunLedger`, and the store's.

A :class:`~interlock.service.deployments.worker.Worker` never touches the database or
NATS itself; it asks its ledger to claim runs, renew their lease, tell their states,
record how they ended, keep their remote runs and their logs. Two ledgers exist:

- :class:`StoreLedger`: the database and NATS directly (the worker inside ``interlock
  server``, and ``interlock worker`` given the database's URL). Logs are files the API
  reads where the worker wrote them.
- :class:`~interlock.service.deployments.api_ledger.ApiLedger`: the HTTP API only,
  with a key of scope ``worker`` (``interlock worker --api-url``). Logs are written
  locally and shipped to the API, which keeps them.

Both keep the same guarantees: a run is claimed by one worker (the claim is one
transaction in the store), a run whose worker stops renewing its lease is marked
``crashed`` by whichever worker notices first, and every state change is published as
``interlock.run.<state>`` by the side that holds NATS.

Errors::

    InterlockError
    └── LedgerError          the ledger refused a request (a deployment that is gone)
        ├── LedgerUnavailable    it did not answer, or refused the worker's key: the
        │                        worker retries with backoff (as a StoreError)
        └── RunMovedOn       the run is no longer this worker's to change (cancelled,
                             or crashed by another worker): as InvalidTransition
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from interlock.sdk.connections import ConnectionLookup
from interlock.sdk.errors import InterlockError
from interlock.sdk.targets import RemoteRun
from interlock.service.context import Services
from interlock.service.deployments.events import announce
from interlock.service.store import Run, RunState

__all__ = [
    "LedgerError",
    "LedgerUnavailable",
    "RunLedger",
    "RunMovedOn",
    "StoreLedger",
    "crashed_by_lease",
]


class LedgerError(InterlockError):
    """The ledger refused a request; the message says why."""


class LedgerUnavailable(LedgerError):
    """The ledger did not answer, or did not accept the worker's key: try again later.

    (The API is restarting, the network dropped, the key was revoked.)
    """


class RunMovedOn(LedgerError):
    """The run is no longer this worker's to change (cancelled, crashed, retried)."""


def crashed_by_lease(lease: timedelta, worker: str) -> str:
    """The message of a run crashed because its worker stopped renewing its lease."""
    return (
        f"its worker stopped renewing its lease ({lease.total_seconds():g}s); "
        f"found by worker {worker}"
    )


class RunLedger(Protocol):
    """What a worker needs to claim, follow and record runs (see the module docstring)."""

    @property
    def connections(self) -> ConnectionLookup:
        """Resolves the connections remote targets name, at every call."""
        ...

    @property
    def action_timeout(self) -> float:
        """Seconds a remote target's single call may take."""
        ...

    async def recover(self, worker: str) -> list[Run]:
        """Mark crashed the runs left ``running`` under ``worker``'s name (it restarted)."""
        ...

    async def heartbeat(self, worker: str, run_ids: Sequence[uuid.UUID], lease: timedelta) -> None:
        """Renew the lease of ``run_ids``; mark crashed the runs whose lease passed."""
        ...

    async def states(self, run_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, RunState]:
        """The state of each of these runs now (unknown ids are left out)."""
        ...

    async def claim(self, queues: Sequence[str] | None, *, worker: str, limit: int) -> list[Run]:
        """Release due scheduled runs, then claim up to ``limit`` pending ones."""
        ...

    async def deployment(self, name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The target and the policy of deployment ``name`` as they are now."""
        ...

    async def finish(self, run: Run, state: RunState, message: str, *, worker: str) -> None:
        """Record how ``run`` ended (a final state)."""
        ...

    async def retry(self, run: Run, *, delay: float, message: str, worker: str) -> None:
        """Send ``run``'s failed attempt back to ``scheduled``, due in ``delay`` seconds."""
        ...

    async def set_remote(self, run: Run, remote: RemoteRun, *, worker: str) -> None:
        """Keep the remote run of ``run`` (its id, link and own state word)."""
        ...

    def log_path(self, run_id: uuid.UUID) -> Path:
        """Where this worker writes the log of ``run_id``."""
        ...

    async def sync_logs(self, run_ids: Sequence[uuid.UUID], *, worker: str) -> None:
        """Make what the logs of ``run_ids`` hold readable through the API."""
        ...

    async def close(self) -> None:
        """Release what the ledger holds open."""
        ...


class StoreLedger:
    """The ledger of the database and NATS, through the service's :class:`Services`."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.log_dir = (services.settings.data_dir / "runs").resolve()

    @property
    def connections(self) -> ConnectionLookup:
        """The store's connections."""
        return self.services.store.connections

    @property
    def action_timeout(self) -> float:
        """The settings' action timeout."""
        return self.services.settings.actions.timeout.total_seconds()

    def log_path(self, run_id: uuid.UUID) -> Path:
        """``<data_dir>/runs/<run id>.log``, which the API reads."""
        return self.log_dir / f"{run_id}.log"

    async def recover(self, worker: str) -> list[Run]:
        """Crash ``worker``'s runs left running, and announce them."""
        lost = await self.services.store.runs.crash_worker_runs(
            worker, f"worker {worker} restarted while it ran (it was lost)"
        )
        for run in lost:
            await announce(self.services, run)
        return lost

    async def heartbeat(self, worker: str, run_ids: Sequence[uuid.UUID], lease: timedelta) -> None:
        """Renew, then crash (and announce) the runs of workers that stopped renewing."""
        runs = self.services.store.runs
        await runs.heartbeat(run_ids)
        cutoff = self.services.clock.now() - lease
        for run in await runs.crash_expired(cutoff, crashed_by_lease(lease, worker)):
            await announce(self.services, run)

    async def states(self, run_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, RunState]:
        """The runs' states in the store."""
        return await self.services.store.runs.states(run_ids)

    async def claim(self, queues: Sequence[str] | None, *, worker: str, limit: int) -> list[Run]:
        """Release due runs and claim pending ones, announcing each change."""
        store = self.services.store
        for run in await store.runs.release_due(queues):
            await announce(self.services, run)
        claimed = await store.runs.claim(
            queues, worker=worker, limit=limit, log_path=lambda run_id: str(self.log_path(run_id))
        )
        for run in claimed:  # announced before it starts: ``running`` precedes its end
            await announce(self.services, run)
        return claimed

    async def deployment(self, name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The stored deployment's target and policy."""
        deployment = await self.services.store.deployments.get(name)
        return dict(deployment.target), deployment.policy

    async def finish(self, run: Run, state: RunState, message: str, *, worker: str) -> None:
        """A compare-and-set transition, announced."""
        await self.end(run, state, message)

    async def end(self, run: Run, state: RunState, message: str) -> Run:
        """:meth:`finish`, answering the run as it ended (the worker API's answer)."""
        finished = await self.services.store.runs.transition(run.id, state, message=message)
        await announce(self.services, finished)
        return finished

    async def retry(self, run: Run, *, delay: float, message: str, worker: str) -> None:
        """Back to ``scheduled`` with ``attempt`` + 1, announced."""
        due = self.services.clock.now() + timedelta(seconds=delay)
        again = await self.services.store.runs.retry(
            run.id, attempt=run.attempt, scheduled_at=due, message=message
        )
        await announce(self.services, again)

    async def set_remote(self, run: Run, remote: RemoteRun, *, worker: str) -> None:
        """Stored on the run."""
        await self.services.store.runs.set_remote(
            run.id,
            remote_id=remote.remote_id,
            remote_url=remote.url,
            remote_state=remote.remote_state or remote.state,
        )

    async def sync_logs(self, run_ids: Sequence[uuid.UUID], *, worker: str) -> None:
        """Nothing: the API reads the files this worker writes."""

    async def close(self) -> None:
        """Nothing: the services belong to their owner."""
