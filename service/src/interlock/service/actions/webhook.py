"""The ``webhook`` executor: one HTTP request with a JSON body, through a pooled client.

Every attempt carries the header ``Idempotency-Key`` (the same on every attempt), so a
receiver can tell a retry from a new call. A 2xx answer is success; 5xx, 429, 408 and
connection errors or timeouts are retried; any other answer fails at once. Messages and
logs name the method, the status and the URL's origin (``https://host:port``): never its
path or query, where tokens live.

Each call is an ``httpx.Request`` (httpx checks the URL and the headers and writes
``Host`` and ``Content-Length``), sent through one httpx transport,
:class:`~interlock.service.actions.aiohttp_transport.AiohttpTransport`: keep-alive
connections shared by every action in flight, TLS checked against certifi's CA bundle.
Requests go to the transport, not through an ``httpx.AsyncClient``: what the client
adds is what a webhook must not do (keep and send cookies, follow redirects, merge
default headers), and it cost more CPU than the call itself (URL merging and urllib's
cookie jar on every answer: ``tests/perf/bench_http_clients.py``). No cookie is kept,
so a cookie one endpoint sets is never sent with another rule's call to the same host.
Parsed URLs are cached: a rule calls the same few endpoints again and again.

A webhook may name an ``http`` connection instead of a URL (``webhook(connection="tickets",
path="/issues")``): :meth:`WebhookExecutor.prepare` resolves it when the action runs
(through the store's cache, which a change empties, so a rotated token is sent by the
next call), puts the path under its base URL and adds its headers (the action's own
win). The connection's origin counts as written in the rule: an administrator chose it.

Where a webhook may go is checked on the URL as rendered, before anything is sent
(:mod:`~interlock.service.actions.destinations`: the allow-list, and origins that came
from a template). :meth:`WebhookExecutor.route` tells the dispatcher the request's
destination and cap, so that it paces requests per destination
(:mod:`~interlock.service.actions.pacing`); failures that say the destination is busy
are raised as :class:`~interlock.service.actions.pacing.Congested` (refused, reset or
unaccepted connections, HTTP 429) or :class:`~interlock.service.actions.pacing.Overloaded`
(timeouts, HTTP 408, 502, 503, 504). A connection must open within
``actions.webhooks.connect_timeout`` (at most half the attempt's time limit), so that a
full listen backlog shows as a connect timeout, not as the attempt's.
"""

from __future__ import annotations

import functools
import logging
import ssl
from typing import TYPE_CHECKING, Any

import certifi
import httpx
import msgspec

from interlock.rules.rule import Rule
from interlock.sdk.connections import ConnectionNotFound
from interlock.sdk.executors import ActionFailed, ActionRequest, ActionResult
from interlock.sdk.retry import retry_after as parse_retry_after
from interlock.service.actions.aiohttp_transport import (
    AiohttpTransport,
    CertificateNotTrusted,
    ConnectionDropped,
    ConnectionRefused,
)
from interlock.service.actions.destinations import DestinationPolicy, written_origins
from interlock.service.actions.origins import DestinationPattern, Origin, origin_of
from interlock.service.actions.pacing import Congested, Overloaded, Route
from interlock.service.actions.redact import url_origin
from interlock.service.connections.http import headers_of, join
from interlock.service.store import StoreError

if TYPE_CHECKING:
    from interlock.service.actions.registry import ServiceContext

__all__ = ["IDEMPOTENCY_HEADER", "USER_AGENT", "WebhookExecutor"]

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "Interlock"
"""Sent unless the action sets its own ``User-Agent``."""
MAX_CONNECTIONS_MARGIN = 16
"""Connections allowed beyond the dispatcher's concurrency (closing ones linger)."""
KEEPALIVE_SECONDS = 15.0
_RETRY_STATUSES = frozenset({408, 425, 429})
_OVERLOADED_STATUSES = frozenset({408, 502, 503, 504})
_RETRY_AFTER_MAX = 3600.0
_encoder = msgspec.json.Encoder()
_parsed_url = functools.lru_cache(maxsize=1024)(httpx.URL)


