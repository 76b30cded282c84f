"""Feeding recorded events to a fresh engine in event time, as the live pipeline would.

**The watermark rule.** The live pipeline (:mod:`interlock.service.pipeline.consumer`)
judges windows on a watermark that is the time JetStream stored the last message fed,
or the wall clock once it has caught up; a caught-up consumer sees each message the
moment it is stored, and between messages the clock runs on, so a deadline is judged
when it is due, before any message stored after it. A replay has no wall clock of its
own: its clock *is* the stored time of the messages. So :class:`Replay`

- judges every window due before a message's stored time before feeding it, each at
  its due time (``advance(now=due, watermark=due)``: judged on time, as the live
  service caught up judges it), and
- feeds the messages between two due times, at most :data:`SEGMENT` (0.1 s) of stored
  time of them, as one batch (``feed_batch``) after moving the watermark to the first
  one's stored time, then advances to the last one's (what the live pipeline
  does after each batch; a window that one of these events opens and that falls due
  within the same 0.1 s is judged after the batch, as the live pipeline judges it
  after a batch of a backlog),
- ends by judging what is due up to the horizon's ``until``.

Messages that are not valid events, or whose body names another event than their
subject, are skipped: the live pipeline moves those to ``INTERLOCK_DEAD`` and never
feeds them. Firings before ``since`` (the warm-up) are counted and dropped; each kept
firing's actions are rendered in the sandbox the service uses
(:func:`~interlock.service.pipeline.rendering.rendered_entries`), never run, and each
template error is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from interlock.rules.engine.engine import Engine
from interlock.rules.engine.firing import Firing
from interlock.rules.rule import Rule
from interlock.sdk import decode_event
from interlock.sdk.event import Event
from interlock.sdk.subjects import EVENTS_SUBJECT_PREFIX
from interlock.service.backtest.horizon import Horizon
from interlock.service.backtest.reader import StoredMessage
from interlock.service.pipeline.rendering import RecentEvents, rendered_entries

__all__ = ["RenderProblem", "Replay"]

_LATENESS = timedelta(seconds=30)
SEGMENT = timedelta(milliseconds=100)
"""The longest stretch of stored time fed as one batch (see the module)."""


class RenderProblem(msgspec.Struct, frozen=True, kw_only=True):
    """An action whose templates would not render for a firing."""

    rule: str
    firing_id: str
    index: int
    kind: str
    error: str


def decoded(message: StoredMessage) -> Event | None:
    """The message's event, or ``None`` where the live pipeline would dead-letter it."""
    try:
        event = decode_event(message.data)
    except Exception:  # noqa: BLE001 - the per-message boundary, as in the live pipeline
        return None
    return event if message.subject == EVENTS_SUBJECT_PREFIX + event.event else None


@dataclass
class ReplayCounts:
    """How far a replay got."""

    events: int = 0
    invalid: int = 0
    warmup_firings: int = 0
    event_time: datetime | None = None
    sequence: int = 0


@dataclass
class Replay:
    """A fresh engine over the rules, fed a stream's messages (see the module).

    Args:
        rules: The rules to replay.
        horizon: Where the replay starts, what it keeps, where it ends.
        lateness_tolerance: As the service's ``engine.lateness_tolerance``.
    """

    rules: Sequence[Rule]
    horizon: Horizon
    lateness_tolerance: timedelta = _LATENESS
    firings: list[Firing] = field(default_factory=list)
    """Firings from ``since`` on, in the order the engine produced them."""
    render_problems: list[RenderProblem] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)
    counts: ReplayCounts = field(default_factory=ReplayCounts)

    def __post_init__(self) -> None:
        self.engine = Engine(
            self.rules, now=self.horizon.start, lateness_tolerance=self.lateness_tolerance
        )
        self._by_name = {rule.name: rule for rule in self.rules}
        self._recent = RecentEvents()

    def feed(self, messages: Sequence[StoredMessage]) -> None:
        """Feed stored messages (in stream order) with the live watermark rule."""
        if not messages:
            return
        engine = self.engine
        start = 0
        while start < len(messages):
            first = messages[start].stored_at
            self._judge_before(first)
            due = engine.next_due()
            limit = first + SEGMENT if due is None else min(due, first + SEGMENT)
            end = start + 1
            while end < len(messages) and messages[end].stored_at < limit:
                end += 1
            segment = messages[start:end]
            events = [event for event in map(decoded, segment) if event is not None]
            self.counts.invalid += len(segment) - len(events)
            self.counts.events += len(events)
            self._recent.add_all(events)
            engine.advance(first, first)  # nothing due before ``first`` is left
            fed = engine.feed_batch(events)
            last = segment[-1].stored_at
            fed.extend(engine.advance(last, last))
            self._keep(fed)
            start = end
        self.counts.event_time = messages[-1].stored_at
        self.counts.sequence = messages[-1].sequence

    def _judge_before(self, at: datetime) -> None:
        """Judge, each at its time, every window due strictly before ``at``."""
        engine = self.engine
        while (due := engine.next_due()) is not None and due < at:
            self._keep(engine.advance(due, due))
            if engine.next_due() == due:  # judged nothing at its own time: go on after it
                break

    def finish(self) -> None:
        """Judge what is due up to the horizon's end; collect broken rules."""
        until = self.horizon.until
        self._judge_before(until)
        self._keep(self.engine.advance(until, until))
        self.counts.event_time = until
        self.broken = self.engine.broken

    def _keep(self, firings: Iterable[Firing]) -> None:
        since = self.horizon.since
        for firing in firings:
            if firing.at < since:
                self.counts.warmup_firings += 1
                continue
            self.firings.append(firing)
            rule = self._by_name.get(firing.rule)
            if rule is None:
                continue
            for entry in rendered_entries(firing, rule, self._recent):
                error = entry.action.get("render_error")
                if error is not None:
                    self.render_problems.append(
                        RenderProblem(
                            rule=firing.rule,
                            firing_id=str(firing.id),
                            index=entry.index,
                            kind=entry.kind,
                            error=str(error),
                        )
                    )
