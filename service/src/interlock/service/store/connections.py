"""Named, typed connections: settings shown, secrets encrypted at rest, changes listed.

::

    await store.connections.put("prod-airflow", "airflow", {"url": ..., "username": "svc",
                                                           "password": "..."})
    await store.connections.rotate("prod-airflow", {"password": "new"})
    resolved = await store.connections.resolve("prod-airflow")   # secrets in clear

What each kind holds is :mod:`~interlock.service.store.connection_kinds`; the keys are
a :class:`~interlock.service.store.keyring.Keyring` (the newest writes, the others
read). Everything that lists or shows connections sees a :class:`Connection`: the
settings and the *names* of the secrets. :meth:`Connections.resolve` is for executors
and adapters, at use time: it keeps what it decrypted for ``cache_seconds`` at most and
forgets a name as soon as this process changes it, so a rotation here is used by the
next call; another process (a replica) sees it within ``cache_seconds``, or at once
when the ``interlock.connection.updated`` event reaches it
(:meth:`Connections.forget`).

Every change writes a row of ``connection_changes`` in its own transaction: the change,
the field names given, the new version. No message, ``repr`` or log line here holds a
secret's value.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from interlock.sdk.connections import ConnectionKind, ConnectionNotFound, ResolvedConnection
from interlock.sdk.vocabulary import ConnectionChange
from interlock.service.store import tables as t
from interlock.service.store.connection_kinds import (
    KINDS,
    decode_secrets,
    encode_secrets,
    split,
)
from interlock.service.store.database import Database
from interlock.service.store.errors import InvalidRecord, NotFound
from interlock.service.store.keyring import Keyring
from interlock.service.store.names import check_name

__all__ = ["CACHE_SECONDS", "Connection", "ConnectionChanged", "Connections"]

CACHE_SECONDS = 5.0
"""How long a resolved connection is reused without reading the store again."""


class Connection(msgspec.Struct, frozen=True, kw_only=True):
    """A connection as the API shows it: never a secret's value."""

    name: str
    kind: ConnectionKind
    settings: dict[str, Any]
    """What is not secret (URLs without passwords, a region, a user name)."""
    secrets: list[str]
    """The names of the secret fields it holds (``password``, ``headers``)."""
    version: int
    created_at: datetime
    updated_at: datetime


class ConnectionChanged(msgspec.Struct, frozen=True, kw_only=True):
    """One change of a connection, as listed and published (field names, no values)."""

    name: str
    kind: ConnectionKind
    change: ConnectionChange
    fields: list[str]
    version: int
    at: datetime


