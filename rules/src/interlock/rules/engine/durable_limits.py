"""durable_rules' structural limits, and a replica of its node building to check them.

durable_rules 2.0.28 compiles a ruleset into an alpha network (one node per distinct
test below a given parent; ``$and`` chains them, ``$or`` joins its branches into a
forward node) and evaluates a message with a fixed-size stack. Its limits, read in its
C source (``rete.c``, ``events.c``) and then provoked by tests:

- a node's children live in a 512-slot open-addressing table whose probes all start in
  32 buckets: with 512 the first post spins forever, with 513 loading never returns;
- a node takes at most 128 ``$nex`` tests and ``$or`` joins (more: load error 107);
- at most 256 rules may end on one node (the 257th is written out of bounds);
- evaluation pushes every matching child of a node on a 64-entry stack (more: 303);
- a message holds at most 254 properties; a rule at most 15 ``$and``/``$or``.

:func:`limit_problem` builds the same network as durable would (shape only) and says
which limit, kept well inside, the rules would break.
"""

from __future__ import annotations

from collections.abc import Iterable

from interlock.rules.engine.durable_compiler import Atom, Cond, Junction

__all__ = [
    "MAX_NODE_CHILDREN",
    "MAX_NODE_JOINS",
    "MAX_NODE_RULES",
    "MAX_SLOTS",
    "MAX_STACK",
    "MAX_WILDCARD_PATTERNS",
    "limit_problem",
]

MAX_NODE_CHILDREN = 400
"""Children per node (durable: a 512-slot table; full, a post never returns)."""
MAX_NODE_JOINS = 100
"""``$nex`` tests and ``$or`` joins per node (durable: 128)."""
MAX_NODE_RULES = 200
"""Rules ending on one node (durable: 256)."""
MAX_STACK = 48
"""Evaluation stack depth one event can need (durable: 64)."""
MAX_SLOTS = 100
"""Paths one ruleset reads; a fact holds two properties per path (durable: 254)."""
MAX_WILDCARD_PATTERNS = 16
"""Wildcard patterns per ruleset: one event may match all of them at once."""


class _Node:
    """A replica of one durable alpha node, as far as its limits are concerned."""

    __slots__ = ("hashed", "joins", "nex", "rules")

    def __init__(self) -> None:
        self.hashed: dict[tuple[str, str, str, str], _Node] = {}
        self.nex: dict[tuple[str, str], _Node] = {}
        self.joins: list[_Node] = []  # forward nodes of `$or`s this node is a branch of
        self.rules = 0

    def place(self, cond: Cond) -> _Node:
        """Add ``cond`` below this node the way durable's ``createAlpha`` does."""
        if isinstance(cond, Atom):
            if cond.op == "nex":
                return self.nex.setdefault((cond.path, cond.kind), _Node())
            key = (cond.path, cond.kind, cond.op, repr(cond.value))
            return self.hashed.setdefault(key, _Node())
        if isinstance(cond, Junction) and cond.op == "and":
            node = self
            for item in cond.items:
                node = node.place(item)
            return node
        if isinstance(cond, Junction):
            forward = _Node()
            for item in cond.items:
                self.place(item).joins.append(forward)
            return forward
        return self

    def width(self) -> int:
        """How many children one event can push at once (equal tests of a slot: one)."""
        equal = {(path, kind) for path, kind, op, _ in self.hashed if op == "=="}
        others = sum(1 for key in self.hashed if key[2] != "==")
        return len(equal) + others + len(self.nex) + len(self.joins)

    def children(self) -> list[_Node]:
        return [*self.hashed.values(), *self.nex.values(), *self.joins]

    def problem(self) -> str | None:
        """The first limit this node breaks, if any."""
        if len(self.hashed) > MAX_NODE_CHILDREN:
            return f"a node with {len(self.hashed)} children (at most {MAX_NODE_CHILDREN})"
        if len(self.nex) + len(self.joins) > MAX_NODE_JOINS:
            joins = len(self.nex) + len(self.joins)
            return f"a node with {joins} joins (at most {MAX_NODE_JOINS})"
        if self.rules > MAX_NODE_RULES:
            return f"{self.rules} rules ending on one node (at most {MAX_NODE_RULES})"
        return None


def _stack(node: _Node, memo: dict[int, int]) -> int:
    """The stack one event can need below ``node``: its pushes, the deepest child on top."""
    known = memo.get(id(node))
    if known is None:
        width = node.width()
        deepest = max((_stack(child, memo) for child in node.children()), default=0)
        known = memo[id(node)] = width - 1 + max(1, deepest) if width else 0
    return known


def limit_problem(
    chains: Iterable[tuple[str, tuple[Cond, ...]]], paths: int, wildcards: int
) -> str | None:
    """Say which limit a ruleset would break, or ``None``.

    ``chains`` holds each rule as its pattern and its conjuncts in load order; the
    pattern becomes the first test (its discriminator). ``paths`` and ``wildcards`` count
    the distinct paths read and wildcard patterns.
    """
    if paths > MAX_SLOTS:
        return f"{paths} paths (at most {MAX_SLOTS}: a message holds 254 properties)"
    if wildcards > MAX_WILDCARD_PATTERNS:
        return f"{wildcards} wildcard patterns (at most {MAX_WILDCARD_PATTERNS})"
    root = _Node()
    for pattern, items in chains:
        node = root.place(Atom(pattern, "g", "==", 1))
        for item in items:
            node = node.place(item)
        node.rules += 1
    nodes, seen = [root], set()
    while nodes:
        node = nodes.pop()
        if id(node) not in seen:
            seen.add(id(node))
            problem = node.problem()
            if problem is not None:
                return problem
            nodes.extend(node.children())
    memo: dict[int, int] = {}
    width = wildcards + (wildcards < len(root.hashed))  # one exact name matches at once
    deepest = max((_stack(child, memo) for child in root.hashed.values()), default=0)
    need = width - 1 + max(1, deepest)
    return f"an evaluation stack of {need} (at most {MAX_STACK})" if need > MAX_STACK else None
