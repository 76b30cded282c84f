"""The firings' read side the UI and the API page with: on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import msgspec

from contract.store_fixtures import START, make_firing
from interlock.service.store import Store


async def test_pages_with_an_after_cursor_cover_every_firing_once(store: Store) -> None:
    firings = [make_firing(key=f"k{n % 3}", n=n // 2) for n in range(11)]  # equal times too
    await store.store_batch(firings)
    seen: list[uuid.UUID] = []
    after = None
    while True:
        page = await store.firings.list(after=after, limit=4)
        seen.extend(f.id for f in page)
        if len(page) < 4:
            break
        after = (page[-1].at, page[-1].id)
    assert len(seen) == len(set(seen)) == len({f.id for f in firings})
    assert seen == [f.id for f in await store.firings.list(limit=100)]


async def test_status_filter(store: Store) -> None:
    fired = make_firing()
    resolved = msgspec.structs.replace(make_firing(n=1), status="resolved")
    await store.store_batch([fired, resolved])
    assert [f.id for f in await store.firings.list(status="resolved")] == [resolved.id]
    assert [f.id for f in await store.firings.list(status="fired")] == [fired.id]


async def test_citing_finds_the_firings_of_an_event(store: Store) -> None:
    first, second = make_firing(n=1), make_firing(key="other", n=2)
    await store.store_batch([first, second])
    (event_id,) = first.event_ids
    assert [f.id for f in await store.firings.citing(event_id, since=START)] == [first.id]
    later = START + timedelta(hours=1)
    assert await store.firings.citing(event_id, since=later) == []
    assert await store.firings.citing(uuid.uuid4(), since=START) == []


async def test_latest_per_key_and_last_per_rule(store: Store) -> None:
    old = make_firing(key="a", n=1)
    new = msgspec.structs.replace(make_firing(key="a", n=5), status="resolved")
    other = make_firing("other-rule", key="b", n=3)
    await store.store_batch([old, new, other])

    latest = await store.firings.latest_per_key(["sales-refreshed", "other-rule"], since=START)
    assert {k: (f.id, f.status) for k, f in latest.items()} == {
        ("sales-refreshed", "a"): (new.id, "resolved"),
        ("other-rule", "b"): (other.id, "fired"),
    }
    assert await store.firings.latest_per_key(["nobody"], since=START) == {}
    assert await store.firings.last_per_rule() == {
        "sales-refreshed": new.at,
        "other-rule": other.at,
    }
