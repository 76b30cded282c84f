"""A backtest from start to end: read the stream, replay, compare, report.

:func:`replay_stream` reads ``INTERLOCK_EVENTS`` over the horizon through a fresh engine
(its own NATS connection; CPU-bound, so the service runs it in a thread of its own);
:func:`compare_live` reads the live firings and compares; :func:`run_backtest` does both
(the command line). Neither ever runs an action.

Warnings: when the rules read Interlock's own ``interlock.*`` events (the stream holds
what the *live* rules emitted, so a rule reading them is replayed over the live rules'
output, not its own), and when the horizon reaches further back than the stream keeps
(its age limit, or its oldest message).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

import msgspec
from nats.aio.client import Client as NATS

from interlock.rules.engine.firing import Firing
from interlock.rules.rule import Rule
from interlock.sdk import NatsOptions
from interlock.sdk.connection import connect
from interlock.sdk.durations import format_duration
from interlock.service.backtest.compare import compare
from interlock.service.backtest.errors import BacktestError
from interlock.service.backtest.horizon import Horizon
from interlock.service.backtest.live import LiveRecord, LiveRule
from interlock.service.backtest.progress import Progress
from interlock.service.backtest.reader import StreamFacts, StreamReader, stream_facts
from interlock.service.backtest.replay import RenderProblem, Replay
from interlock.service.backtest.report import BacktestReport, RuleReport
from interlock.service.backtest.subjects import (
    SubjectTest,
    event_patterns,
    filter_subjects,
    reads_internal,
)

__all__ = ["Replayed", "compare_live", "replay_stream", "run_backtest"]

ProgressCallback = Callable[[Progress], None]


class Replayed(msgspec.Struct, frozen=True, kw_only=True):
    """A replay's outcome, before the comparison (it crosses a process boundary as JSON)."""

    start: datetime
    since: datetime
    until: datetime
    firings: list[Firing]
    """Firings from ``since`` on, in the order the engine produced them."""
    render_problems: list[RenderProblem]
    broken: dict[str, str]
    events: int
    invalid: int
    warmup_firings: int
    warnings: list[str]
    seconds: float
    cpu_seconds: float
    """CPU time of the whole process meanwhile (other threads' too)."""

    @property
    def horizon(self) -> Horizon:
        """The horizon replayed."""
        return Horizon(start=self.start, since=self.since, until=self.until)


def _warnings(rules: Sequence[Rule], horizon: Horizon, facts: StreamFacts) -> list[str]:
    warnings = []
    internal = sorted({p for p in event_patterns(rules) if reads_internal(p)})
    if internal:
        warnings.append(
            f"the rules read Interlock's own events ({', '.join(internal)}): the stream holds "
            "what the live rules emitted, not what these rules would have emitted"
        )
    if facts.max_age is not None and horizon.until - horizon.start > facts.max_age:
        warnings.append(
            f"the horizon with its warm-up ({format_duration(horizon.until - horizon.start)}) "
            f"exceeds the stream's retention ({format_duration(facts.max_age)}): "
            "the oldest events are gone"
        )
    elif (
        facts.first_sequence > 1
        and facts.first_stored_at is not None
        and facts.first_stored_at > horizon.start
    ):  # messages were removed (age, size limits) and the replay reaches past them
        warnings.append(
            f"the stream's oldest event was stored at {facts.first_stored_at.isoformat()}, "
            f"after the replay's start ({horizon.start.isoformat()}): earlier events are gone"
        )
    return warnings


