"""API keys: random tokens shown once, stored as hashes, found by a public prefix.

A token reads ``ilk_<prefix>_<secret>``: the prefix (12 hex digits) is stored in clear to
find the key and to tell keys apart in listings; the whole token is stored only as its
SHA-256. The secret part is 256 random bits, so a fast hash is enough (nothing to
brute-force); the comparison is constant-time. Scopes (see
:data:`~interlock.service.store.records.Scope`): ``admin`` includes ``write``, which
includes ``read`` and ``publish``; ``publish`` only sends events. A key's name follows
the rule of names (:mod:`~interlock.service.store.names`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable
from typing import Any, get_args

import sqlalchemy as sa

from interlock.service.store import tables as t
from interlock.service.store.database import Database
from interlock.service.store.errors import InvalidRecord, NotFound
from interlock.service.store.names import check_name
from interlock.service.store.records import ApiKey, NewApiKey, Scope

__all__ = ["TOKEN_PREFIX", "ApiKeys"]

TOKEN_PREFIX = "ilk"  # noqa: S105 - the marker tokens start with, not a secret
_SCOPES: tuple[str, ...] = get_args(Scope)


class ApiKeys:
    """API keys and their verification."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(self, name: str, scopes: Iterable[Scope]) -> NewApiKey:
        """Create a key; the returned token is the only copy there will ever be.

        Raises:
            InvalidRecord: the name breaks the rule of names; no scope, or an unknown one.
        """
        check_name("API key", name)
        given = set(scopes)
        if not given or not given <= set(_SCOPES):
            raise InvalidRecord("API key", name, "scopes", f"must be some of {', '.join(_SCOPES)}")
        wanted: list[Scope] = [scope for scope in get_args(Scope) if scope in given]
        prefix = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            id=uuid.uuid4(), name=name, prefix=prefix, scopes=wanted, created_at=self._db.now()
        )
        async with self._db.transaction() as connection:
            await connection.execute(
                sa.insert(t.api_keys).values(
                    id=key.id,
                    name=name,
                    prefix=prefix,
                    token_hash=_hash(token),
                    scopes=list(wanted),
                    created_at=key.created_at,
                    revoked_at=None,
                )
            )
        return NewApiKey(key=key, token=token)

    async def verify(self, token: str) -> ApiKey | None:
        """The key this token belongs to, or ``None`` (malformed, unknown, wrong, revoked)."""
        marker, _, rest = token.partition("_")
        prefix, _, secret = rest.partition("_")
        if marker != TOKEN_PREFIX or not prefix or not secret:
            return None
        query = sa.select(t.api_keys).where(t.api_keys.c.prefix == prefix)
        async with self._db.transaction() as connection:
            row = (await connection.execute(query)).one_or_none()
        if row is None or not hmac.compare_digest(row.token_hash, _hash(token)):
            return None
        key = _key(row)
        return key if key.revoked_at is None else None

    async def list(self) -> list[ApiKey]:
        """Every key (without tokens), oldest first."""
        query = sa.select(t.api_keys).order_by(t.api_keys.c.created_at, t.api_keys.c.prefix)
        async with self._db.transaction() as connection:
            return [_key(row) for row in await connection.execute(query)]

    async def count(self) -> int:
        """How many keys are not revoked."""
        query = sa.select(sa.func.count()).where(t.api_keys.c.revoked_at.is_(None))
        async with self._db.transaction() as connection:
            return int((await connection.execute(query)).scalar_one())

    async def revoke(self, prefix: str) -> ApiKey:
        """Revoke the key with this prefix (revoking twice keeps the first time).

        Raises:
            NotFound: there is none.
        """
        keys = t.api_keys
        update = (
            sa.update(keys)
            .where(keys.c.prefix == prefix, keys.c.revoked_at.is_(None))
            .values(revoked_at=self._db.now())
        )
        async with self._db.transaction() as connection:
            await connection.execute(update)
            row = (
                await connection.execute(sa.select(keys).where(keys.c.prefix == prefix))
            ).one_or_none()
        if row is None:
            raise NotFound("API key", prefix)
        return _key(row)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _key(row: sa.Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=list(row.scopes),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
