"""``/api/channels``: notification channels (names for Apprise URLs, stored encrypted).

A channel's URL holds its credentials, so it goes in once (``POST``, admin only) and
never comes back out: listings show it redacted to its scheme (``slack://***``).
Channels are the ``apprise`` connections (``/api/connections``); a change here is
published as ``interlock.connection.updated`` too.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody

from interlock.service.api.auth import require_admin, require_read
from interlock.service.api.deps import ServicesDep
from interlock.service.api.fields import Name
from interlock.service.connections.events import publish_change
from interlock.service.store import Channel
from interlock.service.store.names import check_name

__all__ = ["ChannelController", "NewChannel"]


class NewChannel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A channel to create or re-point."""

    name: Name
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]
    """An Apprise URL (``slack://...``, ``mailto://...``); stored encrypted."""

    def __repr__(self) -> str:
        return f"NewChannel(name={self.name!r}, url='***')"


class ChannelController(Controller):
    """Notification channels."""

    path = "/api/channels"
    tags = ["channels"]  # noqa: RUF012 - Litestar's declared attribute

    @post("/", guards=[require_admin], summary="Create or update a channel")
    async def put_channel(self, data: JSONBody[NewChannel], services: ServicesDep) -> Channel:
        """Create the channel, or point it at a new URL; answers with the URL redacted."""
        check_name("channel", data.name)  # the one rule of names, exactly
        channel, changed = await services.store.channels.put_change(data.name, data.url)
        await publish_change(services.publisher, changed)
        return channel

    @get("/", guards=[require_read], summary="List channels")
    async def list_channels(self, services: ServicesDep) -> list[Channel]:
        """Every channel, by name, URLs redacted to their scheme."""
        return await services.store.channels.list()

    @delete("/{name:str}", guards=[require_admin], summary="Delete a channel")
    async def delete_channel(self, name: FromPath[str], services: ServicesDep) -> None:
        """Delete the channel; 404 if none."""
        changed = await services.store.channels.delete(name)
        await publish_change(services.publisher, changed)
