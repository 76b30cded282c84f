"""The matcher: for each event, which registered match specs it satisfies.

A :class:`MatchSpec` is what the engine registers per trigger: event-name patterns and
an optional predicate. :class:`Matcher` answers ``match(event)`` with the ids of the
specs the event satisfies, in registration order, exactly as ``Predicate.matches``
would (hypothesis-tested), with durable_rules and an index doing the condition matching:

1. The event name goes through a :class:`~interlock.rules.engine.names.NameIndex` and a
   per-name plan cache: an event no pattern reaches costs a dict lookup and never
   reaches durable.
2. Specs without a predicate match on the name alone.
3. A predicate from which :mod:`.predicate_index` extracts a necessary condition — a
   string (equality, ``one_of``), a string prefix (a Glob's literal start, so
   ``startswith``; a Regex's after ``^``), a numeric interval — is found through that
   index in Python: the event's value at the path finds the candidates (a dict probe,
   one per prefix length present, a bisect), each
   confirmed with ``Predicate.matches`` unless its key says all the predicate does.
   1,000 glob rules on one name cost a probe or two per event instead of 1,000 checks,
   1,000 numeric ranges a bisect instead of a durable post through a node of 1,000
   tests. A predicate neither durable nor the index narrows (an unanchored Regex) is
   checked in Python on every event of its name.
4. Every other predicate is compiled (:mod:`.durable_compiler`) into a durable rule
   under its name pattern; identical conditions share one rule. Rules are packed into
   rulesets of at most ``rules_per_ruleset`` rules (:mod:`.durable_pool`), each checked
   against durable's structural limits (:mod:`.durable_limits`) and split until it is
   within them. Changes reload the rulesets they touch, once, before the next match.
5. The event is projected onto the few slots the reached rules read, asserted once per
   ruleset it reaches (:mod:`.durable_rulesets`), every fired rule is collected, and
   hits durable could not decide exactly are confirmed with ``Predicate.matches``. A
   ruleset whose rules all require one path to equal one of a few strings (one rule
   per table: ``resource.id == "dw.sales"``) is skipped by an event whose value there
   is none of them, so 1,000 such rules on one name cost one post, not one per ruleset.
   With the index on (the default) durable keeps only what the index cannot narrow;
   ``Matcher(index=False)`` leaves it every predicate it can narrow, the index unused.

durable_rules holds no locks and never releases the GIL, so a matcher belongs to the
thread that created it; calls from any other thread raise ``RuntimeError``. It starts no
threads and uses no durable timers.
"""

from __future__ import annotations

import itertools
import logging
import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import msgspec

from interlock.rules.engine.durable_compiler import Compiled, Cond, compile_predicate
from interlock.rules.engine.durable_pool import RulesetPool, close_all
from interlock.rules.engine.durable_rulesets import (
    Counters,
    DurableRule,
    Post,
    Ruleset,
)
from interlock.rules.engine.names import NameIndex
from interlock.rules.engine.predicate_index import Key, Probe, SpecIndex, index_keys
from interlock.rules.names import check_pattern, pattern_matches
from interlock.rules.predicates import MISSING, AnyPredicate
from interlock.sdk.event import Event

__all__ = ["MatchSpec", "Matcher", "MatcherStats"]

logger = logging.getLogger(__name__)

_MATCHERS = itertools.count(1)
_PLAN_CACHE_SIZE = 65_536


class MatchSpec(msgspec.Struct, frozen=True):
    """What the engine registers per trigger.

    ``names`` are event-name patterns (``s3.object.*``, ``airflow.>``); ``where`` is the
    predicate an event must also satisfy (``None``: the name is enough).
    """

    id: str
    """Unique among the matcher's specs, e.g. ``"sales-sla/0"``."""
    names: tuple[str, ...]
    """Event-name patterns: tokens, ``*`` for one token, a final ``>`` for one or more."""
    where: AnyPredicate | None = None
    """What a matching event must also satisfy; ``None``: the name is enough."""


