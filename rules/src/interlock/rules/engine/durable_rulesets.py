"""One durable_rules ruleset: its rules, its limits, and posting one event to it.

A :class:`Ruleset` holds :class:`DurableRule` s — a name pattern's discriminator
(``g<i>``) followed by a compiled condition over typed slots (``e<k>``, ``s<k>``,
``n<k>``, ``b<k>``, ``z<k>``) — and talks to durable's C module directly: no Host, no
timers, no Python actions. To match an event it asserts a flat *fact* (the pattern
discriminators plus the slots the rules read), drains every fired action (one per
rule), and retracts the fact, so nothing stays in durable's state.

durable_rules 2.0.28 facts this module is built on (read in its C source, then tested):

- An *event* is consumed by the first rule that fires on it; a *fact* fires every
  matching rule (a rule may fire twice when two ``$or`` branches hold), and stays until
  retracted. A message whose id durable still holds is refused (code 2); once consumed
  or retracted the same id is accepted again: durable de-duplicates nothing for us.
- ``assert_fact`` returns code 1 (the ``MessageNotHandledException`` of the Python API)
  when no rule matches; nothing is stored then.
- Property names are found by 32-bit FNV-1a hash, so slot names are collision-free.
- Number text like ``1e-7`` (no ``.`` before the exponent) is a parse error (204).
- Structural limits: see :mod:`.durable_limits`; :meth:`Ruleset.problem` checks them.
- One sid (``"0"``, the default) per ruleset: durable holds at most 1,024 live sids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import durable_rules_engine as _durable  # type: ignore[import-not-found]  # C module, no stubs
import msgspec

from interlock.rules.engine import durable_limits
from interlock.rules.engine.durable_compiler import MAX_EXACT_INT, Atom, Cond, Junction, atoms
from interlock.rules.engine.durable_compiler import durable_number as _number
from interlock.rules.predicates import MISSING, AnyPredicate, resolve
from interlock.sdk.event import Event

__all__ = ["Counters", "DurableRule", "Post", "Ruleset", "reader", "required_strings"]

_encode = msgspec.json.encode
_OPS = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_SID = "0"
DurableError: type[Exception] = _durable.error
_assert_fact = _durable.assert_fact
_start_action = _durable.start_action_for_state
_complete_action = _durable.complete_and_start_action
_retract_fact = _durable.retract_fact
logger = logging.getLogger(__name__)


class DurableRule:
    """A compiled condition under one name pattern, shared by every spec that has it.

    ``members`` maps a spec's registration number to its predicate and whether the
    condition decides it exactly (if not, a hit is confirmed with ``matches``).
    """

    __slots__ = ("cond", "members", "pattern", "ruleset", "wildcard")

    def __init__(self, pattern: str, cond: Cond) -> None:
        self.pattern = pattern
        self.cond = cond
        self.wildcard = "*" in pattern.split(".") or pattern.endswith(">")
        self.members: dict[int, tuple[AnyPredicate, bool]] = {}
        self.ruleset: Ruleset | None = None


def reader(path: str) -> Callable[[Event], Any]:
    """A function returning ``resolve(event, path)``, faster for the common paths."""
    head, _, rest = path.partition(".")
    if head in {"resource", "payload"} and rest and "." not in rest:
        if head == "resource":
            return lambda event: event.resource.get(rest, MISSING)
        return lambda event: event.payload.get(rest, MISSING)
    return lambda event: resolve(event, path)


class Emitter(NamedTuple):
    """How one path is projected: the property name per slot kind (None: not read)."""

    read: Callable[[Event], Any]
    e: str | None
    s: str | None
    n: str | None
    b: str | None
    z: str | None


class Key(NamedTuple):
    """A path every rule of a post requires to hold one of a few strings, and those strings.

    One rule per table on ``db.table.updated`` (``resource.id == "dw.sales"``, ...) puts
    hundreds of rules under one name; an event can only fire the rules of its own table,
    so a post whose rules all name other tables is skipped (see :meth:`Post.reaches`).
    """

    read: Callable[[Event], Any]
    values: frozenset[str]


class Post(NamedTuple):
    """What to send one ruleset for events of one name."""

    ruleset: Ruleset
    discriminators: dict[str, int]
    emitters: tuple[Emitter, ...]
    members: tuple[tuple[int, AnyPredicate], ...]  # every candidate, for the fallback
    key: Key | None = None

    def reaches(self, event: Event) -> bool:
        """Whether any rule of the post could fire for ``event`` (``False``: no need to post)."""
        key = self.key
        if key is None:
            return True
        value = key.read(event)
        return isinstance(value, str) and value in key.values


class Counters:
    """Mutable counters the matcher reports in its stats."""

    __slots__ = ("checks", "errors", "fallbacks", "posts")

    def __init__(self) -> None:
        self.posts = 0
        self.checks = 0
        self.fallbacks = 0
        self.errors = 0


class Ruleset:
    """A durable ruleset of at most a few hundred rules, loaded by :meth:`load`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.rules: list[DurableRule] = []
        self.patterns: dict[str, int] = {}  # pattern -> how many of the rules are under it
        self.handle: int | None = None
        self.by_name: dict[str, DurableRule] = {}
        self._patterns: dict[str, str] = {}
        self._slots: dict[str, int] = {}
        self._kinds: dict[str, set[str]] = {}

    def add(self, rule: DurableRule) -> None:
        """Take ``rule`` (load it with :meth:`load`)."""
        self.rules.append(rule)
        self.patterns[rule.pattern] = self.patterns.get(rule.pattern, 0) + 1
        rule.ruleset = self

    def remove(self, rule: DurableRule) -> None:
        """Drop ``rule`` (reload with :meth:`load`)."""
        self.rules.remove(rule)
        self.patterns[rule.pattern] -= 1
        if not self.patterns[rule.pattern]:
            del self.patterns[rule.pattern]
        rule.ruleset = None

    def wildcards(self) -> int:
        """How many wildcard patterns the rules are under."""
        return sum(1 for pattern in self.patterns if "*" in pattern or pattern.endswith(">"))

    def problem(self) -> str | None:
        """Say which durable limit these rules would break, or ``None`` if none."""
        paths = {atom.path for rule in self.rules for atom in atoms(rule.cond)}
        chains = [(rule.pattern, items) for rule, items in self._chains().items()]
        return durable_limits.limit_problem(chains, len(paths), self.wildcards())

    def load(self) -> None:
        """(Re)create the durable ruleset from :attr:`rules`, replacing the old one."""
        self._patterns = {}
        self._slots = {}
        self._kinds = {}
        for rule in self.rules:
            self._patterns.setdefault(rule.pattern, f"g{len(self._patterns)}")
            for atom in atoms(rule.cond):
                self._slots.setdefault(atom.path, len(self._slots))
                self._kinds.setdefault(atom.path, set()).add(atom.kind)
        self.by_name = {f"r{index}": rule for index, rule in enumerate(self.rules)}
        chains = self._chains()
        definition = {
            name: {"all": [{"m": self._definition(rule, chains[rule])}]}
            for name, rule in self.by_name.items()
        }
        handle = _durable.create_ruleset(self.name, _encode(definition).decode())
        self.close()
        self.handle = handle

    def close(self) -> None:
        """Delete the durable ruleset (its C memory is not garbage collected)."""
        if self.handle is not None:
            _durable.delete_ruleset(self.handle)
            self.handle = None

    def post_for(self, patterns: Iterable[str]) -> Post:
        """The :class:`Post` for events that match ``patterns`` (some of this ruleset's)."""
        wanted = set(patterns)
        rules = [rule for rule in self.rules if rule.pattern in wanted]
        paths = sorted(
            {atom.path for rule in rules for atom in atoms(rule.cond)}, key=self._slots.__getitem__
        )
        emitters = []
        for path in paths:
            slot, kinds = self._slots[path], self._kinds[path]
            names = {kind: f"{kind}{slot}" if kind in kinds else None for kind in "esnbz"}
            emitters.append(
                Emitter(reader(path), names["e"], names["s"], names["n"], names["b"], names["z"])
            )
        members = {seq: pred for rule in rules for seq, (pred, _) in rule.members.items()}
        return Post(
            self,
            {self._patterns[pattern]: 1 for pattern in sorted(wanted)},
            tuple(emitters),
            tuple(sorted(members.items())),
            _key(rules),
        )

    def run(self, post: Post, event: Event, matched: set[int], counters: Counters) -> None:
        """Add to ``matched`` the specs of ``post`` that ``event`` satisfies."""
        fact = _project(post, event)
        fired = None if fact is None else self._fire(fact, counters)
        if fired is None:  # durable cannot take this event exactly: Python decides
            counters.fallbacks += 1
            for seq, pred in post.members:
                if seq not in matched:
                    counters.checks += 1
                    if pred.matches(event):
                        matched.add(seq)
            return
        for rule in dict.fromkeys(fired) if len(fired) > 1 else fired:  # an `$or` fires twice
            for seq, (pred, exact) in rule.members.items():
                if seq not in matched:
                    if exact:
                        matched.add(seq)
                    else:
                        counters.checks += 1
                        if pred.matches(event):
                            matched.add(seq)

    def _fire(self, fact: str, counters: Counters) -> list[DurableRule] | None:
        """Assert ``fact``, drain every fired rule, retract it; None on a durable error."""
        handle, by_name = self.handle, self.by_name
        counters.posts += 1
        try:
            code, state = _assert_fact(handle, fact)
            if code == 1:  # no rule matched; nothing was stored
                return []
            if code != 0:
                raise DurableError(f"assert_fact returned code {code}")
            fired = []
            result = _start_action(handle, state)
            while result is not None:
                messages = result[1] if type(result) is tuple else result
                fired.append(by_name[messages[2 : messages.index('"', 2)]])
                result = _complete_action(handle, state)
            _retract_fact(handle, fact)
        except DurableError:
            counters.errors += 1
            try:
                _durable.delete_state(handle, _SID)  # start again from a clean state
            except DurableError:
                logger.exception("durable_rules ruleset %s: cannot reset its state", self.name)
            return None
        return fired

    def _chains(self) -> dict[DurableRule, tuple[Cond, ...]]:
        """Each rule's conjuncts, those most rules of its pattern share first.

        durable shares a node between rules whose tests agree up to it, so this order
        shares the most nodes: fewer nodes to hold (each is ~1.8 KB in durable) and to
        evaluate. The meaning is the same in any order.
        """
        counts: dict[tuple[str, Cond], int] = {}
        conjuncts = {}
        for rule in self.rules:
            cond = rule.cond
            items = cond.items if isinstance(cond, Junction) and cond.op == "and" else (cond,)
            conjuncts[rule] = items
            for item in items:
                counts[(rule.pattern, item)] = counts.get((rule.pattern, item), 0) + 1
        return {
            rule: tuple(sorted(items, key=lambda item: (-counts[(rule.pattern, item)], repr(item))))
            for rule, items in conjuncts.items()
        }

    def _definition(self, rule: DurableRule, items: tuple[Cond, ...]) -> dict[str, Any]:
        return {"$and": [{self._patterns[rule.pattern]: 1}, *(self._json(item) for item in items)]}

    def _json(self, cond: Cond) -> dict[str, Any]:
        if isinstance(cond, Junction):
            return {f"${cond.op}": [self._json(item) for item in cond.items]}
        assert isinstance(cond, Atom)
        name = f"{cond.kind}{self._slots[cond.path]}"
        if cond.op in {"ex", "nex"}:
            return {f"${cond.op}": {name: 1}}
        if cond.op == "==":
            return {name: cond.value}
        return {_OPS[cond.op]: {name: cond.value}}


