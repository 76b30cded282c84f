"""Pacing per destination: how many requests go to one origin at once, and who waits.

Why: a burst of 2,000 webhooks to one small service (Python's ``http.server``, a listen
backlog of 5) used to open 64 connections at once. The backlog overflowed, connections
were refused or never accepted, every one counted as a failed attempt, and the circuit
breaker suspended the rule's webhook after 10 while the receiver was merely busy
(issue 14, finding 10). A receiver that accepts slowly should get everything, later.

**The window.** Each destination (a :class:`Route`: an origin and its cap) has a window
of requests allowed in flight at once. It starts small — 8
(``actions.webhooks.initial_concurrency``), or the cap if lower — and moves like TCP's
congestion window:

- it widens while the destination keeps up: by one per success at first (slow start),
  by ``1/window`` per success (one per round) once it has been halved; never past the
  cap — ``actions.webhooks.max_concurrency`` (64), the destination's
  ``host_concurrency`` entry, or the action's own ``concurrency`` — and not while a
  request in flight there is *late* (out for more than four times the fastest recent
  answer plus :data:`LATE`): it may be a connection the destination did not accept;
- it halves on a sign of overload, at most once per round (requests that started before
  the last halving do not halve it again): a refused, reset or never-accepted
  connection, a timeout, HTTP 429, 502, 503, 504 or 408 (:class:`Overloaded`), and a
  *stall*: an answer that came :data:`STALL` seconds or more after the destination's
  fastest recent answers. An overflowing listen backlog shows as stalls: Linux drops
  the connection's first packet and the client sends it again a second later.

Why not a fixed cap of 8: a healthy receiver close by would get about 40 % fewer
webhooks per second from one dispatcher (``tests/perf/bench_webhook.py``, one
destination: 1,830-1,970 actions/s with 8 in flight against 2,990-3,320 with 64): the
requests in flight are what keeps the receiver busy while the event loop records
outcomes. The window reaches 64 in a few dozen answers from such a receiver. From
``http.server`` with its backlog of 5 it stalls, halves within a second or two and
stays paced: 2,000 webhooks in about 5 s, each once, none failed (64 at once with no
pacing delivered about 480 before the breaker opened).

**Waiting.** A request beyond the window waits in the destination's queue, first come
first served, without holding anything but the dispatcher's slot for its action — and
that for at most ``wait`` seconds (``actions.webhooks.max_wait``). When the wait is
foreseeably longer (the queue ahead, times the destination's recent round-trip time,
divided by the window) or runs out, :meth:`Pacer.acquire` raises
:class:`DestinationBusy`: the dispatcher puts the action back in the outbox for later.
That is not an attempt: no attempt is counted, nothing goes to the circuit breaker.
Actions put back are spread over the time the destination needs to drain what is ahead
of them, so they come back about when a slot frees, not all at once.

**Health.** A destination that answered (a success, or an HTTP 429) within
``health_window`` is *alive*: a connection it refuses or resets is congestion
(:class:`Congested`), and the dispatcher retries the action without counting it, a
bounded number of times per action (``actions.webhooks.congestion_retries``). A
destination that has not answered in that time is judged *down*: the same errors count
as failed attempts, and the circuit breaker opens after ``actions.suspend_after`` of
them in a row, as before. So the breaker judges whether a destination works, not how
busy one burst made it.

Windows are per dispatcher (per replica), kept in memory: three replicas send up to
three windows' worth. Beyond :data:`MAX_DESTINATIONS`, idle destinations are forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from interlock.sdk.errors import ActionFailed

__all__ = [
    "MAX_DESTINATIONS",
    "Congested",
    "DestinationBusy",
    "Overloaded",
    "Pacer",
    "Route",
    "Ticket",
]

MAX_DESTINATIONS = 4096
"""Destinations remembered; beyond it, idle ones are forgotten (the first seen first)."""
_RTT_WEIGHT = 0.2
"""Weight of a new sample in the round-trip time's moving average."""
_UNKNOWN_RTT = 0.1
"""Seconds assumed per request before a destination answered once."""
STALL = 1.0
"""Seconds an answer may come later than the destination's fastest recent ones before
it counts as a sign of overload (Linux sends a dropped connection's SYN again after 1 s)."""
LATE = 0.05
"""Seconds beyond four times the fastest recent answer after which a request in flight
is *late*: while one is, the window does not widen (its answer may be a stall)."""
_MIN_RTT_DRIFT = 0.01
"""How fast the fastest recent answer time follows slower ones (per answer)."""


