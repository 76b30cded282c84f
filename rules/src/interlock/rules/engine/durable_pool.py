"""The durable rulesets of one matcher: where each rule goes and when rulesets reload.

:class:`RulesetPool` packs :class:`~.durable_rulesets.DurableRule` s into rulesets of at
most ``limit`` rules, keeping each name pattern's rules together where they fit (an
event then takes one post), marks the rulesets a change touches, and reloads them all
at once on :meth:`RulesetPool.flush` — so registering 10,000 specs one by one costs one
load per ruleset, not one per spec. A ruleset that would break a durable limit is split
in two until it does not; a rule that breaks one alone is handed back to the caller.
"""

from __future__ import annotations

from interlock.rules.engine.durable_limits import MAX_WILDCARD_PATTERNS
from interlock.rules.engine.durable_rulesets import DurableError, DurableRule, Ruleset

__all__ = ["RulesetPool"]


class RulesetPool:
    """Rulesets named ``<prefix>-<n>``, each holding at most ``limit`` rules."""

    def __init__(self, prefix: str, limit: int) -> None:
        self.rulesets: dict[Ruleset, None] = {}
        """Every ruleset (an ordered set); loaded unless in :attr:`dirty`."""
        self.dirty: set[Ruleset] = set()
        """Rulesets whose rules changed since they were loaded."""
        self._prefix = prefix
        self._limit = limit
        self._count = 0
        self._by_pattern: dict[str, list[Ruleset]] = {}
        self._open: Ruleset | None = None

    def place(self, rules: list[DurableRule]) -> None:
        """Give each new rule a ruleset.

        A pattern's rules go to its latest ruleset while it has room, else to the open
        ruleset if they all fit there, else to new rulesets.
        """
        by_pattern: dict[str, list[DurableRule]] = {}
        for rule in rules:
            by_pattern.setdefault(rule.pattern, []).append(rule)
        for pattern, group in by_pattern.items():
            waiting = group
            while waiting:
                target = self._target(pattern, waiting[0].wildcard, len(waiting))
                room = self._limit - len(target.rules)
                for rule in waiting[:room]:
                    self._give(target, rule)
                waiting = waiting[room:]
                self.dirty.add(target)

    def take(self, rule: DurableRule) -> None:
        """Remove ``rule`` from its ruleset."""
        ruleset = rule.ruleset
        assert ruleset is not None
        ruleset.remove(rule)
        if rule.pattern not in ruleset.patterns:
            self._by_pattern[rule.pattern].remove(ruleset)
            if not self._by_pattern[rule.pattern]:
                del self._by_pattern[rule.pattern]
        self.dirty.add(ruleset)

    def flush(self) -> list[tuple[DurableRule, str]]:
        """Load every dirty ruleset, splitting any durable could not hold safely.

        Returns the rules durable cannot hold even alone, each with the reason; they
        are no longer in any ruleset.
        """
        refused: list[tuple[DurableRule, str]] = []
        pending, self.dirty = list(self.dirty), set()
        while pending:
            ruleset = pending.pop()
            if not ruleset.rules:
                self._drop(ruleset)
                continue
            problem = ruleset.problem()
            if problem is None:
                try:
                    ruleset.load()
                    continue
                except DurableError as exc:  # a limit the replica does not know
                    problem = str(exc)
            if len(ruleset.rules) == 1:
                (rule,) = ruleset.rules
                self.take(rule)
                self.dirty.discard(ruleset)
                self._drop(ruleset)
                refused.append((rule, problem))
                continue
            other = self._new()
            for rule in sorted(ruleset.rules, key=lambda r: r.pattern)[len(ruleset.rules) // 2 :]:
                self.take(rule)
                self._give(other, rule)
            self.dirty -= {ruleset, other}
            pending += [ruleset, other]
        return refused

    def close(self) -> None:
        """Delete every durable ruleset."""
        close_all(self.rulesets)

    def _target(self, pattern: str, wildcard: bool, count: int) -> Ruleset:
        own = self._by_pattern.get(pattern)
        if own and len(own[-1].rules) < self._limit:
            return own[-1]
        candidate = self._open
        if (
            candidate is not None
            and count <= self._limit - len(candidate.rules)
            and (not wildcard or candidate.wildcards() < MAX_WILDCARD_PATTERNS // 2)
        ):
            return candidate
        self._open = self._new()
        return self._open

    def _new(self) -> Ruleset:
        self._count += 1
        ruleset = Ruleset(f"{self._prefix}-{self._count}")
        self.rulesets[ruleset] = None
        return ruleset

    def _give(self, ruleset: Ruleset, rule: DurableRule) -> None:
        if rule.pattern not in ruleset.patterns:
            self._by_pattern.setdefault(rule.pattern, []).append(ruleset)
        ruleset.add(rule)

    def _drop(self, ruleset: Ruleset) -> None:
        ruleset.close()
        self.rulesets.pop(ruleset, None)
        if self._open is ruleset:
            self._open = None


def close_all(rulesets: dict[Ruleset, None]) -> None:
    """Delete the durable rulesets in ``rulesets`` and forget them."""
    for ruleset in rulesets:
        ruleset.close()
    rulesets.clear()
