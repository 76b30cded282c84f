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
"""

from __future__ import annotations

import functools
import logging
import ssl
from typing import TYPE_CHECKING, Any

import certifi
import httpx
import msgspec

from interlock.service.actions.aiohttp_transport import AiohttpTransport, CertificateNotTrusted
from interlock.service.actions.executor import ActionFailed, ActionRequest, ActionResult
from interlock.service.actions.redact import url_origin

if TYPE_CHECKING:
    from interlock.service.context import Services

__all__ = ["IDEMPOTENCY_HEADER", "USER_AGENT", "WebhookExecutor"]

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "Interlock"
"""Sent unless the action sets its own ``User-Agent``."""
MAX_CONNECTIONS_MARGIN = 16
"""Connections allowed beyond the dispatcher's concurrency (closing ones linger)."""
KEEPALIVE_SECONDS = 15.0
_RETRY_STATUSES = frozenset({408, 425, 429})
_encoder = msgspec.json.Encoder()
_parsed_url = functools.lru_cache(maxsize=1024)(httpx.URL)


class WebhookExecutor:
    """Calls HTTP endpoints for ``webhook`` actions (pooled connections, see above)."""

    def __init__(self, services: Services) -> None:
        actions = services.settings.actions
        seconds = actions.timeout.total_seconds()
        self._extensions = {
            "timeout": {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}
        }
        self._transport = AiohttpTransport(
            ssl_context=ssl.create_default_context(cafile=certifi.where()),
            max_connections=actions.concurrency + MAX_CONNECTIONS_MARGIN,
            keepalive=KEEPALIVE_SECONDS,
        )

    async def execute(self, request: ActionRequest) -> ActionResult:
        """Send the request once."""
        action = request.action
        url = str(action.get("url", ""))
        method = str(action.get("method", "POST")).upper()
        origin = url_origin(url)
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
            call = httpx.Request(
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
        try:
            answer = await self._transport.handle_async_request(call)
        except httpx.TimeoutException:
            raise ActionFailed(f"webhook {method} {origin}: timed out") from None
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
        status = answer.status_code
        logger.debug("webhook %s %s: HTTP %d", method, origin, status)
        if 200 <= status < 300:
            return ActionResult(detail=f"HTTP {status} from {origin}", data={"status": status})
        retryable = status >= 500 or status in _RETRY_STATUSES
        raise ActionFailed(f"webhook {method} {origin}: HTTP {status}", retryable=retryable)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._transport.aclose()


def _invalid_url(method: str, origin: str) -> ActionFailed:
    return ActionFailed(f"webhook {method} {origin}: not a valid http(s) URL", retryable=False)