class Route(NamedTuple):
    """Where one request goes, for pacing."""

    key: str
    """The destination: an origin (``https://hooks.example.com:443``)."""
    cap: int
    """The most requests in flight there at once."""


class DestinationBusy(Exception):
    """No slot at the destination in time; come back in :attr:`retry_in` seconds.

    Not a failure: the action has not been attempted.
    """

    def __init__(self, route: Route, retry_in: float) -> None:
        super().__init__(f"{route.key} is busy; retry in {retry_in:.2f} s")
        self.route = route
        self.retry_in = retry_in


class Overloaded(ActionFailed):
    """A failure that says the destination has more than it can take (see above).

    A failed attempt like any other; the pacer narrows the destination's window.
    """


class Congested(Overloaded):
    """The destination turned the request away unhandled: refused, reset, HTTP 429.

    A refused, reset or never-accepted connection, or HTTP 429. While the destination
    is alive, the dispatcher retries it without counting an attempt (see the module
    docstring).

    Args:
        message: What happened (shown to people).
        answered: The destination answered (HTTP 429): it is alive.
        retry_after: Seconds it asked to wait (``Retry-After``), if it said.
    """

    def __init__(
        self, message: str, *, answered: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retryable=True)
        self.answered = answered
        self.retry_after = retry_after


@dataclass(eq=False, slots=True)
class _Lane:
    """One destination's window, queue and measurements."""

    window: float
    threshold: float = float("inf")
    """Slow start below it: the window after its last halving."""
    in_flight: int = 0
    flying: dict[Ticket, None] = field(default_factory=dict)
    """The tickets in flight, oldest first."""
    waiters: deque[tuple[asyncio.Future[None], int]] = field(default_factory=deque)
    rtt: float | None = None
    """Recent answer time (moving average)."""
    fastest: float | None = None
    """The fastest recent answer time (drifts up slowly toward slower ones)."""
    alive_at: float | None = None
    narrowed_at: float = -1.0
    next_slot: float = 0.0

    def limit(self, cap: int) -> int:
        return max(1, min(int(self.window), cap))

    def seconds_per_slot(self, cap: int) -> float:
        return (self.rtt if self.rtt is not None else _UNKNOWN_RTT) / self.limit(cap)

    def answered_in(self, seconds: float) -> bool:
        """Record an answer time; ``True`` if it is a stall (see the module docstring)."""
        if self.fastest is None or seconds < self.fastest:
            self.fastest = seconds
        else:
            self.fastest += _MIN_RTT_DRIFT * (seconds - self.fastest)
        if seconds >= self.fastest + STALL:
            return True
        self.rtt = seconds if self.rtt is None else self.rtt + _RTT_WEIGHT * (seconds - self.rtt)
        return False

    def widen(self, cap: int, now: float) -> None:
        """Slow start below the threshold, one more per round above it.

        Not while a request in flight is late (:data:`LATE`): it may be a connection
        the destination's full backlog dropped, whose stall shows only a second later.
        """
        oldest = next(iter(self.flying), None)
        if (
            oldest is not None
            and self.fastest is not None
            and now - oldest.started >= 4 * self.fastest + LATE
        ):
            return
        step = 1.0 if self.window < self.threshold else 1 / self.window
        self.window = min(float(cap), self.window + step)

    def narrow(self, started: float, now: float) -> None:
        if started >= self.narrowed_at:  # once per round
            self.window = self.threshold = max(1.0, self.window / 2)
            self.narrowed_at = now


@dataclass(eq=False, slots=True)
class Ticket:
    """A slot at a destination, held from :meth:`Pacer.acquire` to :meth:`Pacer.release`."""

    route: Route
    started: float
    _lane: _Lane
    released: bool = False


