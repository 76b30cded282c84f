"""Feeding recorded events to a fresh engine in event time, as the live pipeline would.

**The watermark rule.** The live pipeline (:mod:`interlock.service.pipeline.consumer`)
judges windows on a watermark that is the time JetStream stored the last message fed,
or the wall clock once it has caught up; caught up, it wakes when the engine's next
window is due. A replay has no wall clock of its own: its clock is the stored time of
the messages. :class:`Replay` feeds them through the rule-testing scenarios' simulated
pipeline (:class:`interlock.rules.testing.pipeline.SimulatedPipeline`, the same code, so
scenarios and backtests follow one rule), with no lag and the stream's real stored
times: each message is fed when the clock reaches its stored time (messages stored at
the same time together, at most 256 at a time, as the consumer batches), and every
window due before it is judged first, at its due time (on time, as the live service
caught up judges it; events stored at the same instant are fed first). It ends by
judging what is due up to the horizon's ``until``.

Messages that are not valid events, or whose body names another event than their
subject, are skipped: the live pipeline moves those to ``INTERLOCK_DEAD`` and never
feeds them. Firings before ``since`` (the warm-up) are counted and dropped; each kept
firing's actions are rendered by the code the service renders them with
(:func:`interlock.rules.action_rendering.render_actions`, in its sandbox) over the
events behind it (the last :data:`REMEMBERED` events are kept, as the pipeline keeps
them), never run, and each template error is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from interlock.rules.action_rendering import render_actions
from interlock.rules.engine.engine import Engine
from interlock.rules.engine.firing import Firing
from interlock.rules.rule import Rule
from interlock.rules.testing.pipeline import SimulatedPipeline
from interlock.sdk import decode_event
from interlock.sdk.event import Event
from interlock.sdk.subjects import EVENTS_SUBJECT_PREFIX
from interlock.service.backtest.horizon import Horizon
from interlock.service.backtest.reader import StoredMessage
from interlock.service.pipeline.rendering import RecentEvents

__all__ = ["RenderProblem", "Replay"]

_LATENESS = timedelta(seconds=30)
REMEMBERED = 50_000
"""Events kept for the templates' context (the pipeline's ``RecentEvents`` capacity)."""


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
        self._pipeline = SimulatedPipeline(self.engine, self.horizon.start)
        self._by_name = {rule.name: rule for rule in self.rules}
        self._recent = RecentEvents(REMEMBERED)

    def feed(self, messages: Sequence[StoredMessage]) -> None:
        """Feed stored messages (in stream order) with the live watermark rule."""
        if not messages:
            return
        pipeline = self._pipeline
        events = []
        for message in messages:
            event = decoded(message)
            if event is None:
                self.counts.invalid += 1
                continue
            events.append(event)
            # JetStream's stored times never go back; a clock step of its host could.
            pipeline.publish(event, max(message.stored_at, pipeline.now))
        self.counts.events += len(events)
        self._recent.add_all(events)
        last = messages[-1]
        self._keep(pipeline.run_until(max(last.stored_at, pipeline.now)))
        self.counts.event_time = last.stored_at
        self.counts.sequence = last.sequence

    def finish(self) -> None:
        """Judge what is due up to the horizon's end; collect broken rules."""
        pipeline = self._pipeline
        self._keep(pipeline.run_until(max(self.horizon.until, pipeline.now)))
        self.counts.event_time = self.horizon.until
        self.broken = self.engine.broken

    def _keep(self, firings: Iterable[Firing]) -> None:
        since = self.horizon.since
        for firing in firings:
            if firing.at < since:
                self.counts.warmup_firings += 1
                continue
            self.firings.append(firing)
            rule = self._by_name.get(firing.rule)
            if rule is None or not (rule.then if firing.status == "fired" else rule.on_resolved):
                continue
            events = [e for e in map(self._recent.get, firing.event_ids) if e is not None]
            for rendered in render_actions(firing, rule, events):
                if rendered.error is not None:
                    self.render_problems.append(
                        RenderProblem(
                            rule=firing.rule,
                            firing_id=str(firing.id),
                            index=rendered.index,
                            kind=rendered.kind,
                            error=str(rendered.error),
                        )
                    )
