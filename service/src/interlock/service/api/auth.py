"""API-key authentication: the guards ``require_read``, ``require_write``, ``require_admin``.

A request carries its key as ``Authorization: Bearer <token>`` or ``X-API-Key: <token>``.
Keys are verified against the store (which keeps only their hashes); scopes nest, so an
``admin`` key may do anything a ``write`` key may, and a ``write`` key anything ``read``
may.

Local mode: while the API is bound to a loopback address (``settings.api.local``) and
the store holds no (unrevoked) key at all, requests need no key — the embedded
single-machine default. As soon as one key exists, every guarded request needs one.
(A reverse proxy in front of a loopback bind makes the API public all the same: create
a key before putting one there.)
(Binding a non-loopback address with no key is refused before serving:
:func:`interlock.service.api.app.check_can_serve`.)

Answers are cached for a second (:mod:`.key_cache`): a revoked key, or the first key
created by ``interlock keys create``, takes effect up to that long later.

Without a usable key the answer is 401; with a key whose scope is too small, 403. The
messages never repeat the token.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from interlock.service.api.key_cache import KeyCache
from interlock.service.context import Services
from interlock.service.store import ApiKey, Scope

__all__ = [
    "KEY_CACHE_STATE",
    "current_key",
    "request_token",
    "require_admin",
    "require_read",
    "require_write",
    "services_of",
]

_STATE_KEY = "interlock_api_key"
KEY_CACHE_STATE = "interlock_key_cache"
"""Where the application keeps its :class:`KeyCache` (``app.state``)."""
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="interlock"'}


def services_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    """The :class:`Services` the application was created with."""
    services: Services = connection.app.state["services"]
    return services


def request_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The API token a request carries (``Authorization: Bearer`` or ``X-API-Key``)."""
    authorization = connection.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException(
                detail="the Authorization header must read 'Bearer <API key>'",
                headers=_CHALLENGE,
            )
        return token.strip()
    header = connection.headers.get("x-api-key")
    return header.strip() if header and header.strip() else None


def current_key(connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKey | None:
    """The key that authenticated this request (``None`` in local mode or unguarded)."""
    key: ApiKey | None = connection.scope.get("state", {}).get(_STATE_KEY)
    return key


def _cache(connection: ASGIConnection[Any, Any, Any, Any]) -> KeyCache:
    cache: KeyCache | None = connection.app.state.get(KEY_CACHE_STATE)
    if cache is None:  # an app not built by create_app: no caching
        cache = KeyCache(services_of(connection).store.api_keys, ttl=0)
        connection.app.state[KEY_CACHE_STATE] = cache
    return cache


async def _authenticate(connection: ASGIConnection[Any, Any, Any, Any], needed: Scope) -> None:
    services = services_of(connection)
    token = request_token(connection)
    if token is None:
        if services.settings.api.local and not await _cache(connection).keys_exist():
            return  # local mode: loopback only and no key created yet
        raise NotAuthorizedException(
            detail="an API key is required: send 'Authorization: Bearer <key>' "
            "(create one with: interlock keys create NAME --scope read|write|admin)",
            headers=_CHALLENGE,
        )
    key = await _cache(connection).verify(token)
    if key is None:
        raise NotAuthorizedException(
            detail="the API key is not valid (unknown, malformed or revoked)",
            headers=_CHALLENGE,
        )
    connection.scope.setdefault("state", {})[_STATE_KEY] = key
    if not key.allows(needed):
        raise PermissionDeniedException(
            detail=f"API key {key.name!r} ({key.prefix}) has scope "
            f"{', '.join(key.scopes) or 'none'}; this needs {needed}"
        )


async def require_read(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: the request needs a key with scope ``read`` (or more)."""
    await _authenticate(connection, "read")


async def require_write(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: the request needs a key with scope ``write`` (or ``admin``)."""
    await _authenticate(connection, "write")


async def require_admin(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: the request needs a key with scope ``admin``."""
    await _authenticate(connection, "admin")
