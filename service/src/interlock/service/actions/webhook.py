"""The ``webhook`` executor: one HTTP request with a JSON body, through a pooled client.

Every attempt carries the header ``Idempotency-Key`` (the same on every attempt), so a
receiver can tell a retry from a new call. A 2xx answer is success; 5xx, 429, 408 and
connection errors or timeouts are retried; any other answer fails at once. Messages
name the method, the status and the URL's origin (``https://host:port``): never its path
or query, where tokens live; and while httpx's own logger would log a request (at INFO),
the URL is registered with :func:`~interlock.service.actions.redact.hiding`.

Requests are built by one ``httpx.AsyncClient`` and sent through one aiohttp
connection pool (:class:`~interlock.service.actions.aiohttp_transport.AiohttpTransport`),
with keep-alive connections shared by every action in flight. The client keeps no
cookies: every call stands alone, so a cookie one endpoint sets is never sent with
another rule's call to the same host.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

import httpx

from interlock.service.actions.aiohttp_transport import AiohttpTransport
from interlock.service.actions.executor import ActionFailed, ActionRequest, ActionResult
from interlock.service.actions.redact import hiding, url_origin

if TYPE_CHECKING:
    from interlock.service.context import Services

__all__ = ["IDEMPOTENCY_HEADER", "WebhookExecutor"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_CONNECTIONS_MARGIN = 16
"""Connections allowed beyond the dispatcher's concurrency (closing ones linger)."""
_RETRY_STATUSES = frozenset({408, 425, 429})
_HTTPX_LOG = logging.getLogger("httpx")
"""httpx logs each request's full URL at INFO; while it would, the URL is hidden."""


class WebhookExecutor:
    """Calls HTTP endpoints for ``webhook`` actions (pooled connections, see above)."""

    def __init__(self, services: Services) -> None:
        actions = services.settings.actions
        transport = AiohttpTransport(
            ssl_context=httpx.create_ssl_context(),
            max_connections=actions.concurrency + MAX_CONNECTIONS_MARGIN,
        )
        self.client = httpx.AsyncClient(
            timeout=actions.timeout.total_seconds(),
            follow_redirects=False,
            transport=transport,
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # none kept
        )

    async def execute(self, request: ActionRequest) -> ActionResult:
        """Send the request once."""
        action = request.action
        url = str(action.get("url", ""))
        method = str(action.get("method", "POST")).upper()
        origin = url_origin(url)
        headers: dict[str, str] = {str(k): str(v) for k, v in (action.get("headers") or {}).items()}
        headers[IDEMPOTENCY_HEADER] = str(request.idempotency_key)
        body: Any = action.get("body")
        hide = hiding(url) if _HTTPX_LOG.isEnabledFor(logging.INFO) else nullcontext()
        try:
            with hide:
                response = await self.client.request(
                    method, url, headers=headers, json=body if body is not None else None
                )
        except httpx.TimeoutException:
            raise ActionFailed(f"webhook {method} {origin}: timed out") from None
        except httpx.TransportError as exc:
            raise ActionFailed(
                f"webhook {method} {origin}: connection failed ({type(exc).__name__})"
            ) from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError):
            raise ActionFailed(
                f"webhook {method} {origin}: not a valid http(s) URL", retryable=False
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            return ActionResult(detail=f"HTTP {status} from {origin}", data={"status": status})
        retryable = status >= 500 or status in _RETRY_STATUSES
        raise ActionFailed(f"webhook {method} {origin}: HTTP {status}", retryable=retryable)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.client.aclose()
