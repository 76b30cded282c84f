"""The ``webhook`` executor: one HTTP request with a JSON body, through a pooled client.

Every attempt carries the header ``Idempotency-Key`` (the same on every attempt), so a
receiver can tell a retry from a new call. A 2xx answer is success; 5xx, 429, 408 and
connection errors or timeouts are retried; any other answer fails at once. Messages and
logs name the method, the status and the URL's origin (``https://host:port``): never its
path or query, where tokens live.

Requests go through one aiohttp session: keep-alive connections shared by every action
in flight, aiohttp's C-accelerated HTTP parser, TLS checked against certifi's CA bundle.
An earlier version built each request with httpx and only sent it through aiohttp;
httpx's request and response objects, URL parsing, header merging and cookie
extraction took two thirds of the CPU of a call (see ``tests/perf/bench_webhook.py``,
which measures the executor alone as well as the whole dispatcher). The session keeps
no cookies: every call stands alone, so a cookie one endpoint sets is
never sent with another rule's call to the same host.
"""

from __future__ import annotations

import logging
import ssl
from typing import TYPE_CHECKING, Any

import aiohttp
import certifi
import msgspec

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


class WebhookExecutor:
    """Calls HTTP endpoints for ``webhook`` actions (pooled connections, see above)."""

    def __init__(self, services: Services) -> None:
        actions = services.settings.actions
        self._timeout = aiohttp.ClientTimeout(total=actions.timeout.total_seconds())
        self._max_connections = actions.concurrency + MAX_CONNECTIONS_MARGIN
        self._ssl = ssl.create_default_context(cafile=certifi.where())
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        """The session, created on first use inside the running event loop."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=KEEPALIVE_SECONDS,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # a webhook is not a browser session
                auto_decompress=False,  # the answer's body is not used, only its status
                trust_env=False,
                skip_auto_headers=("User-Agent", "Content-Type"),
            )
        return self._session

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
        data = None
        if body is not None:
            try:
                data = _encoder.encode(body)
            except (TypeError, ValueError) as exc:
                raise ActionFailed(
                    f"webhook {method} {origin}: the body is not JSON ({exc})", retryable=False
                ) from None
            if "content-type" not in given:
                headers["Content-Type"] = "application/json"
        try:
            async with self._open().request(
                method,
                url,
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=self._timeout,
            ) as answer:
                await answer.read()  # the whole answer, so the connection goes back to the pool
                status = answer.status
        except TimeoutError:  # aiohttp's own timeouts derive from it too
            raise ActionFailed(f"webhook {method} {origin}: timed out") from None
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError, ValueError):
            raise ActionFailed(
                f"webhook {method} {origin}: not a valid http(s) URL", retryable=False
            ) from None
        except aiohttp.ClientError as exc:
            raise ActionFailed(
                f"webhook {method} {origin}: connection failed ({type(exc).__name__})"
            ) from None
        logger.debug("webhook %s %s: HTTP %d", method, origin, status)
        if 200 <= status < 300:
            return ActionResult(detail=f"HTTP {status} from {origin}", data={"status": status})
        retryable = status >= 500 or status in _RETRY_STATUSES
        raise ActionFailed(f"webhook {method} {origin}: HTTP {status}", retryable=retryable)

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None
