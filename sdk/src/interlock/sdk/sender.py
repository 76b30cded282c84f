"""Sending encoded events to JetStream in order, and learning how many it stored.

A :class:`Sender` works over one NATS connection for the
:class:`~interlock.sdk.Publisher`. It sends a run of events as JetStream fast batches
(nats-server 2.14+, a stream with ``allow_batched``: see :mod:`.fast_batch`) and
anything else message by message with pipelined acknowledgements (at most
``max_in_flight`` awaiting at once, see :mod:`.acked_publish`). Either way it answers
with the prefix JetStream acknowledged, never more, and, when JetStream refused the next
event, why: the publisher spools the rest, or sets a refused event aside.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, NamedTuple, Optional

from nats.aio.client import Client as NATS
from nats.errors import BadSubjectError, MaxPayloadError
from nats.js.errors import BadRequestError

from interlock.sdk.acked_publish import AckedPublishing
from interlock.sdk.fast_batch import BatchOutcome, FastBatches

__all__ = ["REFUSED_FOR_GOOD", "Item", "Sender", "Sent"]

logger = logging.getLogger(__name__)

Item = Optional[tuple[str, bytes, str]]
"""``(subject, data, msg id)`` of one event; ``None`` is skipped and counts as sent."""
_CANNOT_SEND = (BadSubjectError, MaxPayloadError)
REFUSED_FOR_GOOD = (BadRequestError, *_CANNOT_SEND)
"""Answers that sending the same message again cannot change (JetStream's 400s)."""


class Sent(NamedTuple):
    """What became of a run of items."""

    acknowledged: int
    """Items acknowledged, from the first."""
    refusal: BaseException | None = None
    """Why ``items[acknowledged]`` was not stored, when JetStream (or the protocol) said so."""


class Sender:
    """Publishes runs of events over ``nc``.

    Args:
        nc: The connection.
        acks: Pipelined publishing on ``nc`` (started).
        timeout: Seconds to wait for any acknowledgement.
        max_in_flight: Messages awaiting acknowledgement at once (and a fast batch's size).
    """

    def __init__(
        self, nc: NATS, acks: AckedPublishing, *, timeout: float, max_in_flight: int
    ) -> None:
        self.nc = nc
        self.acks = acks
        self.batches = FastBatches(nc)
        self.timeout = timeout
        self.max_in_flight = max_in_flight

    @property
    def connected(self) -> bool:
        """Whether the connection is up right now."""
        return self.nc.is_connected

    async def send(self, items: Sequence[Item]) -> Sent:
        """Publish ``items`` in order; say how many, from the first, were acknowledged.

        Runs of events go as fast batches when the server and stream take them, anything
        else one message at a time.
        """
        batches = self.batches
        present = [item for item in items if item is not None]
        if len(present) < 2 or len(present) < len(items):
            return await self._send_each(items)
        done = 0
        while done < len(present) and batches.usable:
            chunk = present[done : done + self.max_in_flight]
            try:
                outcome = await batches.publish(chunk, self.timeout)
            except _CANNOT_SEND as exc:  # one of them: found below, one by one
                outcome = BatchOutcome(0, exc)
            except Exception as exc:  # noqa: BLE001 - any failure means "spool the rest"
                logger.warning("publish interrupted after %d events: %r", done, exc)
                return Sent(done)
            done += outcome.stored
            if outcome.stored == len(chunk):
                continue
            if outcome.refusal is None:
                logger.warning("no acknowledgement within %gs", self.timeout)
                return Sent(done)
            # JetStream refused something: one by one, to learn exactly what it takes
            rest = chunk[outcome.stored :]
            sent = await self._send_each(rest)
            if sent.acknowledged < len(rest):
                return Sent(done + sent.acknowledged, sent.refusal)
            done += sent.acknowledged
        if done < len(present):
            sent = await self._send_each(present[done:])
            return Sent(done + sent.acknowledged, sent.refusal)
        return Sent(done)

    async def _send_each(self, items: Sequence[Item]) -> Sent:
        """Publish ``items`` pipelined, one acknowledgement each; say the acknowledged prefix."""
        futures: list[asyncio.Future[Any]] = []
        stalled: Exception | None = None
        try:
            await self._issue(items, futures)
        except Exception as exc:  # noqa: BLE001 - any failure means "spool the rest"
            stalled = exc
            logger.warning("publish interrupted after %d events: %r", len(futures), exc)
        pending = [future for future in futures if not future.done()]
        if pending:
            await asyncio.wait(pending, timeout=0 if stalled else self.timeout)
        sent = _acknowledged_prefix(futures)
        if sent.acknowledged == len(futures) and isinstance(stalled, _CANNOT_SEND):
            sent = Sent(sent.acknowledged, stalled)  # items[len(futures)] itself cannot be sent
        self.acks.forget([future for future in futures if future.cancelled()])
        return sent

    async def _issue(self, items: Sequence[Item], futures: list[asyncio.Future[Any]]) -> None:
        """Publish each item, appending its ack future; stop when the connection drops."""
        oldest = 0  # index of the oldest future that may still be pending
        for item in items:
            if item is None:
                skipped: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                skipped.set_result(None)
                futures.append(skipped)
                continue
            if not self.connected:
                return
            while len(futures) - oldest >= self.max_in_flight:
                if not futures[oldest].done():
                    await asyncio.wait((futures[oldest],), timeout=self.timeout)
                    if not futures[oldest].done():
                        raise TimeoutError(f"no acknowledgement within {self.timeout:g}s")
                oldest += 1
            subject, data, msg_id = item
            futures.append(await self.acks.publish(subject, data, msg_id))


def _acknowledged_prefix(futures: list[asyncio.Future[Any]]) -> Sent:
    """Count the futures acknowledged from the first on, and the next one's error.

    Cancels the futures still pending.
    """
    acknowledged = 0
    for future in futures:
        if not future.done() or future.cancelled() or future.exception() is not None:
            break
        acknowledged += 1
    refusal = None
    if acknowledged < len(futures):
        first = futures[acknowledged]
        if first.done() and not first.cancelled():
            refusal = first.exception()
    failures = [
        future.exception()  # retrieved, each one: asyncio would otherwise log it at exit
        for future in futures[acknowledged:]
        if future.done() and not future.cancelled()
    ]
    first_failure = next((error for error in failures if error is not None), None)
    if first_failure is not None:
        logger.debug("JetStream refused a publish: %s", first_failure)  # callers say
    for future in futures:
        if not future.done():
            future.cancel()
    return Sent(acknowledged, refusal)