class MatcherStats(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of a matcher's size and of what its events cost so far."""

    specs: int
    """Registered specs."""
    rulesets: int
    """durable rulesets loaded."""
    durable_rules: int
    """durable rules (specs with the same pattern and condition share one)."""
    python_only_specs: int
    """Specs whose predicate durable cannot narrow: checked in Python on a name match."""
    indexed_specs: int = 0
    """Specs found through the Python index by a necessary condition (a string prefix, a
    numeric interval, a string), confirmed with ``Predicate.matches`` where inexact."""
    events: int
    """Events matched."""
    routed: int
    """Events posted to durable (to one ruleset or more)."""
    short_circuited: int
    """Events answered without durable: no pattern reached, or name/Python-only specs."""
    posts: int
    """Facts asserted into durable."""
    checks: int
    """``Predicate.matches`` calls (confirming inexact hits and index candidates,
    Python-only specs, fallbacks)."""
    fallbacks: int
    """Posts answered in Python because durable cannot hold the event exactly (a huge
    int, a NaN, a lone surrogate) or returned an error."""
    durable_errors: int
    """Errors durable returned (each also counted as a fallback)."""


_INDEXED = Compiled(True, False)
"""What an indexed spec holds for durable: nothing (candidates are confirmed in Python)."""


class _Entry(NamedTuple):
    spec: MatchSpec
    seq: int
    compiled: Compiled
    keys: tuple[Key, ...] | None


class _Group:
    """Everything registered under one name pattern."""

    __slots__ = ("always", "indexed", "python", "rules")

    def __init__(self) -> None:
        self.always: dict[int, None] = {}
        self.python: dict[int, AnyPredicate] = {}
        self.rules: dict[Cond, DurableRule] = {}
        self.indexed = SpecIndex()

    def empty(self) -> bool:
        return not (self.always or self.python or self.rules or len(self.indexed))


class _Plan(NamedTuple):
    always: frozenset[int]
    python: tuple[tuple[int, AnyPredicate], ...]
    posts: tuple[Post, ...]
    probes: tuple[Probe, ...]


_NOTHING = _Plan(frozenset(), (), (), ())


class Matcher:
    """Match events against specs; see the module documentation.

        where = Compare(path="resource.id", op="==", value="dw.sales")
        matcher = Matcher([MatchSpec("sales/0", ("db.table.updated",), where)])
        matcher.match(event)  # ["sales/0"] or []

    ``rules_per_ruleset`` bounds each durable ruleset (durable's own limit is 4,096
    rules, far past where its per-node tables overflow); a ruleset is split further
    whenever its rules would break one of durable's structural limits. ``index=False``
    leaves to durable every predicate it can narrow (see the module documentation). The
    thread that creates a matcher owns it: any other raises ``RuntimeError``.
    """

    def __init__(
        self,
        specs: Iterable[MatchSpec] = (),
        *,
        rules_per_ruleset: int = 256,
        index: bool = True,
    ) -> None:
        if not 1 <= rules_per_ruleset <= 4000:
            raise ValueError(f"rules_per_ruleset must be 1 to 4000, not {rules_per_ruleset}")
        self._use_index = index
        self._owner = threading.get_ident()
        self._owner_name = threading.current_thread().name
        self._seqs = itertools.count()
        self._entries: dict[str, _Entry] = {}
        self._ids: dict[int, str] = {}
        self._index: NameIndex[str] = NameIndex()
        self._groups: dict[str, _Group] = {}
        self._pool = RulesetPool(f"interlock-{next(_MATCHERS)}", rules_per_ruleset)
        self._plans: dict[str, _Plan] = {}
        self._counters = Counters()
        self._events = self._routed = self._short = 0
        self._closed = False
        self._finalizer = weakref.finalize(self, close_all, self._pool.rulesets)
        placing: list[DurableRule] = []
        for spec in specs:
            placing += self._register(self._entry(spec, None))
        self._pool.place(placing)
        self._flush()

    # -- the public API ---------------------------------------------------------------

    def add(self, spec: MatchSpec) -> None:
        """Register ``spec``; ``ValueError`` if its id is taken or a pattern is invalid.

        The durable rulesets it touches are reloaded on the next match, once however
        many specs were added, removed or replaced since.
        """
        self._check()
        self._pool.place(self._register(self._entry(spec, None)))

    def remove(self, spec_id: str) -> None:
        """Unregister the spec ``spec_id``; ``KeyError`` if there is none."""
        self._check()
        entry = self._entries.get(spec_id)
        if entry is None:
            raise KeyError(f"no match spec {spec_id!r} is registered")
        self._unregister(entry)

    def replace(self, spec: MatchSpec) -> None:
        """Replace the spec with ``spec.id``, keeping its place in the match order."""
        self._check()
        old = self._entries.get(spec.id)
        if old is None:
            raise KeyError(f"no match spec {spec.id!r} is registered (use add)")
        new = self._entry(spec, old.seq)
        self._unregister(old)
        self._pool.place(self._register(new))

    def match(self, event: Event) -> list[str]:
        """The ids of the specs ``event`` satisfies, in registration order."""
        self._check()
        if self._pool.dirty:
            self._flush()
        return self._match(event)

    def match_batch(self, events: Sequence[Event]) -> list[list[str]]:
        """:meth:`match` for each event, in order."""
        self._check()
        if self._pool.dirty:
            self._flush()
        match = self._match
        return [match(event) for event in events]

    def match_isolated(self, event: Event) -> tuple[list[str], dict[str, Exception]]:
        """:meth:`match` without durable, one spec at a time; the slow path after a failure.

        Returns the ids of the specs ``event`` satisfies (in registration order) and, for
        each spec whose predicate raised, the exception: one broken spec does not keep
        the event from the others.
        """
        self._check()
        matched: list[tuple[int, str]] = []
        failed: dict[str, Exception] = {}
        for spec_id, entry in self._entries.items():
            spec = entry.spec
            if not any(pattern_matches(pattern, event.event) for pattern in spec.names):
                continue
            try:
                if spec.where is None or spec.where.matches(event):
                    matched.append((entry.seq, spec_id))
            except Exception as exc:  # noqa: BLE001 - the per-spec boundary
                failed[spec_id] = exc
        return [spec_id for _, spec_id in sorted(matched)], failed

    @property
    def stats(self) -> MatcherStats:
        """Counts of specs, rulesets and rules, and of what events cost so far."""
        self._check()
        if self._pool.dirty:
            self._flush()
        counters = self._counters
        return MatcherStats(
            specs=len(self._entries),
            rulesets=len(self._pool.rulesets),
            durable_rules=sum(len(ruleset.rules) for ruleset in self._pool.rulesets),
            python_only_specs=len({seq for group in self._groups.values() for seq in group.python}),
            indexed_specs=len(
                {seq for group in self._groups.values() for seq in group.indexed.specs()}
            ),
            events=self._events,
            routed=self._routed,
            short_circuited=self._short,
            posts=counters.posts,
            checks=counters.checks,
            fallbacks=counters.fallbacks,
            durable_errors=counters.errors,
        )

    def close(self) -> None:
        """Delete the durable rulesets; the matcher cannot be used afterwards.

        Their C memory is not garbage collected: close a matcher you drop (a matcher
        that is garbage collected unclosed is closed then).
        """
        if not self._closed:
            self._check()
            self._closed = True
            self._finalizer()

    def __enter__(self) -> Matcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- matching ---------------------------------------------------------------------

    def _check(self) -> None:
        if threading.get_ident() != self._owner:
            raise RuntimeError(
                f"this Matcher belongs to thread {self._owner_name!r}: durable_rules holds "
                "no locks and never releases the GIL, so only the thread that created a "
                "matcher may use it (create one per thread, or hand events to that thread)"
            )
        if self._closed:
            raise RuntimeError("this Matcher is closed")

    def _match(self, event: Event) -> list[str]:
        self._events += 1
        plan = self._plans.get(event.event)
        if plan is None:
            plan = self._plan(event.event)
        if plan is _NOTHING:
            self._short += 1
            return []
        matched = set(plan.always)
        counters = self._counters
        for seq, pred in plan.python:
            counters.checks += 1
            if pred.matches(event):
                matched.add(seq)
        for read, lookup in plan.probes:
            value = read(event)
            if value is MISSING:
                continue
            for seq, check in lookup(value):
                if check is None:  # the key says all the predicate does
                    matched.add(seq)
                elif seq not in matched:
                    counters.checks += 1
                    if check.matches(event):
                        matched.add(seq)
        if plan.posts:
            self._routed += 1
            for post in plan.posts:
                if post.reaches(event):
                    post.ruleset.run(post, event, matched, counters)
        else:
            self._short += 1
        if not matched:
            return []
        ids = self._ids
        return [ids[seq] for seq in sorted(matched)]

    def _plan(self, name: str) -> _Plan:
        always: set[int] = set()
        python: dict[int, AnyPredicate] = {}
        probes: list[Probe] = []
        reached: dict[Ruleset, set[str]] = {}
        for pattern in self._index.match(name):
            group = self._groups[pattern]
            always.update(group.always)
            python.update(group.python)
            probes += group.indexed.probes()
            for rule in group.rules.values():
                assert rule.ruleset is not None
                reached.setdefault(rule.ruleset, set()).add(pattern)
        checks = tuple(sorted((seq, pred) for seq, pred in python.items() if seq not in always))
        posts = tuple(ruleset.post_for(patterns) for ruleset, patterns in reached.items())
        if always or checks or posts or probes:
            plan = _Plan(frozenset(always), checks, posts, tuple(probes))
        else:
            plan = _NOTHING
        if len(self._plans) >= _PLAN_CACHE_SIZE:
            self._plans.clear()
        self._plans[name] = plan
        return plan

    # -- registration -----------------------------------------------------------------

    def _entry(self, spec: MatchSpec, seq: int | None) -> _Entry:
        if not isinstance(spec, MatchSpec):
            raise TypeError(f"expected a MatchSpec, not {type(spec).__name__}")
        if seq is None and spec.id in self._entries:
            raise ValueError(f"a match spec {spec.id!r} is already registered (use replace)")
        if not spec.names:
            raise ValueError(f"match spec {spec.id!r} has no event-name pattern")
        for pattern in spec.names:
            problem = check_pattern(pattern)
            if problem is not None:
                raise ValueError(f"match spec {spec.id!r}: {problem}")
        # The index takes every predicate it can narrow, string equality included (a
        # dict probe beats a durable post, and 70,000 equality specs on one name filled
        # 280 rulesets holding about 3 MB of durable's memory each); durable decides the
        # rest (negations, contains, exists, unanchored patterns in a conjunction...),
        # so only those are compiled for it.
        keys = index_keys(spec.where) if self._use_index else None
        compiled = _INDEXED if keys is not None else compile_predicate(spec.where)
        seq = next(self._seqs) if seq is None else seq
        return _Entry(spec, seq, compiled, keys)

    def _register(self, entry: _Entry) -> list[DurableRule]:
        """Index ``entry``; return the durable rules it needs that do not exist yet."""
        spec, seq, (cond, exact), keys = entry
        self._entries[spec.id] = entry
        self._ids[seq] = spec.id
        self._plans.clear()
        placing: list[DurableRule] = []
        if cond is False:  # never true: nothing to index
            return placing
        for pattern in dict.fromkeys(spec.names):
            self._index.add(pattern, pattern)
            group = self._groups.setdefault(pattern, _Group())
            if (cond is True and exact) or spec.where is None:
                group.always[seq] = None
            elif keys is not None:
                group.indexed.add(seq, spec.where, keys)
            elif cond is True:
                group.python[seq] = spec.where
            else:
                rule = group.rules.get(cond)
                if rule is None:
                    rule = group.rules[cond] = DurableRule(pattern, cond)
                    placing.append(rule)
                rule.members[seq] = (spec.where, exact)
        return placing

    def _unregister(self, entry: _Entry) -> None:
        spec, seq, (cond, _), _keys = entry
        del self._entries[spec.id]
        del self._ids[seq]
        self._plans.clear()
        if cond is False:
            return
        for pattern in dict.fromkeys(spec.names):
            self._index.discard(pattern, pattern)
            group = self._groups[pattern]
            group.always.pop(seq, None)
            group.python.pop(seq, None)
            group.indexed.remove(seq)
            rule = group.rules.get(cond) if not isinstance(cond, bool) else None
            if rule is not None and rule.members.pop(seq, None) is not None and not rule.members:
                del group.rules[cond]
                self._pool.take(rule)
            if group.empty():
                del self._groups[pattern]

    def _flush(self) -> None:
        """Load the rulesets changes touched; specs of rules durable refused go to Python."""
        for rule, problem in self._pool.flush():
            logger.warning(
                "durable rule under %r left to Python (%s); specs %s",
                rule.pattern,
                problem,
                sorted(self._ids[seq] for seq in rule.members),
            )
            group = self._groups[rule.pattern]
            del group.rules[rule.cond]
            group.python.update((seq, pred) for seq, (pred, _) in rule.members.items())
        self._plans.clear()
