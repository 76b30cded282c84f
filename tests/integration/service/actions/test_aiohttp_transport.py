"""The webhook's httpx transport against a raw local HTTP server: what goes out, what
comes back, and every failure as the httpx exception httpx's own transport would raise.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from harness.ports import free_port
from harness.tls import make_certificates
from integration.service.actions.dispatch_fixtures import running_services
from interlock.sdk.executors import ActionFailed, ActionRequest
from interlock.service.actions.aiohttp_transport import AiohttpTransport
from interlock.service.actions.registry import ServiceContext
from interlock.service.actions.webhook import WebhookExecutor

OK = b"HTTP/1.1 201 Created\r\nX-Answer: yes\r\nContent-Length: 7\r\n\r\ncreated"


@dataclass
class RawServer:
    """Answers each request with ``answer(head)`` bytes (``None``: close at once)."""

    answer: Callable[[bytes], bytes | None]
    heads: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                self.heads.append(head)
                self.bodies.append(await reader.readexactly(length) if length else b"")
                reply = self.answer(head)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@asynccontextmanager
async def raw_server(
    answer: Callable[[bytes], bytes | None], tls: ssl.SSLContext | None = None
) -> AsyncIterator[RawServer]:
    server = RawServer(answer)
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=tls)
    server.port = listening.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listening.close()
        await listening.wait_closed()
        for handler in server.handlers:  # each closes its connection as it ends
            handler.cancel()
        await asyncio.gather(*server.handlers, return_exceptions=True)


@asynccontextmanager
async def transport() -> AsyncIterator[AiohttpTransport]:
    sending = AiohttpTransport(ssl_context=ssl.create_default_context(), max_connections=4)
    try:
        yield sending
    finally:
        await sending.aclose()


def timeouts(seconds: float) -> dict[str, dict[str, float]]:
    return {"timeout": {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}}


async def test_a_request_goes_out_as_written_and_the_answer_comes_back_whole() -> None:
    async with raw_server(lambda head: OK) as server, transport() as sending:
        for n in range(2):
            request = httpx.Request(
                "PUT",
                server.url(f"/hook/{n}?token=t"),
                headers={"X-Team-Token": "secret", "Content-Type": "application/json"},
                content=b'{"n": %d}' % n,
                extensions=timeouts(5),
            )
            answer = await sending.handle_async_request(request)
            assert (answer.status_code, answer.reason_phrase) == (201, "Created")
            assert answer.headers["x-answer"] == "yes"
            assert await answer.aread() == b"created"
            assert answer.request is request
    first = server.heads[0].decode("latin-1").split("\r\n")
    assert first[0] == "PUT /hook/0?token=t HTTP/1.1"
    assert "X-Team-Token: secret" in first  # the name as written, not lower-cased
    assert f"Host: 127.0.0.1:{server.port}" in first
    names = {line.split(":", 1)[0].lower() for line in first[1:] if line}
    assert not names & {"user-agent", "accept-encoding", "cookie"}  # none added
    assert server.bodies == [b'{"n": 0}', b'{"n": 1}']
    assert server.connections == 1  # the second request reused the kept-alive connection


async def test_failures_are_the_httpx_exceptions_for_them() -> None:
    def answer(head: bytes) -> bytes | None:
        path = head.split(b" ", 2)[1]
        if path == b"/hang-up":
            return None
        if path == b"/garbage":
            return b"this is not HTTP\r\n\r\n"
        return OK

    slow_started, release, slow_done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            slow_started.set()
            await release.wait()  # never answers while the client waits
        finally:
            writer.close()
            slow_done.set()

    slow_server = await asyncio.start_server(slow, "127.0.0.1", 0)
    slow_url = f"http://127.0.0.1:{slow_server.sockets[0].getsockname()[1]}/slow"
    try:
        async with raw_server(answer) as server, transport() as sending:
            cases: list[tuple[str, dict[str, str], type[Exception]]] = [
                (f"http://127.0.0.1:{free_port()}/x", {}, httpx.ConnectError),
                (server.url("/hang-up"), {}, httpx.RemoteProtocolError),
                (server.url("/garbage"), {}, httpx.RemoteProtocolError),
                (slow_url, {}, httpx.ReadTimeout),
                (f"ftp://127.0.0.1:{server.port}/x", {}, httpx.UnsupportedProtocol),
                ("http:///no-host", {}, httpx.UnsupportedProtocol),
                (server.url(), {"X-Injected": "a\r\nEvil: yes"}, httpx.LocalProtocolError),
            ]
            for url, headers, expected in cases:
                request = httpx.Request("POST", url, headers=headers, extensions=timeouts(0.3))
                with pytest.raises(expected):
                    await sending.handle_async_request(request)
            assert slow_started.is_set()
            fine = httpx.Request("POST", server.url(), extensions=timeouts(5))
            assert (await sending.handle_async_request(fine)).status_code == 201
    finally:
        release.set()
        if slow_started.is_set():
            await slow_done.wait()
        slow_server.close()
        await slow_server.wait_closed()
    assert not any(b"Evil" in head for head in server.heads)  # nothing smuggled through


async def test_webhooks_check_the_servers_certificate(
    tmp_path: Path, sqlite_url: str, streams: str
) -> None:
    (tmp_path / "tls").mkdir()
    made = make_certificates(tmp_path / "tls")
    if made is None:
        pytest.skip("the openssl command line is needed to make test certificates")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(made.server, made.server_key)
    async with raw_server(lambda head: OK, tls) as server:
        url = server.url("/hook").replace("http://", "https://")
        # The executor trusts certifi's CAs: a certificate from a private CA is refused.
        async with running_services(sqlite_url, streams, tmp_path / "spool") as services:
            executor = WebhookExecutor(ServiceContext.of(services))
            key = uuid.uuid4()
            call = ActionRequest(
                idempotency_key=key,
                firing_id=key,
                rule="hooks",
                kind="webhook",
                action={"action": "webhook", "url": url},
                attempt=1,
            )
            try:
                with pytest.raises(ActionFailed) as failed:
                    await executor.execute(call)
            finally:
                await executor.close()
        assert str(failed.value) == (
            f"webhook POST https://127.0.0.1:{server.port}: its TLS certificate is not trusted "
            "(unable to get local issuer certificate)"
        )
        assert failed.value.retryable
        assert server.heads == []  # nothing was sent over the unverified connection
        # Trusting that CA, the same server answers over TLS.
        trusting = AiohttpTransport(ssl_context=ssl.create_default_context(cafile=made.ca))
        try:
            request = httpx.Request("POST", url, content=b"{}", extensions=timeouts(5))
            answer = await trusting.handle_async_request(request)
        finally:
            await trusting.aclose()
        assert answer.status_code == 201
        assert len(server.heads) == 1
