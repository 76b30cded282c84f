"""The pipeline: JetStream in, the engine, firings and their actions stored, acks out.

One task owns the engine (durable_rules is single-threaded) and runs this loop::

    fetch what is waiting, up to batch_size (when caught up: wait for the next one,
    at most until the next deadline is due)
      → decode; an invalid message goes to INTERLOCK_DEAD with the reason
      → engine.feed_batch(events); engine.advance(now, watermark)
      → render the firings' actions; store firings + outbox (+ engine checkpoint) in
        one transaction, retried until the database takes it
      → ack with one AckAll of the last message fed, once ``ACK_EVERY`` messages or
        ``ACK_AFTER`` seconds have passed since the last ack (or nothing more came)
      → hand the firings to the announcer (interlock.rule.fired / .resolved, published
        from its own task); wake the dispatcher

**No event lost, no action twice.** The checkpoint (the engine's exported state and the
stream sequence it covers) is the source of truth; JetStream's acks are flow control. On
start the engine imports the checkpoint and the durable consumer is re-created to deliver
from the sequence after it, so events acked after the last checkpoint are fed again.
Replaying them reproduces the same firings with the same ids (UUID5 of their identity),
which the store keeps once and whose actions it queues once. The checkpoint is saved at
most every ``checkpoint_interval``, in the transaction of a batch (exporting the
engine's state costs milliseconds per thousand open windows, too much for every batch).

**Event time.** The watermark is the time JetStream stored the last message fed — every
message stored before it has been fed — or the wall clock when the consumer has caught
up; absences are judged on it, so a backlog delays a deadline instead of faking a miss.

**Boundaries.** One message cannot stop the pipeline: any exception while decoding or
validating it — invalid UTF-8, nesting past the wire contract's limits, a CloudEvent
with attributes of the wrong type, a body naming another event than its subject — moves
it to ``INTERLOCK_DEAD`` with the exception's class and text in its reason header, and
the batch goes on. The **subject names the event**: a message on
``interlock.events.a.b`` whose body says ``a.c`` is a dead letter (so NATS subject
permissions decide which events a producer may send). One rule cannot stop it either
(the engine quarantines a rule that fails, see :mod:`.rule_host`), nor one template (a
render failure fails that action, see :mod:`.rendering`).

**Failures** follow the policy of long-running loops (:mod:`interlock.sdk.retry`). A
database that fails makes the batch wait and retry (with backoff), holding its acks; a
message redelivered meanwhile is recognised by its stream sequence and not fed twice.
NATS dropping out is retried until it is back (nats-py reconnects). Any other error in
the loop, or in storing a batch, is logged with its traceback and counted
(``interlock_pipeline_errors``); after one in the loop, the consumer is re-created after
the last event fed, so nothing fetched but not fed is skipped; the loop goes on after a
backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from interlock.rules.engine.engine import Engine
from interlock.rules.engine.firing import Firing
from interlock.sdk import EVENTS_STREAM, decode_event, ensure_streams, subject_filter
from interlock.sdk.event import Event
from interlock.sdk.retry import Retry
from interlock.sdk.subjects import (
    DEAD_REASON_HEADER,
    DEAD_SUBJECT_PREFIX,
    EVENTS_SUBJECT_PREFIX,
    MSG_ID_HEADER,
)
from interlock.service.context import Services
from interlock.service.pipeline.announcer import Announcer
from interlock.service.pipeline.pull import PullFetcher, stream_sequence
from interlock.service.pipeline.rendering import RecentEvents, rendered_entries
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.store import (
    BatchResult,
    Checkpoint,
    Fenced,
    OutboxEntry,
    Reservation,
    StoreError,
)

__all__ = ["CONSUMER_NAME", "ActionSlots", "Pipeline", "PipelineStats"]

logger = logging.getLogger(__name__)

CONSUMER_NAME = "interlock-service"
ORIGINAL_SUBJECT_HEADER = "Interlock-Original-Subject"
ORIGINAL_SEQUENCE_HEADER = "Interlock-Original-Sequence"
TRUNCATED_HEADER = "Interlock-Dead-Truncated"
"""Set on a dead letter whose data had to be cut to fit NATS: the original size."""
_HEADER_ROOM = 4096
"""Bytes kept free for a dead letter's headers when its data must be cut."""
_MIN_WAIT = 0.005
ACK_EVERY = 256
"""Messages fed before they are acknowledged, at the latest (see ``Pipeline._ack``)."""
ACK_AFTER = 0.1
"""Seconds after the last ack that the next batch fed is acknowledged, at the latest."""


@dataclass
class PipelineStats:
    """Counts since start, for tests, benchmarks and the health endpoint."""

    events: int = 0
    dead_letters: int = 0
    errors: int = 0
    firings: int = 0
    batches: int = 0
    last_sequence: int = 0
    checkpoints: int = 0


