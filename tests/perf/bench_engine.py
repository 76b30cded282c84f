r"""Engine throughput, load time, memory and deadline lateness, against two baselines.

Rules: ``N`` event rules, ten per event name (``bench.e<k>.done``), each
``resource.id == "t<i>" & payload.rows >= 1`` (every fourth also ``resource.env`` one of
two values) — the shapes of ``bench_matcher.py``, written as :class:`Rule` s and fed
through ``Engine.feed_batch`` (matching, trigger states, firings: the whole engine).

- ``one_percent``: 1% of events match one rule; the rest carry names no rule listens to.
- ``one_percent_routed``: 1% match; the rest carry listened names and fail the predicate.
- ``all_match``: every event matches exactly one rule (1,000 rules).
- ``all_match_one_name`` / ``routed_one_name``: the same rules all on one event name
  (one rule per table on ``db.table.updated``): every event matches one of 1,000 or
  2,000 rules, or 1% match one of 1,000 and the rest name no rule's table. A sixteenth
  of the events (and fewer for the baselines): each costs far more.

Predicate shapes (``shape_*``): 1,000 ``on()`` rules on one event name, 1% of events
matching one of them, the rest a table (``resource.id``) no rule watches; the rules are
written as (a) ``resource.id == "dw.t0042"`` (``eq``), (b) ``.glob("dw.t0042*")``, (c)
``.matches(r"^dw\.t0042(\.|$)")``, (d) ``.startswith("dw.t0042")``, (e) the glob and
``payload.rows >= 1`` (with ``eq_numeric``, the same written with equality), (f)
``payload.seq`` in a range of its own (``>=`` and ``<``), and ``mixed``: a quarter each
of glob, regex, startswith and numeric. Each prints events/s and its ratio to ``eq``
(target: at least 0.5); the slow ones get fewer events (``--shape-seconds`` per round).
``--only shapes`` runs just these and writes ``engine_shapes.json`` (``--only throughput``:
the workloads above, ``engine_throughput.json``).

Each workload also runs through two baselines on the same events: bare durable_rules
(its Python ``Host`` without timer threads, the same conditions with ``m.event == name``
first, 256 rules per ruleset chosen by event name, one ``post`` per event with the whole
event) and a dict dispatch (name → rules → ``Predicate.matches``).

"Load" is the time from ``Engine(rules)`` until it has matched its first event (durable
rulesets may be loaded lazily). Also, each in a fresh subprocess (so one measurement's
garbage does not pollute the next): RSS with 10,000 rules and 100,000 open SLA windows
(heartbeat, after and calendar absences over 10,000 keys each, then all judged in one
``advance``), and deadline lateness — an engine driven by the real clock (sleep until
``next_due()``, then ``advance(now)``) with 1,000 windows due over ~10 s, idle and while
fed events, and with 10,000 windows due at the same instant. The children run one at a
time while the main process waits; the throughput and load figures come afterwards.

Throughput is counted per CPU second of the benchmark's own process (and, for reference,
per wall-clock second), so other load on a shared machine does not count against the
engine; lateness cannot be, so each lateness figure comes with the load average.

    python tests/perf/bench_engine.py [--out .bench] [--events 50000] [--baseline-events 20000]
        [--only shapes|throughput] [--shape-events 100000] [--shape-seconds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import durable_rules_engine  # type: ignore[import-not-found]  # C module, no stubs
import msgspec
from durable import engine as durable_engine
from figures import write_figures

from interlock.rules import Rule, absent, after, deadline, heartbeat, on, payload, resource
from interlock.rules.engine.engine import Engine
from interlock.rules.predicates import AnyPredicate, Predicate
from interlock.sdk.event import Event

SIZES = (1, 10, 100, 1_000, 10_000)
PER_NAME = 10
ONE_NAME = "bench.hot.done"
T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday, 07:00 in Berlin

TARGETS = {
    "one_percent_1000": 100_000.0,
    "all_match_1000": 15_000.0,
    "all_match_one_name_1000": 15_000.0,
    "load_10000_s": 5.0,
    "rss_mb": 500.0,
    "lateness_p99_ms": 100.0,
    "shape_ratio": 0.5,
}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- rules and events --------------------------------------------------------------------


def name_of(i: int, one_name: bool = False) -> str:
    """Rule ``i``'s event name: ten rules per name, or one name for all."""
    return ONE_NAME if one_name else f"bench.e{i // PER_NAME}.done"


