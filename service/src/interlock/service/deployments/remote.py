"""One attempt of a run on a remote target (Airflow, Prefect, HTTP): start, follow, cancel.

The worker claims the run as for a process, then :func:`run_remote`:

1. starts the remote run through the target's plugin (:meth:`Target.start
   <interlock.sdk.targets.Target.start>`, with a key the same for the whole attempt, so a
   second call finds the first run) and keeps its id, link and own state word on the
   Interlock run (``remote_id``, ``remote_url``, ``remote_state``);
2. polls it every ``poll_interval`` seconds until it ends; the Interlock run ends in
   the state the remote run ended in (``completed``, ``failed``, ``cancelled``,
   ``crashed``). While the remote run waits (Airflow's ``queued``, Prefect's
   ``SCHEDULED``/``PENDING``) the Interlock run is ``running`` (its worker holds it)
   with ``remote_state`` saying so;
3. when the Interlock run is cancelled, cancels the remote run where the system allows
   (the line the plugin returns goes to the run's log);
4. past the policy's ``timeout``, cancels the remote run and fails the attempt.

A poll that fails retryably (the system does not answer) is logged and tried again; one
that fails for good fails the attempt. Every call resolves the target's connection
anew, so a rotated credential is used by the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from interlock.sdk.errors import ActionFailed
from interlock.sdk.targets import RemoteRun, Target, TargetRun
from interlock.sdk.vocabulary import FINAL_RUN_STATES
from interlock.service.deployments.ledger import LedgerError, RunLedger
from interlock.service.deployments.process import append_log
from interlock.service.store import Run, RunState, StoreError

__all__ = ["RemoteAttempt"]

logger = logging.getLogger(__name__)


class RemoteAttempt:
    """Runs one attempt of one run on a remote target.

    Args:
        plugin: The target kind's plugin.
        request: The attempt (run id, attempt number, parameters, target).
        log_path: The run's log (what was started, each state change, a cancel).
        record: Keeps a remote run's id, link and state on the Interlock run.
        stopped: Set when the Interlock run was cancelled or the worker stops.
        poll_interval: Seconds between polls.
        timeout: Seconds the attempt may take, or ``None``.
    """

    def __init__(
        self,
        plugin: Target,
        request: TargetRun,
        *,
        log_path: Path,
        record: Callable[[RemoteRun], Awaitable[None]],
        stopped: asyncio.Event,
        poll_interval: float,
        timeout: float | None,
    ) -> None:
        self.plugin = plugin
        self.request = request
        self.log_path = log_path
        self.record = record
        self.stopped = stopped
        self.poll_interval = poll_interval
        self.timeout = timeout
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self.cancel_remote = True
        """Whether a stop cancels the remote run (not when the worker itself stops)."""

    @classmethod
    def of_run(
        cls,
        ledger: RunLedger,
        plugin: Target,
        run: Run,
        target: Mapping[str, Any],
        *,
        worker: str,
        log_path: Path,
        stopped: asyncio.Event,
        poll_interval: float,
        timeout: float | None,
    ) -> RemoteAttempt:
        """The attempt of ``run`` now, recording its remote run in ``ledger``."""

        async def record(remote: RemoteRun) -> None:
            try:
                await ledger.set_remote(run, remote, worker=worker)
            except (StoreError, LedgerError) as exc:  # shown late, not lost: written again
                logger.warning("run %s: cannot record its remote run: %s", run.id, exc)

        request = TargetRun(
            run_id=run.id,
            deployment=run.deployment,
            attempt=run.attempt,
            parameters=run.parameters,
            target=dict(target),
        )
        return cls(
            plugin,
            request,
            log_path=log_path,
            record=record,
            stopped=stopped,
            poll_interval=poll_interval,
            timeout=timeout,
        )

    def _log(self, line: str) -> None:
        append_log(self.log_path, f"interlock: {line}")

    def _left(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    async def run(self) -> tuple[RunState, str] | None:
        """Carry the attempt out; its final state and message, ``None`` if it was stopped."""
        kind = self.request.target.get("type")
        try:
            left = self._left()
            remote = await asyncio.wait_for(self.plugin.start(self.request), left)
        except TimeoutError:
            return "failed", f"timed out after {self.timeout:g}s while starting the {kind} run"
        except ActionFailed as exc:
            self._log(f"cannot start the {kind} run: {exc}")
            return "failed", f"cannot start: {exc}"
        self._log(f"{kind} run {remote.remote_id} started ({remote.remote_state or remote.state})")
        await self.record(remote)
        while remote.state not in FINAL_RUN_STATES:
            left = self._left()
            wait = self.poll_interval if left is None else max(0.0, min(self.poll_interval, left))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopped.wait(), wait)
            if self.stopped.is_set():
                if self.cancel_remote:
                    await self._cancel(remote, "cancelled")
                return None
            left = self._left()
            if left is not None and left <= 0:
                await self._cancel(remote, "timed out")
                return "failed", f"timed out after {self.timeout:g}s ({kind} run cancelled)"
            try:
                polled = await self.plugin.poll(self.request, remote.remote_id)
            except ActionFailed as exc:
                if not exc.retryable:
                    self._log(f"cannot follow {kind} run {remote.remote_id}: {exc}")
                    return "failed", f"cannot follow the {kind} run: {exc}"
                logger.warning("run %s: polling %s failed: %s", self.request.run_id, kind, exc)
                continue
            if (polled.state, polled.remote_state) != (remote.state, remote.remote_state):
                self._log(f"{kind} run {polled.remote_id}: {polled.remote_state or polled.state}")
                await self.record(polled)
            remote = polled
        message = remote.message or f"{kind} run {remote.remote_id}: {remote.remote_state}"
        return remote.state, message

    async def _cancel(self, remote: RemoteRun, why: str) -> None:
        kind = self.request.target.get("type")
        try:
            said = await self.plugin.cancel(self.request, remote.remote_id)
        except ActionFailed as exc:
            self._log(f"{why}; cancelling {kind} run {remote.remote_id} failed: {exc}")
            logger.warning(
                "run %s: cancelling its %s run failed: %s", self.request.run_id, kind, exc
            )
            return
        self._log(f"{why}; {said}")
