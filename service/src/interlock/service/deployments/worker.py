"""The :class:`Worker`: pulls runs from work queues and runs them: subprocesses, remote runs.

::

    worker = Worker(StoreLedger(services), ["default", "etl"], name="etl-1", concurrency=4)
    task = asyncio.create_task(worker.run())
    ...
    await worker.stop()

The worker reads and records its runs through a
:class:`~interlock.service.deployments.ledger.RunLedger`: the database and NATS
directly (:class:`~interlock.service.deployments.ledger.StoreLedger`), or the HTTP API
only (:class:`~interlock.service.deployments.api_ledger.ApiLedger`); what follows holds
for both. Every ``poll_interval`` (and whenever one of its runs ends) a worker:

1. makes its queues' ``scheduled`` runs whose time has come ``pending``;
2. claims due ``pending`` runs of its unpaused queues, up to its free slots and each
   queue's concurrency limit (counted over every worker: the claim is atomic, see
   :meth:`~interlock.service.store.runs.RunClaims.claim`), and starts each as a
   subprocess with its output in its ledger's log file (shipped to the API by the
   API's ledger);
3. reads the states of its runs: a run no longer ``running`` (cancelled through the
   API or an action) is terminated — SIGTERM to its process group, SIGKILL after
   ``grace`` seconds;
4. renews the lease of its runs and marks crashed the runs of workers that stopped
   renewing theirs.

A process that exits 0 makes its run ``completed``; another exit status ``failed``
(the message holds the exit code and the last line of output); a process killed by a
signal (not by its worker) ``crashed``. A run whose deployment's target is remote
(``airflow``, ``prefect``, ``http``) is started there and followed until it ends
(:mod:`.remote`).

**Policies** (:mod:`.policy`): an attempt that takes longer than the deployment's
``timeout`` is stopped and fails; a failed attempt with ``retries`` left goes back to
``scheduled`` (due after its delay) with ``attempt`` + 1, for any worker to claim again.

**Leases.** A running run's ``updated_at`` is its worker's heartbeat, renewed every
``lease / 3``. A ``running`` run whose heartbeat is older than ``lease`` belongs to a
worker that died (``kill -9``, a lost machine) and is marked ``crashed`` by whichever
worker notices first; all workers should use the same ``lease``, and their clocks
should agree to well within it. A worker also marks ``crashed``, when it starts, the
runs still ``running`` under its own name, so a restarted worker does not wait for the
lease. Give each worker its own name (the default in ``interlock worker`` is the host
name: run two workers on one host with ``--name``). The processes of a worker that was
killed keep running, orphaned; their runs are ``crashed`` all the same.

When :meth:`Worker.stop` is called, the worker takes no more runs, terminates its
running processes (SIGKILL after at most 5 s) and marks their runs ``crashed``
("worker stopped").

**Failures** follow the policy of long-running loops (:mod:`interlock.sdk.retry`): a
database or an API that fails is retried with backoff (from ``poll_interval``, doubling to 5 s);
an unexpected error is logged with its traceback, counted (:attr:`Worker.errors`), and
the worker goes on; recording how a run ended is retried the same way, up to 30 times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from interlock.sdk.executors import ExecutorContext
from interlock.sdk.retry import Backoff, Retry
from interlock.service.deployments.catalog import DEFAULT_QUEUE, ensure_default_queue
from interlock.service.deployments.ledger import (
    LedgerError,
    LedgerUnavailable,
    RunLedger,
    RunMovedOn,
)
from interlock.service.deployments.policy import RunPolicy, parse_policy
from interlock.service.deployments.process import RunProcess, append_log, outcome
from interlock.service.deployments.remote import RemoteAttempt
from interlock.service.deployments.target_kinds import PROCESS, TargetKinds
from interlock.service.deployments.targets import parse_target
from interlock.service.store import InvalidTransition, Run, RunState, StoreError

__all__ = ["DEFAULT_QUEUE", "Worker", "ensure_default_queue"]

logger = logging.getLogger(__name__)

_FINAL_WRITE_ATTEMPTS = 30
_STOP_GRACE = 5.0
"""Longest SIGTERM-to-SIGKILL wait when the worker itself stops (the server waits 10 s)."""


@dataclass(eq=False)
class _Active:
    """A run this worker executes."""

    run: Run
    log_path: Path
    task: asyncio.Task[None] | None = None
    process: RunProcess | None = None
    stopped_as: RunState | None = None
    """Set when the worker stops the process: the run's state is decided elsewhere."""
    terminating: asyncio.Task[None] | None = field(default=None, repr=False)
    grace: float = 0.0
    """Seconds from SIGTERM to SIGKILL once it is stopped."""
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    """Set with ``stopped_as``: a remote attempt waits on it."""
    remote: RemoteAttempt | None = None
    policy: RunPolicy = field(default_factory=RunPolicy)
    ended: bool = False
    """Its process or remote run ended: its state is being recorded."""


