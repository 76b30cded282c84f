"""API-key authentication: the guards ``require_read|publish|write|admin|worker``.

A request carries its key as ``Authorization: Bearer <token>`` or ``X-API-Key: <token>``.
Keys are verified against the store (which keeps only their hashes). Scopes
(:data:`~interlock.service.store.Scope`):

=========  ==================================================================
scope      may
=========  ==================================================================
read       read everything (never a secret)
publish    send events (``POST /api/events``) and nothing else: producers, adapters
write      read, publish, and change rules, queues, runs, schedules, approvals
admin      everything: also keys, channels, and deployments (which run commands
           on worker hosts); not ``worker``
worker     only the worker API (``/api/worker``): claim and record runs, read
           the connections their targets name (secrets included)
=========  ==================================================================

Local mode: while the API is bound to a loopback address (``settings.api.local``) and
the store holds no (unrevoked) key at all, requests need no key — the embedded
single-machine default. As soon as one key exists, every guarded request needs one.
(A reverse proxy in front of a loopback bind makes the API public all the same: create
a key before putting one there.) In local mode, :mod:`.local_mode` refuses what only a
web page would send (a foreign ``Host`` or ``Origin``).
(Binding a non-loopback address with no key is refused before serving:
:func:`interlock.service.api.app.check_can_serve`.)

Answers are cached for a second (:mod:`.key_cache`): a revoked key, or the first key
created by ``interlock keys create``, takes effect up to that long later.

Without a usable key the answer is 401; with a key whose scope is too small, 403. The
messages never repeat the token.
"""

from __future__ import annotations

from typing import Any, get_args

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from interlock.service.api.key_cache import KeyCache
from interlock.service.context import Services
from interlock.service.store import ApiKey, Scope

__all__ = [
    "KEY_CACHE_STATE",
    "current_key",
    "in_local_mode",
    "request_token",
    "require_admin",
    "require_publish",
    "require_read",
    "require_worker",
    "require_write",
    "services_of",
]

_STATE_KEY = "interlock_api_key"
KEY_CACHE_STATE = "interlock_key_cache"
"""Where the application keeps its :class:`KeyCache` (``app.state``)."""
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="interlock"'}
_SCOPES: tuple[str, ...] = get_args(Scope)


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


def _cache(app: Litestar) -> KeyCache:
    cache: KeyCache | None = app.state.get(KEY_CACHE_STATE)
    if cache is None:  # an app not built by create_app: no caching
        services: Services = app.state["services"]
        cache = KeyCache(services.store.api_keys, ttl=0)
        app.state[KEY_CACHE_STATE] = cache
    return cache


async def in_local_mode(app: Litestar) -> bool:
    """Whether ``app`` answers without a key: bound to loopback and no key exists yet."""
    services: Services = app.state["services"]
    return services.settings.api.local and not await _cache(app).keys_exist()


async def _authenticate(connection: ASGIConnection[Any, Any, Any, Any], needed: Scope) -> None:
    token = request_token(connection)
    if token is None:
        if await in_local_mode(connection.app):
            return  # local mode: loopback only and no key created yet
        raise NotAuthorizedException(
            detail="an API key is required: send 'Authorization: Bearer <key>' "
            "(create one with: interlock keys create NAME --scope "
            f"{'|'.join(_SCOPES)}; this needs {needed})",
            headers=_CHALLENGE,
        )
    key = await _cache(connection.app).verify(token)
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
    """Guard: the request needs a key with scope ``read`` (or ``write``, ``admin``)."""
    await _authenticate(connection, "read")


async def require_publish(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: the request needs a key with scope ``publish`` (or ``write``, ``admin``)."""
    await _authenticate(connection, "publish")


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


async def require_worker(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: the request needs a key with scope ``worker`` (no other scope grants it)."""
    await _authenticate(connection, "worker")
