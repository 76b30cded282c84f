"""Local mode (loopback, no key) over real HTTP: what a web page could send is refused.

A uvicorn-served API on 127.0.0.1 with no key answers this machine's programs (httpx,
the ``interlock`` command) and its own pages, and refuses a foreign ``Host`` (DNS
rebinding) and changes from a foreign ``Origin`` — the cross-site ``text/plain`` JSON
body that created and ran a process deployment included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from integration.service.actions.api_cli import cli, serving_api

from .conftest import Rig

DEPLOYMENT = {"name": "pwned", "target": {"type": "process", "command": ["touch", "/tmp/x"]}}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: these tests are about HTTP headers, not the store."""
    return f"sqlite:///{tmp_path / 'interlock.db'}"


@pytest.fixture
async def url(rig: Rig) -> AsyncIterator[str]:
    async with serving_api(rig.services) as served:
        yield served


def _port(url: str) -> int:
    port = httpx.URL(url).port
    assert port is not None
    return port


def _problem(response: httpx.Response, status: int, *phrases: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    for phrase in phrases:
        assert phrase in body["detail"], body["detail"]


async def test_a_foreign_host_is_refused_and_loopback_names_answer(url: str) -> None:
    port = _port(url)
    async with httpx.AsyncClient(base_url=url) as client:
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.nip.io", "10.0.0.1"):
            refused = await client.get("/api/rules", headers={"Host": host})
            _problem(refused, 403, f"the Host header '{host}' is not this API's address")
            assert "DNS" in refused.json()["detail"]
        wrong_port = await client.get("/api/rules", headers={"Host": f"127.0.0.1:{port + 1}"})
        _problem(wrong_port, 403, "is not this API's address")
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"):
            answered = await client.get("/api/rules", headers={"Host": host})
            assert answered.status_code == 200, (host, answered.text)


async def test_a_cross_site_change_is_refused_and_nothing_is_created(rig: Rig, url: str) -> None:
    port = _port(url)
    async with httpx.AsyncClient(base_url=url) as client:
        # What a page's <form> or fetch() sends without a preflight: JSON as text/plain.
        attack = await client.post(
            "/api/deployments",
            content=b'{"name": "pwned", "target": {"type": "process", "command": ["id"]}}',
            headers={"Content-Type": "text/plain", "Origin": "http://evil.example"},
        )
        _problem(attack, 403, "a web page (Origin: http://evil.example) may not change anything")
        for origin in ("null", f"http://localhost:{port + 1}", f"http://evil.example:{port}"):
            refused = await client.post(
                "/api/deployments", json=DEPLOYMENT, headers={"Origin": origin}
            )
            _problem(refused, 403, f"Origin: {origin}")
        cross = await client.post(
            "/api/deployments", json=DEPLOYMENT, headers={"Sec-Fetch-Site": "cross-site"}
        )
        _problem(cross, 403, "Sec-Fetch-Site: cross-site")
        # Reading is not a change: a page cannot read the answer anyway (no CORS).
        assert (
            await client.get("/api/rules", headers={"Origin": "http://evil"})
        ).status_code == 200
    assert await rig.services.store.deployments.list() == []


async def test_same_origin_requests_and_programs_pass(rig: Rig, url: str, tmp_path: Path) -> None:
    port = _port(url)
    async with httpx.AsyncClient(base_url=url) as client:
        for number, origin in enumerate((f"http://127.0.0.1:{port}", f"http://localhost:{port}")):
            created = await client.post(
                "/api/queues",
                json={"name": f"same-origin-{number}"},
                headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"},
            )
            assert created.status_code == 201, created.text
        # The approval links' form, served by the API itself, posts a form from its own
        # origin: it reaches the handler (an unknown token: the 404 page, in HTML).
        form = await client.post(
            "/api/approvals/not-a-token/approve",
            data={"by": "ana"},
            headers={"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"},
        )
        assert form.status_code == 404
        assert "No such approval" in form.text
        foreign_form = await client.post(
            "/api/approvals/not-a-token/approve",
            data={"by": "mallory"},
            headers={"Origin": "http://evil.example"},
        )
        _problem(foreign_form, 403, "may not change anything")
    # The command line (httpx, Host 127.0.0.1:PORT, no Origin) needs no key: make run.
    status, out, err = await cli(url, tmp_path, "queues", "list")
    assert status == 0, err
    assert "same-origin-0" in out


async def test_with_a_key_the_guards_decide(rig: Rig, url: str) -> None:
    """Once a key exists, a request without one is refused by the guards (401) whatever its
    Host or Origin, and a key is accepted under any Host (a reverse proxy's name)."""
    token = await rig.admin_token()
    async with httpx.AsyncClient(base_url=url) as client:
        anonymous = await client.post(
            "/api/queues",
            json={"name": "q"},
            headers={"Host": "interlock.example", "Origin": "http://evil.example"},
        )
        _problem(anonymous, 401, "an API key is required")
        proxied = await client.post(
            "/api/queues",
            json={"name": "q"},
            headers={"Host": "interlock.example", "Authorization": f"Bearer {token}"},
        )
        assert proxied.status_code == 201, proxied.text
