"""RuleHost.refresh: the engine of one replica loads what changed through another (issue 19).

Two rule hosts on one real database stand for two replicas: ``made`` takes the changes
(as the API of a standby would), ``owner`` refreshes. Each refresh loads exactly what
differs between the store and its engine: a new rule, a new version, a pause, a resume,
a deletion. An unchanged rule keeps its state (its engine object is not rebuilt), and a
refresh with nothing changed touches nothing. ``on_changed`` is awaited after each
committed change, not after an apply that changed nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from interlock.rules import Rule, on
from interlock.rules.engine.engine import Engine
from interlock.service.pipeline.rule_host import RuleHost
from interlock.service.store import Store


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    url = request.getfixturevalue(f"{request.param}_url")
    store = Store(url)
    await store.migrate()
    try:
        yield store
    finally:
        await store.close()


def _host(store: Store) -> RuleHost:
    return RuleHost(store, Engine(now=datetime.now(UTC)))


def _names(host: RuleHost) -> dict[str, bool]:
    return {rule.name: rule.enabled for rule in host.engine.rules}


async def test_refresh_loads_exactly_what_changed_elsewhere(store: Store) -> None:
    made, owner = _host(store), _host(store)
    announced: list[int] = []

    async def announce() -> None:
        announced.append(1)

    made.on_changed = announce
    await made.apply([Rule(name="kept", when=on("a.b")), Rule(name="moved", when=on("a.c"))])
    assert len(announced) == 1
    await owner.load()
    kept = owner.engine._loaded["kept"]

    await made.apply([Rule(name="kept", when=on("a.b")), Rule(name="moved", when=on("a.d"))])
    await made.apply([Rule(name="new", when=on("a.e"))])
    assert len(announced) == 3
    assert sorted(await owner.refresh()) == ["moved", "new"]
    assert _names(owner) == {"kept": True, "moved": True, "new": True}
    assert owner.rule("moved") == Rule(name="moved", when=on("a.d"))
    assert owner.engine._loaded["kept"] is kept

    await made.set_paused("new", True)
    assert await owner.refresh() == ["new"]
    assert _names(owner)["new"] is False
    assert owner.status("new").enabled is False
    await made.set_paused("new", False)
    assert await owner.refresh() == ["new"]
    assert owner.status("new").enabled is True

    await made.delete("moved")
    assert await owner.refresh() == ["moved"]
    assert _names(owner) == {"kept": True, "new": True}
    assert await owner.refresh() == []
    await made.apply([Rule(name="kept", when=on("a.b"))])  # unchanged: not announced
    assert len(announced) == 6
    assert owner.engine._loaded["kept"] is kept
