"""A scenario: rules, events at times, time moving on, and the firings expected.

::

    from interlock.rules.testing import Scenario, fired

    def test_the_sales_table_is_late_on_monday() -> None:
        with Scenario(rules, tz="Europe/Berlin", start="2026-03-27 00:00") as scenario:
            scenario.event("db.table.updated", resource="warehouse.sales", at="2026-03-27 08:15")
            scenario.advance_to("2026-03-27 12:00")
            scenario.expect()  # nothing fired
            scenario.advance_to("2026-03-30 12:00")
            scenario.expect(fired("sales-table-by-0900", window=("2026-03-30", "2026-03-30 09:00")))

:meth:`Scenario.repeat` publishes an event at a steady pace (heartbeats).

Events go through a :class:`~.pipeline.SimulatedPipeline` — stored at their time, fed in
stored order, time judged on the live pipeline's watermark — into a real
:class:`~interlock.rules.engine.Engine`. :meth:`Scenario.expect` compares the firings
since the previous call with the expected ones: a firing not expected, or one expected
that did not happen, fails with a diff; every expected firing's actions are rendered in
the service's sandbox (:mod:`interlock.rules.action_rendering`), so a template that fails
fails the scenario. Used as a context manager, a scenario that ends cleanly checks that
no firing is left unexpected.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from interlock.rules.action_rendering import render_actions
from interlock.rules.engine.engine import Engine
from interlock.rules.engine.firing import Firing
from interlock.rules.rule import Rule
from interlock.rules.testing.comparison import compare, want
from interlock.rules.testing.diff import LEGEND, describe_firing, diff_lines
from interlock.rules.testing.errors import ScenarioError, ScenarioFailed
from interlock.rules.testing.expectations import Expected, TimeLike
from interlock.rules.testing.pipeline import SimulatedPipeline
from interlock.rules.testing.times import (
    TimeValueError,
    parse_lag,
    parse_time,
    show_time,
    zone_named,
)
from interlock.sdk.event import Event

__all__ = ["MAX_REPEATS", "Scenario"]

MAX_REPEATS = 100_000
"""The most events one :meth:`Scenario.repeat` makes."""

_EVENT_IDS = uuid.UUID("6f1d7f9a-2b4e-4c1a-9d57-3c2e8b0a5e21")


class Scenario:
    """Rules run on events in simulated time, against the firings expected.

    Args:
        rules: The rules to run (each must have a distinct name).
        start: When the engine starts (the service loading the rules).
        tz: The zone of times written without an offset or zone.
        lag: The consumer's backlog: events are fed this long after they are stored.
        lateness_tolerance: The engine's (the service's ``engine.lateness_tolerance``).
        name: Said in failure messages; also seeds the events' ids, so firing ids are
            the same on every run.

    Raises:
        ScenarioError: a time, zone or lag cannot be read, or two rules share a name.
    """

    def __init__(
        self,
        rules: Iterable[Rule],
        *,
        start: TimeLike,
        tz: str = "UTC",
        lag: str | timedelta = timedelta(),
        lateness_tolerance: str | timedelta = timedelta(seconds=30),
        name: str = "scenario",
    ) -> None:
        self.name = name
        listed = list(rules)
        with _readable("tz"):
            self.zone = zone_named(tz)
        with _readable("start"):
            self.start = parse_time(start, self.zone)
        with _readable("lag"):
            self.lag = parse_lag(lag)
        with _readable("lateness_tolerance"):
            tolerance = parse_lag(lateness_tolerance)
        try:
            engine = Engine(listed, now=self.start, lateness_tolerance=tolerance)
        except ValueError as exc:
            raise ScenarioError(f"scenario {name!r}: {exc}") from exc
        self.engine = engine
        self.rules = {rule.name: rule for rule in listed}
        self.pipeline = SimulatedPipeline(engine, self.start)
        self.firings: list[Firing] = []
        """Every firing so far, in order."""
        self.events: dict[uuid.UUID, Event] = {}
        """Every event published, by id."""
        self._checked = 0

    @property
    def now(self) -> datetime:
        """The simulated wall-clock time (UTC)."""
        return self.pipeline.now

    def event(
        self,
        name: str,
        *,
        at: TimeLike,
        resource: str | Mapping[str, str],
        payload: Mapping[str, Any] | None = None,
        related: Iterable[Mapping[str, str]] = (),
        source: str = "scenario",
        id: uuid.UUID | str | None = None,
        published: TimeLike | None = None,
    ) -> Event:
        """Publish an event that occurred ``at``; return it.

        It is stored at ``published`` (default: ``at``, or now if ``at`` has passed — a
        late event), and fed when time reaches it (:meth:`advance_to`). ``resource`` is
        its id, or a mapping with ``id`` and labels.

        Raises:
            ScenarioError: a time cannot be read, ``published`` is in the past, or the
                event breaks the wire contract (the message names the field).
        """
        with _readable("at"):
            occurred = parse_time(at, self.zone)
        stored = max(occurred, self.now)
        if published is not None:
            with _readable("published"):
                stored = parse_time(published, self.zone)
            if stored < self.now:
                raise ScenarioError(
                    f"published: {show_time(stored, self.zone)} is before the scenario's "
                    f"time, {show_time(self.now, self.zone)}"
                )
        index = len(self.events)
        event_id = id if id is not None else uuid.uuid5(_EVENT_IDS, f"{self.name}\x1f{index}")
        try:
            made = Event(
                id=uuid.UUID(str(event_id)),
                occurred=occurred,
                event=name,
                resource={"id": resource} if isinstance(resource, str) else dict(resource),
                related=[dict(item) for item in related],
                payload=dict(payload or {}),
                source=source,
            )
        except ValueError as exc:
            raise ScenarioError(f"event {name!r}: {exc}") from exc
        self.events[made.id] = made
        self.pipeline.publish(made, stored)
        return made

    def repeat(
        self,
        name: str,
        *,
        every: str | timedelta,
        at: TimeLike,
        until: TimeLike,
        resource: str | Mapping[str, str],
        payload: Mapping[str, Any] | None = None,
        related: Iterable[Mapping[str, str]] = (),
        source: str = "scenario",
    ) -> list[Event]:
        """Publish the event every ``every`` from ``at`` to ``until`` (both included).

        Heartbeats, a steady stream of uploads. The steps are of elapsed time (``1d``
        across a DST change is 24 hours, not the same local time).

        Raises:
            ScenarioError: as :meth:`event`; ``every`` is not a positive duration,
                ``until`` is before ``at``, or it would make more than
                :data:`MAX_REPEATS` events.
        """
        with _readable("every"):
            step = parse_lag(every)
        if step <= timedelta():
            raise ScenarioError("every: must be longer than 0s")
        with _readable("at"):
            first = parse_time(at, self.zone)
        with _readable("until"):
            last = parse_time(until, self.zone)
        if last < first:
            raise ScenarioError(
                f"until: {show_time(last, self.zone)} is before at, {show_time(first, self.zone)}"
            )
        count = (last - first) // step + 1
        if count > MAX_REPEATS:
            raise ScenarioError(
                f"every: {count:,} events from {show_time(first, self.zone)} to "
                f"{show_time(last, self.zone)}; at most {MAX_REPEATS:,}"
            )
        related = list(related)  # used for every event
        made = []
        for index in range(count):
            at_step = first + index * step
            event = self.event(name, at=at_step, resource=resource, payload=payload,
                               related=related, source=source)  # fmt: skip
            made.append(event)
        return made

    def advance_to(self, time: TimeLike, *, lag: str | timedelta | None = None) -> list[Firing]:
        """Move time to ``time``, feeding the events stored by then; return the firings.

        ``lag`` overrides the scenario's backlog for this stretch of time.
        """
        with _readable("time"):
            target = parse_time(time, self.zone)
        with _readable("lag"):
            backlog = self.lag if lag is None else parse_lag(lag)
        if target < self.now:
            raise ScenarioError(
                f"advance_to: {show_time(target, self.zone)} is before the scenario's time, "
                f"{show_time(self.now, self.zone)}"
            )
        found = self.pipeline.run_until(target, backlog)
        self.firings.extend(found)
        broken = self.engine.take_broken()
        if broken:
            reasons = "; ".join(f"rule {rule!r} broke: {reason}" for rule, reason in broken)
            raise ScenarioFailed(f"scenario {self.name!r}: {reasons}")
        return found

    def expect(self, *expected: Expected) -> None:
        """The firings since the last ``expect`` must be exactly ``expected``.

        Raises:
            ScenarioFailed: a firing was not expected, an expected one did not happen
                (with a diff), or an expected firing's action does not render.
            ScenarioError: a time in an expectation cannot be read.
        """
        firings = self.firings[self._checked :]
        self._checked = len(self.firings)
        wants = []
        for item in expected:
            if item.rule not in self.rules:
                raise ScenarioError(
                    f"an expectation names no rule of the scenario: {item.rule!r} "
                    f"(the rules are: {', '.join(sorted(self.rules)) or 'none'})"
                )
            with _readable(f"expectation of {item.rule!r}"):
                wants.append(want(item, self.zone))
        comparison = compare(wants, firings, self.zone)
        problems: list[str] = []
        if not comparison.ok:
            problems.append(
                f"the firings up to {show_time(self.now, self.zone)} are not the ones "
                f"expected ({LEGEND}):"
            )
            problems.extend(f"  {line}" for line in diff_lines(comparison, firings, self.zone))
        for _, firing in comparison.matched:
            problems.extend(self._render_problems(firing))
        if problems:
            raise ScenarioFailed("\n".join([f"scenario {self.name!r}:", *problems]))

    def _render_problems(self, firing: Firing) -> list[str]:
        rule = self.rules[firing.rule]
        events = [self.events[i] for i in firing.event_ids if i in self.events]
        errors = [
            f"    {action.error}"
            for action in render_actions(firing, rule, events)
            if action.error is not None
        ]
        if not errors:
            return []
        return [
            "an action of this firing does not render (the service would fail it with "
            "render_error):",
            f"  {describe_firing(firing, self.zone)}",
            *errors,
        ]

    def __enter__(self) -> Scenario:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.expect()


class _readable:
    """Turns a :class:`TimeValueError` into a :class:`ScenarioError` naming the field."""

    def __init__(self, field: str) -> None:
        self.field = field

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(error, TimeValueError):
            raise ScenarioError(f"{self.field}: {error}") from error
