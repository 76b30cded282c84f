"""The name index: which event-name patterns (and so which keys) an event name reaches.

Patterns are NATS style (see :mod:`interlock.rules.names`): tokens joined by dots, ``*``
for exactly one token, a final ``>`` for one or more trailing tokens. Exact patterns live
in a dict; wildcard patterns in a token trie, so a lookup walks the name's tokens (and
only the wildcard branches that exist) instead of testing every pattern. Results are
cached per event name, so an event whose name reaches nothing costs one dict lookup; the
cache is bounded and dropped on every change of the index.
"""

# ruff: noqa: S105 - "token" here is a part of a dotted name, not a secret

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

from interlock.rules.names import check_pattern

__all__ = ["NameIndex"]

K = TypeVar("K", bound=Hashable)

_EMPTY: frozenset[object] = frozenset()


class _Node(Generic[K]):
    __slots__ = ("children", "ends", "rest", "star")

    def __init__(self) -> None:
        self.children: dict[str, _Node[K]] = {}
        self.star: _Node[K] | None = None
        self.ends: dict[K, int] = {}  # keys of patterns ending at this node
        self.rest: dict[K, int] = {}  # keys of patterns ending with '>' after this node

    def empty(self) -> bool:
        return not (self.children or self.star or self.ends or self.rest)


class NameIndex(Generic[K]):
    """Map event-name patterns to keys; :meth:`match` returns the keys a name reaches.

    A key may be registered under several patterns and a pattern may carry several keys;
    adding the same ``(pattern, key)`` twice needs two :meth:`discard` calls to undo.

        index = NameIndex[str]()
        index.add("s3.object.*", "landing-files")
        index.match("s3.object.created")  # frozenset({'landing-files'})
    """

    def __init__(self, *, cache_size: int = 65_536) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, not {cache_size}")
        self._exact: dict[str, dict[K, int]] = {}
        self._root: _Node[K] = _Node()
        self._cache: dict[str, frozenset[K]] = {}
        self._cache_size = cache_size
        self._size = 0

    def __len__(self) -> int:
        """The number of registered ``(pattern, key)`` pairs."""
        return self._size

    def add(self, pattern: str, key: K) -> None:
        """Register ``key`` under ``pattern``; raise ``ValueError`` for an invalid pattern."""
        problem = check_pattern(pattern)
        if problem is not None:
            raise ValueError(problem)
        tokens = pattern.split(".")
        if "*" not in tokens and tokens[-1] != ">":
            keys = self._exact.setdefault(pattern, {})
        else:
            node = self._root
            for token in tokens[:-1] if tokens[-1] == ">" else tokens:
                node = self._child(node, token)
            keys = node.rest if tokens[-1] == ">" else node.ends
        keys[key] = keys.get(key, 0) + 1
        self._size += 1
        self._cache.clear()

    def discard(self, pattern: str, key: K) -> None:
        """Undo one :meth:`add` of ``(pattern, key)``; do nothing if it is not there."""
        tokens = pattern.split(".")
        path: list[tuple[_Node[K], str]] = []
        keys: dict[K, int] | None
        if "*" not in tokens and tokens[-1] != ">":
            keys = self._exact.get(pattern)
        else:
            node: _Node[K] | None = self._root
            for token in tokens[:-1] if tokens[-1] == ">" else tokens:
                assert node is not None
                path.append((node, token))
                node = node.star if token == "*" else node.children.get(token)
                if node is None:
                    return
            assert node is not None
            keys = node.rest if tokens[-1] == ">" else node.ends
        if not keys or key not in keys:
            return
        keys[key] -= 1
        if not keys[key]:
            del keys[key]
        self._size -= 1
        self._cache.clear()
        if not keys and pattern in self._exact:
            del self._exact[pattern]
        self._prune(path)

    def match(self, name: str) -> frozenset[K]:
        """Return every key whose pattern matches the event name ``name``."""
        found = self._cache.get(name)
        if found is None:
            found = self._lookup(name)
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[name] = found
        return found

    def patterns(self) -> Iterator[str]:
        """Every registered pattern (each once), exact ones first."""
        yield from self._exact
        stack: list[tuple[_Node[K], str]] = [(self._root, "")]
        while stack:
            node, prefix = stack.pop()
            if node.ends:
                yield prefix
            if node.rest:
                yield f"{prefix}.>" if prefix else ">"
            branches = list(node.children.items())
            if node.star is not None:
                branches.append(("*", node.star))
            for token, child in branches:
                stack.append((child, f"{prefix}.{token}" if prefix else token))

    def _lookup(self, name: str) -> frozenset[K]:
        exact = self._exact.get(name)
        found: set[K] = set(exact) if exact else set()
        frontier = [self._root]
        for token in name.split("."):
            following: list[_Node[K]] = []
            for node in frontier:
                if node.rest:
                    found.update(node.rest)
                child = node.children.get(token)
                if child is not None:
                    following.append(child)
                if node.star is not None:
                    following.append(node.star)
            if not following:
                break
            frontier = following
        else:
            for node in frontier:
                found.update(node.ends)
        return frozenset(found) if found else _EMPTY  # type: ignore[return-value]

    @staticmethod
    def _child(node: _Node[K], token: str) -> _Node[K]:
        if token == "*":
            if node.star is None:
                node.star = _Node()
            return node.star
        child = node.children.get(token)
        if child is None:
            child = node.children[token] = _Node()
        return child

    @staticmethod
    def _prune(path: list[tuple[_Node[K], str]]) -> None:
        for parent, token in reversed(path):
            child = parent.star if token == "*" else parent.children.get(token)
            if child is None or not child.empty():
                return
            if token == "*":
                parent.star = None
            else:
                del parent.children[token]
