"""What the live service holds of the backtested rules: their versions and firings.

:class:`LiveRecord` is the interface; two implementations read it:

- :class:`ApiLiveRecord`, for the command line: the service's HTTP API
  (``GET /api/rules/{name}``, ``/versions``, ``GET /api/firings``), the same answers the
  UI reads, with the CLI's ``--api-url``/``--api-key``;
- :class:`StoreLiveRecord`, for the API's backtest jobs, which run inside the service:
  its store directly.

A rule the service does not hold is not live: its firings are reported, not compared.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from interlock.rules.engine.engine import fingerprint
from interlock.rules.engine.firing import Firing
from interlock.rules.rule import SCHEMA_VERSION, Rule, load_rules
from interlock.service.cli.client import ApiClient, ApiError

if TYPE_CHECKING:
    from interlock.service.store import Store

__all__ = ["ApiLiveRecord", "LiveRecord", "LiveRule", "LiveVersion", "StoreLiveRecord"]

_PAGE = 1000


class LiveVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One applied version of a live rule."""

    version: int
    applied_at: datetime
    fingerprint: str
    """The digest of its trigger (:func:`interlock.rules.engine.engine.fingerprint`)."""


class LiveRule(msgspec.Struct, frozen=True, kw_only=True):
    """A rule as the service holds it."""

    name: str
    version: int
    paused: bool
    versions: list[LiveVersion]
    """Every applied version, oldest first."""

    def in_force(self, at: datetime) -> LiveVersion | None:
        """The version that ran at ``at`` (``None``: the rule did not exist yet)."""
        found = None
        for version in self.versions:
            if version.applied_at <= at:
                found = version
        return found


class LiveRecord(Protocol):
    """Where a backtest reads the live rules and their firings."""

    async def rules(self, names: Iterable[str]) -> dict[str, LiveRule]:
        """The live rules among ``names`` (absent names are not live)."""
        ...

    async def firings(self, rule: str, since: datetime, until: datetime) -> list[Firing]:
        """The stored firings of ``rule`` with ``since <= at < until``."""
        ...


def _fingerprint(document: dict[str, Any]) -> str:
    text = json.dumps({"schema_version": SCHEMA_VERSION, "rules": [document]})
    rule: Rule = load_rules(text)[0]
    return fingerprint(rule)


class ApiLiveRecord:
    """A :class:`LiveRecord` read through the service's HTTP API.

    Args:
        api: A client of the API (the CLI's).
    """

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    async def rules(self, names: Iterable[str]) -> dict[str, LiveRule]:
        """See :meth:`LiveRecord.rules`."""
        return await asyncio.to_thread(self._rules, list(names))

    def _rules(self, names: list[str]) -> dict[str, LiveRule]:
        found: dict[str, LiveRule] = {}
        for name in names:
            try:
                detail = self._api.get(f"/api/rules/{name}")
                versions = self._api.get(f"/api/rules/{name}/versions")
            except ApiError as exc:
                if exc.status_code == 404:
                    continue
                raise
            found[name] = LiveRule(
                name=name,
                version=int(detail["version"]),
                paused=bool(detail["paused"]),
                versions=[
                    LiveVersion(
                        version=int(item["version"]),
                        applied_at=datetime.fromisoformat(item["created_at"]),
                        fingerprint=_fingerprint(item["rule"]),
                    )
                    for item in versions
                ],
            )
        return found

    async def firings(self, rule: str, since: datetime, until: datetime) -> list[Firing]:
        """See :meth:`LiveRecord.firings`."""
        return await asyncio.to_thread(self._firings, rule, since, until)

    def _firings(self, rule: str, since: datetime, until: datetime) -> list[Firing]:
        # The API's own cursor; imported here, as the API (Litestar) takes long to import.
        from interlock.service.api.firings import encode_cursor  # noqa: PLC0415

        found: list[Firing] = []
        params: dict[str, Any] = {
            "rule": rule,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "limit": _PAGE,
        }
        while True:
            page = msgspec.convert(self._api.get("/api/firings", params), list[Firing])
            found.extend(page)
            if len(page) < _PAGE:
                return found
            params["cursor"] = encode_cursor(page[-1])


class StoreLiveRecord:
    """A :class:`LiveRecord` read from the service's store (for jobs inside the service).

    Args:
        store: The service's store.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    async def rules(self, names: Iterable[str]) -> dict[str, LiveRule]:
        """See :meth:`LiveRecord.rules`."""
        from interlock.service.store import NotFound  # noqa: PLC0415 - the CLI needs no store

        found: dict[str, LiveRule] = {}
        for name in names:
            try:
                record = await self._store.rules.get(name)
                versions = await self._store.rules.versions(name)
            except NotFound:
                continue
            found[name] = LiveRule(
                name=name,
                version=record.version,
                paused=record.paused,
                versions=[
                    LiveVersion(
                        version=item.version,
                        applied_at=item.created_at,
                        fingerprint=fingerprint(item.rule),
                    )
                    for item in versions
                ],
            )
        return found

    async def firings(self, rule: str, since: datetime, until: datetime) -> list[Firing]:
        """See :meth:`LiveRecord.firings`."""
        found: list[Firing] = []
        after: tuple[Any, Any] | None = None
        while True:
            page = await self._store.firings.list(
                rule=rule, since=since, until=until, after=after, limit=_PAGE
            )
            found.extend(page)
            if len(page) < _PAGE:
                return found
            after = (page[-1].at, page[-1].id)
