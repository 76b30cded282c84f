"""The dispatcher: runs the action outbox, with retries, time limits and a circuit breaker.

One :class:`Dispatcher` per service (any number across replicas: the store's claim
hands each row to one of them). Its loop:

- claims due rows in batches (``store.outbox.claim``) while it has free slots
  (``settings.actions.concurrency`` executions at once), each for a lease; a dispatcher
  that dies leaves rows whose lease expires, and they are claimed again;
- runs each under ``settings.actions.timeout``, with the action's idempotency key;
- decides how each execution ended, once (an
  :class:`~interlock.service.store.outbox.Outcome`: succeeded, retry at a time, failed,
  or deferred), records the outcomes in batches (``store.outbox.finish_many``, the one
  way rows are finished: one transaction for all the executions that ended since the
  last write), then publishes their ``interlock.action.*`` events
  (:mod:`~interlock.service.actions.events`);
- retries a failed attempt after an exponential backoff with full jitter (a random wait
  between 0 and ``backoff_initial * 2**(attempt-1)``, capped at ``backoff_max``) until
  ``max_attempts``; a non-retryable failure gives up at once;
- wakes at once when :meth:`Dispatcher.wake` is called (the pipeline does after storing
  actions), and otherwise polls every ``poll_interval`` (rows of a restart, of another
  replica, retries coming due); the same tick expires due approvals and marks actions
  of open circuit breakers ``suspended``.

The circuit breaker counts *failed attempts in a row* per rule and action index, across
firings (see :mod:`interlock.service.store.outbox`); when it opens, the dispatcher
publishes ``interlock.action.suspended`` and notifies the rule's owner channel.

An executor with an async ``prepare(request)`` method gets each request first and
returns the one to route and execute (a webhook naming a connection: its URL and
headers, resolved from the connection at that moment); a failure there is the
attempt's.

Pacing per destination (:mod:`~interlock.service.actions.pacing`): an executor with a
``route(request)`` method (webhooks) names each request's destination and cap, and the
dispatcher runs the request only once it holds a slot there. The wait for a slot is not
part of the attempt: it is outside the attempt's time limit, bounded by
``actions.webhooks.max_wait`` (and by the lease), and an action that gets no slot in
time is *deferred* — back to the outbox for when the destination should have room, its
attempt uncounted, its breaker untouched. So is an action a busy but alive destination
turned away (:class:`~interlock.service.actions.pacing.Congested`), up to
``actions.webhooks.congestion_retries`` times per action (counted in memory, per
dispatcher); past that, or when the destination is down, it is a failed attempt.

An action whose templates did not render (``render_error`` in the row) fails at once
with that message. ``approve`` actions are run by
:func:`interlock.service.actions.approvals.run_step`.

Metrics: ``interlock_actions{kind,outcome}`` (succeeded, retried, failed, suspended;
``requested`` for an approval step whose request went out; ``deferred`` for an action
put back by pacing),
``interlock_action_latency_seconds`` (firing stored → execution start) and
``interlock_action_duration_seconds``.

Its loops (claiming, recording outcomes, housekeeping) follow the policy of long-running
loops (:mod:`interlock.sdk.retry`): a failing database is retried with backoff; an
unexpected error is logged with its traceback, counted (:attr:`Dispatcher.errors`), and
the loop goes on, the outcomes in hand kept for the next try.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from interlock.sdk.event import Event
from interlock.sdk.executors import ActionFailed, ActionRequest, ActionResult, Executor
from interlock.sdk.retry import Backoff, Retry
from interlock.service.actions import approvals, breaker, events
from interlock.service.actions.pacing import (
    Congested,
    DestinationBusy,
    Overloaded,
    Pacer,
    Route,
    Ticket,
)
from interlock.service.actions.registry import Registry
from interlock.service.store import (
    ActionBreaker,
    OutboxAction,
    Outcome,
    Reservation,
    StoreError,
)

if TYPE_CHECKING:
    from interlock.service.context import Services

__all__ = ["Dispatcher"]

logger = logging.getLogger(__name__)

_UNKNOWN: Any = object()
"""Not looked up yet (in :attr:`Dispatcher._routes`)."""
_CONGESTION_MEMORY = 65_536
"""Actions whose congestion retries are remembered (the oldest forgotten beyond it)."""
RECORD_LINGER = 0.05
"""Seconds outcomes wait for others before they are recorded: at a steady trickle, one
transaction (and one announcement) for several actions instead of one each. A full
batch (``batch_size`` outcomes) is recorded at once."""


class _Ended(msgspec.Struct, kw_only=True):
    row: OutboxAction
    attempt: int
    result: ActionResult | None = None
    outcome: Outcome | None = None
    """How it ended, for the outbox; ``None``: an approval step whose request went out
    (it moved its own row, and waits)."""

    @property
    def deferred(self) -> bool:
        """Not attempted, or turned away by a busy destination: back to the outbox."""
        return self.outcome is not None and self.outcome.verdict == "deferred"


class Dispatcher:
    """Executes queued actions.

    Args:
        services: The service's shared resources.
        registry: Executors by kind (default: the ``interlock.actions`` entry points,
            loaded when :meth:`run` starts).
        name: This dispatcher's name in claims (default: host, pid and a random part).
        poll_interval: Seconds between polls when nothing wakes it.
        batch_size: Most rows claimed at once.
        lease: How long a claim holds a row before another dispatcher may take it
            (default: ``settings.actions.lease``, else twice the timeout plus a minute).
        public_url: Base of the links in approval requests (default:
            :func:`~interlock.service.actions.approvals.default_public_url`).
    """

    def __init__(
        self,
        services: Services,
        *,
        registry: Registry | None = None,
        name: str | None = None,
        poll_interval: float = 0.5,
        batch_size: int = 256,
        lease: timedelta | None = None,
        public_url: str | None = None,
    ) -> None:
        self.services = services
        self.settings = services.settings.actions
        self.registry = registry if registry is not None else Registry.load(services)
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.timeout = self.settings.timeout.total_seconds()
        self.lease = (
            lease or self.settings.lease or self.settings.timeout * 2 + timedelta(minutes=1)
        )
        self.public_url = public_url or approvals.default_public_url(services)
        self._min_claim = max(1, min(self.settings.concurrency // 2, batch_size))
        hooks = self.settings.webhooks
        self.pacer = Pacer(
            initial_window=hooks.initial_concurrency,
            health_window=hooks.health_window.total_seconds(),
        )
        spare = (self.lease.total_seconds() - self.timeout) / 2  # the claim must outlast it
        self._slot_wait = max(0.0, min(hooks.max_wait.total_seconds(), spare))
        self._congestion: dict[uuid.UUID, int] = {}
        self._routes: dict[str, Callable[[ActionRequest], Route] | None] = {}
        """Each kind's ``route`` method, if its executor paces."""
        self._wake = asyncio.Event()
        self._ended_ready = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._ended: list[_Ended] = []
        self._running: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[object]] = set()
        self._stopping = False
        self._reserved = 0
        self._finished = False
        """Slots lent to the pipeline's transaction (:meth:`reserve`), not yet taken."""
        self._reservations_settled = asyncio.Event()
        self._reservations_settled.set()
        self.executed = 0
        """Executions finished by this dispatcher, deferrals excluded (for tests and
        benchmarks)."""
        self.errors = 0
        """Unexpected errors its loops met (and went on after)."""

    # -- control ---------------------------------------------------------------------------

    def prepare(self, kinds: Iterable[str]) -> None:
        """Build the executors of ``kinds`` in the background, not at their first action."""
        self._spawn(self.registry.prepare(kinds))

    def wake(self) -> None:
        """New actions were queued: claim now instead of at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Finish the executions under way (up to the action timeout), then stop :meth:`run`."""
        self._stopping = True
        self._wake.set()

    def reserve(self) -> Reservation | None:
        """Lend free slots to a transaction that queues actions; ``None`` if none are free.

        The pipeline passes it to :meth:`~interlock.service.store.Store.store_batch`,
        which claims due rows into it in the batch's own transaction (one transaction
        for a firing at a trickle, not a store and then a claim), then hands it back
        with :meth:`take`, whatever happened.
        """
        free = self._free()
        if self._stopping or free <= 0:
            return None
        limit = min(free, self.batch_size)
        self._reserved += limit
        self._reservations_settled.clear()
        return Reservation(worker=self.name, limit=limit, lease=self.lease)

    def take(self, reservation: Reservation) -> None:
        """Run the rows claimed into ``reservation``, and free the rest of its slots."""
        self._reserved -= reservation.limit
        if self._reserved == 0:
            self._reservations_settled.set()
        if self._finished and reservation.claimed:
            logger.warning(
                "dispatcher %s stopped before %d claimed action(s) came back: they run "
                "when their lease ends (%s)",
                self.name,
                len(reservation.claimed),
                self.lease,
            )
            return
        for row in reservation.claimed:
            self._start(row)

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Dispatch until :meth:`stop` (or cancellation)."""
        recorder = asyncio.create_task(self._record_loop(), name=f"{self.name}-recorder")
        housekeeper = asyncio.create_task(
            self._housekeeping_loop(), name=f"{self.name}-housekeeping"
        )
        logger.info(
            "dispatcher %s running (concurrency %d, timeout %.0f s, %d attempts)",
            self.name,
            self.settings.concurrency,
            self.timeout,
            self.settings.max_attempts,
        )
        retry = self._retry("dispatcher: claiming")
        try:
            while not self._stopping:
                try:
                    full = await self._claim()
                except Exception as exc:  # noqa: BLE001 - the loop's boundary: Retry logs it
                    await retry.pause(exc)
                    continue
                retry.succeeded()
                if not full:
                    await self._wait()
            # Rows claimed into a reservation are this dispatcher's: wait for the
            # transaction holding one to hand them over (a store down: not for ever).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timeout):
                    await self._reservations_settled.wait()
            if self._running:
                await asyncio.wait(self._running, timeout=self.timeout + 1)
        finally:
            for task in self._running:
                task.cancel()
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)
            for helper in (recorder, housekeeper):
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            if self._ended:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._record())
            for leftover in list(self._background):
                leftover.cancel()
            await self.registry.close()
            self._finished = True
            logger.info("dispatcher %s stopped", self.name)

    async def _wait(self) -> None:
        waiters = [asyncio.ensure_future(self._wake.wait())]
        if self._free() < self._min_claim:
            self._slot_free.clear()
            waiters.append(asyncio.ensure_future(self._slot_free.wait()))
        try:
            await asyncio.wait(
                waiters, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        self._wake.clear()

    async def _housekeeping_loop(self) -> None:
        """Every ``poll_interval``: expire due approvals, mark suspended actions.

        A task of its own, so that its transactions never hold up a claim.
        """
        every = self.poll_interval
        retry = self._retry("dispatcher: housekeeping", Backoff(every, max(every, 5.0)))
        while True:
            try:
                await approvals.expire_due(self.services)
                await self.services.store.outbox.sweep_suspended()
            except Exception as exc:  # noqa: BLE001 - the loop's boundary: Retry logs it
                await retry.pause(exc)
            else:
                retry.succeeded()
                await asyncio.sleep(self.poll_interval)

    def _retry(self, what: str, backoff: Backoff | None = None) -> Retry:
        """The policy of long-running loops (:mod:`interlock.sdk.retry`) for one loop."""
        return Retry(
            logger,
            what,
            expected=(StoreError,),
            backoff=backoff,
            on_unexpected=self._count_error,
        )

    def _count_error(self, exc: BaseException) -> None:
        self.errors += 1

    def _free(self) -> int:
        return self.settings.concurrency - len(self._running) - self._reserved

    async def _claim(self) -> bool:
        """Claim into free slots; ``True`` if more may be due right now.

        While executions run, it waits for half of the slots to be free before claiming
        again: one claim per batch, not one per finished action.
        """
        free = self._free()
        if free <= 0 or (self._running and free < self._min_claim):
            return False
        limit = min(free, self.batch_size)
        rows = await self.services.store.outbox.claim(
            worker=self.name, limit=limit, lease=self.lease
        )
        for row in rows:
            self._start(row)
        return len(rows) == limit and self._free() >= self._min_claim

    def _start(self, row: OutboxAction) -> None:
        task = asyncio.create_task(self._execute(row), name=f"action-{row.idempotency_key}")
        self._running.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._free() >= self._min_claim:
            self._slot_free.set()

    # -- one execution ---------------------------------------------------------------------

    async def _execute(self, row: OutboxAction) -> None:
        metrics = self.services.metrics
        started = self.services.clock.now()
        latency = (started - row.created_at).total_seconds()
        began = time.perf_counter()
        ended = _Ended(row=row, attempt=row.attempts)
        ticket: Ticket | None = None
        try:
            executor, request = await self._prepare(row)
            route = None if request is None else self._route(executor, request)
            if route is not None:  # its executor paces: a slot at its destination first
                ticket = self.pacer.try_acquire(route) or await self.pacer.acquire(
                    route, wait=self._slot_wait
                )
            async with asyncio.timeout(self.timeout):  # no task of its own, as wait_for makes
                ended.result = await self._attempt(row, executor, request)
            ended.outcome = None if row.kind == "approve" else Outcome.succeeded(row)
            if ticket is not None:
                self.pacer.release(ticket, ok=True)
        except DestinationBusy as busy:
            self._defer(ended, busy.retry_in)
        except Congested as exc:
            self._congested(ended, ticket, exc)
        except ActionFailed as exc:
            if ticket is not None:
                self.pacer.release(ticket, overloaded=isinstance(exc, Overloaded))
            self._failed(ended, str(exc), retryable=exc.retryable)
        except TimeoutError:
            if ticket is not None:
                self.pacer.release(ticket, overloaded=True)
            self._failed(ended, f"{row.kind}: no result within {self.timeout:g} s", retryable=True)
        except asyncio.CancelledError:
            if ticket is not None:
                self.pacer.release(ticket)
            raise
        except Exception as exc:
            if ticket is not None:
                self.pacer.release(ticket)
            logger.exception(
                "action %d (%s) of rule %s (firing %s) raised unexpectedly",
                row.index,
                row.kind,
                row.rule,
                row.firing_id,
            )
            self._failed(
                ended,
                f"{row.kind}: unexpected {type(exc).__name__} (see the service log)",
                retryable=True,
            )
        if not ended.deferred:
            took = time.perf_counter() - began
            if ended.outcome is not None:  # kept as an attempt (store.attempts)
                ended.outcome = msgspec.structs.replace(
                    ended.outcome, started_at=started, duration=took
                )
            metrics.action_latency.labels(row.kind).observe(max(latency, 0.0))
            metrics.action_duration.labels(row.kind).observe(took)
            self._congestion.pop(row.idempotency_key, None)
            self.executed += 1
        self._ended.append(ended)
        self._ended_ready.set()

    async def _prepare(self, row: OutboxAction) -> tuple[Executor | None, ActionRequest | None]:
        """The executor and request of ``row``; ``None`` for what :meth:`_attempt` handles."""
        if row.action.get("render_error") or row.kind == "approve":
            return None, None
        executor = self.registry.executors.get(row.kind)
        if executor is None:
            async with asyncio.timeout(self.timeout):  # building it may import a plugin
                executor = await self.registry.executor(row.kind)
        request = ActionRequest(
            idempotency_key=row.idempotency_key,
            firing_id=row.firing_id,
            rule=row.rule,
            kind=row.kind,
            action=row.action,
            attempt=row.attempts,
        )
        prepare = getattr(executor, "prepare", None)  # webhooks: resolve a connection first
        if prepare is not None:
            request = await prepare(request)
        return executor, request

    def _route(self, executor: Executor | None, request: ActionRequest) -> Route | None:
        """The request's destination, if its executor paces (see the module docstring)."""
        route_of = self._routes.get(request.kind, _UNKNOWN)
        if route_of is _UNKNOWN:
            route_of = self._routes[request.kind] = getattr(executor, "route", None)
        return None if route_of is None else route_of(request)

    async def _attempt(
        self, row: OutboxAction, executor: Executor | None, request: ActionRequest | None
    ) -> ActionResult:
        render_error = row.action.get("render_error")
        if render_error:
            raise ActionFailed(f"a template did not render: {render_error}", retryable=False)
        if row.kind == "approve":
            approval = await approvals.run_step(
                self.services,
                row,
                worker=self.name,
                public_url=self.public_url,
                timeout=self.timeout,
            )
            return ActionResult(detail="approval requested", data={"approval_id": str(approval.id)})
        if executor is None or request is None:  # pragma: no cover - _prepare made them
            raise RuntimeError(f"no executor prepared for a {row.kind} action")
        return await executor.execute(request)

    def _defer(self, ended: _Ended, delay: float, note: str | None = None) -> None:
        """Back to the outbox in ``delay`` seconds, not attempted (see the docstring)."""
        at = self.services.clock.now() + timedelta(seconds=delay)
        ended.outcome = Outcome.deferred(ended.row, at=at, note=note)

    def _congested(self, ended: _Ended, ticket: Ticket | None, exc: Congested) -> None:
        """A busy destination turned the request away: defer it, or count it if down."""
        key = ended.row.idempotency_key
        if ticket is None:  # raised before a slot was held: an ordinary failure
            self._failed(ended, str(exc), retryable=exc.retryable)
            return
        route = ticket.route
        if exc.answered:
            self.pacer.answered(route)
        self.pacer.release(ticket, overloaded=True)
        retries = self._congestion.get(key, 0)
        if retries >= self.settings.webhooks.congestion_retries or not self.pacer.alive(route):
            self._failed(ended, str(exc), retryable=exc.retryable)
            return
        if len(self._congestion) >= _CONGESTION_MEMORY:
            self._congestion.pop(next(iter(self._congestion)))
        self._congestion[key] = retries + 1
        delay = max(
            self.pacer.put_off(route),
            exc.retry_after or 0.0,
            self.backoff(retries + 1).total_seconds(),
        )
        self._defer(ended, delay, note=f"{exc} (busy: retried later, not counted)")

    def _failed(self, ended: _Ended, error: str, *, retryable: bool) -> None:
        """A failed attempt: retried after the backoff, or given up (its last, or final)."""
        if retryable and ended.attempt < self.settings.max_attempts:
            at = self.services.clock.now() + self.backoff(ended.attempt)
            ended.outcome = Outcome.retry(ended.row, error, at=at)
        else:
            ended.outcome = Outcome.failed(ended.row, error)

    def backoff(self, attempt: int) -> timedelta:
        """The wait before retrying after failed attempt ``attempt``: full jitter."""
        initial = self.settings.backoff_initial.total_seconds()
        ceiling = min(self.settings.backoff_max.total_seconds(), initial * 2 ** (attempt - 1))
        return timedelta(seconds=random.uniform(0, ceiling))  # noqa: S311 - jitter, not crypto

    # -- recording outcomes ----------------------------------------------------------------

    async def _record_loop(self) -> None:
        retry = self._retry("dispatcher: recording outcomes")
        while True:
            await self._ended_ready.wait()
            if len(self._ended) < self.batch_size:
                await asyncio.sleep(RECORD_LINGER)
            self._ended_ready.clear()
            try:
                await self._record()
            except Exception as exc:  # noqa: BLE001 - the loop's boundary: Retry logs it
                self._ended_ready.set()  # the outcomes were put back: recorded next time
                await retry.pause(exc)
            else:
                retry.succeeded()

    async def _record(self) -> None:
        batch, self._ended = self._ended, []
        try:
            outcomes = [e.outcome for e in batch if e.outcome is not None]
            report = await self.services.store.outbox.finish_many(
                outcomes, worker=self.name, suspend_after=self.settings.suspend_after
            )
        except BaseException:
            self._ended[:0] = batch
            raise
        await self._report(batch, report.suspended, report.tripped)

    async def _report(
        self, batch: list[_Ended], suspended: set[uuid.UUID], tripped: list[ActionBreaker]
    ) -> None:
        publisher = self.services.publisher
        counter = self.services.metrics.actions
        now = self.services.clock.now()
        out: list[Event] = []
        for e in batch:
            row, outcome = e.row, e.outcome
            if outcome is None:
                # An approval step that sent its request: it waits, it has not succeeded
                # (interlock.approval.requested said so).
                counter.labels(row.kind, "requested").inc()
                continue
            if outcome.verdict == "deferred":
                counter.labels(row.kind, "deferred").inc()
                logger.debug(
                    "action %d (%s) of rule %s, firing %s deferred to %s%s",
                    row.index,
                    row.kind,
                    row.rule,
                    row.firing_id,
                    outcome.retry_at,
                    f": {outcome.error}" if outcome.error else "",
                )
                continue
            if outcome.verdict == "succeeded":
                counter.labels(row.kind, "succeeded").inc()
                result = e.result or ActionResult()
                out.append(
                    events.action_event(
                        publisher,
                        "succeeded",
                        row,
                        attempt=e.attempt,
                        occurred=now,
                        detail=result.detail,
                        data=result.data,
                    )
                )
                continue
            is_suspended = row.idempotency_key in suspended
            retry_at = None if is_suspended else outcome.retry_at
            final = retry_at is None
            label = "suspended" if is_suspended else ("failed" if final else "retried")
            counter.labels(row.kind, label).inc()
            log = logger.warning if final else logger.info
            log(
                "action %d (%s) of rule %s, firing %s, attempt %d failed: %s%s",
                row.index,
                row.kind,
                row.rule,
                row.firing_id,
                e.attempt,
                outcome.error,
                "" if retry_at is None else f" (retry at {retry_at:%H:%M:%S})",
            )
            out.append(
                events.action_event(
                    publisher,
                    "failed",
                    row,
                    attempt=e.attempt,
                    occurred=now,
                    error=outcome.error,
                    final=final,
                    suspended=is_suspended,
                    retry_at=None if retry_at is None else retry_at.isoformat(),
                )
            )
        for opened in tripped:
            culprit = next(
                (x for x in batch if (x.row.rule, x.row.index) == (opened.rule, opened.index)),
                None,
            )
            if culprit is None:  # pragma: no cover - a breaker opens on one of the batch
                continue
            logger.error(
                "action %d (%s) of rule %s suspended after %d failed attempts in a row; "
                "last error: %s",
                opened.index,
                culprit.row.kind,
                opened.rule,
                opened.failures,
                opened.last_error,
            )
            out.append(
                events.suspended_event(publisher, opened, culprit.row, attempt=culprit.attempt)
            )
            self._spawn(breaker.notify_owner(self.services, opened, culprit.row.kind))
        if out:
            try:
                await publisher.publish_many(out)
            except Exception:  # the outcomes are stored; only their events are lost
                logger.exception("dispatcher: publishing %d action events failed", len(out))

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