@functools.lru_cache(maxsize=1024)
def _destination(url: str) -> tuple[Origin, str] | None:
    """Where a request to ``url`` goes: its origin and that as text (``None``: nowhere).

    Read from the URL as httpx sends it.
    """
    try:
        origin = origin_of(str(_parsed_url(url)))
    except httpx.InvalidURL:
        return None
    return None if origin is None else (origin, str(origin))


def _method(action: dict[str, Any]) -> str:
    return str(action.get("method", "POST")).upper()


class WebhookExecutor:
    """Calls HTTP endpoints for ``webhook`` actions (pooled connections, see above)."""

    def __init__(self, context: ServiceContext) -> None:
        services = context.services
        actions = services.settings.actions
        hooks = actions.webhooks
        seconds = context.action_timeout
        connect = min(hooks.connect_timeout.total_seconds(), seconds / 2)
        self._extensions = {
            "timeout": {"connect": connect, "read": seconds, "write": seconds, "pool": seconds}
        }
        self._transport = AiohttpTransport(
            ssl_context=ssl.create_default_context(cafile=certifi.where()),
            max_connections=actions.concurrency + MAX_CONNECTIONS_MARGIN,
            keepalive=KEEPALIVE_SECONDS,
        )
        self._rules = services.rules
        self._connections = services.store.connections
        self._policy = DestinationPolicy(hooks)
        self._max_concurrency = hooks.max_concurrency
        self._host_caps = sorted(
            ((DestinationPattern.parse(text), cap) for text, cap in hooks.host_concurrency.items()),
            key=lambda entry: entry[0].specificity,
            reverse=True,
        )
        self._written: dict[str, tuple[Rule, frozenset[Origin]]] = {}
        self._host_cap = functools.lru_cache(maxsize=1024)(self._find_host_cap)

    async def prepare(self, request: ActionRequest) -> ActionRequest:
        """The request with its connection's URL and headers, if it names one.

        Raises:
            ActionFailed: no such connection, or not an ``http`` one (not retryable); its
                secrets cannot be read (retryable: a key may be restored).
        """
        action = request.action
        name = action.get("connection")
        if not name:
            return request
        try:
            connection = (await self._connections.resolve(str(name))).require("http")
        except ConnectionNotFound as exc:
            raise ActionFailed(f"webhook: {exc}", retryable=False) from None
        except StoreError as exc:
            raise ActionFailed(f"webhook: {exc}") from None
        url = join(str(connection.settings["base_url"]), str(action.get("path") or ""))
        if origin_of(url) != origin_of(str(connection.settings["base_url"])):
            raise ActionFailed(
                f"webhook: the path leaves connection {name!r}'s origin", retryable=False
            )
        given = {str(k): str(v) for k, v in (action.get("headers") or {}).items()}
        names = {k.lower() for k in given}
        headers = {k: v for k, v in headers_of(connection).items() if k.lower() not in names}
        prepared = {**action, "url": url, "headers": {**headers, **given}}
        return msgspec.structs.replace(request, action=prepared)

    def route(self, request: ActionRequest) -> Route:
        """Where the request goes and how many may be in flight there at once.

        Raises:
            ActionFailed: the URL is not a valid http(s) URL, or its destination is not
                allowed (not retryable; the message names the origin and the setting).
        """
        action = request.action
        url = str(action.get("url", ""))
        found = _destination(url)
        if found is None:
            raise _invalid_url(_method(action), url_origin(url))
        origin, key = found
        # A connection's origin counts as written: prepare() put its base URL there.
        written = None if action.get("connection") else self._origins_written_in(request.rule)
        refusal = self._policy.refusal(origin, written)
        if refusal is not None:
            raise ActionFailed(
                f"webhook {_method(action)} {url_origin(url)}: {refusal}", retryable=False
            )
        return Route(key, self._cap(origin, action.get("concurrency")))

    def _origins_written_in(self, name: str) -> frozenset[Origin] | None:
        """The origins the rule writes literally; ``None`` if not needed or not known."""
        if self._policy.allow_list:
            return None
        find = getattr(self._rules, "rule", None)  # the service's RuleHost has it
        rule = find(name) if find is not None else None
        if not isinstance(rule, Rule):
            return None
        known = self._written.get(name)
        if known is None or known[0] is not rule:
            known = self._written[name] = (rule, written_origins(rule))
        return known[1]

    def _cap(self, origin: Origin, asked: object) -> int:
        host_cap = self._host_cap(origin)
        if isinstance(asked, int) and not isinstance(asked, bool) and asked >= 1:
            return asked if host_cap is None else min(asked, host_cap)
        return self._max_concurrency if host_cap is None else host_cap

    def _find_host_cap(self, origin: Origin) -> int | None:
        return next((cap for pattern, cap in self._host_caps if pattern.matches(origin)), None)

    async def execute(self, request: ActionRequest) -> ActionResult:
        """Send the request once (its destination checked first: see :meth:`route`)."""
        self.route(request)
        action = request.action
        url = str(action.get("url", ""))
        method = _method(action)
        origin = url_origin(url)
        answer = await self._send(self._build(request, method, url, origin), method, origin)
        status = answer.status_code
        logger.debug("webhook %s %s: HTTP %d", method, origin, status)
        if 200 <= status < 300:
            return ActionResult(detail=f"HTTP {status} from {origin}", data={"status": status})
        message = f"webhook {method} {origin}: HTTP {status}"
        if status == httpx.codes.TOO_MANY_REQUESTS:
            retry_after = parse_retry_after(
                answer.headers.get("retry-after"), at_most=_RETRY_AFTER_MAX
            )
            raise Congested(message, answered=True, retry_after=retry_after)
        if status in _OVERLOADED_STATUSES:
            raise Overloaded(message)
        retryable = status >= 500 or status in _RETRY_STATUSES
        raise ActionFailed(message, retryable=retryable)

    def _build(self, request: ActionRequest, method: str, url: str, origin: str) -> httpx.Request:
        action = request.action
        headers = {str(k): str(v) for k, v in (action.get("headers") or {}).items()}
        given = {name.lower() for name in headers}
        headers[IDEMPOTENCY_HEADER] = str(request.idempotency_key)
        if "user-agent" not in given:
            headers["User-Agent"] = USER_AGENT
        body: Any = action.get("body")
        content = b""
        if body is not None:
            try:
                content = _encoder.encode(body)
            except (TypeError, ValueError) as exc:
                raise ActionFailed(
                    f"webhook {method} {origin}: the body is not JSON ({exc})", retryable=False
                ) from None
            if "content-type" not in given:
                headers["Content-Type"] = "application/json"
        try:
            return httpx.Request(
                method,
                _parsed_url(url),
                headers=headers,
                content=content,
                extensions=self._extensions,
            )
        except httpx.InvalidURL:
            raise _invalid_url(method, origin) from None
        except UnicodeEncodeError:
            raise ActionFailed(
                f"webhook {method} {origin}: a header name or value is not ASCII", retryable=False
            ) from None

    async def _send(self, call: httpx.Request, method: str, origin: str) -> httpx.Response:
        """The answer, or the failure as :class:`ActionFailed` (see the module docstring)."""
        try:
            return await self._transport.handle_async_request(call)
        except httpx.ConnectTimeout:
            raise Congested(
                f"webhook {method} {origin}: connection failed (not accepted in time)"
            ) from None
        except ConnectionRefused:
            raise Congested(f"webhook {method} {origin}: connection failed (refused)") from None
        except ConnectionDropped:
            raise Congested(
                f"webhook {method} {origin}: connection failed (closed before an answer)"
            ) from None
        except httpx.TimeoutException:
            raise Overloaded(f"webhook {method} {origin}: timed out") from None
        except httpx.UnsupportedProtocol:  # a scheme or host httpx parses but cannot send to
            raise _invalid_url(method, origin) from None
        except httpx.LocalProtocolError as exc:
            raise ActionFailed(
                f"webhook {method} {origin}: the request is not valid HTTP ({exc})",
                retryable=False,
            ) from None
        except CertificateNotTrusted as exc:
            raise ActionFailed(
                f"webhook {method} {origin}: its TLS certificate is not trusted ({exc})"
            ) from None
        except httpx.TransportError as exc:
            raise ActionFailed(
                f"webhook {method} {origin}: connection failed ({type(exc).__name__})"
            ) from None

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._transport.aclose()


def _invalid_url(method: str, origin: str) -> ActionFailed:
    return ActionFailed(f"webhook {method} {origin}: not a valid http(s) URL", retryable=False)