class Pacer:
    """Every destination's window (see the module docstring). One per dispatcher.

    Args:
        initial_window: A new destination's window (its cap if lower).
        health_window: Seconds after an answer during which a destination is alive.
        clock: Monotonic seconds (``time.monotonic``).
    """

    def __init__(
        self,
        *,
        initial_window: int,
        health_window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.initial_window = initial_window
        self.health_window = health_window
        self._clock = clock
        self._lanes: dict[str, _Lane] = {}

    def try_acquire(self, route: Route) -> Ticket | None:
        """A slot at ``route``'s destination if one is free now, no one waiting before."""
        lane = self._lane(route)
        if not lane.waiters and lane.in_flight < lane.limit(route.cap):
            lane.in_flight += 1
            return self._ticket(lane, route)
        return None

    async def acquire(self, route: Route, *, wait: float) -> Ticket:
        """A slot at ``route``'s destination, waiting up to ``wait`` seconds for one.

        Raises:
            DestinationBusy: none in time, or the queue ahead is foreseeably longer.
        """
        free = self.try_acquire(route)
        if free is not None:
            return free
        lane = self._lane(route)
        ahead = (len(lane.waiters) + 1) * lane.seconds_per_slot(route.cap)
        if wait <= 0 or (lane.rtt is not None and ahead > wait):
            raise DestinationBusy(route, self._put_off(lane, route))
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (granted, route.cap)
        lane.waiters.append(waiter)
        try:
            await asyncio.wait([granted], timeout=wait)
        except BaseException:  # cancelled: give back a slot granted meanwhile
            self._abandon(lane, waiter)
            raise
        if not granted.done():
            self._abandon(lane, waiter)
            raise DestinationBusy(route, self._put_off(lane, route))
        return self._ticket(lane, route)

    def release(self, ticket: Ticket, *, ok: bool = False, overloaded: bool = False) -> None:
        """Give the slot back, saying how the request went.

        Args:
            ok: It succeeded: the destination is alive; the window widens, unless the
                answer stalled.
            overloaded: It met a sign of overload: the window halves (once per round).
        """
        if ticket.released:
            return
        ticket.released = True
        lane = ticket._lane
        lane.in_flight -= 1
        del lane.flying[ticket]
        now = self._clock()
        if ok:
            lane.alive_at = now
            if lane.answered_in(now - ticket.started):
                overloaded = True
            elif not overloaded and lane.window < ticket.route.cap:
                lane.widen(ticket.route.cap, now)
        if overloaded:
            lane.narrow(ticket.started, now)
        if lane.waiters:
            self._admit(lane)

    def answered(self, route: Route) -> None:
        """The destination answered without succeeding (HTTP 429): it is alive."""
        self._lane(route).alive_at = self._clock()

    def alive(self, route: Route) -> bool:
        """Whether the destination answered within ``health_window`` (see above)."""
        lane = self._lanes.get(route.key)
        if lane is None or lane.alive_at is None:
            return False
        return self._clock() - lane.alive_at <= self.health_window

    def put_off(self, route: Route) -> float:
        """Seconds after which an action turned away from ``route`` may come back."""
        return self._put_off(self._lane(route), route)

    def window(self, route: Route) -> float:
        """The destination's window now (for tests and logs)."""
        return self._lane(route).window

    def _ticket(self, lane: _Lane, route: Route) -> Ticket:
        ticket = Ticket(route=route, started=self._clock(), _lane=lane)
        lane.flying[ticket] = None
        return ticket

    def _put_off(self, lane: _Lane, route: Route) -> float:
        """Book a time for one more request after the queue ahead: returns the delay."""
        now = self._clock()
        per_slot = lane.seconds_per_slot(route.cap)
        ahead = (lane.in_flight + len(lane.waiters)) * per_slot
        lane.next_slot = max(lane.next_slot, now + ahead) + per_slot
        return lane.next_slot - now + random.uniform(0, per_slot)  # noqa: S311 - jitter

    def _lane(self, route: Route) -> _Lane:
        lane = self._lanes.get(route.key)
        if lane is None:
            window = float(min(self.initial_window, route.cap))
            lane = self._lanes[route.key] = _Lane(window=window)
            if len(self._lanes) > MAX_DESTINATIONS:
                self._forget_idle()
        return lane

    def _forget_idle(self) -> None:
        """Forget idle destinations, the first met first, down to the limit."""
        for key in list(self._lanes)[: len(self._lanes) - MAX_DESTINATIONS]:
            lane = self._lanes[key]
            if not lane.in_flight and not lane.waiters:
                del self._lanes[key]

    def _admit(self, lane: _Lane) -> None:
        while lane.waiters:
            granted, cap = lane.waiters[0]
            if granted.done():  # abandoned
                lane.waiters.popleft()
                continue
            if lane.in_flight >= lane.limit(cap):
                return
            lane.waiters.popleft()
            lane.in_flight += 1
            granted.set_result(None)

    def _abandon(self, lane: _Lane, waiter: tuple[asyncio.Future[None], int]) -> None:
        granted = waiter[0]
        if granted.done() and not granted.cancelled():
            lane.in_flight -= 1  # granted, never used
            self._admit(lane)
            return
        granted.cancel()
        with contextlib.suppress(ValueError):  # admitted or dropped already
            lane.waiters.remove(waiter)
