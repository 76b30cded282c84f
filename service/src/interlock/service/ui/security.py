"""Who is looking at the UI, and what their forms may change.

**Who.** A request is answered for a :class:`Viewer`, found in this order:

1. an API key in ``Authorization: Bearer`` or ``X-API-Key`` (scripts, as the API);
2. the session cookie (``interlock_session``), which ``/login`` sets in exchange for an
   API key: it holds the key's *id* (never its token), signed, HttpOnly,
   ``SameSite=Strict``; the key's current scopes apply, and revoking it ends the
   session (within a second, the key cache's time);
3. local mode (bound to loopback, no key exists): everyone on this machine is an admin,
   as with the API; :mod:`~interlock.service.api.local_mode` refuses foreign ``Host``
   and ``Origin`` headers before this.

Without any, a page answers with a redirect to ``/login`` (a page reached from another
site first reloads itself once from this one, since a ``Strict`` cookie is not sent
with a navigation another site started).

**What.** Scopes as in the API: ``read`` sees every page, ``write`` acts (pause, resume,
decide, run, cancel), ``admin`` manages channels and keys. A button the viewer may not
use is not rendered, and its ``POST`` is refused (403) all the same.

**Forms.** Every unsafe request (``POST``) from a page must:

- come from this origin (``Sec-Fetch-Site: same-origin`` or an ``Origin`` naming this
  host), and
- carry the CSRF token of the page it came from: ``csrf_token`` (a form field) or
  ``X-CSRF-Token``, the HMAC of the browser's ``interlock_csrf`` cookie (a random
  value set with the first page).

Requests that carry an API key header are exempt: no page can add that header to a
cross-site request. Refusals are 403.

The signing key is derived from the service's secret key (the one that encrypts channel
URLs), so sessions survive a restart; without one, a random key is made per process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from interlock.service.api.auth import KEY_CACHE_STATE, in_local_mode, request_token
from interlock.service.api.key_cache import KeyCache
from interlock.service.context import Services
from interlock.service.store import ApiKey, Scope

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "SignInRequired",
    "Signer",
    "Viewer",
    "csrf_cookie",
    "csrf_token",
    "safe_next",
    "session_cookie",
    "ui_admin",
    "ui_read",
    "ui_write",
    "viewer_of",
]

SESSION_COOKIE: Final = "interlock_session"
CSRF_COOKIE: Final = "interlock_csrf"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "x-csrf-token"
SIGNER_STATE: Final = "interlock_ui_signer"
SESSION_MAX_AGE: Final = 7 * 24 * 3600
"""Seconds a session lasts at most (signed in again after a week)."""
_VIEWER = "interlock_ui_viewer"
_KEYS_BY_ID = "interlock_ui_keys"
_KEYS_TTL = 1.0
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ALL: frozenset[Scope] = frozenset({"read", "publish", "write", "admin"})
_GRANTS: dict[str, frozenset[Scope]] = {
    "read": frozenset({"read"}),
    "publish": frozenset({"publish"}),
    "write": frozenset({"read", "publish", "write"}),
    "admin": _ALL,
    "worker": frozenset(),
}


class SignInRequired(HTTPException):
    """No viewer: the UI answers with the sign-in page (a redirect), not an error."""

    status_code = 401


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who a request is answered for."""

    name: str
    """The API key's name, or ``local``."""
    scopes: frozenset[Scope]
    """What it may do (local mode: everything)."""
    local: bool = False
    """Local mode: no key needed, nobody signs in."""
    session: bool = False
    """Signed in with the session cookie (so it may sign out)."""
    key_prefix: str | None = None

    def can(self, scope: Scope) -> bool:
        """Whether it may do what ``scope`` allows."""
        return scope in self.scopes