def event_rule(i: int, one_name: bool = False) -> Rule:
    where = (resource.id == f"t{i}") & (payload.rows >= 1)
    if i % 4 == 0:
        where = where & resource.env.one_of(["prod", "staging"])
    return Rule(name=f"r{i}", when=on(name_of(i, one_name), where=where))


def event_rules(count: int, one_name: bool = False) -> list[Rule]:
    return [event_rule(i, one_name) for i in range(count)]


def hit(i: int, serial: int, one_name: bool = False) -> Event:
    return Event(
        event=name_of(i, one_name),
        resource={"id": f"t{i}", "env": "prod"},
        payload={"rows": 1 + serial % 1000, "note": "x" * 40},
        occurred=T0,
        source="bench",
    )


def make_events(
    count: int, rules: int, hit_every: int, routed_misses: bool, one_name: bool = False
) -> list[Event]:
    events = []
    for n in range(count):
        i = (n * 7919) % rules
        if n % hit_every == 0:
            events.append(hit(i, n, one_name))
        elif routed_misses:  # a listened name, a resource no rule wants
            events.append(
                Event(
                    event=name_of(i, one_name),
                    resource={"id": "other", "env": "prod"},
                    payload={"rows": 5},
                    occurred=T0,
                    source="bench",
                )
            )
        else:
            events.append(
                Event(
                    event=f"noise.e{n % 1000}.done",
                    resource={"id": f"t{i}"},
                    payload={"rows": 5},
                    occurred=T0,
                    source="bench",
                )
            )
    return events


# -- baselines -------------------------------------------------------------------------


