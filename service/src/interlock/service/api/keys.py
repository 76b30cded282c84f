"""``/api/keys``: API keys (admin only). A key's token is shown once, at creation.

Scopes: ``read`` (look), ``publish`` (send events only: producers, adapters), ``write``
(read, publish, change rules, queues, runs), ``admin`` (everything, also keys, channels
and deployments). See :mod:`.auth`.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import JSONBody

from interlock.service.api.auth import require_admin
from interlock.service.api.deps import ServicesDep
from interlock.service.api.fields import Name
from interlock.service.store import ApiKey, Scope

__all__ = ["CreatedKey", "KeyController", "NewKey"]


class NewKey(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A key to create."""

    name: Name
    """Who or what the key is for."""
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=5)] = msgspec.field(
        default_factory=lambda: ["read"]
    )
    """``read``, ``publish`` (events only), ``write`` (read and publish included),
    ``admin`` (everything but ``worker``) or ``worker`` (running runs, nothing else)."""


class CreatedKey(msgspec.Struct, frozen=True, kw_only=True):
    """A key just created: the only answer that ever holds its token."""

    key: ApiKey
    token: str
    """Send as ``Authorization: Bearer <token>``; it cannot be shown again."""

    def __repr__(self) -> str:
        return f"CreatedKey(key={self.key!r}, token='***')"


class KeyController(Controller):
    """API keys."""

    path = "/api/keys"
    tags = ["keys"]  # noqa: RUF012 - Litestar's declared attribute

    @post("/", guards=[require_admin], summary="Create an API key")
    async def create_key(self, data: JSONBody[NewKey], services: ServicesDep) -> CreatedKey:
        """Create a key; the answer holds its token, which is never shown again."""
        created = await services.store.api_keys.create(data.name, data.scopes)
        return CreatedKey(key=created.key, token=created.token)

    @get("/", guards=[require_admin], summary="List API keys")
    async def list_keys(self, services: ServicesDep) -> list[ApiKey]:
        """Every key (name, prefix, scopes, dates), never a token."""
        return await services.store.api_keys.list()
