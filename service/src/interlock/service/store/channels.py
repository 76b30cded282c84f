"""Notification channels: the ``apprise`` connections, under the names they always had.

A channel is a name for an Apprise URL, which is a secret (it holds tokens and
passwords). Since issue 20 channels are connections of kind ``apprise`` (the migration
moved them, names and encrypted URLs unchanged); this module keeps the channel view of
them: everything that lists or shows channels sees only the URL's scheme
(``slack://***``); :meth:`Channels.get_secret` decrypts it for the dispatcher and
nothing else. No message, ``repr`` or log line here holds the URL.
"""

from __future__ import annotations

from interlock.sdk.connections import ConnectionNotFound
from interlock.service.store.connections import Connection, ConnectionChanged, Connections
from interlock.service.store.errors import InvalidRecord, NotFound
from interlock.service.store.names import check_name
from interlock.service.store.records import Channel

__all__ = ["Channels", "redact"]


def redact(scheme: str) -> str:
    """The shown form of a channel URL with this scheme."""
    return f"{scheme}://***"


class Channels:
    """Named Apprise URLs, encrypted at rest: the ``apprise`` connections."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def __repr__(self) -> str:
        return f"Channels({self._connections!r})"

    async def put(self, name: str, url: str) -> Channel:
        """Create the channel ``name``, or point it at a new URL.

        Raises:
            InvalidRecord: the name or the URL is malformed (the message omits the URL),
                or ``name`` is a connection of another kind.
            StoreError: no secret key is configured.
        """
        channel, _ = await self.put_change(name, url)
        return channel

    async def put_change(self, name: str, url: str) -> tuple[Channel, ConnectionChanged]:
        """:meth:`put`, and the change it made."""
        check_name("channel", name)
        try:
            existing = await self._connections.get(name)
        except NotFound:
            pass
        else:
            if existing.kind != "apprise":
                raise InvalidRecord(
                    "channel",
                    name,
                    "name",
                    f"is a connection of kind {existing.kind}, not a channel",
                )
        try:
            connection, change = await self._connections.put(name, "apprise", {"url": url})
        except InvalidRecord as exc:
            raise InvalidRecord("channel", name, exc.field, exc.reason) from None
        return _channel(connection), change

    async def get(self, name: str) -> Channel:
        """The channel called ``name``, redacted.

        Raises:
            NotFound: there is none.
        """
        connection = await self._connections.get(name)
        if connection.kind != "apprise":
            raise NotFound("channel", name)
        return _channel(connection)

    async def list(self) -> list[Channel]:
        """Every channel, by name, redacted."""
        return [_channel(c) for c in await self._connections.list(kind="apprise")]

    async def delete(self, name: str) -> ConnectionChanged:
        """Delete the channel called ``name``; return the change.

        Raises:
            NotFound: there is none.
        """
        await self.get(name)
        return await self._connections.delete(name)

    async def get_secret(self, name: str) -> str:
        """The channel's Apprise URL in clear: for the dispatcher only, never to show.

        Raises:
            NotFound: there is no such channel.
            StoreError: no secret key is configured, or none of the keys encrypted it.
        """
        try:
            resolved = await self._connections.resolve(name)
        except ConnectionNotFound:
            raise NotFound("channel", name) from None
        if resolved.kind != "apprise":
            raise NotFound("channel", name)
        return str(resolved.secrets["url"])


def _channel(connection: Connection) -> Channel:
    return Channel(
        name=connection.name,
        url=redact(str(connection.settings.get("scheme", "?"))),
        created_at=connection.created_at,
        updated_at=connection.updated_at,
    )
