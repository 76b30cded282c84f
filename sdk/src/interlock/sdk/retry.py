"""Retrying in long-running loops: one backoff, and one policy for what goes wrong.

**The policy.** It holds for every loop that runs as long as its process does: the
pipeline's consumer and its store retries, the dispatcher's claim, recorder and
housekeeping loops, the announcer, the deployment worker, the scheduler's loop keeping
its jobs in step, the adapters' runner and ``db.listen``'s, and the publisher's reconnect
and spool drain (the table in ``docs/operations/loops.md``).

1. An error never ends a loop. Only cancellation, the loop's own stop, or an error that
   says running on is pointless (a source that refuses us, a bad configuration) ends it.
2. An *expected* failure — a dependency down or busy: the database (``StoreError``), NATS
   (``BusError``, nats-py's errors, ``OSError``), a polled source
   (``SourceUnavailable``) — is logged as one WARNING line with its message, without a
   traceback, and tried again after the backoff.
3. Anything else is a bug, not an input: logged at ERROR with its traceback, counted
   (:attr:`Retry.unexpected`, and the loop's metric or counter where it has one:
   ``interlock_pipeline_errors``, ``RunStats.failures``), tried again after the
   backoff; the loop goes on.
4. The backoff grows while failures repeat — ``first``, doubling, up to ``cap``, each
   wait drawn between half and one and a half times that so replicas do not retry in
   step — and starts over after a success. In-process loops use the default, 0.1 s to
   5 s; a loop that polls a remote source backs off from its poll interval instead
   (the adapters' runner: up to ``max_backoff``).
5. A retry never drops the work in hand (a batch of firings, the outcomes to record):
   it is tried again as it was. What one input broke is that input's boundary's
   business (a dead letter, a failed action), never the loop's.

Not covered: an action's own retries (its attempts, backoff and circuit breaker are the
dispatcher's, per action and configured), and waits of milliseconds for a lock (SQLite's
single writer), which are not loops.

In code::

    retry = Retry(logger, "dispatcher", expected=(StoreError,))
    while not stopping:
        try:
            await step()
        except Exception as exc:
            await retry.pause(exc)  # logged and counted by the policy, then the backoff
        else:
            retry.succeeded()

    stored = await retry.until_done(lambda: store.store_batch(firings))
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["Backoff", "Retry", "retry_after"]

T = TypeVar("T")


class Backoff:
    """Waits that grow while failures repeat: ``first``, doubling, up to ``cap``.

    Args:
        first: Seconds to wait after the first failure in a row.
        cap: The longest wait, in seconds.
        jitter: Draw each wait between half and one and a half times its value.
    """

    def __init__(self, first: float = 0.1, cap: float = 5.0, *, jitter: bool = True) -> None:
        if first <= 0 or cap < first:
            raise ValueError(f"a backoff needs 0 < first <= cap, not {first} and {cap}")
        self.first = first
        self.cap = cap
        self.jitter = jitter
        self._next = first

    @property
    def delay(self) -> float:
        """The wait the next failure gets (before jitter)."""
        return self._next

    def next(self) -> float:
        """Seconds to wait after one more failure in a row; the one after doubles."""
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        if self.jitter:
            delay *= 0.5 + random.random()  # noqa: S311 - spreading retries, not secrets
        return delay

    def reset(self) -> None:
        """A success: the next failure waits ``first`` again."""
        self._next = self.first


class Retry:
    """One loop's use of the policy: it logs, counts and paces the loop's failures.

    Args:
        logger: The loop's logger.
        what: The loop as log lines name it (``pipeline``, ``dispatcher``).
        expected: Exceptions that mean a dependency is down or busy (a warning, no
            traceback); anything else is unexpected.
        backoff: The waits (default: 0.1 s doubling to 5 s).
        on_unexpected: Called with each unexpected exception (to count it in a metric).
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        expected: tuple[type[BaseException], ...] = (),
        backoff: Backoff | None = None,
        on_unexpected: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.logger = logger
        self.what = what
        self.expected = expected
        self.backoff = backoff or Backoff()
        self.on_unexpected = on_unexpected
        self.failures = 0
        """Failures in a row (0 after a success)."""
        self.unexpected = 0
        """Unexpected errors since the loop started."""

    def failed(self, exc: BaseException) -> float:
        """Log and count ``exc`` as the policy says; return the seconds to wait now."""
        delay = self.backoff.next()
        self.failures += 1
        if isinstance(exc, self.expected):
            self.logger.warning("%s: %s; retrying in %.1f s", self.what, _describe(exc), delay)
            return delay
        self.unexpected += 1
        if self.on_unexpected is not None:
            self.on_unexpected(exc)
        self.logger.error(
            "%s: unexpected %s; going on in %.1f s",
            self.what,
            type(exc).__name__,
            delay,
            exc_info=exc,
        )
        return delay

    def succeeded(self) -> None:
        """The loop's step worked: failures in a row and the backoff start over."""
        self.failures = 0
        self.backoff.reset()

    async def pause(self, exc: BaseException) -> None:
        """:meth:`failed`, then wait as long as it says."""
        await asyncio.sleep(self.failed(exc))

    async def until_done(self, call: Callable[[], Awaitable[T]]) -> T:
        """Await ``call()`` until it returns, pausing after each failure; its result."""
        while True:
            try:
                result = await call()
            except Exception as exc:  # noqa: BLE001 - the policy decides, and logs it
                await self.pause(exc)
            else:
                self.succeeded()
                return result


def retry_after(value: str | None, *, at_most: float) -> float | None:
    """A ``Retry-After`` header's delay in seconds, at most ``at_most``.

    ``None`` when the header is missing, an HTTP date (not worth parsing for the waits
    this is used for), or not a finite number of seconds at least 0 (``nan``, ``-1``).
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, at_most)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
