"""The ``webhook`` executor: one HTTP request with a JSON body, through a pooled client.

Every attempt carries the header ``Idempotency-Key`` (the same on every attempt), so a
receiver can tell a retry from a new call. A 2xx answer is success; 5xx, 429, 408 and
connection errors or timeouts are retried; any other answer fails at once. Messages
name the method, the status and the URL's origin (``https://host:port``): never its path
or query, where tokens live.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from interlock.service.actions.executor import ActionFailed, ActionRequest, ActionResult
from interlock.service.actions.redact import url_origin

if TYPE_CHECKING:
    from interlock.service.context import Services

__all__ = ["IDEMPOTENCY_HEADER", "WebhookExecutor"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
_RETRY_STATUSES = frozenset({408, 425, 429})


class WebhookExecutor:
    """Calls HTTP endpoints for ``webhook`` actions (one shared connection pool)."""

    def __init__(self, services: Services, *, transport: httpx.AsyncBaseTransport | None = None):
        settings = services.settings.actions
        connections = max(10, settings.concurrency)
        self.client = httpx.AsyncClient(
            timeout=settings.timeout.total_seconds(),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            follow_redirects=False,
            transport=transport,
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
        try:
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
        """Close the connection pool."""
        await self.client.aclose()
