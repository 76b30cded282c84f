"""The API-key cache over a real SQLite store, with a hand-driven clock."""

from __future__ import annotations

from interlock.service.api.key_cache import KeyCache
from interlock.service.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_answers_are_reused_for_ttl_then_asked_again(sqlite_url: str) -> None:
    async with Store(sqlite_url) as store:
        await store.migrate()
        clock = Clock()
        cache = KeyCache(store.api_keys, ttl=1.0, monotonic=clock)
        assert await cache.keys_exist() is False
        created = await store.api_keys.create("ops", ["admin"])
        assert await cache.keys_exist() is False  # remembered
        clock.now += 1.01
        assert await cache.keys_exist() is True

        key = await cache.verify(created.token)
        assert key is not None
        assert key.name == "ops"
        await store.api_keys.revoke(created.key.prefix)
        assert await cache.verify(created.token) == key  # remembered
        clock.now += 1.01
        assert await cache.verify(created.token) is None

        wrong = created.token[:-3] + "xyz"
        assert await cache.verify(wrong) is None


async def test_ttl_zero_always_asks_the_store(sqlite_url: str) -> None:
    async with Store(sqlite_url) as store:
        await store.migrate()
        cache = KeyCache(store.api_keys, ttl=0, monotonic=Clock())
        assert await cache.keys_exist() is False
        created = await store.api_keys.create("ops", ["read"])
        assert await cache.keys_exist() is True
        assert await cache.verify(created.token) is not None
        await store.api_keys.revoke(created.key.prefix)
        assert await cache.verify(created.token) is None


async def test_a_full_cache_is_emptied_not_grown(sqlite_url: str) -> None:
    async with Store(sqlite_url) as store:
        await store.migrate()
        cache = KeyCache(store.api_keys, ttl=60, max_entries=3, monotonic=Clock())
        for index in range(10):
            assert await cache.verify(f"ilk_{index:012x}_nothing") is None
            assert len(cache._tokens) <= 3