class Connections:
    """The store's connections (see the module's docstring).

    Args:
        database: The store's database.
        keyring: The service's keys.
        cache_seconds: How long :meth:`resolve` reuses what it read (0: never).
    """

    def __init__(
        self, database: Database, keyring: Keyring, *, cache_seconds: float = CACHE_SECONDS
    ) -> None:
        self._db = database
        self._keyring = keyring
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, ResolvedConnection]] = {}

    def __repr__(self) -> str:
        return f"Connections({self._db!r})"

    # -- changes ----------------------------------------------------------------------------

    async def put(
        self, name: str, kind: str, fields: Mapping[str, Any]
    ) -> tuple[Connection, ConnectionChanged]:
        """Create the connection, or replace every field of it (its kind may change).

        Raises:
            InvalidRecord: the name, the kind or a field is malformed (the message names
                the field, never a secret's value).
            NoKey: no secret key is configured.
        """
        check_name("connection", name)
        spec, settings, secrets = split(name, kind, fields)
        token = self._keyring.encrypt(f"connection {name!r}", encode_secrets(spec.kind, secrets))
        now = self._db.now()
        async with self._db.transaction() as connection:
            old = (
                await connection.execute(
                    sa.select(t.connections.c.version).where(t.connections.c.name == name)
                )
            ).scalar_one_or_none()
            version = 1 if old is None else old + 1
            values = {
                "kind": spec.kind,
                "settings": settings,
                "secret": token,
                "secret_fields": sorted(secrets),
                "version": version,
                "updated_at": now,
            }
            if old is None:
                await connection.execute(
                    sa.insert(t.connections).values(name=name, created_at=now, **values)
                )
            else:
                await connection.execute(
                    sa.update(t.connections).where(t.connections.c.name == name).values(**values)
                )
            change: ConnectionChange = "created" if old is None else "updated"
            changed = await self._record(
                connection, name, spec.kind, change, fields=fields, version=version
            )
            row = (await connection.execute(_select().where(t.connections.c.name == name))).one()
        self.forget(name)
        return _shown(row), changed

    async def rotate(
        self, name: str, secrets: Mapping[str, Any]
    ) -> tuple[Connection, ConnectionChanged]:
        """Replace some secrets of the connection ``name``, keeping everything else.

        An http connection's ``headers`` are merged by header name (an empty value
        removes one).

        Raises:
            NotFound: there is no such connection.
            InvalidRecord: a field is not a secret of its kind, or the result is invalid.
            NoKey, WrongKey: the stored secrets cannot be read.
        """
        if not secrets:
            raise InvalidRecord("connection", name, "secrets", "give at least one to rotate")
        async with self._db.transaction() as connection:
            row = (
                await connection.execute(
                    sa.select(t.connections).where(t.connections.c.name == name).with_for_update()
                )
            ).one_or_none()
            if row is None:
                raise NotFound("connection", name)
            spec = KINDS[row.kind]
            for field in secrets:
                if field not in spec.secrets:
                    allowed = ", ".join(sorted(spec.secrets))
                    raise InvalidRecord(
                        "connection",
                        name,
                        str(field)[:64],
                        f"is not a secret of {spec.kind} connections ({allowed}); "
                        "change settings with `interlock connections add`",
                    )
            current = self._decrypt(name, row.kind, row.secret)
            merged = {**current, **secrets}
            if "headers" in secrets and isinstance(secrets["headers"], dict):
                headers = {**current.get("headers", {}), **secrets["headers"]}
                merged["headers"] = {k: v for k, v in headers.items() if v}
            given = {k: v for k, v in row.settings.items() if k in spec.settings}
            _, settings, clear = split(name, spec.kind, {**given, **merged})
            token = self._keyring.encrypt(f"connection {name!r}", encode_secrets(spec.kind, clear))
            version = row.version + 1
            await connection.execute(
                sa.update(t.connections)
                .where(t.connections.c.name == name)
                .values(
                    settings=settings,
                    secret=token,
                    secret_fields=sorted(clear),
                    version=version,
                    updated_at=self._db.now(),
                )
            )
            changed = await self._record(
                connection, name, spec.kind, "rotated", fields=secrets, version=version
            )
            row = (await connection.execute(_select().where(t.connections.c.name == name))).one()
        self.forget(name)
        return _shown(row), changed

    async def delete(self, name: str) -> ConnectionChanged:
        """Delete the connection ``name``.

        Raises:
            NotFound: there is none.
        """
        async with self._db.transaction() as connection:
            row = (
                await connection.execute(
                    sa.select(t.connections.c.kind, t.connections.c.version).where(
                        t.connections.c.name == name
                    )
                )
            ).one_or_none()
            if row is None:
                raise NotFound("connection", name)
            await connection.execute(sa.delete(t.connections).where(t.connections.c.name == name))
            changed = await self._record(
                connection, name, row.kind, "removed", fields={}, version=row.version + 1
            )
        self.forget(name)
        return changed

    async def reencrypt(self) -> int:
        """Encrypt every stored secret with the newest key; return how many changed.

        Each row is rewritten in its own transaction, guarded by its version, so a
        change made meanwhile is never overwritten.

        Raises:
            NoKey: no key is configured.
            WrongKey: a secret was encrypted under none of the keys (the message names
                the connection; the ones before it are re-encrypted already).
        """
        query = sa.select(t.connections.c.name, t.connections.c.secret, t.connections.c.version)
        async with self._db.transaction() as connection:
            rows = (await connection.execute(query.order_by(t.connections.c.name))).all()
        count = 0
        for row in rows:
            token = self._keyring.rotate(f"connection {row.name!r}", bytes(row.secret))
            if token is None:
                continue
            update = (
                sa.update(t.connections)
                .where(t.connections.c.name == row.name, t.connections.c.version == row.version)
                .values(secret=token)
            )
            async with self._db.transaction() as connection:
                count += (await connection.execute(update)).rowcount
        return count

    # -- reading ----------------------------------------------------------------------------

    async def get(self, name: str) -> Connection:
        """The connection ``name``, without its secrets' values.

        Raises:
            NotFound: there is none.
        """
        async with self._db.transaction() as connection:
            row = (
                await connection.execute(_select().where(t.connections.c.name == name))
            ).one_or_none()
        if row is None:
            raise NotFound("connection", name)
        return _shown(row)

    async def list(self, kind: str | None = None) -> builtins.list[Connection]:
        """Every connection (of ``kind``), by name, without its secrets' values."""
        query = _select().order_by(t.connections.c.name)
        if kind is not None:
            query = query.where(t.connections.c.kind == kind)
        async with self._db.transaction() as connection:
            rows = (await connection.execute(query)).all()
        return [_shown(row) for row in rows]

    async def history(
        self, name: str | None = None, limit: int = 100
    ) -> builtins.list[ConnectionChanged]:
        """The latest changes (of the connection ``name``), newest first."""
        c = t.connection_changes.c
        query = sa.select(t.connection_changes).order_by(c.at.desc(), c.id.desc()).limit(limit)
        if name is not None:
            query = query.where(c.name == name)
        async with self._db.transaction() as connection:
            rows = (await connection.execute(query)).all()
        return [_changed(row) for row in rows]

    async def resolve(self, name: str) -> ResolvedConnection:
        """The connection ``name`` with its secrets in clear: for use, never to show.

        Raises:
            ConnectionNotFound: there is none.
            NoKey, WrongKey: its secrets cannot be decrypted.
        """
        now = time.monotonic()
        cached = self._cache.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        query = sa.select(t.connections).where(t.connections.c.name == name)
        async with self._db.transaction() as connection:
            row = (await connection.execute(query)).one_or_none()
        if row is None:
            self._cache.pop(name, None)
            raise ConnectionNotFound(
                name, "does not exist: add it with `interlock connections add`"
            )
        resolved = ResolvedConnection(
            name=name,
            kind=row.kind,
            version=row.version,
            settings=dict(row.settings),
            secrets=self._decrypt(name, row.kind, row.secret),
        )
        if self._cache_seconds > 0:
            self._cache[name] = (now + self._cache_seconds, resolved)
        return resolved

    def forget(self, name: str | None = None) -> None:
        """Drop what :meth:`resolve` cached of ``name`` (``None``: of every connection)."""
        if name is None:
            self._cache.clear()
        else:
            self._cache.pop(name, None)

    # -- helpers ----------------------------------------------------------------------------

    def _decrypt(self, name: str, kind: str, token: bytes) -> dict[str, Any]:
        clear = self._keyring.decrypt(f"connection {name!r}", bytes(token))
        return decode_secrets(kind, clear)

    async def _record(
        self,
        connection: Any,
        name: str,
        kind: ConnectionKind,
        change: ConnectionChange,
        *,
        fields: Mapping[str, Any],
        version: int,
    ) -> ConnectionChanged:
        names = sorted(str(field) for field in fields)
        at = self._db.now()
        await connection.execute(
            sa.insert(t.connection_changes).values(
                name=name, kind=kind, change=change, fields=names, version=version, at=at
            )
        )
        return ConnectionChanged(
            name=name,
            kind=kind,
            change=change,
            fields=names,
            version=version,
            at=at,
        )


def _select() -> sa.Select[Any]:
    c = t.connections.c
    return sa.select(
        c.name, c.kind, c.settings, c.secret_fields, c.version, c.created_at, c.updated_at
    )


def _shown(row: sa.Row[Any]) -> Connection:
    return Connection(
        name=row.name,
        kind=row.kind,
        settings=dict(row.settings),
        secrets=list(row.secret_fields),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _changed(row: sa.Row[Any]) -> ConnectionChanged:
    return ConnectionChanged(
        name=row.name,
        kind=row.kind,
        change=row.change,
        fields=list(row.fields),
        version=row.version,
        at=row.at,
    )
