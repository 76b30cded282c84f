"""Notification channels: a name for an Apprise URL, which is a secret.

The URL (it holds tokens and passwords) is encrypted with Fernet under the configured
secret key before it reaches the database. Everything that lists or shows channels sees
only the URL's scheme (``slack://***``); :meth:`Channels.get_secret` decrypts it for the
dispatcher and nothing else. No message, ``repr`` or log line here holds the URL.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

from interlock.service.store import tables as t
from interlock.service.store.database import Database
from interlock.service.store.errors import InvalidRecord, NotFound, StoreError
from interlock.service.store.names import check_name
from interlock.service.store.records import Channel

__all__ = ["Channels", "redact"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,63})://.")


def redact(scheme: str) -> str:
    """The shown form of a channel URL with this scheme."""
    return f"{scheme}://***"


class Channels:
    """Named Apprise URLs, encrypted at rest."""

    def __init__(self, database: Database, fernet: Fernet | None) -> None:
        self._db = database
        self._fernet = fernet

    def __repr__(self) -> str:
        return f"Channels({self._db!r})"

    async def put(self, name: str, url: str) -> Channel:
        """Create the channel ``name``, or point it at a new URL.

        Raises:
            InvalidRecord: the name or the URL is malformed (the message omits the URL).
            StoreError: no secret key is configured.
        """
        check_name("channel", name)
        match = _SCHEME.match(url)
        if match is None:
            raise InvalidRecord(
                "channel",
                name,
                "url",
                "is not an Apprise URL (scheme://...); see https://github.com/caronc/apprise/wiki",
            )
        scheme = match[1].lower()
        secret = self._cipher(name).encrypt(url.encode())
        now = self._db.now()
        values = {"scheme": scheme, "secret": secret, "updated_at": now}
        upsert = self._db.insert(t.channels).values(name=name, created_at=now, **values)
        upsert = upsert.on_conflict_do_update(index_elements=["name"], set_=values)
        async with self._db.transaction() as connection:
            await connection.execute(upsert)
            row = (await connection.execute(_select().where(t.channels.c.name == name))).one()
        return _channel(row)

    async def get(self, name: str) -> Channel:
        """The channel called ``name``, redacted.

        Raises:
            NotFound: there is none.
        """
        async with self._db.transaction() as connection:
            row = (
                await connection.execute(_select().where(t.channels.c.name == name))
            ).one_or_none()
        if row is None:
            raise NotFound("channel", name)
        return _channel(row)

    async def list(self) -> list[Channel]:
        """Every channel, by name, redacted."""
        async with self._db.transaction() as connection:
            rows = await connection.execute(_select().order_by(t.channels.c.name))
            return [_channel(row) for row in rows]

    async def delete(self, name: str) -> None:
        """Delete the channel called ``name``.

        Raises:
            NotFound: there is none.
        """
        delete = sa.delete(t.channels).where(t.channels.c.name == name)
        async with self._db.transaction() as connection:
            if (await connection.execute(delete)).rowcount == 0:
                raise NotFound("channel", name)

    async def get_secret(self, name: str) -> str:
        """The channel's Apprise URL in clear: for the dispatcher only, never to show.

        Raises:
            NotFound: there is no such channel.
            StoreError: no secret key is configured, or it is not the key the URL was
                encrypted with.
        """
        query = sa.select(t.channels.c.secret).where(t.channels.c.name == name)
        async with self._db.transaction() as connection:
            secret = (await connection.execute(query)).scalar_one_or_none()
        if secret is None:
            raise NotFound("channel", name)
        try:
            return self._cipher(name).decrypt(bytes(secret)).decode()
        except InvalidToken:
            raise StoreError(
                f"channel {name!r} cannot be decrypted with the configured secret key; "
                "it was stored under another key: restore that key, or set the channel again"
            ) from None

    def _cipher(self, name: str) -> Fernet:
        if self._fernet is None:
            raise StoreError(
                f"channel {name!r}: no secret key is configured to encrypt channel URLs; "
                "set INTERLOCK_SECRET_KEY (or secret_key in config/interlock.toml)"
            )
        return self._fernet


def _select() -> sa.Select[Any]:
    c = t.channels.c
    return sa.select(c.name, c.scheme, c.created_at, c.updated_at)


def _channel(row: sa.Row[Any]) -> Channel:
    return Channel(
        name=row.name,
        url=redact(row.scheme),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
