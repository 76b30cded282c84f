"""A short-lived cache of API-key checks, so a request does not cost a database query.

Verifying a key (or, in local mode, counting keys) is a database round trip; at
hundreds of requests a second on SQLite it is a large part of a request's cost. The
cache remembers each answer for ``ttl`` seconds (default 1 s), per token — valid and
invalid alike — and whether any key exists. The price, stated plainly: a revoked key
keeps working, and a first key created outside this process (``interlock keys create``)
ends local mode, up to ``ttl`` seconds later. ``ttl=0`` turns the cache off.

Tokens are kept only in this process's memory, as the dictionary's keys; they are never
logged. The cache holds at most ``max_entries`` tokens and is emptied when full.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from interlock.service.store import ApiKey, ApiKeys

__all__ = ["DEFAULT_TTL", "KeyCache"]

DEFAULT_TTL = 1.0
"""Seconds an answer is reused."""


class KeyCache:
    """Cached answers of :class:`~interlock.service.store.ApiKeys`.

    Args:
        keys: The store's API keys.
        ttl: Seconds an answer is reused (0: always ask the store).
        max_entries: Tokens remembered at most.
        monotonic: The clock (tests may pass their own).
    """

    def __init__(
        self,
        keys: ApiKeys,
        *,
        ttl: float = DEFAULT_TTL,
        max_entries: int = 4096,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self.ttl = ttl
        self._max = max_entries
        self._now = monotonic
        self._tokens: dict[str, tuple[float, ApiKey | None]] = {}
        self._any: tuple[float, bool] | None = None

    async def keys_exist(self) -> bool:
        """Whether the store holds at least one unrevoked key."""
        now = self._now()
        if self._any is not None and self._any[0] > now:
            return self._any[1]
        exist = await self._keys.count() > 0
        if self.ttl > 0:
            self._any = (now + self.ttl, exist)
        return exist

    async def verify(self, token: str) -> ApiKey | None:
        """The key this token belongs to, or ``None`` (see ``ApiKeys.verify``)."""
        now = self._now()
        cached = self._tokens.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        key = await self._keys.verify(token)
        if self.ttl > 0:
            if len(self._tokens) >= self._max:
                self._tokens.clear()
            self._tokens[token] = (now + self.ttl, key)
        return key
