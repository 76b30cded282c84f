"""``/channels`` and ``/keys``: notification channels (secrets never shown) and API keys.

Channels are listed to any reader (their URLs redacted to the scheme, as the API does);
adding, replacing and removing one needs ``admin``, as does everything about keys. A
key's token is shown once, on the page that answers its creation, and never stored in
a form of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, get_args

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from interlock.service.api.deps import ServicesDep
from interlock.service.connections.events import publish_change
from interlock.service.store import ApiKey, Channel, InvalidRecord, Scope
from interlock.service.ui.render import page
from interlock.service.ui.security import ui_admin, ui_read

__all__ = ["AdminController", "ChannelsPage", "KeysPage"]

SCOPES: Final = get_args(Scope)


@dataclass(frozen=True, slots=True)
class ChannelsPage:
    """The channels page."""

    channels: tuple[Channel, ...]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class KeysPage:
    """The API keys page."""

    keys: tuple[ApiKey, ...]
    scopes: tuple[str, ...]
    created: str | None = None
    """A token just created (shown once)."""
    created_name: str | None = None
    error: str | None = None


@dataclass
class ChannelForm:
    """A channel to add or replace."""

    name: str = ""
    url: str = ""
    csrf_token: str = ""


@dataclass
class KeyForm:
    """A key to create."""

    name: str = ""
    scope: str = "read"
    csrf_token: str = ""


class AdminController(Controller):
    """Channels and API keys."""

    include_in_schema = False

    @get("/channels", guards=[ui_read], name="ui-channels")
    async def channels(self, request: Request[Any, Any, Any], services: ServicesDep) -> Template:
        """Every channel, its URL redacted."""
        context = ChannelsPage(channels=tuple(await services.store.channels.list()))
        return await page(
            request, context, template="ui/channels.html", section="channels", title="Channels"
        )

    @post("/channels", guards=[ui_admin], name="ui-channel-put", status_code=303)
    async def put_channel(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        data: Annotated[ChannelForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        """Add or replace a channel (its URL is encrypted; it is never shown again)."""
        try:
            _, changed = await services.store.channels.put_change(
                data.name.strip(), data.url.strip()
            )
        except InvalidRecord as exc:
            context = ChannelsPage(
                channels=tuple(await services.store.channels.list()), error=str(exc)
            )
            return await page(
                request,
                context,
                template="ui/channels.html",
                section="channels",
                title="Channels",
                status_code=422,
            )
        await publish_change(services.publisher, changed)
        return Redirect("/channels", status_code=303)

    @post(
        "/channels/{name:str}/delete", guards=[ui_admin], name="ui-channel-delete", status_code=303
    )
    async def delete_channel(self, services: ServicesDep, name: FromPath[str]) -> Redirect:
        """Remove a channel."""
        await publish_change(services.publisher, await services.store.channels.delete(name))
        return Redirect("/channels", status_code=303)

    @get("/keys", guards=[ui_admin], name="ui-keys")
    async def keys(self, request: Request[Any, Any, Any], services: ServicesDep) -> Template:
        """Every API key (name, prefix, scopes, dates), never a token."""
        context = KeysPage(keys=tuple(await services.store.api_keys.list()), scopes=SCOPES)
        return await page(
            request, context, template="ui/keys.html", section="keys", title="API keys"
        )

    @post("/keys", guards=[ui_admin], name="ui-key-create")
    async def create_key(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        data: Annotated[KeyForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        """Create a key; the page shows its token once."""
        created = None
        error = None
        scope = data.scope if data.scope in SCOPES else "read"
        try:
            created = await services.store.api_keys.create(data.name.strip(), [scope])  # type: ignore[list-item]
        except InvalidRecord as exc:
            error = str(exc)
        context = KeysPage(
            keys=tuple(await services.store.api_keys.list()),
            scopes=SCOPES,
            created=created.token if created else None,
            created_name=created.key.name if created else None,
            error=error,
        )
        return await page(
            request,
            context,
            template="ui/keys.html",
            section="keys",
            title="API keys",
            status_code=201 if created else 422,
        )

    @post("/keys/{prefix:str}/revoke", guards=[ui_admin], name="ui-key-revoke", status_code=303)
    async def revoke_key(self, services: ServicesDep, prefix: FromPath[str]) -> Redirect:
        """Revoke a key (it stops working within a second)."""
        await services.store.api_keys.revoke(prefix)
        return Redirect("/keys", status_code=303)