class Worker:
    """Runs the runs of some work queues.

    Args:
        ledger: Where runs are claimed and recorded (the store, or the API).
        queues: The queues to take runs from; ``None``: every queue, including those
            created while it runs (the embedded worker of ``interlock server``).
        name: This worker's name, unique among workers (default: host name and pid).
        concurrency: Runs executed at once by this worker.
        poll_interval: Seconds between looks at the queues and at its runs' states.
        lease: How long a running run stays its worker's without a heartbeat.
        grace: Seconds between SIGTERM and SIGKILL when a run is stopped.
        remote_poll_interval: Seconds between polls of a remote run's state.
    """

    def __init__(
        self,
        ledger: RunLedger,
        queues: Sequence[str] | None,
        *,
        name: str | None = None,
        concurrency: int = 4,
        poll_interval: float = 1.0,
        lease: timedelta = timedelta(seconds=30),
        grace: float = 10.0,
        remote_poll_interval: float = 2.0,
    ) -> None:
        if queues is not None and not queues:
            raise ValueError("a worker needs at least one queue (or None: every queue)")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self.ledger = ledger
        self.queues = None if queues is None else list(dict.fromkeys(queues))
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.lease = lease
        self.grace = grace
        self.remote_poll_interval = remote_poll_interval
        self._targets = TargetKinds(
            ExecutorContext(
                action_timeout=ledger.action_timeout,
                environ=dict(os.environ),
                connections=ledger.connections,
            )
        )
        self._active: dict[uuid.UUID, _Active] = {}
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._running = False
        self.errors = 0
        """Unexpected errors its loop met (and went on after)."""

    def __repr__(self) -> str:
        return f"Worker({self.name!r}, queues={self.queues!r})"

    @property
    def active(self) -> list[Run]:
        """The runs this worker is executing now (as claimed)."""
        return [active.run for active in self._active.values()]

    def log_path(self, run_id: uuid.UUID) -> Path:
        """Where the log of a run this worker executes goes."""
        return self.ledger.log_path(run_id)

    def wake(self) -> None:
        """Look at the queues now instead of after ``poll_interval``."""
        self._wake.set()

    async def stop(self) -> None:
        """Take no more runs; terminate the running ones (their runs become crashed)."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Work until :meth:`stop`; a failing database is logged and retried."""
        if self._running:
            raise RuntimeError(f"{self!r} is running already")
        self._running = True
        served = "every queue" if self.queues is None else f"queues {', '.join(self.queues)}"
        logger.info("worker %s: serving %s", self.name, served)
        try:
            await self._recover()
            heartbeat_every = self.lease.total_seconds() / 3
            last_heartbeat = 0.0
            retry = self._retry("polling")
            while not self._stopping.is_set():
                self._wake.clear()
                wait = self.poll_interval
                try:
                    if time.monotonic() - last_heartbeat >= heartbeat_every:
                        await self._heartbeat()
                        last_heartbeat = time.monotonic()
                    await self._follow_states()
                    await self._claim()
                    await self.ledger.sync_logs(list(self._active), worker=self.name)
                except Exception as exc:  # noqa: BLE001 - the loop's boundary: Retry logs it
                    wait = retry.failed(exc)
                else:
                    retry.succeeded()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            await self._shutdown()
        finally:
            self._kill_all()
            await self._targets.close()
            self._running = False

    # -- one poll --------------------------------------------------------------------------

    def _retry(self, what: str) -> Retry:
        """The policy of long-running loops (:mod:`interlock.sdk.retry`) for one of them."""
        return Retry(
            logger,
            f"worker {self.name}: {what}",
            expected=(StoreError, LedgerUnavailable),
            backoff=Backoff(self.poll_interval, max(self.poll_interval, 5.0)),
            on_unexpected=self._count_error,
        )

    def _count_error(self, exc: BaseException) -> None:
        self.errors += 1

    async def _recover(self) -> None:
        """Mark crashed the runs this worker's name left running (it was killed)."""
        retry = self._retry("finding the runs it left running")
        while not self._stopping.is_set():
            try:
                lost = await self.ledger.recover(self.name)
            except (StoreError, LedgerUnavailable) as exc:
                await retry.pause(exc)
                continue
            for run in lost:
                logger.warning("worker %s: run %s was lost in a restart", self.name, run.id)
            return

    async def _heartbeat(self) -> None:
        await self.ledger.heartbeat(self.name, list(self._active), self.lease)

    async def _follow_states(self) -> None:
        watched = [a for a in self._active.values() if a.stopped_as is None and not a.ended]
        if not watched:
            return
        states = await self.ledger.states([a.run.id for a in watched])
        for active in watched:
            state = states.get(active.run.id)
            if state != "running":
                self._stop_run(active, state or "cancelled")

    async def _claim(self) -> None:
        free = self.concurrency - len(self._active)
        if free <= 0 or self._stopping.is_set():
            return
        claimed = await self.ledger.claim(self.queues, worker=self.name, limit=free)
        for run in claimed:
            active = _Active(run=run, log_path=self.log_path(run.id))
            self._active[run.id] = active
            active.task = asyncio.create_task(self._execute(active), name=f"run-{run.id}")

    # -- one run ---------------------------------------------------------------------------

    async def _execute(self, active: _Active) -> None:
        run = active.run
        try:
            final = await self._carry_out(active)
            active.ended = True  # its end is being recorded: no longer one to stop
            if (
                final is not None
                and final[0] == "failed"
                and active.policy.retries_after(run.attempt)
            ):
                await self._retry_later(active, final[1])
            elif final is not None:
                await self._finish(run, *final)
        except Exception:
            logger.exception("worker %s: run %s failed inside the worker", self.name, run.id)
            with contextlib.suppress(Exception):
                await self._finish(
                    run, "crashed", "the worker failed while running it (see its log)"
                )
        finally:
            self._active.pop(run.id, None)
            self._wake.set()

    async def _carry_out(self, active: _Active) -> tuple[RunState, str] | None:
        run = active.run
        try:
            target_fields, policy = await self.ledger.deployment(run.deployment)
            active.policy = parse_policy(run.deployment, policy)
            if target_fields.get("type") != PROCESS:
                return await self._carry_out_remote(active, target_fields)
            target = parse_target(run.deployment, target_fields)
        except (StoreError, LedgerError) as exc:
            append_log(active.log_path, f"interlock: cannot run {run.deployment}: {exc}")
            return "failed", f"cannot run: {exc}"
        env = target.environment(run.parameters, run_id=run.id, deployment=run.deployment)
        try:
            process = await RunProcess.start(target, env, active.log_path)
        except OSError as exc:
            reason = f"cannot start {target.argv()[0]!r}: {exc.strerror or exc}"
            append_log(active.log_path, f"interlock: {reason}")
            return "failed", reason
        active.process = process
        if active.stopped_as is not None:  # cancelled while it was starting
            self._stop_run(active, active.stopped_as)
        logger.info(
            "worker %s: run %s of %s started (pid %d)",
            self.name,
            run.id,
            run.deployment,
            process.pid,
        )
        timeout = active.policy.timeout
        try:
            returncode = await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            if active.stopped_as is None:
                append_log(active.log_path, f"interlock: timed out after {timeout:g}s")
                self._stop_run(active, "failed")
                assert active.terminating is not None
                await active.terminating
                return "failed", f"timed out after {timeout:g}s (terminated)"
            returncode = await process.wait()
        if active.terminating is not None:
            await active.terminating
        if active.stopped_as is not None:
            logger.info("worker %s: run %s stopped (%s)", self.name, run.id, active.stopped_as)
            if active.stopped_as == "running":  # the worker itself is stopping
                return "crashed", f"worker {self.name} stopped while it ran (terminated)"
            return None
        return outcome(returncode, active.log_path)

    async def _carry_out_remote(
        self, active: _Active, target: dict[str, Any]
    ) -> tuple[RunState, str] | None:
        run = active.run
        attempt = RemoteAttempt.of_run(
            self.ledger,
            self._targets.get(run.deployment, target),
            run,
            target,
            worker=self.name,
            log_path=active.log_path,
            stopped=active.stopped,
            poll_interval=self.remote_poll_interval,
            timeout=active.policy.timeout,
        )
        active.remote = attempt
        if active.stopped_as == "running":
            attempt.cancel_remote = False
        final = await attempt.run()
        if final is None and active.stopped_as == "running":
            return "crashed", f"worker {self.name} stopped while it ran (the remote run goes on)"
        return final

    def _stop_run(self, active: _Active, state: RunState, *, grace: float | None = None) -> None:
        """Terminate a run's process: its run became ``state`` (``running``: we stop)."""
        if active.stopped_as is None:
            active.stopped_as = state
            active.grace = self.grace if grace is None else grace
            if state == "running" and active.remote is not None:
                active.remote.cancel_remote = False
            active.stopped.set()
        if active.process is not None and active.terminating is None:
            logger.info("worker %s: terminating run %s (%s)", self.name, active.run.id, state)
            active.terminating = asyncio.create_task(active.process.terminate(active.grace))

    async def _retry_later(self, active: _Active, reason: str) -> None:
        """Send a failed attempt with retries left back to ``scheduled``, due after its delay.

        Nothing happens if the run is no longer running that attempt (cancelled meanwhile).
        """
        run, policy = active.run, active.policy
        delay = policy.delay(run.attempt)
        message = (
            f"attempt {run.attempt} of {policy.retries + 1} failed: {reason}; "
            f"retrying in {delay:g}s"
        )
        append_log(active.log_path, f"interlock: {message}")

        async def send_back() -> None:
            await self.ledger.retry(run, delay=delay, message=message, worker=self.name)

        if await self._record(run, "scheduled", send_back):
            logger.info("run %s: %s", run.id, message)

    async def _finish(self, run: Run, state: RunState, message: str) -> None:
        async def finish() -> None:
            await self.ledger.finish(run, state, message, worker=self.name)

        if await self._record(run, state, finish):
            logger.info("worker %s: run %s %s (%s)", self.name, run.id, state, message)

    async def _record(
        self, run: Run, state: RunState, write: Callable[[], Awaitable[None]]
    ) -> bool:
        """Ship the run's log, then ``write`` its new state; retried while the ledger fails.

        Returns whether it was written (not when the run had moved on: cancelled).
        """
        retry = self._retry(f"recording run {run.id} as {state}")
        for attempt in range(1, _FINAL_WRITE_ATTEMPTS + 1):
            try:
                await self.ledger.sync_logs([run.id], worker=self.name)
                await write()
            except (InvalidTransition, RunMovedOn) as exc:
                logger.info("worker %s: run %s ended but %s", self.name, run.id, exc)
                return False
            except (StoreError, LedgerUnavailable) as exc:
                if attempt == _FINAL_WRITE_ATTEMPTS:
                    logger.error(
                        "worker %s: cannot record run %s as %s: %s", self.name, run.id, state, exc
                    )
                    return False
                await retry.pause(exc)
                continue
            except LedgerError as exc:
                logger.error(
                    "worker %s: cannot record run %s as %s: %s", self.name, run.id, state, exc
                )
                return False
            return True
        return False

    # -- stopping --------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        actives = list(self._active.values())
        for active in actives:
            self._stop_run(active, "running", grace=min(self.grace, _STOP_GRACE))
        tasks = [a.task for a in actives if a.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        logger.info("worker %s: stopped", self.name)

    def _kill_all(self) -> None:
        """Last resort (the worker's task was cancelled): kill what still runs."""
        for active in list(self._active.values()):
            if active.process is not None:
                active.process.signal_group(signal.SIGKILL)
            if active.task is not None:
                active.task.cancel()
