"""What a backtest found, as data (``--json``, the API's job) and as text.

The text groups each rule's firings by key and by window, then lists the differences
from its live firings (see :mod:`.compare`), then the template errors, the broken
rules and the warnings.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import TextIO

import msgspec

from interlock.rules.engine.firing import Firing
from interlock.service.backtest.compare import Comparison
from interlock.service.backtest.replay import RenderProblem

__all__ = ["BacktestReport", "RuleReport", "write_text"]

_SHOWN = 20
"""Differences listed per rule and kind in the text (all of them in the JSON)."""


class RuleReport(msgspec.Struct, frozen=True, kw_only=True):
    """One rule's backtest."""

    rule: str
    fired: int
    resolved: int
    firings: list[Firing]
    """What it would have fired (and resolved) from ``since`` on, in order."""
    live: Comparison | None
    """The difference from its live firings (``None``: the service does not hold it)."""
    broken: str | None = None
    """Why the engine quarantined it during the replay."""


class BacktestReport(msgspec.Struct, frozen=True, kw_only=True):
    """A backtest's result."""

    start: datetime
    since: datetime
    until: datetime
    events: int
    """Events fed to the engine."""
    invalid: int
    """Messages skipped as the live pipeline dead-letters them."""
    warmup_firings: int
    """Firings of the warm-up, dropped."""
    seconds: float
    """Wall-clock time of the replay (reading, feeding, rendering)."""
    cpu_seconds: float
    """CPU time of the replay's process meanwhile."""
    rules: list[RuleReport]
    render_problems: list[RenderProblem]
    warnings: list[str]
    compared: bool
    """Whether live firings were read (``False`` with ``--no-compare`` or no service)."""
    changed: bool
    """Whether any live rule would fire differently (``--detailed-exitcode``'s 2)."""
    rate: float
    """Events fed per second of the replay."""


def _time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _window(firing: Firing) -> str:
    if firing.window_end is None:
        return "no window"
    return f"window {_time(firing.window_start)} .. {_time(firing.window_end)}"


def _line(firing: Firing) -> str:
    counts = ""
    if firing.expected is not None:
        counts = f" expected {firing.expected}, arrived {firing.arrived}"
    key = f" key {firing.key!r}" if firing.key else ""
    window = f" {_window(firing)}" if firing.window_end is not None else ""
    return f"{firing.status} {_time(firing.at)}{key}{window}{counts} {firing.id}"


def _firings(rule: RuleReport, out: TextIO) -> None:
    by_key: dict[str, dict[str, list[Firing]]] = defaultdict(lambda: defaultdict(list))
    for firing in rule.firings:
        by_key[firing.key][_window(firing)].append(firing)
    for key, windows in by_key.items():
        fired = sum(1 for w in windows.values() for f in w if f.status == "fired")
        out.write(f"    key {key!r}: {fired} fired in {len(windows)} window(s)\n" if key else "")
        for window, firings in windows.items():
            statuses = ", ".join(f"{f.status} at {_time(f.at)}" for f in firings[:3])
            more = f" (+{len(firings) - 3})" if len(firings) > 3 else ""
            out.write(f"      {window}: {statuses}{more}\n")


def _differences(live: Comparison, out: TextIO) -> None:
    paused = ", paused" if live.paused else ""
    out.write(
        f"  live (version {live.live_version}{paused}): {live.same} the same, "
        f"{len(live.newly)} would newly fire, {len(live.no_longer)} would no longer fire\n"
    )
    for label, firings in (
        ("+ would newly fire", live.newly),
        ("- would no longer fire", live.no_longer),
    ):
        for firing in firings[:_SHOWN]:
            out.write(f"    {label[0]} {_line(firing)}\n")
        if len(firings) > _SHOWN:
            out.write(
                f"    {label[0]} ... {len(firings) - _SHOWN} more ({label[2:]}; see --json)\n"
            )
    for explanation in live.explanations:
        out.write(f"    because {explanation}\n")


def write_text(report: BacktestReport, out: TextIO) -> None:
    """Write the report for people: per rule, per key, per window, then differences."""
    out.write(
        f"backtest {_time(report.since)} .. {_time(report.until)} "
        f"(warm-up from {_time(report.start)}, {report.warmup_firings} warm-up firing(s) "
        f"dropped): {report.events} events in {report.seconds:.1f} s "
        f"({report.rate:,.0f}/s)\n"
    )
    if report.invalid:
        out.write(f"{report.invalid} message(s) skipped: not valid events (dead letters live)\n")
    for rule in report.rules:
        out.write(f"\nrule {rule.rule}: would have fired {rule.fired}, resolved {rule.resolved}\n")
        if rule.broken:
            out.write(f"  broken during the replay: {rule.broken}\n")
        _firings(rule, out)
        if rule.live is not None:
            _differences(rule.live, out)
        elif report.compared:
            out.write("  not live: nothing to compare\n")
    if report.render_problems:
        out.write(f"\n{len(report.render_problems)} action(s) would fail to render:\n")
        for problem in report.render_problems[:_SHOWN]:
            out.write(f"  rule {problem.rule}, firing {problem.firing_id}: {problem.error}\n")
    for warning in report.warnings:
        out.write(f"warning: {warning}\n")
    changed = sum(1 for rule in report.rules if rule.live is not None and rule.live.changed)
    if report.compared:
        out.write(
            f"\n{changed} rule(s) would fire differently from live\n"
            if changed
            else "\nno difference from the live firings\n"
        )
