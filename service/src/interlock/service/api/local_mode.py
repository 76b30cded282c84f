"""Local mode answers this machine's programs, not the web pages its browser shows.

In local mode (bound to loopback, no API key: what ``make run`` gives) a request needs
no key, so anything that can reach ``127.0.0.1:8400`` can use the API — including a web
page the user visits, through the browser. :class:`LocalModeGuard` (an ASGI middleware
of the application) refuses, with 403, what only a browser would send:

- a ``Host`` header that is not this API's address (``localhost``, ``127.0.0.1``,
  ``[::1]``, the bound address or the address the request reached, with its port or
  none): a DNS-rebinding page's requests name its own host, and could otherwise read
  the answers;
- a request that changes something (``POST``, ``PUT``, ``PATCH``, ``DELETE``) coming
  from another origin: an ``Origin`` header that is not this API's own address and port
  (``null`` included), or ``Sec-Fetch-Site: cross-site`` / ``same-site``. Such requests
  are what a page sends with a form or ``fetch`` without asking first (a JSON body sent
  as ``text/plain``, say). A request carrying an API key header (``Authorization`` or
  ``X-API-Key``) is left to the guards: no page can add one cross-site without a CORS
  preflight, which this API never grants.

The command line (httpx), curl and scripts send ``Host: 127.0.0.1:PORT`` and no
``Origin``: they pass. The approval links' form is served by the API itself, so its
``POST`` carries the API's own origin and passes too.

While the database cannot say whether a key exists, a loopback-bound API is checked as
in local mode (``/api/health`` keeps answering). Once a key exists (or the API is bound
to another address) nothing here applies: a
request without a key is refused by the guards anyway, and the ``Host`` may rightly be a
reverse proxy's public name. Unguarded routes (health, metrics, the approval links,
whose token is the credential) are then open to anyone who can reach them, as before.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from interlock.service.api.auth import in_local_mode
from interlock.service.context import Services
from interlock.service.store import StoreError

__all__ = ["LOOPBACK_NAMES", "LocalModeGuard", "split_host"]

LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})
"""Host names always taken as this API's in local mode."""

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_KEY_HEADERS = frozenset({b"authorization", b"x-api-key"})


def split_host(value: str) -> tuple[str, int | None] | None:
    """``(host, port)`` of a ``Host`` header (``[::1]:8400`` gives ``("::1", 8400)``).

    ``None`` when it is malformed (a port that is not a number, an unclosed bracket).
    """
    value = value.strip().lower()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else ""
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    else:
        host, port_text = value, ""
    if not port_text:
        return host, None
    if not port_text.isdigit() or len(port_text) > 5:
        return None
    return host, int(port_text)


class LocalModeGuard(ASGIMiddleware):
    """Refuses foreign ``Host`` headers, and changes from foreign origins, in local mode."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Check the request when the API is in local mode; pass it on if acceptable."""
        app = Litestar.from_scope(scope)
        services: Services = app.state["services"]
        if await _local(app, services):
            names, ports = _own_address(scope, services)
            headers = _headers(scope)
            port = _check_host(headers.get(b"host"), names, ports)
            if scope.get("method") in _UNSAFE and not _KEY_HEADERS & headers.keys():
                _check_origin(headers, names, port)
        await next_app(scope, receive, send)


async def _local(app: Litestar, services: Services) -> bool:
    try:
        return await in_local_mode(app)
    except StoreError:  # keys unknown (database down): check as if none existed
        return services.settings.api.local


def _headers(scope: Scope) -> dict[bytes, str]:
    return {key.lower(): value.decode("latin-1") for key, value in scope["headers"]}


def _own_address(scope: Scope, services: Services) -> tuple[frozenset[str], frozenset[int]]:
    """The host names and ports that are this API's own."""
    names = set(LOOPBACK_NAMES)
    ports: set[int] = set()
    bound = services.settings.api
    names.add(bound.host.lower().strip("[]"))
    if bound.port:
        ports.add(bound.port)
    server = scope.get("server")
    if server is not None:  # the address the request reached (uvicorn: the socket's)
        names.add(str(server[0]).lower())
        if server[1] is not None:
            ports.add(int(server[1]))
    return frozenset(names), frozenset(ports)


def _check_host(header: str | None, names: frozenset[str], ports: frozenset[int]) -> int | None:
    """The port the ``Host`` names (``None``: none given) if the host is ours; else 403."""
    parsed = split_host(header) if header is not None else None
    if parsed is not None and parsed[0] in names and (parsed[1] is None or parsed[1] in ports):
        return parsed[1]
    port = f":{min(ports)}" if ports else ""
    raise PermissionDeniedException(
        detail=f"the Host header {header!r} is not this API's address: in local mode (no API "
        f"key) it answers only to localhost{port}, 127.0.0.1{port} or [::1]{port}, so that "
        "a web page cannot reach it through a DNS name of its own. Use one of those; to "
        "serve the API under another name, create an API key (interlock keys create)"
    )


def _check_origin(headers: dict[bytes, str], names: frozenset[str], port: int | None) -> None:
    """403 unless the request comes from this API's own origin (or from no page)."""
    site = headers.get(b"sec-fetch-site", "").strip().lower()
    origin = headers.get(b"origin")
    foreign_site = site in ("cross-site", "same-site")
    if not foreign_site and (origin is None or _same_origin(origin, names, port)):
        return
    shown = f"Origin: {origin}" if origin is not None else f"Sec-Fetch-Site: {site}"
    raise PermissionDeniedException(
        detail=f"a web page ({shown}) may not change anything here: in local mode (no API "
        "key) the API takes changes only from programs on this machine (the interlock "
        "command, curl, scripts) and from its own pages. To call it from a web page, "
        "create an API key and send it in the Authorization header"
    )


def _same_origin(origin: str, names: frozenset[str], port: int | None) -> bool:
    try:
        parts = urlsplit(origin.strip())
        origin_port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    wanted = port if port is not None else _DEFAULT_PORTS.get(parts.scheme)
    return parts.scheme in _DEFAULT_PORTS and host in names and origin_port == wanted
