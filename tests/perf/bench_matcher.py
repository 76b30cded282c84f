"""Matcher throughput against bare durable_rules and a dict dispatch, in the same run.

Specs: ``N`` specs, ten per event name (``bench.e<k>.done``), each ``resource.id == t<i>``
and ``payload.rows >= 1`` (every fourth also ``resource.env`` in a two-value OneOf).

- ``one_percent``: 1% of events match one spec; the rest carry names no spec listens to.
- ``one_percent_routed``: 1% match; the rest carry listened names and fail the predicate.
- ``all_match``: every event matches exactly one spec (1,000 specs).

Each workload runs through ``Matcher.match_batch`` and two baselines: bare durable_rules
(its Python ``Host`` without timer threads; the same rules with ``m.event == name`` first,
one ruleset per 256 rules keyed by event name, one ``post`` per event, the whole event
posted) and a dict dispatch (name → specs → ``Predicate.matches``). Also: time to load
10,000 specs, RSS, and RSS across 100,000 matching events. Rates are events per CPU
second of the benchmark process (best of several rounds); load times are wall clock.

    python tests/perf/bench_matcher.py [--out .bench] [--events 50000] [--baseline-events 20000]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import durable_rules_engine  # type: ignore[import-not-found]
import msgspec
from durable import engine
from figures import write_figures

from interlock.rules.engine import Matcher, MatchSpec
from interlock.rules.predicates import AllOf, AnyPredicate, Compare, OneOf
from interlock.sdk.event import Event

SIZES = (1, 10, 100, 1_000, 10_000)
PER_NAME = 10


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def name_of(i: int) -> str:
    return f"bench.e{i // PER_NAME}.done"


def make_specs(count: int) -> list[MatchSpec]:
    specs = []
    for i in range(count):
        items: list[AnyPredicate] = [
            Compare(path="resource.id", op="==", value=f"t{i}"),
            Compare(path="payload.rows", op=">=", value=1),
        ]
        if i % 4 == 0:
            items.append(OneOf(path="resource.env", values=("prod", "staging")))
        specs.append(MatchSpec(f"spec/{i}", (name_of(i),), AllOf(items=tuple(items))))
    return specs


def hit(i: int, serial: int) -> Event:
    return Event(
        event=name_of(i),
        resource={"id": f"t{i}", "env": "prod"},
        payload={"rows": 1 + serial % 1000, "note": "x" * 40},
        source="bench",
    )


def make_events(count: int, specs: int, hit_every: int, routed_misses: bool) -> list[Event]:
    events = []
    for n in range(count):
        i = (n * 7919) % specs
        if n % hit_every == 0:
            events.append(hit(i, n))
        elif routed_misses:  # a listened name, a resource no spec wants
            events.append(
                Event(
                    event=name_of(i), resource={"id": "other", "env": "prod"}, payload={"rows": 5}
                )
            )
        else:
            events.append(
                Event(
                    event=f"noise.e{n % 1000}.done", resource={"id": f"t{i}"}, payload={"rows": 5}
                )
            )
    return events


class DictDispatch:
    """The plain-Python baseline: event name → specs → Predicate.matches."""

    def __init__(self, specs: Sequence[MatchSpec]) -> None:
        self.by_name: dict[str, list[MatchSpec]] = {}
        for spec in specs:
            for name in spec.names:
                self.by_name.setdefault(name, []).append(spec)

    def match_batch(self, events: Sequence[Event]) -> list[list[str]]:
        by_name = self.by_name
        return [
            [s.id for s in by_name.get(e.event, ()) if s.where is None or s.where.matches(e)]
            for e in events
        ]


class _NoTimerHost(engine.Host):  # type: ignore[misc]
    def _run(self) -> None:  # Host otherwise starts two timer threads (0.2 s dispatch)
        pass


class BareDurable:
    """The bare durable_rules baseline: whole events posted through durable's Host API."""

    def __init__(self, specs: Sequence[MatchSpec]) -> None:
        self.found: list[str] = []
        names = sorted({name for spec in specs for name in spec.names})
        self.shards = max(1, -(-len(specs) // 256))
        rulesets: dict[str, dict[str, Any]] = {f"bare{s}": {} for s in range(self.shards)}
        for index, spec in enumerate(specs):
            (name,) = spec.names
            assert isinstance(spec.where, AllOf)
            conds: list[dict[str, Any]] = [{"event": name}]
            for item in spec.where.items:
                if isinstance(item, Compare) and item.op == "==":
                    conds.append({item.path: item.value})
                elif isinstance(item, Compare):
                    conds.append({"$gte": {item.path: item.value}})
                elif isinstance(item, OneOf):
                    conds.append({"$or": [{item.path: value} for value in item.values]})
            rulesets[self.shard(name)][f"r{index}"] = {
                "all": [{"m": {"$and": conds}}],
                "run": self._action(spec.id),
            }
        assert names
        self.host = _NoTimerHost(rulesets)

    def shard(self, name: str) -> str:
        return f"bare{zlib.crc32(name.encode()) % self.shards}"

    def _action(self, spec_id: str) -> Callable[[Any], None]:
        def record(closure: Any) -> None:
            self.found.append(spec_id)

        return record

    def close(self) -> None:
        """Delete the rulesets (durable's Host has no way to)."""
        for ruleset in self.host._ruleset_list:
            durable_rules_engine.delete_ruleset(ruleset._handle)

    def match_batch(self, events: Sequence[Event]) -> list[list[str]]:
        results = []
        post, shard, found = self.host.post, self.shard, self.found
        for event in events:
            found.clear()
            with contextlib.suppress(engine.MessageNotHandledException):  # no match
                post(shard(event.event), msgspec.to_builtins(event))
            results.append(list(found))
        return results


def throughput(
    run: Callable[[Sequence[Event]], object], events: Sequence[Event], rounds: int
) -> float:
    """Events per CPU second of this process, best of ``rounds``.

    CPU time, not wall time: the machine may be shared, and a process waiting for a CPU
    is not working. Everything here runs on one thread (durable never releases the GIL).
    """
    best = 0.0
    for _ in range(rounds):
        start = time.process_time()
        run(events)
        best = max(best, len(events) / (time.process_time() - start))
    return best


def workload(specs: list[MatchSpec], events: list[Event], baseline_events: int) -> dict[str, float]:
    with Matcher(specs) as matcher:
        dispatch, bare = DictDispatch(specs), BareDurable(specs)
        try:
            sample = events[:2000]
            reference = dispatch.match_batch(sample)
            assert matcher.match_batch(sample) == reference, "matcher disagrees with Python"
            assert bare.match_batch(sample) == reference, "bare durable disagrees with Python"
            figures = {
                "matcher": throughput(matcher.match_batch, events, 5),
                "durable": throughput(bare.match_batch, events[:baseline_events], 3),
                "dict": throughput(dispatch.match_batch, events, 3),
            }
        finally:
            bare.close()
        stats = matcher.stats
        figures["rulesets"] = stats.rulesets
        figures["posts_per_event"] = stats.posts / max(1, stats.events)
        return figures


def load_and_memory() -> dict[str, float]:
    """Load 10,000 specs; RSS once every ruleset holds durable state; RSS across 100k hits."""
    gc.collect()
    rss_start = rss_mb()
    specs = make_specs(10_000)
    start = time.perf_counter()
    matcher = Matcher(specs)
    load = time.perf_counter() - start
    hits = [hit(i % 10_000, i) for i in range(100_000)]
    start = time.perf_counter()
    matcher.add(MatchSpec("late", (name_of(5),), Compare(path="payload.rows", op="==", value=7)))
    matcher.match(hits[5])  # reloads the one ruleset the new spec went to
    add_one = time.perf_counter() - start
    matcher.match_batch(hits[:10_000])  # every ruleset now holds durable's per-sid state
    rss_loaded = rss_mb()
    matcher.match_batch(hits)
    rss_after = rss_mb()
    rulesets = matcher.stats.rulesets
    matcher.close()
    start = time.perf_counter()
    with Matcher() as one_by_one:  # how the engine registers rules
        for spec in specs:
            one_by_one.add(spec)
        one_by_one.match(hits[0])
    load_adds = time.perf_counter() - start
    return {
        "load_10000_s": load,
        "load_10000_one_add_at_a_time_s": load_adds,
        "add_one_at_10000_s": add_one,
        "rulesets_at_10000": rulesets,
        "rss_start_mb": rss_start,
        "rss_10000_specs_mb": rss_loaded,
        "rss_after_100000_more_matches_mb": rss_after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--baseline-events", type=int, default=20_000)
    args = parser.parse_args()
    results: dict[str, Any] = {}

    memory = results["load_and_memory"] = load_and_memory()
    print(
        f"load 10,000 specs: {memory['load_10000_s']:.2f} s "
        f"({memory['rulesets_at_10000']:.0f} rulesets), "
        f"{memory['load_10000_one_add_at_a_time_s']:.2f} s one add() at a time; "
        f"add one spec at 10,000 and match: {memory['add_one_at_10000_s'] * 1000:.1f} ms"
    )
    print(
        f"RSS: {memory['rss_start_mb']:.0f} MB before, {memory['rss_10000_specs_mb']:.0f} MB with "
        f"10,000 specs loaded and warm, {memory['rss_after_100000_more_matches_mb']:.0f} MB "
        "after 100,000 more matching events"
    )

    print(f"{'workload':<22}{'specs':>7}{'matcher/s':>12}{'durable/s':>12}{'dict/s':>12}")
    for label, hit_every, routed, sizes in (
        ("one_percent", 100, False, SIZES),
        ("one_percent_routed", 100, True, SIZES),
        ("all_match", 1, False, (1_000,)),
    ):
        results[label] = {}
        for size in sizes:
            gc.collect()
            events = make_events(args.events, size, hit_every, routed)
            figures = workload(make_specs(size), events, args.baseline_events)
            results[label][str(size)] = figures
            print(
                f"{label:<22}{size:>7}{figures['matcher']:>12,.0f}"
                f"{figures['durable']:>12,.0f}{figures['dict']:>12,.0f}"
                f"   rulesets={figures['rulesets']:.0f}"
                f" posts/event={figures['posts_per_event']:.3f}"
            )

    one, routed_ = results["one_percent"], results["one_percent_routed"]
    targets = {
        "1% matching >= 100,000/s at 1,000": one["1000"]["matcher"] >= 100_000,
        "all matching >= 15,000/s at 1,000": results["all_match"]["1000"]["matcher"] >= 15_000,
        "10,000 >= half of 10 (1% matching)": one["10000"]["matcher"] >= one["10"]["matcher"] / 2,
        "10,000 >= half of 10 (1% matching, misses routed to durable)": routed_["10000"]["matcher"]
        >= routed_["10"]["matcher"] / 2,
        "load 10,000 < 5 s": memory["load_10000_s"] < 5,
        "load 10,000 one add() at a time < 5 s": memory["load_10000_one_add_at_a_time_s"] < 5,
    }
    results["targets"] = targets
    for target, met in targets.items():
        print(f"{'met   ' if met else 'MISSED'} {target}")
    write_figures(args.out / "matcher.json", results)
    print(f"wrote {args.out / 'matcher.json'}")


if __name__ == "__main__":
    main()
