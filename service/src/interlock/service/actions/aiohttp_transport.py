"""An httpx transport that sends requests through one aiohttp connection pool.

httpx's transports are its extension point: an ``httpx.Request`` goes in, an
``httpx.Response`` comes out, and failures are httpx's exceptions. This one does the
socket work with aiohttp (keep-alive pool, C-accelerated HTTP parser) instead of
httpcore, whose pool checks every pooled connection for every request and whose anyio
cancel scopes cost more than the rest of a local call: to one local receiver with 64
requests in flight, httpcore made under 1,000 requests/s and this transport 4,000 to
5,000 (``tests/perf/bench_http_clients.py``).

The session is created on first use, inside the running event loop, and reused. It
keeps no cookies and adds none of aiohttp's default headers but ``Accept``: what a
request says is what is sent, names in the case they were written (some receivers
match them case-sensitively). Answers are read whole (webhook answers are small), so
each connection goes back to the pool at once; they are not decompressed
(``Accept-Encoding`` is only sent when the request sets it).

Failures are httpx's exceptions, two of them narrowed for pacing: a connection refused
or reset while opening is :class:`ConnectionRefused` (an ``httpx.ConnectError``), one
closed or reset before an answer came is :class:`ConnectionDropped` (an
``httpx.RemoteProtocolError``): what a busy server's full listen backlog does.
"""

from __future__ import annotations

import errno
import ssl
from typing import Any

import aiohttp
import httpx

__all__ = ["AiohttpTransport", "CertificateNotTrusted", "ConnectionDropped", "ConnectionRefused"]

_SCHEMES = frozenset({"http", "https"})
_SKIPPED_AUTO_HEADERS = ("User-Agent", "Content-Type", "Accept-Encoding")
_TURNED_AWAY = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED})
_DROPPED = frozenset({errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE})


class CertificateNotTrusted(httpx.ConnectError):
    """The server's TLS certificate did not verify (unknown CA, wrong host, expired)."""


class ConnectionRefused(httpx.ConnectError):
    """The server refused or reset the connection while it was being opened.

    Nothing is listening, or the listen backlog is full and the kernel answers with a
    reset: a busy server and a stopped one look alike here.
    """


class ConnectionDropped(httpx.RemoteProtocolError):
    """The connection was closed or reset before an answer came."""


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests with aiohttp.

    Timeouts come from the request's ``timeout`` extension, as httpx sets it
    (``connect``: opening a connection; ``read``: between bytes of the answer;
    ``pool``: waiting for a free connection).

    Args:
        ssl_context: TLS settings for ``https`` URLs (certificate checks included).
        max_connections: Connections open at once, across hosts.
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
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=False,
                skip_auto_headers=_SKIPPED_AUTO_HEADERS,
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read the whole answer."""
        url = request.url
        if url.scheme not in _SCHEMES:
            raise httpx.UnsupportedProtocol(
                f"the URL's scheme must be http or https, not {url.scheme!r}", request=request
            )
        if not url.host:
            raise httpx.UnsupportedProtocol("the URL has no host", request=request)
        body = await request.aread()
        try:
            async with self._open().request(
                request.method,
                str(url),
                headers=[
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in request.headers.raw
                ],
                data=body or None,
                allow_redirects=False,
                timeout=_timeout(request.extensions.get("timeout", {})),
            ) as answer:
                content = await answer.read()
                status, reason, headers = answer.status, answer.reason, answer.raw_headers
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "timed out connecting", request=request) from exc
        except TimeoutError as exc:  # aiohttp's read timeouts derive from it too
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            raise httpx.UnsupportedProtocol(f"invalid URL ({exc})", request=request) from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            why = getattr(exc.certificate_error, "verify_message", None) or exc.certificate_error
            raise CertificateNotTrusted(str(why), request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            if exc.errno in _TURNED_AWAY:
                raise ConnectionRefused(str(exc), request=request) from exc
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise ConnectionDropped(str(exc), request=request) from exc
        except aiohttp.ClientPayloadError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except aiohttp.ClientResponseError as exc:  # an answer that is not valid HTTP
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except aiohttp.ClientOSError as exc:
            if exc.errno in _DROPPED:
                raise ConnectionDropped(str(exc) or "reset", request=request) from exc
            raise httpx.NetworkError(str(exc) or type(exc).__name__, request=request) from exc
        except aiohttp.ClientError as exc:  # reset connections and the like
            raise httpx.NetworkError(str(exc) or type(exc).__name__, request=request) from exc
        except ValueError as exc:  # a header aiohttp refuses to write (a newline, say)
            raise httpx.LocalProtocolError(str(exc), request=request) from exc
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
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


def _timeout(timeouts: dict[str, float | None]) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=None,
        connect=timeouts.get("pool"),
        sock_connect=timeouts.get("connect"),
        sock_read=timeouts.get("read"),
    )
