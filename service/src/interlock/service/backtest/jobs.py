"""Backtests as jobs of the running service, for the API (and, later, the UI).

:class:`BacktestJobs` starts a job per request: the replay runs in a child process
(:mod:`.child`, which says why), reading the service's NATS; the comparison runs in the
service, on its store (:class:`~.live.StoreLiveRecord`). A job reports its progress as
the child sends it, then the report, or the error. One job runs at a time (a backtest
takes a core for as long as it runs); the last :data:`KEPT` jobs are kept, in memory
only: a restart forgets them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, Literal

import msgspec

from interlock.rules.rule import Rule, dump_rules
from interlock.sdk import NatsOptions
from interlock.service.backtest.child import ChildRequest
from interlock.service.backtest.errors import BacktestError
from interlock.service.backtest.horizon import Horizon
from interlock.service.backtest.live import StoreLiveRecord
from interlock.service.backtest.progress import Progress
from interlock.service.backtest.report import BacktestReport
from interlock.service.backtest.run import Replayed, compare_live
from interlock.service.store import Store

__all__ = ["KEPT", "BacktestBusy", "BacktestJob", "BacktestJobs"]

logger = logging.getLogger(__name__)

KEPT: Final = 20
_LINE_LIMIT = 1 << 30
"""The longest line the child may write (its result holds every firing)."""


class BacktestBusy(BacktestError):
    """A backtest job is running already; one runs at a time.

    Attributes:
        running: The running job's id.
    """

    def __init__(self, running: str) -> None:
        self.running = running
        super().__init__(
            f"backtest {running} is running; one runs at a time: wait for it, or cancel it "
            f"with DELETE /api/backtests/{running}"
        )


class BacktestJob(msgspec.Struct, kw_only=True):
    """A backtest the service runs."""

    id: str
    state: Literal["running", "done", "failed", "cancelled"] = "running"
    rules: list[str]
    """The rules' names."""
    start: datetime
    since: datetime
    until: datetime
    created_at: datetime
    finished_at: datetime | None = None
    progress: Progress = msgspec.field(default_factory=Progress)
    error: str | None = None
    report: BacktestReport | None = None
    """The report, once done."""


class BacktestJobs:
    """The service's backtest jobs.

    Args:
        store: The service's store (the live rules and firings).
        nats: How the child reaches the service's NATS.
    """

    def __init__(self, store: Store, nats: NatsOptions) -> None:
        self._store = store
        self._nats = nats
        self._jobs: OrderedDict[str, BacktestJob] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def all(self) -> list[BacktestJob]:
        """Every kept job, newest first."""
        return list(reversed(self._jobs.values()))

    def get(self, job_id: str) -> BacktestJob | None:
        """The job with this id, if kept."""
        return self._jobs.get(job_id)

    def start(self, rules: Sequence[Rule], horizon: Horizon) -> BacktestJob:
        """Start a backtest of ``rules`` over ``horizon``; return its job (running).

        Raises:
            BacktestBusy: another job is running.
        """
        for running in self._jobs.values():
            if running.state == "running":
                raise BacktestBusy(running.id)
        job = BacktestJob(
            id=uuid.uuid4().hex[:12],
            rules=[rule.name for rule in rules],
            start=horizon.start,
            since=horizon.since,
            until=horizon.until,
            created_at=datetime.now(UTC),
        )
        self._jobs[job.id] = job
        while len(self._jobs) > KEPT:
            self._jobs.popitem(last=False)
        task = asyncio.create_task(self._run(job, list(rules), horizon))
        self._tasks[job.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job.id, None))
        return job

    async def cancel(self, job_id: str) -> BacktestJob | None:
        """Stop the job if it runs (its child is killed) and forget it."""
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return self._jobs.pop(job_id, None)

    async def close(self) -> None:
        """Cancel every running job (the service stops)."""
        for job_id in list(self._tasks):
            await self.cancel(job_id)

    async def _run(self, job: BacktestJob, rules: list[Rule], horizon: Horizon) -> None:
        try:
            live = StoreLiveRecord(self._store)
            held = await live.rules(job.rules)
            replayed = await self._replay(job, rules, horizon)
            job.report = await compare_live(replayed, rules, live, held)
            job.state = "done"
        except asyncio.CancelledError:
            job.state = "cancelled"
            raise
        except BacktestError as exc:
            job.state, job.error = "failed", str(exc)
        except Exception as exc:
            logger.exception("backtest %s failed", job.id)
            job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            job.finished_at = datetime.now(UTC)

    async def _replay(self, job: BacktestJob, rules: list[Rule], horizon: Horizon) -> Replayed:
        request = ChildRequest(
            rules=msgspec.Raw(dump_rules(rules)),
            start=horizon.start,
            since=horizon.since,
            until=horizon.until,
            nats=self._nats,
        )
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "interlock.service.backtest.child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            child.stdin.write(msgspec.json.encode(request) + b"\n")
            await child.stdin.drain()
            while line := await child.stdout.readline():
                message = msgspec.json.decode(line, type=_ChildMessage)
                if message.progress is not None:
                    job.progress = message.progress
                elif message.result is not None:
                    return message.result
                elif message.error is not None:
                    raise BacktestError(message.error)
            raise BacktestError(f"the backtest process ended without a result ({child.returncode})")
        finally:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
            child.stdin.close()
            await child.wait()


class _ChildMessage(msgspec.Struct, frozen=True, kw_only=True):
    progress: Progress | None = None
    result: Replayed | None = None
    error: str | None = None