class DictDispatch:
    """The plain-Python baseline: event name → rules → ``Predicate.matches``."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.by_name: dict[str, list[tuple[str, AnyPredicate | None]]] = {}
        for rule in rules:
            match = rule.when.match  # type: ignore[union-attr]  # event rules only
            for name in match.names:
                self.by_name.setdefault(name, []).append((rule.name, match.where))

    def match_batch(self, events: Sequence[Event]) -> list[list[str]]:
        by_name = self.by_name
        return [
            [rule for rule, where in by_name.get(e.event, ()) if where is None or where.matches(e)]
            for e in events
        ]


class _NoTimerHost(durable_engine.Host):  # type: ignore[misc]
    def _run(self) -> None:  # Host otherwise starts two timer threads (0.2 s dispatch)
        pass


class BareDurable:
    """The bare durable_rules baseline: whole events posted through durable's Host API.

    Rules go to rulesets of at most 256 by event name, and each event is posted to its
    name's ruleset. With every rule on one name they go to rulesets by number instead
    (one node of a ruleset must hold fewer than 512 alternatives, or durable hangs) and
    each event is posted to all of them.
    """

    def __init__(self, count: int, one_name: bool = False) -> None:
        self.found: list[str] = []
        self.one_name = one_name
        self.shards = max(1, -(-count // 256))
        rulesets: dict[str, dict[str, Any]] = {f"bare{s}": {} for s in range(self.shards)}
        for i in range(count):
            name = name_of(i, one_name)
            conds: list[dict[str, Any]] = [
                {"event": name},
                {"resource.id": f"t{i}"},
                {"$gte": {"payload.rows": 1}},
            ]
            if i % 4 == 0:
                conds.append({"$or": [{"resource.env": "prod"}, {"resource.env": "staging"}]})
            shard = f"bare{i // 256}" if one_name else self.shard(name)
            rulesets[shard][f"r{i}"] = {
                "all": [{"m": {"$and": conds}}],
                "run": self._action(f"r{i}"),
            }
        self.rulesets = [name for name, rules in rulesets.items() if rules]
        self.host = _NoTimerHost({name: rulesets[name] for name in self.rulesets})

    def shard(self, name: str) -> str:
        return f"bare{zlib.crc32(name.encode()) % self.shards}"

    def _action(self, rule: str) -> Callable[[Any], None]:
        def record(closure: Any) -> None:
            self.found.append(rule)

        return record

    def close(self) -> None:
        """Delete the rulesets (durable's Host has no way to)."""
        for ruleset in self.host._ruleset_list:
            durable_rules_engine.delete_ruleset(ruleset._handle)

    def match_batch(self, events: Sequence[Event]) -> list[list[str]]:
        results = []
        post, shard, found = self.host.post, self.shard, self.found
        names = set(self.rulesets)
        for event in events:
            found.clear()
            targets = self.rulesets if self.one_name else [shard(event.event)]
            message = msgspec.to_builtins(event)
            for ruleset in targets:
                if ruleset in names:
                    with contextlib.suppress(durable_engine.MessageNotHandledException):
                        post(ruleset, message)
            results.append(sorted(found))
        return results


# -- throughput ------------------------------------------------------------------------


def rate(
    run: Callable[[Sequence[Event]], object], events: Sequence[Event], rounds: int
) -> dict[str, float]:
    """Events per second of CPU time (this process's; other load on the machine does not
    count) and of wall-clock time: the first (cold) round and the best of ``rounds``."""
    cpu, wall = [], []
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        run(events)
        cpu.append(len(events) / max(time.process_time() - start_cpu, 1e-9))
        wall.append(len(events) / (time.perf_counter() - start))
    return {"first": cpu[0], "best": max(cpu), "wall_best": max(wall)}


def engine_matches(engine: Engine, events: Sequence[Event]) -> list[list[str]]:
    return [sorted(firing.rule for firing in engine.feed(event)) for event in events]


@dataclass
class Contender:
    rules: int
    engine: Engine
    dispatch: DictDispatch
    bare: BareDurable
    load: dict[str, float]


def load_engine(rules: list[Rule]) -> tuple[Engine, dict[str, float]]:
    """An engine ready to match: constructed, then one event fed (durable rulesets may be
    loaded lazily, on the first match)."""
    gc.collect()
    start, start_cpu = time.perf_counter(), time.process_time()
    engine = Engine(rules, now=T0)
    built = time.perf_counter()
    engine.feed_batch([hit(0, 1)])
    ready, ready_cpu = time.perf_counter(), time.process_time()
    return engine, {
        "construct_s": built - start,
        "ready_s": ready - start,
        "ready_cpu_s": ready_cpu - start_cpu,
    }


def contender(size: int, one_name: bool) -> Contender:
    rules = event_rules(size, one_name)
    engine, load = load_engine(rules)
    return Contender(size, engine, DictDispatch(rules), BareDurable(size, one_name), load)


class Budget(NamedTuple):
    """How many events each contender gets (events on one name cost far more)."""

    events: int
    rounds: int
    sample: int
    durable_events: int
    dict_events: int


def workload(c: Contender, events: list[Event], budget: Budget) -> dict[str, Any]:
    sample = events[: budget.sample]
    reference = [sorted(found) for found in c.dispatch.match_batch(sample)]
    assert engine_matches(c.engine, sample) == reference, "engine disagrees with Python"
    assert c.bare.match_batch(sample) == reference, "bare durable disagrees with Python"
    assert len(c.engine.feed_batch(sample)) == sum(map(len, reference))
    gc.collect()
    engine = rate(c.engine.feed_batch, events, budget.rounds)
    durable = rate(c.bare.match_batch, events[: budget.durable_events], 3)
    dispatch = rate(c.dispatch.match_batch, events[: budget.dict_events], 3)
    return {
        "engine": engine["best"],
        "engine_first_round": engine["first"],
        "engine_wall": engine["wall_best"],
        "durable": durable["best"],
        "durable_wall": durable["wall_best"],
        "dict": dispatch["best"],
        "dict_wall": dispatch["wall_best"],
        "events": len(events),
        "durable_events": min(len(events), budget.durable_events),
        "dict_events": min(len(events), budget.dict_events),
    }


class Workload(NamedTuple):
    label: str
    one_name: bool
    hit_every: int
    routed: bool
    sizes: tuple[int, ...]


WORKLOADS = (
    Workload("one_percent", False, 100, False, SIZES),
    Workload("one_percent_routed", False, 100, True, SIZES),
    Workload("all_match", False, 1, False, (1_000,)),
    # Every rule on one event name, each on its own resource.id (one rule per table).
    Workload("all_match_one_name", True, 1, False, (1_000, 2_000)),
    Workload("routed_one_name", True, 100, True, (1_000,)),
)


def throughput(args: argparse.Namespace, results: dict[str, Any]) -> None:
    for w in WORKLOADS:
        results[w.label] = {}
    results["engine_load_s"] = {}
    print(
        "events per CPU second of this process (wall clock in parentheses: it counts other\n"
        "load on the machine); engine cold = its first round\n"
        f"{'workload':<20}{'rules':>7}{'engine/s':>11}{'(wall)':>11}{'cold':>11}"
        f"{'durable/s':>11}{'(wall)':>9}{'dict/s':>11}{'(wall)':>11}   target"
    )
    families = sorted({(w.one_name, size) for w in WORKLOADS for size in w.sizes})
    for one_name, size in families:
        c = contender(size, one_name)
        if not one_name:
            results["engine_load_s"][str(size)] = c.load
        try:
            for w in WORKLOADS:
                if w.one_name != one_name or size not in w.sizes:
                    continue
                # Events on one name cost far more (the dict dispatch tries every rule).
                if one_name:
                    budget = Budget(args.events // 16, 3, 200, args.baseline_events // 20, 200)
                else:
                    budget = Budget(args.events, 5, 2000, args.baseline_events, args.events)
                events = make_events(budget.events, size, w.hit_every, w.routed, one_name)
                figures = workload(c, events, budget)
                results[w.label][str(size)] = figures
                target = TARGETS.get(f"{w.label}_{size}")
                print(
                    f"{w.label:<20}{size:>7}{figures['engine']:>11,.0f}"
                    f"{figures['engine_wall']:>11,.0f}{figures['engine_first_round']:>11,.0f}"
                    f"{figures['durable']:>11,.0f}{figures['durable_wall']:>9,.0f}"
                    f"{figures['dict']:>11,.0f}{figures['dict_wall']:>11,.0f}"
                    + (f"   >= {target:,.0f}" if target else "")
                )
        finally:
            c.bare.close()
        matcher = getattr(c.engine, "_matcher", None)  # internals: informative only
        if matcher is not None and hasattr(matcher, "stats"):
            key = f"{size}{' one name' if one_name else ''}"
            results.setdefault("matcher_stats", {})[key] = msgspec.to_builtins(matcher.stats)
        del c
        gc.collect()
    print(
        "engine load, constructed / ready to match (first event fed): "
        + ", ".join(
            f"{n} rules {load['construct_s']:.2f} / {load['ready_s']:.2f} s"
            f" ({load['ready_cpu_s']:.2f} s CPU)"
            for n, load in results["engine_load_s"].items()
        )
    )


# -- predicate shapes ------------------------------------------------------------------

SHAPE_NAME = "dw.table.updated"
SHAPES = ("eq", "glob", "regex", "startswith", "glob_numeric", "eq_numeric", "numeric", "mixed")


def shape_where(shape: str, i: int) -> Predicate:
    """Rule ``i``'s condition written as ``shape``; each holds for ``shape_hit(i, ...)``."""
    table = f"dw.t{i:04d}"
    if shape == "mixed":
        shape = ("glob", "regex", "startswith", "numeric")[i % 4]
    if shape == "eq":
        return resource.id == table
    if shape == "glob":
        return resource.id.glob(f"{table}*")
    if shape == "regex":
        return resource.id.matches(rf"^dw\.t{i:04d}(\.|$)")
    if shape == "startswith":
        return resource.id.startswith(table)
    if shape == "glob_numeric":
        return resource.id.glob(f"{table}*") & (payload.rows >= 1)
    if shape == "eq_numeric":
        return (resource.id == table) & (payload.rows >= 1)
    if shape == "numeric":
        return (payload.seq >= 10 * i) & (payload.seq < 10 * i + 5)
    raise ValueError(shape)


def shape_rules(shape: str, count: int) -> list[Rule]:
    return [
        Rule(name=f"r{i}", when=on(SHAPE_NAME, where=shape_where(shape, i))) for i in range(count)
    ]


def shape_events(count: int, rules: int) -> list[Event]:
    """1% of events are rule ``i``'s table (every shape of rule ``i`` holds); the others a
    table no rule watches, with a ``seq`` between two rules' ranges."""
    events = []
    for n in range(count):
        i = (n * 7919) % rules
        if n % 100 == 0:
            rid, rows, seq = f"dw.t{i:04d}", 1 + n % 1000, 10 * i + n % 5
        else:
            rid, rows, seq = f"dw.t{rules + n % 9000:04d}", 5, 10 * i + 7
        events.append(
            Event(
                event=SHAPE_NAME,
                resource={"id": rid},
                payload={"rows": rows, "seq": seq, "note": "x" * 40},
                occurred=T0,
                source="bench",
            )
        )
    return events


def shape_rate(engine: Engine, events: Sequence[Event], seconds: float) -> dict[str, float]:
    """Events per CPU second: a calibration round of 1,000 events, then rounds of as many
    events as take about ``seconds`` (at most all of them), best of three."""
    start = time.process_time()
    engine.feed_batch(events[:1_000])
    calibrated = 1_000 / max(time.process_time() - start, 1e-9)
    count = max(1_000, min(len(events), int(calibrated * seconds)))
    figures = rate(engine.feed_batch, events[:count], 3)
    return {"engine": figures["best"], "engine_wall": figures["wall_best"], "events": count}


def predicate_shapes(args: argparse.Namespace, results: dict[str, Any]) -> None:
    count = args.shape_rules
    events = shape_events(args.shape_events, count)
    figures: dict[str, dict[str, Any]] = {}
    print(
        f"predicate shapes: {count:,} rules on one event name, 1% matching "
        "(events per CPU second, wall in parentheses)\n"
        f"{'shape':<14}{'events/s':>11}{'(wall)':>11}{'events':>9}{'ratio to eq':>13}   target"
    )
    for shape in SHAPES:
        rules = shape_rules(shape, count)
        engine = Engine(rules, now=T0)
        sample = events[:300]
        reference = [sorted(found) for found in DictDispatch(rules).match_batch(sample)]
        assert engine_matches(engine, sample) == reference, f"{shape}: engine disagrees"
        gc.collect()
        figures[shape] = shape_rate(engine, events, args.shape_seconds)
        figures[shape]["ratio_to_eq"] = figures[shape]["engine"] / figures["eq"]["engine"]
        matcher = getattr(engine, "_matcher", None)  # internals: informative only
        if matcher is not None and hasattr(matcher, "stats"):
            figures[shape]["matcher_stats"] = msgspec.to_builtins(matcher.stats)
        del engine
        gc.collect()
        ratio = figures[shape]["ratio_to_eq"]
        print(
            f"{shape:<14}{figures[shape]['engine']:>11,.0f}{figures[shape]['engine_wall']:>11,.0f}"
            f"{figures[shape]['events']:>9,}{ratio:>13.2f}"
            + (f"   >= {TARGETS['shape_ratio']}" if shape != "eq" else "")
        )
    figures["glob_numeric"]["ratio_to_eq_numeric"] = (
        figures["glob_numeric"]["engine"] / figures["eq_numeric"]["engine"]
    )
    print(
        "glob_numeric / eq_numeric (the same rules with equality): "
        f"{figures['glob_numeric']['ratio_to_eq_numeric']:.2f}"
    )
    results["predicate_shapes"] = figures
    results.setdefault("targets", {}).update(
        {
            f"{shape} >= half of eq (1,000 rules on one name, 1% matching)": figures[shape][
                "ratio_to_eq"
            ]
            >= TARGETS["shape_ratio"]
            for shape in SHAPES
            if shape != "eq"
        }
    )


# -- memory (child process) ------------------------------------------------------------

KEYS = 10_000


def absence_rules() -> list[Rule]:
    """Ten absence rules, each over 10,000 keys: 100,000 open windows once fed."""
    keys = [f"k{n}" for n in range(KEYS)]
    rules = [
        Rule(name=f"hb{j}", when=absent(f"hb{j}.beat", by=heartbeat("1h"), for_each="resource.id"))
        for j in range(4)
    ]
    rules += [
        Rule(
            name=f"job{j}",
            when=absent(
                f"job{j}.finished",
                by=after(f"job{j}.started", within="2h"),
                for_each="payload.run",
            ),
        )
        for j in range(3)
    ]
    rules += [
        Rule(
            name=f"tbl{j}",
            when=absent(
                f"tbl{j}.updated",
                by=deadline("09:00", tz="Europe/Berlin"),
                for_each="resource.id",
                keys=keys,
            ),
        )
        for j in range(3)
    ]
    return rules


def window_events(j: int, start: int, stop: int) -> list[Event]:
    """Events that open (heartbeat, after) or fill (calendar) windows of absence rule j."""
    at = T0 + timedelta(minutes=1)
    if j < 4:
        return [
            Event(event=f"hb{j}.beat", resource={"id": f"k{n}"}, occurred=at, source="bench")
            for n in range(start, stop)
        ]
    if j < 7:
        return [
            Event(
                event=f"job{j - 4}.started",
                resource={"id": "scheduler"},
                payload={"run": f"k{n}"},
                occurred=at,
                source="bench",
            )
            for n in range(start, stop)
        ]
    return [  # half the declared tables report once; all 10,000 stay watched
        Event(event=f"tbl{j - 7}.updated", resource={"id": f"k{n}"}, occurred=at, source="bench")
        for n in range(start, stop)
        if n % 2 == 0
    ]


def child_rss() -> dict[str, Any]:
    gc.collect()
    figures: dict[str, Any] = {"rss_imported_mb": rss_mb()}
    rules = event_rules(10_000 - 10) + absence_rules()
    engine, load = load_engine(rules)
    figures["load_s"] = load["ready_s"]
    del rules
    gc.collect()
    figures["rss_10000_rules_mb"] = rss_mb()
    start = time.perf_counter()
    fed = 0
    for j in range(10):
        for chunk in range(0, KEYS, 2_000):
            events = window_events(j, chunk, chunk + 2_000)
            engine.feed_batch(events)
            fed += len(events)
    figures["feed_windows_s"] = time.perf_counter() - start
    figures["window_events_fed"] = fed
    # every event-rule ruleset asserts once, so durable holds whatever it keeps per use
    engine.feed_batch([hit(i, i) for i in range(0, 10_000 - 10, 7)])
    del events
    gc.collect()
    figures["rss_10000_rules_100000_windows_mb"] = rss_mb()
    start = time.perf_counter()
    state = engine.export_state()
    figures["export_s"] = time.perf_counter() - start
    figures["export_mb"] = len(state) / 1e6
    saved = json.loads(state)["rules"]
    windows = {}
    for name, item in saved.items():
        data = item["state"]
        if name.startswith("hb"):
            windows[name] = len(data["start"])  # each key's silence is a window
        elif name.startswith("job"):
            windows[name] = sum(len(opened) for opened in data["open"].values())
        elif name.startswith("tbl"):
            windows[name] = len(data["keys"])  # each watched key waits for this deadline
    figures["open_windows"] = sum(windows.values())
    figures["open_windows_by_rule"] = windows
    start = time.perf_counter()
    restored = Engine(absence_rules(), now=T0)
    restored.import_state(state)
    figures["import_10_absence_rules_s"] = time.perf_counter() - start
    # Every window's deadline passes at once (a backlog caught up, a 09:00 for 10,000
    # tables): how long one advance takes to judge them all — the lateness of the last.
    later = T0 + timedelta(hours=3)
    start = time.perf_counter()
    fired = engine.advance(later)
    figures["burst_advance_s"] = time.perf_counter() - start
    figures["burst_firings"] = len(fired)
    again = restored.advance(later)
    assert sorted(f.id for f in again) == sorted(f.id for f in fired), "restored engine differs"
    return figures


# -- deadline lateness (child process) -------------------------------------------------


def spread_windows(spread_s: float) -> Engine:
    """1,000 windows due one after another over ``spread_s`` seconds from now + 1 s.

    500 heartbeat keys (5 rules) and 500 after-windows (5 rules), next to 1,000 event rules.
    """
    every = timedelta(seconds=10)
    rules = event_rules(1_000)
    rules += [
        Rule(name=f"hb{j}", when=absent(f"hb{j}.beat", by=heartbeat(every), for_each="resource.id"))
        for j in range(5)
    ]
    rules += [
        Rule(
            name=f"job{j}",
            when=absent(
                f"job{j}.finished",
                by=after(f"job{j}.started", within=every),
                for_each="payload.run",
            ),
        )
        for j in range(5)
    ]
    # The watermark starts a minute back, so every opening event is newer than it.
    engine = Engine(rules, now=datetime.now(UTC) - timedelta(minutes=1))
    first_due = datetime.now(UTC) + timedelta(seconds=1)
    events = []
    for n in range(1_000):
        due = first_due + timedelta(seconds=spread_s * n / 1_000)
        j, k = n % 10, n // 10
        if j < 5:
            events.append(
                Event(
                    event=f"hb{j}.beat", resource={"id": f"w{k}"}, occurred=due - every, source="b"
                )
            )
        else:
            events.append(
                Event(
                    event=f"job{j - 5}.started",
                    resource={"id": "scheduler"},
                    payload={"run": f"run{k}"},
                    occurred=due - every,
                    source="b",
                )
            )
    engine.feed_batch(events)
    assert engine.next_due() == first_due, (engine.next_due(), first_due)
    return engine


def burst_windows(keys: int) -> Engine:
    """``keys`` windows due at the same instant, 3 s from now: a heartbeat rule over
    declared keys (as "each of these tables by 09:00" is), next to 1,000 event rules."""
    rule = Rule(
        name="burst",
        when=absent(
            "burst.beat",
            by=heartbeat("3s"),
            for_each="resource.id",
            keys=[f"k{n}" for n in range(keys)],
        ),
    )
    engine = Engine([*event_rules(1_000), rule], now=datetime.now(UTC))
    engine.feed_batch([hit(0, 1)])  # ready to match
    return engine


def child_lateness(mode: str, spread_s: float, load_rate: int) -> dict[str, Any]:
    """Drive an engine by the real clock: sleep until ``next_due()``, then ``advance(now)``.

    Lateness is the time ``advance`` returned a firing minus its deadline. With
    ``load_rate`` > 0 the loop also feeds that many events per second (1% matching, in
    batches of 200) between deadlines, as a consumer would; a deadline that is due goes
    first.
    """
    engine = spread_windows(spread_s) if mode == "spread" else burst_windows(int(spread_s))
    load = make_events(20_000, 1_000, 100, False) if load_rate else []
    lateness: list[float] = []
    advance_s: list[float] = []
    batch, fed, cursor = 200, 0, 0
    started = time.time()
    while (due := engine.next_due()) is not None:
        wall_due = due.timestamp()
        now = time.time()
        if load_rate:
            next_batch = started + fed / load_rate
            if next_batch <= now < wall_due:
                engine.feed_batch(load[cursor : cursor + batch])
                cursor = (cursor + batch) % len(load)
                fed += batch
                continue
            wake = min(wall_due, next_batch) if now < wall_due else wall_due
        else:
            wake = wall_due
        if wake > now:
            time.sleep(wake - now)
            if time.time() < wall_due:
                continue  # woke for a batch of events
        begun = time.time()
        firings = engine.advance(datetime.now(UTC))
        returned = time.time()
        advance_s.append(returned - begun)
        lateness += [returned - firing.at.timestamp() for firing in firings]
    lateness.sort()
    return {
        "mode": mode,
        "windows": len(lateness),
        "spread_s": spread_s if mode == "spread" else 0.0,
        "load_events_per_s": load_rate,
        "events_fed": fed,
        "fed_events_per_s": fed / (time.time() - started),
        "advances": len(advance_s),
        "longest_advance_ms": 1000 * max(advance_s),
        "p50_ms": 1000 * statistics.median(lateness),
        "p99_ms": 1000 * lateness[int(0.99 * (len(lateness) - 1))],
        "max_ms": 1000 * lateness[-1],
        "min_ms": 1000 * lateness[0],
    }


def start_child(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--child", *argv], stdout=subprocess.PIPE, text=True
    )


def child_result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"benchmark child {process.args!r} failed ({process.returncode})")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["load_average_after"] = os.getloadavg()
    return result


# -- main ------------------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "met   " if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--baseline-events", type=int, default=20_000)
    parser.add_argument("--spread", type=float, default=10.0, help="lateness: seconds of deadlines")
    parser.add_argument("--load-rate", type=int, default=20_000, help="lateness: events/s fed")
    parser.add_argument("--burst", type=int, default=10_000, help="lateness: windows due at once")
    parser.add_argument(
        "--only",
        choices=["shapes", "throughput"],
        help="run only the predicate shapes or the throughput workloads (engine_<which>.json)",
    )
    parser.add_argument("--shape-rules", type=int, default=1_000, help="shapes: rules on one name")
    parser.add_argument("--shape-events", type=int, default=100_000, help="shapes: events at most")
    parser.add_argument(
        "--shape-seconds", type=float, default=2.0, help="shapes: CPU seconds a round aims at"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == ["rss"]:
            print(json.dumps(child_rss()))
        else:
            mode, amount, load_rate = args.child
            print(json.dumps(child_lateness(mode, float(amount), int(load_rate))))
        return

    began = time.perf_counter()
    engine_dir = Path(sys.modules[Engine.__module__].__file__ or ".").parent
    digest = hashlib.sha256()
    for source in sorted(engine_dir.glob("*.py")):
        digest.update(source.read_bytes())
    results: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "engine_sources_sha256": digest.hexdigest()[:16],
        "load_average_start": os.getloadavg(),
    }
    print(
        f"engine sources {results['engine_sources_sha256']}; load average "
        + " ".join(f"{x:.2f}" for x in results["load_average_start"])
    )
    if args.only:
        (predicate_shapes if args.only == "shapes" else throughput)(args, results)
        results["wall_s"] = time.perf_counter() - began
        results["load_average_end"] = os.getloadavg()
        out = write_figures(args.out / f"engine_{args.only}.json", results)
        print(f"wrote {out} ({results['wall_s']:.0f} s)")
        return
    # One child at a time, while this process waits; then the throughput figures.
    memory = child_result(start_child("rss"))
    idle = child_result(start_child("spread", str(args.spread), "0"))
    loaded = child_result(start_child("spread", str(args.spread), str(args.load_rate)))
    burst = child_result(start_child("burst", str(args.burst), "0"))
    results["memory"] = memory
    results["lateness"] = {"idle": idle, "under_load": loaded, "burst": burst}

    print(
        f"RSS (fresh process): {memory['rss_imported_mb']:.0f} MB after imports, "
        f"{memory['rss_10000_rules_mb']:.0f} MB with 10,000 rules, "
        f"{memory['rss_10000_rules_100000_windows_mb']:.0f} MB with 10,000 rules and "
        f"{memory['open_windows']:,} open SLA windows   target < {TARGETS['rss_mb']:.0f} MB"
    )
    print(
        f"  (load {memory['load_s']:.1f} s, {memory['window_events_fed']:,} events to open the "
        f"windows {memory['feed_windows_s']:.1f} s, export_state {memory['export_mb']:.1f} MB in "
        f"{memory['export_s']:.2f} s, import into 10 absence rules "
        f"{memory['import_10_absence_rules_s']:.2f} s)"
    )
    print(
        f"all windows due at once: one advance judged {memory['burst_firings']:,} of them in "
        f"{memory['burst_advance_s'] * 1000:.0f} ms (the lateness of the last firing); the "
        "restored engine fired the same"
    )
    for label, figures in (("idle", idle), ("under load", loaded), ("burst", burst)):
        if figures["mode"] == "burst":
            what = f"{figures['windows']:,} windows due at the same instant"
        else:
            what = f"{figures['windows']:,} windows over {figures['spread_s']:.0f} s"
        if figures["load_events_per_s"]:
            what += f", fed {figures['load_events_per_s']:,} events/s"
        print(
            f"deadline lateness ({label}: {what}): p50 {figures['p50_ms']:.1f} ms, p99 "
            f"{figures['p99_ms']:.1f} ms, max {figures['max_ms']:.1f} ms (longest advance "
            f"{figures['longest_advance_ms']:.1f} ms; load average after "
            f"{figures['load_average_after'][0]:.1f})   "
            f"target p99 < {TARGETS['lateness_p99_ms']:.0f} ms"
        )

    throughput(args, results)
    predicate_shapes(args, results)
    load_10000 = results["engine_load_s"]["10000"]["ready_cpu_s"]
    print(
        f"load 10,000 rules into an Engine, ready to match: {load_10000:.2f} s CPU, "
        f"{results['engine_load_s']['10000']['ready_s']:.2f} s wall (constructor "
        f"{results['engine_load_s']['10000']['construct_s']:.2f} s; in the memory child, "
        f"with 10 absence rules: {memory['load_s']:.2f} s)   "
        f"target < {TARGETS['load_10000_s']:.0f} s"
    )

    one, routed = results["one_percent"], results["one_percent_routed"]
    targets = {
        "1% matching >= 100,000/s at 1,000 rules": one["1000"]["engine"]
        >= TARGETS["one_percent_1000"],
        "all matching >= 15,000/s at 1,000 rules": results["all_match"]["1000"]["engine"]
        >= TARGETS["all_match_1000"],
        "all matching >= 15,000/s at 1,000 rules, all on one event name": results[
            "all_match_one_name"
        ]["1000"]["engine"]
        >= TARGETS["all_match_one_name_1000"],
        "10,000 rules >= half of 10 rules (1% matching)": one["10000"]["engine"]
        >= one["10"]["engine"] / 2,
        "10,000 rules >= half of 10 rules (1% matching, misses routed)": routed["10000"]["engine"]
        >= routed["10"]["engine"] / 2,
        "load 10,000 rules < 5 s": load_10000 < TARGETS["load_10000_s"],
        "RSS < 500 MB with 10,000 rules and 100,000 open windows": memory[
            "rss_10000_rules_100000_windows_mb"
        ]
        < TARGETS["rss_mb"],
        "deadline lateness p99 < 100 ms (idle)": idle["p99_ms"] < TARGETS["lateness_p99_ms"],
        "deadline lateness p99 < 100 ms (under load)": loaded["p99_ms"]
        < TARGETS["lateness_p99_ms"],
        f"deadline lateness p99 < 100 ms ({args.burst:,} due at once)": burst["p99_ms"]
        < TARGETS["lateness_p99_ms"],
    }
    targets.update(results.get("targets", {}))  # the predicate shapes'
    results["targets"] = targets
    print(
        f"10,000 vs 10 rules (1% matching): {one['10000']['engine']:,.0f} vs "
        f"{one['10']['engine']:,.0f}/s; misses routed: {routed['10000']['engine']:,.0f} vs "
        f"{routed['10']['engine']:,.0f}/s   target >= half"
    )
    for target, met in targets.items():
        print(f"{verdict(met)} {target}")
    results["wall_s"] = time.perf_counter() - began
    results["load_average_end"] = os.getloadavg()
    write_figures(args.out / "engine.json", results)
    print(f"wrote {args.out / 'engine.json'} ({results['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
