"""``interlock connections ...``: the real command line (a subprocess) against the API
served by uvicorn over a real store and NATS (SQLite: the store is covered elsewhere).

A secret read from standard input never appears in any output; ``test`` exits 1 with
one line naming the failed step; ``channels`` keep working beside connections.
"""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest

from harness.nats import init_streams
from integration.service.actions.api_cli import INTERLOCK, serving_api
from integration.service.actions.dispatch_fixtures import running_services
from integration.service.api.test_connections import TOKEN, BearerEndpoint
from interlock.service.cli.connections import BadField, parse_fields


async def run(url: str, tmp: Path, *args: str, stdin: str = "") -> tuple[int, str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp), "INTERLOCK_API_URL": url}
    env["NEW_TOKEN"] = TOKEN
    process = await asyncio.create_subprocess_exec(
        INTERLOCK,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
def streams(nats_url: str) -> str:
    init_streams(nats_url)
    return nats_url


async def test_the_command_line_manages_connections_without_showing_secrets(
    sqlite_url: str, streams: str, tmp_path: Path
) -> None:
    nats_url = streams
    endpoint = BearerEndpoint(TOKEN)
    outputs: list[str] = []
    try:
        async with (
            running_services(sqlite_url, nats_url, tmp_path / "spool") as services,
            serving_api(services) as url,
        ):
            status, out, err = await run(
                url, tmp_path, "connections", "add", "tickets", "http",
                f"base_url={endpoint.url}", "token=-", "header.X-Team=data",
                stdin="wrong-token\n",
            )  # fmt: skip
            outputs += [out, err]
            assert status == 0, err
            assert out.strip() == (
                f"connection tickets (http, version 1): base_url={endpoint.url} "
                "header_names=['X-Team', 'Authorization']; secrets: headers, token"
            )
            status, out, err = await run(url, tmp_path, "connections", "test", "tickets")
            outputs += [out, err]
            assert status == 1
            assert err == (
                f"tickets: refused: the HTTP endpoint at {endpoint.url} answered but refused "
                "the credentials (HTTP 401)\n"
            )
            status, out, err = await run(
                url, tmp_path, "connections", "rotate", "tickets", "token=env:NEW_TOKEN"
            )
            outputs += [out, err]
            assert (status, out.strip()) == (0, "connection tickets rotated (token), version 2")
            status, out, err = await run(url, tmp_path, "connections", "test", "tickets")
            assert (status, err) == (0, "")
            assert out.startswith(f"tickets: ok: {endpoint.url} answered HTTP 200")

            status, out, err = await run(
                url, tmp_path, "channels", "add", "ops", "-", stdin="json://127.0.0.1:9/x\n"
            )
            assert status == 0, err
            for args in (("list",), ("show", "tickets"), ("history",), ("history", "tickets")):
                status, out, err = await run(url, tmp_path, "connections", *args)
                assert status == 0, err
                outputs += [out, err]
            listing, history = outputs[-8], outputs[-4]
            assert "ops" in listing
            assert "apprise" in listing
            assert [line.split()[3] for line in history.splitlines()[1:]] == [
                "created",
                "rotated",
                "created",
            ]
            status, out, err = await run(url, tmp_path, "connections", "remove", "tickets")
            assert (status, out.strip()) == (0, "connection tickets removed")
            status, out, err = await run(url, tmp_path, "connections", "show", "tickets")
            assert status != 0
            assert "no connection 'tickets'" in err
            status, out, err = await run(
                url, tmp_path, "connections", "add", "x", "ftp", "url=ftp://h"
            )
            assert status != 0
            assert "kind must be one of airflow, prefect, s3, database, http, apprise" in err
            assert len(err.strip().splitlines()) == 1
    finally:
        endpoint.close()
    for text in outputs:
        assert TOKEN not in text
        assert "wrong-token" not in text


def test_fields_are_read_from_arguments_stdin_and_the_environment() -> None:
    fields = parse_fields(
        ["url=http://a", "password=-", "token=env:T", "header.X-A=1"],
        stdin=io.StringIO("pw\n"),
        environ={"T": "tok"},
    )
    assert fields == {"url": "http://a", "password": "pw", "token": "tok", "headers": {"X-A": "1"}}
    with pytest.raises(BadField, match=r"^token: the environment variable T is not set$"):
        parse_fields(["token=env:T"], environ={})
    with pytest.raises(BadField, match=r"^password: no value on standard input$"):
        parse_fields(["password=-"], stdin=io.StringIO(""))
    with pytest.raises(BadField, match=r"^url: give FIELD=VALUE$"):
        parse_fields(["url"])