class ActionSlots(Protocol):
    """A dispatcher's free slots, lent to a transaction that queues actions."""

    def reserve(self) -> Reservation | None:
        """Slots to claim due actions into; ``None`` if none are free."""

    def take(self, reservation: Reservation) -> None:
        """Take back ``reservation`` after the transaction, and run what it claimed."""


class Pipeline:
    """Consumes ``INTERLOCK_EVENTS`` into the engine; stores firings and their actions.

    Args:
        services: The service's shared resources (store, publisher, clock, metrics).
        host: The rules and the engine (the pipeline is the engine's only user).
        nc: A connected NATS client.
        on_queued: Called after actions were queued (wakes the dispatcher).
        slots: The local dispatcher's free slots (:class:`ActionSlots`): the actions a
            batch queues are claimed into them in the batch's own transaction.
        epoch: The engine lease's epoch when running as one of several replicas
            (:mod:`interlock.service.ownership`): the checkpoint is claimed with it,
            every batch is fenced by it (:class:`~interlock.service.store.Fenced` stops
            :meth:`run`), and the consumer is this epoch's own. ``None``: one server.
    """

    def __init__(
        self,
        services: Services,
        host: RuleHost,
        nc: NATS,
        *,
        on_queued: Callable[[], None] | None = None,
        slots: ActionSlots | None = None,
        epoch: int | None = None,
    ) -> None:
        self.services = services
        self.epoch = epoch
        self.consumer = CONSUMER_NAME if epoch is None else f"{CONSUMER_NAME}-{epoch}"
        self.host = host
        self.engine: Engine = host.engine
        self.nc = nc
        self.js = nc.jetstream()
        self.on_queued = on_queued
        self.slots = slots
        settings = services.settings.engine
        self.batch_size = settings.consumer_batch_size
        self.max_wait = settings.consumer_max_wait.total_seconds()
        self.checkpoint_interval = settings.checkpoint_interval.total_seconds()
        self.recent = RecentEvents()
        self.stats = PipelineStats()
        self._fetcher = PullFetcher(nc, EVENTS_STREAM, self.consumer)
        self.announcer = Announcer(services.publisher)
        self._last_sequence = 0
        self._unacked: Msg | None = None
        self._unacked_count = 0
        self._acked_at = 0.0
        self._last_checkpoint = 0.0
        self._dirty = False
        self._wake = asyncio.Event()
        self._stopping = False
        self._rewind = False
        self.ready = asyncio.Event()
        """Set once the consumer exists and the checkpoint is imported."""

    # -- start ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Import the checkpoint and (re)create the durable consumer after it."""
        await ensure_streams(self.js, update=False)
        store = self.services.store
        if self.epoch is None:
            checkpoint = await store.checkpoint()
        else:  # claimed before it is read: an older owner can commit no more after it
            checkpoint = await store.claim_checkpoint(self.epoch)
        if checkpoint is not None:
            self._last_sequence = checkpoint.stream_sequence
            try:
                restored = self.engine.import_state(checkpoint.state)
            except ValueError as exc:
                logger.error(
                    "the engine checkpoint cannot be restored (%s): every rule starts afresh "
                    "after stream sequence %d",
                    exc,
                    checkpoint.stream_sequence,
                )
                restored = []
            logger.info(
                "resuming after stream sequence %d (state of %d rules restored)",
                checkpoint.stream_sequence,
                len(restored),
            )
        self.stats.last_sequence = self._last_sequence
        self._last_checkpoint = time.monotonic()
        await self._create_consumer()
        self.services.metrics.on_scrape(self._read_lag)
        self.ready.set()

    async def _read_lag(self) -> None:
        """``interlock_consumer_lag`` from NATS: right even while nothing is fetched."""
        info = await self.js.consumer_info(EVENTS_STREAM, self.consumer)
        self.services.metrics.consumer_lag.set(info.num_pending or 0)

    async def _create_consumer(self) -> None:
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(EVENTS_STREAM, self.consumer)
        start = self._last_sequence + 1
        config = ConsumerConfig(
            durable_name=self.consumer,
            ack_policy=AckPolicy.ALL,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            filter_subject=subject_filter(">"),
            max_ack_pending=max(20_000, self.batch_size * 8),
            ack_wait=120,
            # An epoch's consumer outlives its owner (killed) by an hour at most.
            inactive_threshold=None if self.epoch is None else 3600.0,
        )
        await self.js.add_consumer(EVENTS_STREAM, config)
        self._unacked, self._unacked_count = None, 0  # the deleted consumer's
        await self._fetcher.start()

    # -- the loop ------------------------------------------------------------------------

    def wake(self) -> None:
        """Judge due windows now (a scheduler job calls this at a deadline)."""
        self._wake.set()

    async def stop(self) -> None:
        """Finish the batch in hand and stop :meth:`run`."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Consume until stopped; never returns on errors (they are logged and retried)."""
        if not self.ready.is_set():
            await self.start()
        self.announcer.start()
        try:
            await self._consume()
            await self._ack(())
            await self._save_checkpoint()
            await self.announcer.close()
        finally:
            self.announcer.cancel()
            with contextlib.suppress(NatsError, OSError):
                await self._fetcher.close()

    def _count_error(self, exc: BaseException) -> None:
        """An unexpected error (a bug, not an input): counted; the loop goes on."""
        self.stats.errors += 1
        self.services.metrics.pipeline_errors.inc()

    async def _consume(self) -> None:
        retry = Retry(
            logger, "pipeline", expected=(NatsError, OSError), on_unexpected=self._count_error
        )
        while not self._stopping:
            try:
                if self._rewind:
                    await self._recreate_after_loss()
                messages = await self._fetch(self._wait())
                self._rewind = bool(messages)  # cleared once the batch is acknowledged
                await self._process(messages)
                self._rewind = False
            except Fenced:
                raise  # a newer owner holds the engine: this one stops
            except Exception as exc:  # noqa: BLE001 - the loop's boundary: Retry logs it
                # After an unexpected error too, the loop goes on from the last event fed
                # (the consumer is re-created after it).
                if isinstance(exc, NotFoundError):
                    self._rewind = True
                await retry.pause(exc)
            else:
                retry.succeeded()

    async def _recreate_after_loss(self) -> None:
        """Re-create the consumer to deliver from the event after the last one fed."""
        await ensure_streams(self.js, update=False)
        await self._create_consumer()
        self._rewind = False

    def _wait(self) -> float:
        """Seconds to wait for messages: until the next deadline, at most ``max_wait``."""
        if self._wake.is_set():
            self._wake.clear()
            return _MIN_WAIT
        due = self.engine.next_due()
        if due is None:
            return self.max_wait
        until = (due - self.services.clock.now()).total_seconds()
        return min(self.max_wait, max(_MIN_WAIT, until))

    async def _fetch(self, timeout: float) -> list[Msg]:
        # One request for a whole batch stays open while caught up: the fetcher returns
        # each message as it arrives (see PullFetcher), a backlog a full batch at once.
        return await self._fetcher.fetch(self.batch_size, timeout)

    async def _process(self, messages: Sequence[Msg]) -> None:
        fresh = [m for m in messages if stream_sequence(m) > self._last_sequence]
        events: list[Event] = []
        dead: list[tuple[Msg, str, str]] = []
        for message in fresh:
            event, problem = _decode(message)
            if event is not None:
                events.append(event)
            else:
                dead.append((message, *problem))
        # Dead letters are stored before anything is fed: if storing one fails, the batch
        # is fetched again whole (see _consume), and nothing was fed twice.
        for message, reason, detail in dead:
            await self._dead_letter(message, reason, detail)
        now = self.services.clock.now()
        watermark = self._watermark(fresh, now)
        self.recent.add_all(events)
        firings = self.engine.feed_batch(events)
        firings.extend(self.engine.advance(now, watermark))
        self.host.flush_broken()
        if fresh:
            self._last_sequence = fresh[-1].metadata.sequence.stream
            self._dirty = True
            self.services.metrics.consumer_lag.set(fresh[-1].metadata.num_pending)
        elif not messages:
            self.services.metrics.consumer_lag.set(0)
        entries = self._entries(firings)
        await self._store(firings, entries)
        await self._ack(messages)
        self.stats.events += len(events)
        self.stats.batches += 1 if messages else 0
        self.stats.last_sequence = self._last_sequence
        self.services.metrics.events_consumed.inc(len(events))
        await self.announcer.submit(firings)

    async def _ack(self, messages: Sequence[Msg]) -> None:
        """Acknowledge what was fed with one AckAll, at most every ``ACK_AFTER`` seconds.

        Acks are flow control (the checkpoint decides what is fed again after a
        restart), so at a trickle one ack covers many small batches; a fetch that came
        back empty acks at once what is left, as does the end of :meth:`run`.
        """
        if messages:
            self._unacked = messages[-1]
            self._unacked_count += len(messages)
        if self._unacked is None:
            return
        now = time.monotonic()
        if messages and self._unacked_count < ACK_EVERY and now - self._acked_at < ACK_AFTER:
            return
        last, self._unacked, self._unacked_count = self._unacked, None, 0
        self._acked_at = now
        await last.ack()  # AckAll: acknowledges it and every message before it

    def _watermark(self, fresh: Sequence[Msg], now: datetime) -> datetime:
        if not fresh or fresh[-1].metadata.num_pending == 0:
            return now
        stored = fresh[-1].metadata.timestamp
        return min(now, stored) if stored is not None else self.engine.watermark

    def _entries(self, firings: Sequence[Firing]) -> list[OutboxEntry]:
        entries: list[OutboxEntry] = []
        for firing in firings:
            rule = self.host.rule(firing.rule)
            if rule is not None:
                entries.extend(rendered_entries(firing, rule, self.recent))
        return entries

    # -- storing -------------------------------------------------------------------------

    async def _store(self, firings: list[Firing], entries: list[OutboxEntry]) -> None:
        interval_passed = time.monotonic() - self._last_checkpoint >= self.checkpoint_interval
        checkpoint = self._checkpoint() if self._dirty and interval_passed else None
        if not firings and checkpoint is None:
            return
        # The batch was fed: its firings exist only here, so they are retried until
        # stored, whatever failed.
        retry = Retry(
            logger,
            f"pipeline: storing {len(firings)} firings (the batch waits)",
            expected=(StoreError,),
            on_unexpected=self._count_error,
        )
        fenced: list[Fenced] = []

        # The dispatcher's free slots go into the batch's transaction: the actions it
        # queues are claimed there, not by a transaction of their own after it.
        reservation = self.slots.reserve() if self.slots is not None and entries else None

        async def store() -> BatchResult | None:
            try:
                return await self.services.store.store_batch(
                    firings, entries, checkpoint, epoch=self.epoch, reservation=reservation
                )
            except Fenced as exc:  # never retried: it cannot succeed
                fenced.append(exc)
                return None

        try:
            result = await retry.until_done(store)
        finally:
            if reservation is not None and self.slots is not None:
                self.slots.take(reservation)
        if result is None:
            raise fenced[0]
        if checkpoint is not None:
            self._dirty = False
            self._last_checkpoint = time.monotonic()
            self.stats.checkpoints += 1
        stored = set(result.stored)
        for firing in firings:
            if firing.id in stored:
                self.services.metrics.firings.labels(firing.status).inc()
        self.stats.firings += len(result.stored)
        # A reservation not filled took every due row: nothing is left to wake for.
        unclaimed = reservation is None or len(reservation.claimed) == reservation.limit
        if result.queued and unclaimed and self.on_queued is not None:
            self.on_queued()

    def _checkpoint(self) -> Checkpoint:
        return Checkpoint(state=self.engine.export_state(), stream_sequence=self._last_sequence)

    async def _save_checkpoint(self) -> None:
        """Save the engine's state on a clean stop, so the next start replays nothing."""
        with contextlib.suppress(StoreError):
            await self.services.store.store_batch([], [], self._checkpoint(), epoch=self.epoch)
            self._dirty = False

    # -- side effects --------------------------------------------------------------------

    async def _dead_letter(self, message: Msg, reason: str, detail: str) -> None:
        sequence = stream_sequence(message)
        headers = {
            DEAD_REASON_HEADER: _header_text(detail, 1000),
            ORIGINAL_SUBJECT_HEADER: _header_text(message.subject, 512),
            ORIGINAL_SEQUENCE_HEADER: str(sequence),
            # A replay after a crash stores the same dead letter once.
            MSG_ID_HEADER: f"dead-{sequence}",
        }
        data = message.data
        room = self.nc.max_payload - _HEADER_ROOM
        if len(data) > room:
            headers[TRUNCATED_HEADER] = str(len(data))
            data = data[: max(room, 0)]
        await self.js.publish(DEAD_SUBJECT_PREFIX + reason, data, headers=headers)
        self.services.metrics.dead_letters.labels(reason).inc()
        self.stats.dead_letters += 1
        logger.warning(
            "stream sequence %d on %s is not a valid event (%s): moved to INTERLOCK_DEAD",
            sequence,
            message.subject,
            detail[:1000],
        )


def _header_text(text: str, limit: int) -> str:
    """``text`` fit for a NATS header: one line of printable ASCII, at most ``limit``."""
    flat = " ".join(text.split())
    safe = flat.encode("ascii", "backslashreplace").decode("ascii")
    return "".join(ch if ch.isprintable() else "?" for ch in safe)[:limit]


def _decode(message: Msg) -> tuple[Event | None, tuple[str, str]]:
    """The message's event, or (dead-letter reason, detail) — never an exception.

    The per-message boundary: whatever decoding one message raises makes it a dead
    letter naming the exception's class and text.
    """
    try:
        event = decode_event(message.data)
    except Exception as exc:  # noqa: BLE001 - the per-message boundary: kept as a dead letter
        return None, ("invalid", f"{type(exc).__name__}: {exc}")
    expected = EVENTS_SUBJECT_PREFIX + event.event
    if message.subject != expected:
        return None, (
            "subject",
            f"SubjectMismatch: the body names the event {event.event!r} but it was "
            f"published on {message.subject!r}; publish it on {expected!r}",
        )
    return event, ("", "")
