"""``/api/backtests``: backtests as jobs of the service, with their progress (issue 18).

- ``POST /api/backtests`` starts one: the rules (a rules document as ``POST /api/rules``
  takes, or ``names`` of stored rules at their current version) over ``since`` /
  ``until`` / ``warmup`` (as ``interlock rules backtest`` takes them); answers 202 with
  the job. One runs at a time: 409 while another runs.
- ``GET /api/backtests``: the kept jobs, newest first, without their reports;
- ``GET /api/backtests/{id}``: one job: its progress while it runs, then its report (what
  the rules would have fired, the difference from their live firings by firing id) or
  its error;
- ``DELETE /api/backtests/{id}``: cancel it if it runs, and forget it.

How a job runs is :mod:`interlock.service.backtest.jobs`'s: the replay in a child
process, the comparison on the store. Jobs are kept in memory (the last 20).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_409_CONFLICT

from interlock.rules.rule import Rule
from interlock.service.api.auth import require_read, require_write
from interlock.service.api.deps import ServicesDep
from interlock.service.api.rules import parse_rules
from interlock.service.backtest.errors import HorizonError
from interlock.service.backtest.horizon import parse_horizon
from interlock.service.backtest.jobs import BacktestBusy, BacktestJob, BacktestJobs
from interlock.service.context import Services
from interlock.service.store import RuleRecord

__all__ = ["BACKTEST_JOBS_STATE", "BacktestController", "BacktestRequest", "BacktestSummary"]

BACKTEST_JOBS_STATE = "interlock_backtest_jobs"
"""Where the application keeps its :class:`BacktestJobs` (``app.state``)."""


class BacktestRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A backtest to run: which rules, over which span."""

    since: str
    """A duration back from now (``7d``) or an ISO 8601 time with an offset."""
    until: str | None = None
    """The end (default: now)."""
    warmup: str = "1d"
    """Replayed before ``since`` to build the rules' state; its firings are dropped."""
    rules: dict[str, Any] | list[Any] | None = None
    """The rules: a rules document, a list of rules, or one rule (as ``POST /api/rules``)."""
    names: list[str] | None = None
    """Or the names of stored rules, backtested at their current version."""


class BacktestSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A job without its report."""

    id: str
    state: str
    rules: list[str]
    since: datetime
    until: datetime
    created_at: datetime
    finished_at: datetime | None
    events: int
    error: str | None


def jobs_of(request: Request[Any, Any, Any]) -> BacktestJobs:
    """The application's :class:`BacktestJobs` (made on first use)."""
    state = request.app.state
    jobs: BacktestJobs | None = state.get(BACKTEST_JOBS_STATE)
    if jobs is None:
        services: Services = state["services"]
        jobs = BacktestJobs(services.store, services.publisher.config.nats)
        state[BACKTEST_JOBS_STATE] = jobs
        request.app.on_shutdown.append(jobs.close)
    return jobs


async def _rules(body: BacktestRequest, services: Services) -> list[Rule]:
    if (body.rules is None) == (body.names is None):
        raise ClientException(detail="give either rules (a rules document) or names")
    if body.rules is not None:
        return parse_rules(json.dumps(body.rules).encode())
    names = list(dict.fromkeys(body.names or []))
    if not names:
        raise ClientException(detail="names is empty: name at least one stored rule")
    found = await services.store.rules.current(names)
    missing = [name for name in names if not isinstance(found.get(name), RuleRecord)]
    if missing:
        raise NotFoundException(detail=f"no readable stored rule named {', '.join(missing)}")
    return [record.rule for record in found.values() if isinstance(record, RuleRecord)]


def _summary(job: BacktestJob) -> BacktestSummary:
    return BacktestSummary(
        id=job.id,
        state=job.state,
        rules=job.rules,
        since=job.since,
        until=job.until,
        created_at=job.created_at,
        finished_at=job.finished_at,
        events=job.progress.events if job.report is None else job.report.events,
        error=job.error,
    )


class BacktestController(Controller):
    """Backtest jobs."""

    path = "/api/backtests"
    tags = ["backtests"]  # noqa: RUF012 - Litestar's declared attribute

    @post(
        "/",
        guards=[require_write],
        status_code=HTTP_202_ACCEPTED,
        summary="Start a backtest",
    )
    async def start(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        data: JSONBody[BacktestRequest],
    ) -> BacktestJob:
        """Start a backtest job; 202 with the job, 409 while another runs."""
        rules = await _rules(data, services)
        try:
            horizon = parse_horizon(data.since, data.until, data.warmup, now=datetime.now(UTC))
        except HorizonError as exc:
            raise ClientException(detail=str(exc)) from None
        try:
            return jobs_of(request).start(rules, horizon)
        except BacktestBusy as exc:
            raise HTTPException(status_code=HTTP_409_CONFLICT, detail=str(exc)) from None

    @get("/", guards=[require_read], summary="List backtests")
    async def list_jobs(self, request: Request[Any, Any, Any]) -> list[BacktestSummary]:
        """The kept backtest jobs, newest first (their reports: ``GET /api/backtests/{id}``)."""
        return [_summary(job) for job in jobs_of(request).all()]

    @get("/{job_id:str}", guards=[require_read], summary="Show a backtest")
    async def get_job(self, request: Request[Any, Any, Any], job_id: FromPath[str]) -> BacktestJob:
        """The job: its progress while it runs, then its report or error; 404 if none."""
        job = jobs_of(request).get(job_id)
        if job is None:
            raise NotFoundException(detail=f"no backtest {job_id} (jobs are kept in memory)")
        return job

    @delete("/{job_id:str}", guards=[require_write], summary="Cancel a backtest")
    async def cancel(self, request: Request[Any, Any, Any], job_id: FromPath[str]) -> None:
        """Stop the job if it runs and forget it; 404 if none."""
        if await jobs_of(request).cancel(job_id) is None:
            raise NotFoundException(detail=f"no backtest {job_id}")