def _key(rules: list[DurableRule]) -> Key | None:
    """The :class:`Key` of ``rules``: the required string path with the most values."""
    common: dict[str, set[str]] = {}
    for n, rule in enumerate(rules):
        required = required_strings(rule.cond)
        if n == 0:
            common = {path: {value} for path, value in required.items()}
        else:
            common = {p: values | {required[p]} for p, values in common.items() if p in required}
        if not common:
            return None
    path = min(common, key=lambda p: (-len(common[p]), p))
    return Key(reader(path), frozenset(common[path]))


def required_strings(cond: Cond) -> dict[str, str]:
    """Paths ``cond`` can only be true with, each with the string it must equal there.

    A condition is a necessary one for its predicate (exact or not), so an event whose
    value at such a path is anything else cannot satisfy the predicate either.
    """
    items = cond.items if isinstance(cond, Junction) and cond.op == "and" else (cond,)
    return {
        item.path: item.value
        for item in reversed(items)  # the first test of a path wins, as any would do
        if isinstance(item, Atom)
        and item.kind == "s"
        and item.op == "=="
        and isinstance(item.value, str)
    }


def _project(post: Post, event: Event) -> str | None:  # noqa: PLR0912 - the hot path, inlined
    """The fact for ``post``: discriminators and read slots; None if not exact in durable."""
    fact: dict[str, object] = dict(post.discriminators)
    for read, e, s, n, b, z in post.emitters:
        value = read(event)
        if value is MISSING:
            continue
        if e is not None:
            fact[e] = 1
        kind = type(value)
        if kind is str:
            if s is not None:
                fact[s] = value
        elif kind is int:
            if n is not None:
                if not -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
                    return None
                fact[n] = value
        elif kind is bool:
            if b is not None:
                fact[b] = value
        elif value is None:
            if z is not None:
                fact[z] = 1
        elif isinstance(value, int | float):  # floats, and subclasses of int and float
            if n is not None:
                number = _number(value)
                if number is None:
                    return None
                fact[n] = number
        elif isinstance(value, str) and s is not None:  # a str subclass: Python decides
            return None
    try:
        return _encode(fact).decode()
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form
        return None
