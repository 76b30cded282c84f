"""An httpx transport that sends requests through one aiohttp connection pool.

The webhook executor builds its requests with httpx (URL checks, headers, JSON bodies,
timeouts) and sends them here. httpcore, httpx's own transport, spends most of a local
request's time in anyio task groups and cancel scopes; aiohttp's pool and C-accelerated
HTTP parser do the same work in about half the CPU (measured with
``tests/perf/bench_webhook.py``: 1,055 → 1,862 requests/s with 64 in flight to one local
receiver). Everything above the socket stays httpx: callers see ``httpx.Response`` and
httpx's exceptions.

The session is created on first use, inside the running event loop, and reused: keep-alive
connections to each host are shared by every request. Response bodies are read whole
(webhook answers are small) so connections return to the pool at once.
"""

from __future__ import annotations

import ssl

import aiohttp
import httpx

__all__ = ["AiohttpTransport"]


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests with aiohttp.

    Args:
        ssl_context: TLS settings for ``https`` URLs (certificate checks included).
        max_connections: Connections open at once across hosts.
        keepalive: Seconds an idle connection is kept for reuse.
    """

    def __init__(
        self, *, ssl_context: ssl.SSLContext, max_connections: int = 100, keepalive: float = 15.0
    ) -> None:
        self._ssl = ssl_context
        self._max_connections = max_connections
        self._keepalive = keepalive
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=self._keepalive,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # a webhook is not a browser session
                auto_decompress=False,  # httpx decodes by Content-Encoding, as it asked
                trust_env=False,
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read the whole answer."""
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("pool"),
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        body = await request.aread()
        try:
            async with self._open().request(
                request.method,
                str(request.url),
                headers=[  # as written: some receivers match names case-sensitively
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in request.headers.raw
                ],
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            ) as answer:
                content = await answer.read()
                status, reason, headers = answer.status, answer.reason, answer.raw_headers
        except (TimeoutError, aiohttp.ConnectionTimeoutError) as exc:
            connecting = isinstance(exc, aiohttp.ConnectionTimeoutError)
            error = httpx.ConnectTimeout if connecting else httpx.ReadTimeout
            raise error(str(exc) or "timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:  # reset connections, bad answers, ...
            raise httpx.NetworkError(str(exc) or type(exc).__name__, request=request) from exc
        extensions = {"http_version": b"HTTP/1.1"}
        if reason:
            extensions["reason_phrase"] = reason.encode("latin-1", "replace")
        return httpx.Response(
            status,
            headers=list(headers),
            stream=httpx.ByteStream(content),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        """Close the pool's connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