async def replay_stream(
    rules: Sequence[Rule],
    horizon: Horizon,
    nats: NatsOptions | NATS,
    *,
    on_progress: ProgressCallback | None = None,
) -> Replayed:
    """Replay the recorded events of the horizon through a fresh engine over ``rules``.

    Raises:
        BacktestError: no rules, or the stream does not exist.
        BusError: NATS cannot be reached.
    """
    if not rules:
        raise BacktestError("no rules to backtest")
    began, cpu = time.monotonic(), time.process_time()
    nc = nats if isinstance(nats, NATS) else await connect(nats)
    try:
        facts = await stream_facts(nc)
        warnings = _warnings(rules, horizon, facts)
        replay = Replay(rules, horizon)
        progress = Progress(last_sequence=facts.last_sequence)
        patterns = event_patterns(rules)
        subjects, exact = filter_subjects(patterns)
        reader = StreamReader(
            nc,
            subjects,
            start=horizon.start,
            until=horizon.until,
            stop_sequence=facts.last_sequence,
            accepts=None if exact else SubjectTest(patterns),
        )
        async with reader:
            async for batch in reader.batches():
                replay.feed(batch)
                if on_progress is not None:
                    progress.first_sequence = progress.first_sequence or batch[0].sequence
                    progress.events = replay.counts.events
                    progress.sequence = batch[-1].sequence
                    progress.event_time = batch[-1].stored_at
                    progress.seconds = time.monotonic() - began
                    on_progress(progress)
        replay.finish()
    finally:
        if nc is not nats:
            await nc.close()
    counts = replay.counts
    return Replayed(
        start=horizon.start,
        since=horizon.since,
        until=horizon.until,
        firings=replay.firings,
        render_problems=replay.render_problems,
        broken=replay.broken,
        events=counts.events,
        invalid=counts.invalid,
        warmup_firings=counts.warmup_firings,
        warnings=warnings,
        seconds=time.monotonic() - began,
        cpu_seconds=time.process_time() - cpu,
    )


async def compare_live(
    replayed: Replayed,
    rules: Sequence[Rule],
    live: LiveRecord | None,
    held: dict[str, LiveRule] | None = None,
) -> BacktestReport:
    """Compare with the live firings (``live`` ``None``: no comparison) and report.

    ``held``: the live rules, when read already (else they are read now).
    """
    horizon = replayed.horizon
    if held is None:
        held = await live.rules(rule.name for rule in rules) if live is not None else {}
    of_rule: dict[str, list[Firing]] = {rule.name: [] for rule in rules}
    for firing in replayed.firings:
        of_rule[firing.rule].append(firing)
    reports = []
    for rule in rules:
        firings = of_rule[rule.name]
        comparison = None
        if live is not None and rule.name in held:
            actual = await live.firings(rule.name, horizon.since, horizon.until)
            comparison = compare(rule, firings, actual, held[rule.name], horizon)
        reports.append(
            RuleReport(
                rule=rule.name,
                fired=sum(1 for f in firings if f.status == "fired"),
                resolved=sum(1 for f in firings if f.status == "resolved"),
                firings=firings,
                live=comparison,
                broken=replayed.broken.get(rule.name),
            )
        )
    return BacktestReport(
        start=horizon.start,
        since=horizon.since,
        until=horizon.until,
        events=replayed.events,
        invalid=replayed.invalid,
        warmup_firings=replayed.warmup_firings,
        seconds=replayed.seconds,
        cpu_seconds=replayed.cpu_seconds,
        rules=reports,
        render_problems=replayed.render_problems,
        warnings=replayed.warnings,
        compared=live is not None,
        changed=any(rule.live is not None and rule.live.changed for rule in reports),
        rate=round(replayed.events / replayed.seconds, 1) if replayed.seconds > 0 else 0.0,
    )


async def run_backtest(
    rules: Sequence[Rule],
    horizon: Horizon,
    nats: NatsOptions | NATS,
    live: LiveRecord | None,
    *,
    on_progress: ProgressCallback | None = None,
) -> BacktestReport:
    """Replay, then compare with the live firings (see the module).

    The live rules are read first, so an unreachable service fails before the replay.
    """
    held = await live.rules(rule.name for rule in rules) if live is not None else None
    replayed = await replay_stream(rules, horizon, nats, on_progress=on_progress)
    return await compare_live(replayed, rules, live, held)