class Signer:
    """Signs and reads the session cookie; makes and checks CSRF tokens."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"interlock-ui-v1", hashlib.sha256).digest()

    def _mac(self, purpose: str, text: str) -> str:
        digest = hmac.new(self._key, f"{purpose}:{text}".encode(), hashlib.sha256).digest()
        return _b64(digest)

    def sign_session(self, key_id: uuid.UUID, *, now: float | None = None) -> str:
        """The cookie value of a session of key ``key_id``."""
        body = _b64(json.dumps({"k": str(key_id), "t": int(now or time.time())}).encode())
        return f"{body}.{self._mac('session', body)}"

    def read_session(self, value: str, *, now: float | None = None) -> uuid.UUID | None:
        """The key id of a valid, unexpired session cookie; else ``None``."""
        body, _, mac = value.partition(".")
        if not body or not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        try:
            data = json.loads(_unb64(body))
            issued = float(data["t"])
            key_id = uuid.UUID(str(data["k"]))
        except (ValueError, KeyError, TypeError):
            return None
        if (now or time.time()) - issued > SESSION_MAX_AGE:
            return None
        return key_id

    def csrf(self, nonce: str) -> str:
        """The CSRF token of the browser whose ``interlock_csrf`` cookie is ``nonce``."""
        return self._mac("csrf", nonce)

    def csrf_valid(self, nonce: str | None, token: str | None) -> bool:
        """Whether ``token`` is the CSRF token of ``nonce``."""
        if not nonce or not token:
            return False
        return hmac.compare_digest(token, self.csrf(nonce))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signer_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Signer:
    """The application's :class:`Signer` (made by the UI's router at start)."""
    signer: Signer = connection.app.state[SIGNER_STATE]
    return signer


def _services(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    services: Services = connection.app.state["services"]
    return services


async def _key_by_id(
    connection: ASGIConnection[Any, Any, Any, Any], key_id: uuid.UUID
) -> ApiKey | None:
    """The key with this id, from a list of keys reread at most once a second."""
    state = connection.app.state
    cached: tuple[float, dict[uuid.UUID, ApiKey]] | None = state.get(_KEYS_BY_ID)
    now = time.monotonic()
    if cached is None or cached[0] < now:
        keys = await _services(connection).store.api_keys.list()
        cached = (now + _KEYS_TTL, {key.id: key for key in keys})
        state[_KEYS_BY_ID] = cached
    key = cached[1].get(key_id)
    return key if key is not None and key.revoked_at is None else None


def _scopes(key: ApiKey) -> frozenset[Scope]:
    granted: set[Scope] = set()
    for held in key.scopes:
        granted |= _GRANTS.get(held, frozenset())
    return frozenset(granted)


async def viewer_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Viewer | None:
    """Who the request is answered for (see the module docstring); ``None``: nobody yet."""
    state = connection.scope.setdefault("state", {})
    if _VIEWER in state:
        viewer: Viewer | None = state[_VIEWER]
        return viewer
    viewer = await _find_viewer(connection)
    state[_VIEWER] = viewer
    return viewer


async def _find_viewer(connection: ASGIConnection[Any, Any, Any, Any]) -> Viewer | None:
    token = request_token(connection)
    if token is not None:
        cache: KeyCache = connection.app.state[KEY_CACHE_STATE]
        key = await cache.verify(token)
        if key is None or key.revoked_at is not None:
            return None
        return Viewer(name=key.name, scopes=_scopes(key), key_prefix=key.prefix)
    cookie = connection.cookies.get(SESSION_COOKIE)
    if cookie:
        key_id = signer_of(connection).read_session(cookie)
        if key_id is not None:
            key = await _key_by_id(connection, key_id)
            if key is not None:
                return Viewer(
                    name=key.name, scopes=_scopes(key), session=True, key_prefix=key.prefix
                )
    if await in_local_mode(connection.app):
        return Viewer(name="local", scopes=_ALL, local=True)
    return None


def _ui_guard(scope: Scope) -> Any:
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        viewer = await viewer_of(connection)
        unsafe = connection.scope.get("method") in _UNSAFE
        if unsafe and request_token(connection) is None:
            _check_same_origin(connection)
            await _check_csrf(connection)
        if viewer is None:
            if unsafe:
                raise PermissionDeniedException(detail="sign in first")
            raise SignInRequired(detail="sign in to see this page")
        if not viewer.can(scope):
            raise PermissionDeniedException(
                detail=f"{viewer.name} may not do this: it needs the {scope} scope"
            )

    guard.__name__ = f"ui_{scope}"
    return guard


ui_read = _ui_guard("read")
"""Guard of the pages and streams: scope ``read``."""
ui_write = _ui_guard("write")
"""Guard of the UI's actions (pause, resume, decide, run, cancel): scope ``write``."""
ui_admin = _ui_guard("admin")
"""Guard of channels and keys: scope ``admin``."""


def _check_same_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    site = (connection.headers.get("sec-fetch-site") or "").lower()
    origin = connection.headers.get("origin")
    if site in ("cross-site", "same-site"):
        raise PermissionDeniedException(detail=f"a form from another site ({site}) was refused")
    if origin is not None:
        host = (connection.headers.get("host") or "").lower()
        parts = urlsplit(origin)
        if origin == "null" or parts.netloc.lower() != host:
            raise PermissionDeniedException(detail=f"a form from {origin} was refused")


async def _check_csrf(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    token = connection.headers.get(CSRF_HEADER)
    if token is None and isinstance(connection, Request):
        form = await connection.form()
        value = form.get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    if not signer_of(connection).csrf_valid(connection.cookies.get(CSRF_COOKIE), token):
        raise PermissionDeniedException(
            detail="the form's CSRF token is missing or stale: reload the page and try again"
        )


def csrf_token(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[str, Cookie | None]:
    """The CSRF token for the page being rendered, and the cookie to set if it is new."""
    nonce = connection.cookies.get(CSRF_COOKIE)
    cookie = None
    if not nonce:
        nonce = secrets.token_urlsafe(24)
        cookie = csrf_cookie(nonce)
    return signer_of(connection).csrf(nonce), cookie


def csrf_cookie(nonce: str) -> Cookie:
    """The cookie that binds forms to this browser."""
    return Cookie(key=CSRF_COOKIE, value=nonce, httponly=True, samesite="lax", path="/")


def session_cookie(signer: Signer, key_id: uuid.UUID | None) -> Cookie:
    """The session cookie of ``key_id`` (``None``: the cookie that signs out)."""
    if key_id is None:
        return Cookie(
            key=SESSION_COOKIE, value="", max_age=0, httponly=True, samesite="strict", path="/"
        )
    return Cookie(
        key=SESSION_COOKIE,
        value=signer.sign_session(key_id),
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="strict",
        path="/",
    )


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site (never another host), else ``default``."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or urlsplit(target).netloc:
        return default
    return target
