"""NameIndex: exact names by dict, wildcards by trie, same answers as pattern_matches."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.rules.engine import NameIndex
from interlock.rules.names import pattern_matches


def test_exact_star_and_tail_patterns() -> None:
    index = NameIndex[str]()
    index.add("db.table.updated", "exact")
    index.add("db.table.*", "star")
    index.add("db.>", "tail")
    index.add("*.table.updated", "lead")
    index.add(">", "everything")

    assert index.match("db.table.updated") == {"exact", "star", "tail", "lead", "everything"}
    assert index.match("db.table.created") == {"star", "tail", "everything"}
    assert index.match("db.view") == {"tail", "everything"}
    assert index.match("db") == {"everything"}  # '>' needs at least one more token
    assert index.match("s3.table.updated") == {"lead", "everything"}
    assert index.match("db.table.updated.late") == {"tail", "everything"}


def test_star_is_exactly_one_token() -> None:
    index = NameIndex[str]()
    index.add("a.*", "k")
    assert index.match("a.b") == {"k"}
    assert not index.match("a")
    assert not index.match("a.b.c")


def test_keys_are_counted_and_discard_undoes_one_add() -> None:
    index = NameIndex[int]()
    index.add("a.*", 1)
    index.add("a.*", 1)
    index.add("a.b", 2)
    assert len(index) == 3
    index.discard("a.*", 1)
    assert index.match("a.b") == {1, 2}
    index.discard("a.*", 1)
    assert index.match("a.b") == {2}
    index.discard("a.*", 1)  # not there any more: nothing happens
    index.discard("never.*", 3)
    index.discard("a.b", 2)
    assert len(index) == 0
    assert not index.match("a.b")
    assert list(index.patterns()) == []


def test_patterns_lists_each_registered_pattern() -> None:
    index = NameIndex[str]()
    for pattern in ("a.b", "a.*", "a.>", "*.c", ">"):
        index.add(pattern, "k")
    assert sorted(index.patterns()) == sorted(["a.b", "a.*", "a.>", "*.c", ">"])


def test_the_cache_follows_changes() -> None:
    index = NameIndex[str](cache_size=2)
    assert not index.match("a.b")
    index.add("a.*", "k")
    assert index.match("a.b") == {"k"}
    for name in ("x.y", "y.z", "z.w"):  # overflows the cache: it starts over
        index.match(name)
    index.discard("a.*", "k")
    assert not index.match("a.b")


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("", "non-empty"),
        ("a..b", "empty token"),
        ("a.>.b", "last token"),
        ("a.b*", "letters, digits"),
        (".".join("a" * 17), "at most 16"),
    ],
)
def test_invalid_patterns_are_refused(pattern: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        NameIndex[str]().add(pattern, "k")


_TOKENS = st.sampled_from(["a", "b", "c"])
_PATTERN_TOKENS = st.sampled_from(["a", "b", "c", "*"])


@st.composite
def _patterns(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(_PATTERN_TOKENS, min_size=1, max_size=4))
    if draw(st.booleans()):
        tokens = [*tokens[:-1], ">"]
    return ".".join(tokens)


_NAMES = st.lists(_TOKENS, min_size=1, max_size=5).map(".".join)


@settings(max_examples=300, deadline=None)
@given(
    patterns=st.lists(_patterns(), min_size=1, max_size=12),
    removed=st.sets(st.integers(0, 11)),
    names=st.lists(_NAMES, min_size=1, max_size=10),
)
def test_index_agrees_with_pattern_matches(
    patterns: list[str], removed: set[int], names: list[str]
) -> None:
    index = NameIndex[int]()
    for key, pattern in enumerate(patterns):
        index.add(pattern, key)
    kept = dict(enumerate(patterns))
    for key in removed & kept.keys():
        index.discard(kept.pop(key), key)
    for name in names:
        expected = {key for key, pattern in kept.items() if pattern_matches(pattern, name)}
        assert index.match(name) == expected, (name, kept)
